import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';
import { keepsEveryValue, type ColumnType, type TypeRef } from '../../src/sql/postgres/retype.js';

before(loadSqlParser);

/** A column's type as the catalog loads it: pg_type name and atttypmod (varchar/bpchar/numeric: + 4). */
const col = (name: string, typmod = -1, schema = 'pg_catalog'): ColumnType => ({ schema, name, typmod });
const numericMod = (p: number, s: number): number => ((p << 16) | (s & 0x7ff)) + 4;
/** The new type as the parser gives it for `ALTER … TYPE <written>`. */
const to = (written: string): TypeRef => {
  const r = analysePostgres(`ALTER TABLE t ALTER COLUMN c TYPE ${written}`).statements[0].retypes?.[0]?.type;
  assert.ok(r, written);
  return r;
};

// Each row: current column type, the type written in the ALTER, whether every value survives.
// Checked against PostgreSQL 15: the lossless rows read back the same text, the lossy ones do not
// (or the server refuses some values: varchar(10) → varchar(5) errors on a long value).
const cases: [ColumnType, string, boolean][] = [
  // Larger or no limit: the same values.
  [col('varchar', 5 + 4), 'varchar(10)', true],
  [col('varchar', 5 + 4), 'varchar', true],
  [col('varchar', 5 + 4), 'text', true],
  [col('varchar', 5 + 4), 'pg_catalog.text', true],
  [col('text'), 'varchar', true],
  [col('text'), 'text', true],
  [col('int2'), 'int', true],
  [col('int2'), 'bigint', true],
  [col('int4'), 'bigint', true],
  [col('int4'), 'int8', true],
  [col('int8'), 'numeric', true],
  [col('int4'), 'numeric(10)', true],
  [col('int8'), 'numeric(19, 0)', true],
  [col('float4'), 'double precision', true],
  [col('numeric', numericMod(5, 2)), 'numeric(7,2)', true],
  [col('numeric', numericMod(5, 2)), 'numeric', true],
  [col('numeric', numericMod(5, -2)), 'numeric(7,-2)', true],
  [col('timestamp', 3), 'timestamp(6)', true],
  [col('timestamp', 3), 'timestamp', true],
  [col('timestamptz', 2), 'timestamptz', true],
  [col('time', 2), 'time', true],
  [col('varbit', 4), 'bit varying(8)', true],
  [col('bpchar', 5 + 4), 'char(5)', true],
  [col('bpchar', 5 + 4), 'bpchar', true],
  // Narrower, rounding, shifting, or another type's cast.
  [col('text'), '"char"', false],
  [col('varchar', 10 + 4), '"char"', false],
  [col('varchar', 10 + 4), 'varchar(5)', false],
  [col('text'), 'varchar(100)', false],
  [col('text'), 'char(10)', false],
  [col('numeric'), 'int', false],
  [col('numeric'), 'bigint', false],
  [col('numeric'), 'numeric(10,2)', false],
  [col('numeric', numericMod(5, 2)), 'numeric(5,1)', false],
  [col('numeric', numericMod(5, 2)), 'numeric(4,2)', false],
  // A larger scale is exact but prints trailing zeros (1.5 → 1.50).
  [col('numeric', numericMod(5, 1)), 'numeric(6,2)', false],
  [col('float8'), 'real', false],
  [col('int8'), 'int', false],
  [col('int8'), 'double precision', false],
  [col('int4'), 'numeric(5)', false],
  [col('int4'), 'numeric(12,2)', false],
  [col('timestamp'), 'date', false],
  [col('timestamptz'), 'timestamp', false],
  [col('timestamp'), 'timestamptz', false],
  [col('timestamp', 6), 'timestamp(3)', false],
  [col('timestamp'), 'timestamp(3)', false],
  // bpchar → text drops the padding ('ab   ' reads back as 'ab'); a longer char(n) pads more.
  [col('bpchar', 5 + 4), 'text', false],
  [col('bpchar', 5 + 4), 'varchar', false],
  [col('bpchar', 5 + 4), 'char(8)', false],
  [col('bit', 4), 'bit(8)', false],
  [col('interval', 0x7fff0000 & 0), 'interval', false],
  [col('int4'), 'boolean', false],
  [col('text'), 'jsonb', false],
  // Not pg_catalog's types: a domain, a user type, an array, a type in another schema.
  [col('email', -1, 'public'), 'text', false],
  [col('_int4'), 'bigint', false],
  [col('varchar', 5 + 4), 'public.text', false],
  [col('varchar', 5 + 4), 'pg_temp.text', false],
  [col('varchar', 5 + 4), 'mytext', false],
];

test('a type change keeps every value only for the widenings on the allowlist', () => {
  for (const [from, written, keeps] of cases) {
    assert.equal(keepsEveryValue(from, to(written)), keeps, `${from.schema}.${from.name}(${from.typmod}) → ${written}`);
  }
});

test('an array type is no type the allowlist reads', () => {
  const facts = analysePostgres('ALTER TABLE t ALTER COLUMN a TYPE int[], ALTER COLUMN b TYPE text ARRAY').statements[0];
  assert.deepEqual(facts.retypes?.map((r) => r.type), [undefined, undefined]);
});
