/**
 * Adversarial round 5 (MariaDB): shapes the analyser skipped or misnamed. Each case failed
 * before its fix; the e2e probes are in test/e2e/adversarial-mysql-r5.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyseMysql, type MysqlAnalyseOptions } from '../../../src/sql/mysql/analyse.js';
import type { StatementFacts } from '../../../src/sql/facts.js';

const MARIA: MysqlAnalyseOptions = { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' };
const first = (sql: string): StatementFacts => analyseMysql(sql, MARIA).statements[0];
const rels = (f: StatementFacts): string[] => f.relations.map((r) => `${r.schema ?? ''}.${r.name}:${r.access}`);
const cols = (f: StatementFacts): string[] => (f.predicateColumns ?? []).map((c) => `${c.table}.${c.column}`).sort();

describe('statements whose grammar the parser skips still have their expressions read', () => {
  // SHOW … WHERE / LIKE take any expression: a subquery there read users with no relation on record.
  const table: [string, string[], string[], string[]][] = [
    ['SHOW TABLES WHERE EXTRACTVALUE(1, CONCAT(0x7e, (SELECT full_name FROM users WHERE id = 1)))', ['app.users:read'], ['EXTRACTVALUE', 'CONCAT'], ['users.full_name', 'users.id']],
    ["SHOW DATABASES WHERE (SELECT ssn FROM users WHERE id = 1) LIKE '123%'", ['app.users:read'], [], ['users.id', 'users.ssn']],
    ["SHOW VARIABLES LIKE (SELECT CONCAT(LEFT(ssn, 1), '%') FROM users WHERE id = 1)", ['app.users:read'], ['CONCAT', 'LEFT'], ['users.id', 'users.ssn']],
    ["SHOW STATUS WHERE Variable_name = 'x' OR LOAD_FILE('/etc/passwd') IS NULL", [], ['LOAD_FILE'], []],
    ['KILL (SELECT id FROM users WHERE id = 1)', ['app.users:read'], [], ['users.id']],
  ];
  for (const [sql, wantRels, wantFns, wantCols] of table) {
    it(sql, () => {
      const f = first(sql);
      assert.equal(f.opaque, undefined);
      assert.deepEqual(rels(f), wantRels);
      assert.deepEqual(f.functions.map((x) => x.name), wantFns);
      assert.deepEqual(cols(f), wantCols);
    });
  }
  it('LOAD_FILE in a SHOW … WHERE is a file read', () => assert.deepEqual(first("SHOW TABLES WHERE LOAD_FILE('/etc/passwd') IS NULL").functions[0].risks, ['file']));
  it('ordinary SHOW statements read as before', () => {
    for (const sql of ['SHOW TABLES', "SHOW FULL TABLES FROM app LIKE 'u%'", 'SHOW CREATE TABLE users', 'SHOW INDEX FROM users', "SHOW GRANTS FOR 'root'@'localhost'", 'SHOW COUNT(*) WARNINGS', "SHOW VARIABLES WHERE Variable_name IN ('version', 'sql_mode')", 'SHOW ENGINE INNODB STATUS']) {
      const f = first(sql);
      assert.equal(f.kind, 'utility', sql);
      assert.equal(f.opaque, undefined, sql);
      assert.deepEqual(f.relations, [], sql);
    }
  });
});

describe("MariaDB's CREATE OR REPLACE drops what has the name first", () => {
  const table: [string, string][] = [
    ['CREATE OR REPLACE TABLE orders (id INT)', 'CREATE OR REPLACE TABLE'],
    // A sequence is a table: CREATE OR REPLACE SEQUENCE orders drops the table orders and its rows.
    ['CREATE OR REPLACE SEQUENCE orders', 'CREATE OR REPLACE SEQUENCE'],
    // … and CREATE OR REPLACE DATABASE is DROP DATABASE IF EXISTS, then CREATE DATABASE.
    ['CREATE OR REPLACE DATABASE app', 'CREATE OR REPLACE DATABASE'],
    ['CREATE OR REPLACE SCHEMA app', 'CREATE OR REPLACE DATABASE'],
    ['CREATE OR REPLACE TEMPORARY TABLE t (id INT)', 'CREATE TABLE'],
    ['CREATE OR REPLACE TEMPORARY SEQUENCE s', 'CREATE SEQUENCE'],
    ['CREATE SEQUENCE s', 'CREATE SEQUENCE'],
    ['CREATE DATABASE IF NOT EXISTS other', 'CREATE DATABASE'],
    ['CREATE OR REPLACE VIEW v AS SELECT 1', 'CREATE VIEW'],
  ];
  for (const [sql, tag] of table) it(sql, () => assert.equal(first(sql).tag, tag));
});

describe('what decides how many rows a FROM item yields is a filter on what it reads', () => {
  // COUNT(*) over JSON_TABLE(CONCAT('["', REPLACE(CONCAT('^', ssn), '^123-', '","'), '"]'), …) is 2
  // exactly when ssn starts 123-: a prefix oracle with no comparison anywhere.
  const table: [string, string[]][] = [
    ["SELECT u.id, COUNT(*) AS n FROM users u, JSON_TABLE(CONCAT('[\"', REPLACE(CONCAT('^', u.ssn), '^123-', '\",\"'), '\"]'), '$[*]' COLUMNS (x VARCHAR(99) PATH '$')) j GROUP BY u.id", ['users.ssn']],
    ["SELECT COUNT(*) FROM JSON_TABLE((SELECT JSON_ARRAYAGG(email) FROM users), '$[*]' COLUMNS (e TEXT PATH '$')) j", ['users.email']],
    ['SELECT * FROM orders FOR SYSTEM_TIME AS OF (SELECT created FROM users WHERE id = 1)', ['users.created', 'users.id']],
    ["SELECT * FROM JSON_TABLE('[1, 2]', '$[*]' COLUMNS (x INT PATH '$')) j", []],
  ];
  for (const [sql, want] of table) it(sql, () => assert.deepEqual(cols(first(sql)), want));
});

describe('FOR SYSTEM_TIME in all its forms parses (it was a parse error, refused on protected targets)', () => {
  for (const sql of [
    "SELECT * FROM orders FOR SYSTEM_TIME AS OF TIMESTAMP '2024-01-01 00:00:00'",
    'SELECT o.id FROM orders FOR SYSTEM_TIME AS OF NOW() - INTERVAL 1 DAY AS o WHERE o.id = 1',
    "SELECT * FROM orders FOR SYSTEM_TIME BETWEEN TIMESTAMP '2024-01-01' AND NOW() JOIN items ON items.order_id = orders.id",
    "SELECT * FROM orders FOR SYSTEM_TIME FROM '2024-01-01' TO '2025-01-01' WHERE id = 1",
    'SELECT * FROM orders FOR SYSTEM_TIME AS OF TRANSACTION 12',
    'SELECT * FROM orders FOR SYSTEM_TIME ALL',
  ]) {
    it(sql, () => {
      const f = first(sql);
      assert.equal(f.opaque, undefined);
      assert.equal(f.kind, 'select');
      assert.ok(rels(f).includes('app.orders:read'));
    });
  }
});

describe('a transform passes its operand only while its result stays shorter than max_allowed_packet', () => {
  // Past max_allowed_packet a string function returns NULL: REPLACE(ssn, '123-', <long>) is NULL
  // exactly when ssn holds 123-, CONCAT(full_name, <long>) when full_name is longer than a guess.
  const tested = [
    "SELECT id, REPLACE(ssn, '123-', REPEAT('x', @@max_allowed_packet - 6)) AS r FROM users",
    'SELECT id, CONCAT(full_name, REPEAT(\'x\', @@max_allowed_packet - 13)) AS r FROM users',
    'SELECT CONCAT(full_name, ?) AS n FROM users',
    'SELECT CONCAT(full_name, @pad) AS n FROM users',
    "SELECT CONCAT(ssn, LPAD('x', 60000000, 'y')) AS n FROM users",
    "SELECT REPLACE(ssn, '-', (SELECT status FROM orders LIMIT 1)) AS n FROM users",
    "SELECT REPLACE(REPLACE(REPLACE(ssn, '1', 'xxxxxxxxxxxxxxxx'), 'x', 'yyyyyyyyyyyyyyyy'), 'y', 'zzzzzzzzzzzzzzzz') AS n FROM users",
    'SELECT HEX(HEX(HEX(HEX(HEX(HEX(HEX(ssn))))))) AS n FROM users',
    "SELECT REPLACE(REPEAT('a', 1000000), 'a', ssn) AS n FROM users",
    "SELECT CONCAT(IF(plan = 'pro', ssn, REPEAT('x', 60000000)), 'x') AS n FROM users",
  ];
  for (const sql of tested) it(`tests: ${sql}`, () => assert.ok(cols(first(sql)).some((c) => /ssn|full_name/.test(c)), JSON.stringify(first(sql).predicateColumns)));
  const passed = [
    "SELECT REPLACE(card, ' ', '') AS digits, REPLACE(ssn, '-', '') AS s FROM users",
    "SELECT REPLACE(REPLACE(email, '@', ' at '), '.', ' dot ') AS e FROM users",
    "SELECT CONCAT(full_name, ' (', DATE_FORMAT(created, '%Y-%m-%d'), ')') AS a, CONCAT_WS(', ', full_name, address, plan) AS b FROM users",
    "SELECT CONCAT(ssn, CAST(id AS CHAR)) AS a, CONCAT(email, id + 1) AS b, CONCAT('#', LPAD(plan, 2, '0'), ssn) AS c FROM users",
    "SELECT UPPER(CONCAT(IF(plan = 'pro', email, address), ' ', COALESCE(phone, ''))) AS a, TO_BASE64(CONCAT(ssn, '/', card)) AS b FROM users",
    "SELECT JSON_OBJECT('email', email, 'ssn', ssn) AS j, QUOTE(address) AS q, HEX(full_name) AS h FROM users",
    "SELECT CONCAT(TRIM(BOTH ' ' FROM full_name), SUBSTRING(plan FROM 1)) AS a, CONCAT(CASE WHEN id > 1 THEN ssn ELSE 'n/a' END, '') AS b FROM users",
  ];
  for (const sql of passed) it(`passes: ${sql}`, () => assert.deepEqual(cols(first(sql)).filter((c) => /\.(ssn|full_name|email|card|address|phone)$/.test(c)), []));
});

describe('an assignment compares the column with what it is set to', () => {
  // Rows matched: 1  Changed: 0 answers whether the guess equals the stored value.
  const table: [string, string[]][] = [
    ["UPDATE users SET ssn = '123-45-6789' WHERE id = 1", ['users.id', 'users.ssn']],
    ["UPDATE users SET ssn = REPLACE(ssn, '123', 'XYZ') WHERE id = 1", ['users.id', 'users.ssn']],
    ['UPDATE users SET phone = ssn WHERE id = 1', ['users.id', 'users.phone']],
    ['UPDATE users SET email = @guess WHERE id = 1', ['users.email', 'users.id']],
    ["INSERT INTO users (id, email) VALUES (1, 'alice@example.com') ON DUPLICATE KEY UPDATE email = VALUES(email)", ['users.email']],
    // Nothing chosen: NULL, and a function of the column alone.
    ['UPDATE users SET phone = NULL WHERE id = 1', ['users.id']],
    ['UPDATE users SET email = LOWER(email)', []],
  ];
  for (const [sql, want] of table) it(sql, () => assert.deepEqual(cols(first(sql)), want));
});

describe('information_schema tables that hold column values read as warnings do (unknown origin)', () => {
  for (const sql of ['SELECT HISTOGRAM FROM information_schema.COLUMN_STATISTICS', 'SELECT WORD FROM information_schema.INNODB_FT_INDEX_CACHE', 'SELECT word FROM information_schema.innodb_ft_index_table']) {
    it(sql, () => assert.equal(analyseMysql(sql, { ...MARIA, serverVersion: 80036, mariadb: false }).statements[0].diagnostics, true));
  }
  it('metadata tables do not', () => assert.equal(first("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_NAME = 'users'").diagnostics, undefined));
});

describe("MariaDB's WITH RECURSIVE … CYCLE … RESTRICT", () => {
  // The recursion stops at a row equal to an earlier one on the CYCLE columns: one row came back
  // when the guess equalled full_name, two otherwise. It was a parse error (run unread off prod).
  const sql = "WITH RECURSIVE r(n, s) AS (SELECT 1, full_name FROM users WHERE id = 1 UNION ALL SELECT n + 1, 'Alice Liddell' FROM r WHERE n < 5) CYCLE s RESTRICT SELECT n FROM r";
  it('parses, and compares what the CYCLE columns carry', () => {
    const f = first(sql);
    assert.equal(f.opaque, undefined);
    assert.ok(cols(f).includes('users.full_name'));
  });
  it('a CYCLE over a column of constants compares no table column', () => assert.deepEqual(cols(first('WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) CYCLE n RESTRICT SELECT n FROM r')).filter((c) => !c.startsWith('r.')), []));
});

describe("MariaDB's DELETE HISTORY", () => {
  it('writes the table it names, with no WHERE', () => {
    for (const sql of ['DELETE HISTORY FROM orders', "DELETE HISTORY FROM app.orders BEFORE SYSTEM_TIME TIMESTAMP '2024-01-01 00:00:00'"]) {
      const f = first(sql);
      assert.deepEqual([f.kind, f.tag, f.hasWhere, rels(f)], ['delete', 'DELETE HISTORY', false, ['app.orders:write']], sql);
    }
  });
});

describe('an ALTER TABLE that tests every row: CHECK, partitioning', () => {
  const table: [string, string[]][] = [
    // Fails exactly when some card starts 4111.
    ["ALTER TABLE orders ADD CONSTRAINT c1 CHECK (card NOT LIKE '4111%')", ['orders.card']],
    // Then SELECT id FROM users PARTITION (p1) is the row whose ssn is 123-45-6789.
    ["ALTER TABLE users PARTITION BY RANGE COLUMNS(ssn) (PARTITION p0 VALUES LESS THAN ('123-45-6789'), PARTITION p1 VALUES LESS THAN ('123-45-678:'), PARTITION p2 VALUES LESS THAN (MAXVALUE))", ['users.ssn']],
    ['ALTER TABLE users PARTITION BY LINEAR HASH (CRC32(email)) PARTITIONS 4', ['users.email']],
    ['ALTER TABLE users PARTITION BY KEY() PARTITIONS 2', ['users.*']],
    // Bounds compared with a partitioning column only the server knows.
    ['ALTER TABLE users REORGANIZE PARTITION p0 INTO (PARTITION a VALUES LESS THAN (5), PARTITION b VALUES LESS THAN (100))', ['users.*']],
    // After INSERT of a guess, a new unique key fails exactly when a stored value equals it.
    ['ALTER TABLE users ADD UNIQUE (ssn)', ['users.ssn']],
    ['ALTER TABLE users ADD CONSTRAINT u2 UNIQUE INDEX `u2` USING BTREE (full_name(10) DESC, plan)', ['users.full_name', 'users.plan']],
    ['ALTER TABLE users DROP PRIMARY KEY, ADD PRIMARY KEY (id, ssn)', ['users.id', 'users.ssn']],
    // Nothing tested.
    ['ALTER TABLE orders ADD COLUMN note VARCHAR(20), ADD INDEX (status), DROP PARTITION p0', []],
    ['ALTER TABLE users ADD INDEX (ssn), DROP INDEX email', []],
  ];
  for (const [sql, want] of table) it(sql, () => assert.deepEqual(cols(first(sql)), want));
});
