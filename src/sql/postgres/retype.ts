/**
 * Whether `ALTER TABLE … ALTER COLUMN c TYPE T` keeps every value of c. Without USING (or with
 * USING c) the server converts each value with the assignment cast, and many of those lose data
 * without a word: `"char"` keeps one byte, numeric → integer rounds, timestamp → date drops the
 * time, timestamptz → timestamp shifts by the session's time zone. Nothing here is inferred from
 * cast tables: a conversion keeps every value only if it is in the short allowlist below, each
 * entry checked against a real server (same values, same text out). Everything else is lossy:
 * any type outside pg_catalog (domains, enums, user types), arrays, and types with modifiers
 * this file does not read.
 */
import { as, isObject, list, names, type PgNode } from './ast.js';

/** The type an ALTER gives a column, as written (names lower-cased by the parser unless quoted). */
export interface TypeRef {
  schema?: string;
  name: string;
  /** The modifiers, e.g. [10, 2] for numeric(10,2); `char` and `bit` come with [1] from the grammar. */
  typmods: number[];
}

/** A column's current type as the catalog has it: pg_type's schema and name, pg_attribute.atttypmod. */
export interface ColumnType {
  schema: string;
  name: string;
  typmod: number;
}

/**
 * The TypeName node of an ALTER COLUMN TYPE as a TypeRef, or undefined when it is not a plain
 * type with integer modifiers (an array, `%TYPE`, SETOF, a modifier that is an expression).
 */
export function typeRefOf(typeName: unknown): TypeRef | undefined {
  if (!isObject(typeName) || list(typeName.arrayBounds).length > 0 || typeName.pct_type === true || typeName.setof === true) return undefined;
  const parts = names(typeName.names);
  if (parts.length === 0 || parts.length > 2) return undefined;
  const typmods: number[] = [];
  for (const m of list(typeName.typmods)) {
    const c = as(m, 'A_Const');
    // The parser leaves a zero out: `numeric(10,0)` has `{ ival: {} }` for its scale.
    const ival = c && isObject(c.ival) ? ((c.ival as PgNode).ival ?? 0) : undefined;
    if (typeof ival !== 'number') return undefined;
    typmods.push(ival);
  }
  const name = parts[parts.length - 1];
  return parts.length === 2 ? { schema: parts[0], name, typmods } : { name, typmods };
}

/** pg_type's VARHDRSZ: varchar and bpchar typmods are the length plus this. */
const VARHDRSZ = 4;
/** The most fractional digits of timestamp, timestamptz, time and timetz (more is cut to this). */
const MAX_TIME_PRECISION = 6;

/** The decimal digits of every value of each integer type (int8: 9223372036854775807). */
const INTEGER_DIGITS: Record<string, number> = { int2: 5, int4: 10, int8: 19 };

/** Integer types and the wider ones each converts into exactly. */
const WIDER_INTEGERS: Record<string, readonly string[]> = { int2: ['int4', 'int8'], int4: ['int8'], int8: [] };

/** How each type's modifier reads: a length, numeric's precision and scale, a time precision. */
type Modifier = { kind: 'none' } | { kind: 'length'; n: number | null } | { kind: 'numeric'; p: number; s: number } | { kind: 'unconstrained' } | { kind: 'precision'; n: number };

const LENGTH_TYPES = new Set(['varchar', 'bpchar', 'bit', 'varbit']);
const TIME_TYPES = new Set(['timestamp', 'timestamptz', 'time', 'timetz']);

/** The catalog's atttypmod, decoded for the types that have a modifier this file reads. */
function oldModifier(t: ColumnType): Modifier | undefined {
  if (t.typmod < 0) return t.name === 'numeric' || TIME_TYPES.has(t.name) ? { kind: 'unconstrained' } : LENGTH_TYPES.has(t.name) ? { kind: 'length', n: null } : { kind: 'none' };
  if (t.name === 'varchar' || t.name === 'bpchar') return { kind: 'length', n: t.typmod - VARHDRSZ };
  if (t.name === 'bit' || t.name === 'varbit') return { kind: 'length', n: t.typmod };
  if (t.name === 'numeric') {
    // numeric's typmod: ((precision << 16) | (scale & 0x7ff)) + VARHDRSZ, the scale 11 bits signed (PostgreSQL 15+).
    const v = t.typmod - VARHDRSZ;
    return { kind: 'numeric', p: (v >> 16) & 0xffff, s: ((v & 0x7ff) ^ 1024) - 1024 };
  }
  if (TIME_TYPES.has(t.name)) return { kind: 'precision', n: Math.min(t.typmod, MAX_TIME_PRECISION) };
  return undefined;
}

/** The modifiers as written, read the same way (undefined: not a shape the server accepts as is). */
function newModifier(t: TypeRef): Modifier | undefined {
  const m = t.typmods;
  if (m.length === 0) return t.name === 'numeric' || TIME_TYPES.has(t.name) ? { kind: 'unconstrained' } : LENGTH_TYPES.has(t.name) ? { kind: 'length', n: null } : { kind: 'none' };
  if (LENGTH_TYPES.has(t.name)) return m.length === 1 && m[0] > 0 ? { kind: 'length', n: m[0] } : undefined;
  if (t.name === 'numeric') return m.length <= 2 && m[0] > 0 ? { kind: 'numeric', p: m[0], s: m[1] ?? 0 } : undefined;
  if (TIME_TYPES.has(t.name)) return m.length === 1 && m[0] >= 0 ? { kind: 'precision', n: Math.min(m[0], MAX_TIME_PRECISION) } : undefined;
  return undefined;
}

/**
 * True when converting a column of type `from` to `to` (a pg_catalog type) keeps every value,
 * as the client reads it back. `to` must already be known to name the pg_catalog type (see
 * the broker's resolution): an unqualified `text` can be a temp domain over "char".
 */
export function keepsEveryValue(from: ColumnType, to: TypeRef): boolean {
  if (from.schema !== 'pg_catalog' || (to.schema !== undefined && to.schema !== 'pg_catalog')) return false;
  const a = oldModifier(from);
  const b = newModifier(to);
  if (a === undefined || b === undefined) return false;
  if (from.name === to.name) return sameTypeWidens(from.name, a, b);
  // A type change: only these, and only onto a type with no modifier that could cut.
  switch (from.name) {
    case 'varchar':
      // varchar(n) → text: the same bytes (a binary-coercible cast).
      return to.name === 'text' && b.kind === 'none';
    case 'text':
      // text → varchar with no length: the same bytes.
      return to.name === 'varchar' && b.kind === 'length' && b.n === null;
    case 'int2':
    case 'int4':
    case 'int8':
      if (WIDER_INTEGERS[from.name].includes(to.name)) return true;
      // numeric, or numeric(p) / numeric(p,0) with room for every digit: exact, and printed alike.
      return to.name === 'numeric' && (b.kind === 'unconstrained' || (b.kind === 'numeric' && b.s === 0 && b.p >= INTEGER_DIGITS[from.name]));
    case 'float4':
      // Every float4 is exactly a float8 (and casts back to the same float4); it prints with more digits.
      return to.name === 'float8';
    default:
      // bpchar → text/varchar is not here: it drops the padding, so `'ab   '` reads back as `'ab'`.
      return false;
  }
}

/** Same type, new modifier: a larger (or no) limit that cannot cut, round or pad a value. */
function sameTypeWidens(name: string, a: Modifier, b: Modifier): boolean {
  if (a.kind === 'none' || b.kind === 'none') return a.kind === b.kind;
  if (a.kind === 'length' && b.kind === 'length') {
    if (b.n === null) return true;
    if (a.n === null) return false;
    // bpchar pads to its length and bit(n) refuses another length: only varchar/varbit may grow.
    return name === 'varchar' || name === 'varbit' ? b.n >= a.n : b.n === a.n;
  }
  if (b.kind === 'unconstrained') return a.kind === 'unconstrained' || a.kind === 'numeric' || a.kind === 'precision';
  if (a.kind === 'numeric' && b.kind === 'numeric') {
    // The same scale (a larger one prints trailing zeros), and no fewer digits before the point.
    return b.s === a.s && b.p >= a.p;
  }
  if (a.kind === 'precision' && b.kind === 'precision') return b.n >= a.n;
  return false;
}
