/**
 * Adversarial round 6 (MariaDB): analyser-level cases. Each failed before its fix; the e2e
 * probes are in test/e2e/adversarial-mysql-r6.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyseMysql, type MysqlAnalyseOptions } from '../../../src/sql/mysql/analyse.js';
import type { StatementFacts } from '../../../src/sql/facts.js';

const MARIA: MysqlAnalyseOptions = { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' };
const first = (sql: string): StatementFacts => analyseMysql(sql, MARIA).statements[0];

describe('a multi-table UPDATE/DELETE must tie every written table down', () => {
  // The WHERE picked one user; every order joins it, so every order was deleted.
  const unbounded = [
    'DELETE orders FROM orders, users WHERE users.id = 1',
    'DELETE o FROM orders o JOIN users u WHERE u.id = 1',
    'DELETE FROM o USING orders o, users u WHERE u.id = 1',
    'DELETE FROM o USING orders o, users u WHERE u.id = 1 OR o.id = 2',
    "UPDATE orders o, users u SET o.status = 'x' WHERE u.id = 1",
    "UPDATE orders o JOIN users u ON u.id = 1 SET o.status = 'x' WHERE u.plan = 'pro'",
    'DELETE o, u FROM orders o, users u WHERE u.id = 1',
  ];
  for (const sql of unbounded) it(`unbounded: ${sql}`, () => assert.equal(first(sql).hasWhere, false));
  const bounded = [
    'DELETE o FROM orders o JOIN users u ON o.user_id = u.id WHERE u.id = 1',
    'DELETE o FROM orders o, users u WHERE o.user_id = u.id AND u.id = 1',
    'DELETE o, u FROM orders o JOIN users u ON o.user_id = u.id WHERE u.id = 1',
    "UPDATE orders o JOIN users u ON o.user_id = u.id SET o.status = 'x' WHERE u.plan = 'pro'",
    'DELETE FROM o USING orders o, users u WHERE (u.id = 1 AND o.user_id = u.id) OR o.id = 2',
    'DELETE o FROM orders o JOIN users u USING (id) WHERE u.id = 1',
    "DELETE o FROM orders o, users u WHERE plan = 'x'",
    "UPDATE orders o, users u SET o.status = 'x' WHERE o.id = 10",
    "UPDATE orders SET status = 'x' WHERE id = 1",
  ];
  for (const sql of bounded) it(`bounded: ${sql}`, () => assert.equal(first(sql).hasWhere, true));
});

describe('CHECKSUM TABLE reads its tables, and its Checksum carries every column', () => {
  it('relations and lineage', () => {
    const f = first('CHECKSUM TABLE users, other.t EXTENDED');
    assert.deepEqual(f.relations.map((r) => `${r.schema ?? ''}.${r.name}:${r.access}`), ['app.users:read', 'other.t:read']);
    assert.deepEqual(f.lineage?.[1].sources, [{ schema: 'app', table: 'users', column: '*' }, { schema: 'other', table: 't', column: '*' }]);
    assert.equal(f.lineage?.[1].direct, false);
  });
});

describe('a retype into a type that rounds or cuts in strict mode overwrites data', () => {
  const table: [string, boolean][] = [
    ['ALTER TABLE orders MODIFY amount DECIMAL(3,0)', true],
    ['ALTER TABLE orders MODIFY COLUMN amount NUMERIC(12,2) NOT NULL', true],
    ['ALTER TABLE orders CHANGE status status CHAR(10)', true],
    ['ALTER TABLE t MODIFY IF EXISTS `x` DOUBLE', true],
    ['ALTER TABLE t MODIFY created DATE, ADD COLUMN z INT', true],
    ['ALTER TABLE t ADD COLUMN z INT, MODIFY ts DATETIME', true],
    ['ALTER TABLE orders CHANGE COLUMN status st CHARACTER VARYING(10)', false],
    ['ALTER TABLE orders MODIFY status VARCHAR(20)', false],
    ['ALTER TABLE orders MODIFY id BIGINT', false],
    ['ALTER TABLE t ADD COLUMN c DATE', false],
  ];
  for (const [sql, overwrites] of table) it(sql, () => assert.equal(first(sql).actions?.includes('ALTER TABLE OVERWRITE COLUMN') ?? false, overwrites));
});

describe('CALL runs a stored procedure whose body is not analysed', () => {
  it('is opaque', () => {
    const f = first('CALL app.cleanup(1)');
    assert.equal(f.kind, 'call');
    assert.equal(f.opaque?.reason, 'opaque-function');
  });
});

describe('ALTER TABLE … MODIFY / CHANGE lists each column retyped and its new type', () => {
  it('retypes', () => {
    assert.deepEqual(first('ALTER TABLE orders MODIFY amount INT, CHANGE COLUMN `Status` st VARCHAR(5)').retypes, [
      { column: 'amount', type: { name: 'INT', typmods: [] }, rewrites: false },
      { column: 'status', type: { name: 'VARCHAR', typmods: [] }, rewrites: false },
    ]);
  });
});
