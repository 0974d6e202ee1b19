/**
 * MySQL/MariaDB: classified values moved somewhere the result-column masks do not reach, then
 * read back: user variables, other tables, a table created from the query. Each probe runs in
 * one mariadb CLI session through the tunnel; a capturing proxy records every byte the client
 * receives, and no seeded PII value may appear (see masking-sinks.test.ts for PostgreSQL).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { run } from './harness.js';
import { leaks as leaksOf } from './capture-proxy.js';
import { captureTarget, type CapturedTarget, type MaskingCorpus } from './masking-fixture.js';
import { mysqlTunnelClient } from './mysql-harness.js';

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/mysql-masking.yaml'), 'utf8')) as MaskingCorpus;

/** Each probe stores a classified value somewhere unmasked and reads it back: refused, and nothing leaks. */
const probes: { name: string; sql: string[] }[] = [
  { name: 'user variable by assignment in a select list', sql: ['SELECT @v := email FROM users WHERE id = 1', 'SELECT @v'] },
  { name: 'user variable by SET', sql: ['SET @w = (SELECT ssn FROM users WHERE id = 1)', 'SELECT @w', 'SELECT CONCAT(@w, "")'] },
  { name: 'SELECT … INTO a variable', sql: ['SELECT card INTO @x FROM users WHERE id = 1', 'SELECT @x'] },
  { name: 'SELECT … INTO after ORDER BY / LIMIT', sql: ['SELECT full_name FROM users ORDER BY id LIMIT 1 INTO @y', 'SELECT @y'] },
  // UNION ALL: a UNION that drops duplicates compares the branches, refused before the store (masked-predicate).
  { name: 'UNION … INTO: every branch is stored', sql: ["SELECT email FROM users WHERE id = 1 UNION ALL SELECT 'x' LIMIT 1 INTO @u", 'SELECT @u'] },
  // In a WHERE (or an ORDER BY) the assignment is a filter on the classified column too, refused as such (masked-predicate).
  { name: 'user variable assigned inside an expression', sql: ['SELECT id, LENGTH(@z := address) AS n FROM users WHERE id = 1', 'SELECT @z'] },
  { name: 'CREATE TABLE … AS SELECT', sql: ['CREATE TEMPORARY TABLE t1 AS SELECT email AS x, ssn AS y FROM users', 'SELECT * FROM t1'] },
  { name: 'INSERT … SELECT into another table', sql: ['CREATE TEMPORARY TABLE t2 (x VARCHAR(200))', 'INSERT INTO t2 SELECT email FROM users', 'INSERT INTO t2 (x) SELECT * FROM (SELECT ssn FROM users) d', 'SELECT x FROM t2'] },
  { name: 'INSERT … VALUES with a subquery', sql: ['CREATE TEMPORARY TABLE t3 (x VARCHAR(200))', 'INSERT INTO t3 VALUES ((SELECT phone FROM users WHERE id = 2))', 'SELECT x FROM t3'] },
  { name: 'UPDATE another table from a classified column', sql: ['CREATE TEMPORARY TABLE t4 (id INT, x VARCHAR(200))', "INSERT INTO t4 VALUES (1, 'a')", 'UPDATE t4 SET x = (SELECT email FROM users WHERE id = 1) WHERE id = 1', 'SELECT x FROM t4'] },
  { name: 'multi-table UPDATE', sql: ['CREATE TEMPORARY TABLE t5 (id INT, x VARCHAR(200))', "INSERT INTO t5 VALUES (1, 'a'), (2, 'b')", 'UPDATE t5 JOIN users u ON u.id = t5.id SET t5.x = u.full_name', 'SELECT x FROM t5'] },
  { name: 'through a view', sql: ['CREATE TEMPORARY TABLE t6 (x VARCHAR(200))', 'INSERT INTO t6 SELECT email FROM user_contacts', 'SELECT x FROM t6'] },
];

/** Code whose data access the analyser cannot follow: refused for an identity that sees masked data. */
const code: { name: string; sql: string[] }[] = [
  { name: 'a procedure that copies rows', sql: ['CREATE TABLE IF NOT EXISTS p_sink (x VARCHAR(200))', 'CREATE PROCEDURE p_copy() INSERT INTO p_sink SELECT email FROM users', 'CALL p_copy()', 'SELECT x FROM p_sink', 'DROP PROCEDURE IF EXISTS p_copy', 'DROP TABLE p_sink'] },
  { name: 'a trigger that copies rows', sql: ['CREATE TABLE IF NOT EXISTS t_sink (x VARCHAR(200))', 'CREATE TRIGGER t_copy AFTER UPDATE ON users FOR EACH ROW INSERT INTO t_sink VALUES (NEW.ssn)', 'UPDATE users SET plan = plan', 'SELECT x FROM t_sink', 'DROP TRIGGER IF EXISTS t_copy', 'DROP TABLE t_sink'] },
];

/** Single statements that reshape classified values (beyond the corpus): none may come back in clear. */
const reshaped: string[] = [
  "SELECT GROUP_CONCAT(email) FROM users",
  "SELECT GROUP_CONCAT(DISTINCT ssn ORDER BY id SEPARATOR '|') FROM users",
  "SELECT JSON_ARRAYAGG(ssn) FROM users",
  "SELECT JSON_OBJECT('e', email) FROM users",
  "SELECT CONCAT_WS(',', email, ssn) FROM users",
  "SELECT SUBSTRING_INDEX(email, '@', 1) FROM users",
  "SELECT HEX(ssn), UNHEX(HEX(ssn)) FROM users",
  "SELECT * FROM (SELECT * FROM users) AS t",
  "SELECT t.e FROM (SELECT email AS e FROM users) t",
  "SELECT `email` FROM `users`",
  "SELECT `users`.`email` FROM users",
  "SELECT users.email FROM users",
  "SELECT email COLLATE utf8mb4_bin FROM users",
  "SELECT BINARY email FROM users",
  "SELECT CAST(email AS CHAR) FROM users",
  "SELECT CONVERT(email USING utf8mb4) FROM users",
  "SELECT IF(id = 1, email, ssn) FROM users",
  "SELECT CASE WHEN 1 THEN ssn END FROM users",
  "SELECT IFNULL(NULL, ssn) FROM users",
  "SELECT * FROM users NATURAL JOIN user_contacts",
  "SELECT /*!50000 email */ FROM users",
  "SELECT /*! email, */ id FROM users",
  "SELECT /*M! ssn, */ id FROM users",
  "SELECT email AS \"id\" FROM users",
  "SELECT email 'x' FROM users",
  'SELECT email "x", ssn \'y\' FROM users',
  "SELECT _utf8mb4 'lit', DATE '2024-01-01', full_name 'n' FROM users",
  "SELECT ssn AS plan FROM users",
  "SELECT JSON_EXTRACT(JSON_OBJECT('a', ssn), '$.a') FROM users",
  "SELECT ELT(1, email), MAKE_SET(1, ssn), QUOTE(phone), LPAD(card, 30, '*') FROM users",
  "SELECT INSERT(ssn, 1, 0, 'x') FROM users",
  "SELECT email FROM users u, orders o WHERE u.id = o.user_id",
  "SELECT u.*, o.* FROM users u JOIN orders o ON o.user_id = u.id",
  "SELECT * FROM users, orders",
  "SELECT users.* FROM users",
  "SELECT email FROM (users)",
  "SELECT email FROM users u WHERE u.id = 1 UNION SELECT 'x' ORDER BY 1",
  "SELECT ROW_NUMBER() OVER w, email FROM users WINDOW w AS (ORDER BY id)",
  "SELECT email, COUNT(*) FROM users GROUP BY email WITH ROLLUP",
  "SELECT * FROM JSON_TABLE((SELECT JSON_ARRAYAGG(email) FROM users), '$[*]' COLUMNS (e VARCHAR(100) PATH '$')) jt",
  "SELECT (SELECT email FROM users LIMIT 1)",
  "SELECT * FROM (SELECT ssn FROM users UNION SELECT email FROM users) x",
  "SELECT email FROM users HAVING email LIKE '%'",
  "SELECT SQL_CALC_FOUND_ROWS email FROM users",
  "SELECT DISTINCTROW full_name FROM users",
  "SELECT address FROM users USE INDEX (PRIMARY)",
  "SELECT `u`.`card` FROM `users` AS `u`",
  "SELECT a.x FROM (SELECT ssn x FROM users) a",
  "SELECT SHA2(ssn, 256) = SHA2('x', 256), TO_BASE64(email) FROM users",
  "SELECT REPLACE(REPLACE(email, '@', ' at '), '.', ' dot ') FROM users",
  "SELECT CHAR_LENGTH(email), email REGEXP '^a' FROM users",
  "SELECT * FROM users WHERE id = 1 FOR UPDATE",
  "WITH x AS (SELECT email FROM users) SELECT * FROM x",
  "VALUES ROW((SELECT email FROM users LIMIT 1))",
];

/** Ordinary work on the same tables that must still run. */
const allowed: { name: string; sql: string[] }[] = [
  { name: 'variables from unclassified columns and constants', sql: ['SET @n = (SELECT COUNT(*) FROM users)', 'SELECT @p := plan FROM users WHERE id = 1', 'SET @k = 5', 'SELECT @n, @p, @k'] },
  // (An upsert's `email = VALUES(email)` compares the email with the one given: see adversarial-mysql-r5.)
  { name: 'writes on a classified table that move nothing classified', sql: ['BEGIN', "UPDATE users SET plan = 'gold' WHERE id = 1", "INSERT INTO users (id, email) VALUES (9, 'new@example.com') ON DUPLICATE KEY UPDATE plan = VALUES(plan)", "UPDATE users SET phone = NULL WHERE id = 2", 'ROLLBACK'] },
  { name: 'copying into a column of the same class', sql: ['BEGIN', "INSERT INTO orders (id, user_id, amount, status, card) SELECT 200 + id, id, 1, 'new', card FROM users", 'UPDATE users SET email = LOWER(email)', 'ROLLBACK'] },
];

describe('mysql masking: classified values moved to other sinks', () => {
  let t: CapturedTarget;

  before(async () => {
    t = await captureTarget('mysql', 'sink', corpus);
  });
  after(async () => {
    await t?.close();
  });

  const mariadb = (sql: string[], force: boolean) =>
    run('mariadb', ['--no-defaults', '--batch', ...(force ? ['--force'] : []), '--skip-ssl', '-h', '127.0.0.1', '-P', String(t.proxy.port), '-u', 'ci-bot', t.db, '-e', sql.join(';\n')]);

  for (const p of probes) {
    test(p.name, async () => {
      t.proxy.take();
      const r = await mariadb(p.sql, true);
      const bytes = t.proxy.take();
      assert.deepEqual(leaksOf(corpus.pii, bytes), [], `${p.sql.join('; ')}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /dbgov: blocked: this statement stores classified data \(\S*users\.\w+/, r.stderr);
    });
  }

  for (const p of code) {
    test(p.name, async () => {
      t.proxy.take();
      const r = await mariadb(p.sql, true);
      assert.deepEqual(leaksOf(corpus.pii, t.proxy.take()), [], `${p.sql.join('; ')}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /dbgov: blocked: .*code whose data access dbgov cannot follow/, r.stderr);
    });
  }

  test('the prepared-statement protocol is judged the same way', async () => {
    const c = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
    try {
      await c.query('CREATE TEMPORARY TABLE tp (x VARCHAR(200))');
      t.proxy.take();
      await assert.rejects(c.execute('INSERT INTO tp SELECT email FROM users WHERE id > ?', [0]), /dbgov: blocked: this statement stores classified data/);
      await assert.rejects(c.execute('SELECT @pv := ssn FROM users WHERE id = ?', [1]), /dbgov: blocked: this statement stores classified data/);
      const [rows] = await c.execute('SELECT x FROM tp');
      assert.deepEqual(rows, []);
      assert.deepEqual(leaksOf(corpus.pii, t.proxy.take()), []);
    } finally {
      await c.end();
    }
  });

  test('reshaped single statements', async () => {
    for (const sql of reshaped) {
      t.proxy.take();
      const r = await mariadb([sql], true);
      assert.deepEqual(leaksOf(corpus.pii, t.proxy.take()), [], `${sql}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
    }
  });

  for (const a of allowed) {
    test(`still runs: ${a.name}`, async () => {
      t.proxy.take();
      const r = await mariadb(a.sql, false);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(leaksOf(corpus.pii, t.proxy.take()), []);
    });
  }
});
