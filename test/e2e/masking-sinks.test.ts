/**
 * Classified values moved somewhere the result-column masks do not reach, then read back:
 * notifications, session settings, large objects, other tables (temp or not), function bodies,
 * planner statistics. Each probe runs its statements in one session through the tunnel (psql),
 * a capturing proxy records every byte the client receives, and no seeded PII value may appear.
 * The corpus (postgres-masking.yaml) covers single statements; these are the multi-step shapes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { tunnelClient } from './harness.js';
import { leaks as leaksOf } from './capture-proxy.js';
import { captureTarget, psqlThrough, type CapturedTarget, type MaskingCorpus } from './masking-fixture.js';

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/postgres-masking.yaml'), 'utf8')) as MaskingCorpus;

/**
 * `stores`: the statement that would put a classified value where masking does not reach is
 * refused with a dbgov error. `code`: code whose data access cannot be followed (PL/pgSQL, DO,
 * triggers, rules) is refused. Every probe must also leak nothing, refused or not.
 */
const probes: { name: string; sql: string[]; stores?: true; code?: true }[] = [
  { name: 'pg_notify payload', sql: ['LISTEN c', "SELECT pg_notify('c', email) FROM users", 'SELECT 1'], stores: true },
  { name: 'set_config then current_setting', sql: ["SELECT set_config('dbgov.x', email, false) FROM users WHERE id = 1", "SELECT current_setting('dbgov.x')", 'SHOW dbgov.x'], stores: true },
  { name: 'CREATE TEMP TABLE AS', sql: ['CREATE TEMP TABLE t1 AS SELECT email AS x, ssn AS y FROM users', 'SELECT * FROM t1', 'SELECT x || y FROM t1'], stores: true },
  { name: 'SELECT INTO', sql: ['SELECT ssn AS x INTO TEMP t2 FROM users', 'TABLE t2'], stores: true },
  { name: 'CREATE TABLE AS, committed, read after the catalog refresh', sql: ['CREATE TABLE t4 AS SELECT upper(full_name) AS n FROM users', 'SELECT pg_sleep(0.5)', 'SELECT n FROM t4', 'DROP TABLE IF EXISTS t4'], stores: true },
  { name: 'INSERT … SELECT into a new table', sql: ['BEGIN', 'CREATE TABLE t3 (x text)', 'INSERT INTO t3 SELECT card FROM users', 'SELECT x FROM t3', 'ROLLBACK'], stores: true },
  { name: 'UPDATE another table from a classified column', sql: ['BEGIN', 'UPDATE orders SET status = (SELECT email FROM users WHERE id = 1) WHERE id = 13 RETURNING status', 'SELECT status FROM orders WHERE id = 13', 'ROLLBACK'], stores: true },
  { name: 'UPDATE … FROM a classified table', sql: ['BEGIN', 'UPDATE orders o SET status = u.phone FROM users u WHERE u.id = o.user_id', 'SELECT status FROM orders', 'ROLLBACK'], stores: true },
  { name: 'INSERT … SELECT … RETURNING', sql: ['BEGIN', 'INSERT INTO orders (id, user_id, amount, status) SELECT 100 + id, id, 0, ssn FROM users RETURNING status', 'ROLLBACK'], stores: true },
  { name: 'data-modifying CTE into another table', sql: ['BEGIN', 'WITH w AS (INSERT INTO orders (id, user_id, amount, status) SELECT 300 + id, id, 0, address FROM users RETURNING id) SELECT count(*) FROM w', 'SELECT status FROM orders', 'ROLLBACK'], stores: true },
  { name: 'through a view', sql: ['CREATE TEMP TABLE t6 (x text)', 'INSERT INTO t6 SELECT email FROM user_contacts', 'SELECT x FROM t6'], stores: true },
  { name: 'large object', sql: ["SELECT lo_from_bytea(424242, convert_to(ssn, 'UTF8')) FROM users WHERE id = 1", "SELECT convert_from(lo_get(424242), 'UTF8')", 'SELECT lo_unlink(424242)'], stores: true },
  { name: 'a trigger that copies rows', sql: ['CREATE TABLE IF NOT EXISTS trig_sink (x text)', 'CREATE OR REPLACE FUNCTION trig_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trig_sink VALUES (NEW.email); RETURN NEW; END $$', 'CREATE TRIGGER trig_t AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION trig_f()', 'UPDATE users SET plan = plan', 'SELECT x FROM trig_sink', 'DROP TRIGGER IF EXISTS trig_t ON users', 'DROP TABLE trig_sink', 'DROP FUNCTION trig_f()'], code: true },
  { name: 'a rule that copies rows', sql: ['CREATE TABLE IF NOT EXISTS rule_sink (x text)', 'CREATE RULE r AS ON UPDATE TO users DO ALSO INSERT INTO rule_sink VALUES (NEW.card)', 'UPDATE users SET plan = plan', 'SELECT x FROM rule_sink', 'DROP RULE IF EXISTS r ON users', 'DROP TABLE rule_sink'], code: true },
  { name: 'a PL/pgSQL function that copies rows', sql: ['CREATE TEMP TABLE t7 (x text)', 'CREATE FUNCTION pg_temp.w() RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t7 SELECT email FROM users; END $$', 'SELECT pg_temp.w()', 'SELECT x FROM t7'], code: true },
  { name: 'a DO block that copies rows', sql: ['CREATE TEMP TABLE t8 (x text)', 'DO $$ BEGIN INSERT INTO t8 SELECT ssn FROM users; END $$', 'SELECT x FROM t8'], code: true },
  { name: 'PL/pgSQL notices and errors carrying a value', sql: ["CREATE FUNCTION pg_temp.g(t text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'v=%', t; RETURN 1; END $$", 'SELECT pg_temp.g(email) FROM users', "CREATE FUNCTION pg_temp.h(t text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'v=%', t; END $$", 'SELECT pg_temp.h(ssn) FROM users'] },
  { name: 'a generated column over a classified one', sql: ['BEGIN', "ALTER TABLE users ADD COLUMN leak text GENERATED ALWAYS AS (email || '') STORED", 'SELECT leak FROM users', 'ROLLBACK'], stores: true },
  { name: 'renaming a classified column', sql: ['BEGIN', 'ALTER TABLE users RENAME COLUMN ssn TO notes', 'SELECT notes FROM users', 'ROLLBACK'] },
  { name: 'view created in the session', sql: ['CREATE TEMP VIEW v1 AS SELECT email FROM users', 'SELECT * FROM v1'] },
  { name: 'SQL function body', sql: ['CREATE FUNCTION pg_temp.f() RETURNS SETOF text LANGUAGE sql AS $$ SELECT email FROM users $$', 'SELECT pg_temp.f()', 'SELECT * FROM pg_temp.f()'] },
  { name: 'planner statistics', sql: ['ANALYZE users', "SELECT most_common_vals::text, histogram_bounds::text FROM pg_stats WHERE tablename = 'users'"] },
  { name: 'query_to_xml', sql: ["SELECT query_to_xml('SELECT email FROM users', true, false, '')"] },
  { name: 'field of a whole-row value', sql: ['SELECT (u).email FROM users u', 'SELECT (u.*).ssn FROM users u'] },
  { name: 'array subscript', sql: ['SELECT (ARRAY[email, phone])[1] FROM users', 'SELECT (SELECT array_agg(ssn) FROM users)[1]'] },
  { name: 'jsonpath', sql: ["SELECT jsonb_path_query(to_jsonb(u), '$.email') FROM users u"] },
  { name: 'tablesample and ONLY', sql: ['SELECT email FROM ONLY users', 'SELECT ssn FROM users TABLESAMPLE SYSTEM (100)'] },
  { name: 'cursor WITH HOLD', sql: ['DECLARE h CURSOR WITH HOLD FOR SELECT card FROM users', 'FETCH ALL FROM h', 'CLOSE h'] },
];

/** Single statements that reshape classified values (beyond the corpus): none may come back in clear. */
const reshaped: string[] = [
  'SELECT xmlagg(xmlelement(name e, email)) FROM users',
  "SELECT array_to_string(array_agg(email), ',') FROM users",
  "SELECT string_to_array(email, '@') FROM users",
  "SELECT regexp_matches(email, '(.*)@') FROM users",
  "SELECT * FROM regexp_split_to_table((SELECT string_agg(email, ',') FROM users), ',')",
  "SELECT unnest(string_to_array((SELECT string_agg(ssn, ';') FROM users), ';'))",
  'SELECT t.* FROM users, LATERAL (SELECT email) t',
  'SELECT (SELECT email) FROM users',
  'SELECT DISTINCT email FROM users GROUP BY email HAVING count(*) > 0',
  'SELECT mode() WITHIN GROUP (ORDER BY email) FROM users',
  'SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ssn) FROM users',
  'SELECT * FROM users u1 NATURAL JOIN users u2',
  'TABLE users',
  'VALUES ((SELECT email FROM users LIMIT 1))',
  'SELECT * FROM (VALUES ((SELECT ssn FROM users LIMIT 1))) v(x)',
  'SELECT * FROM json_to_recordset((SELECT json_agg(u) FROM users u)) AS x(email text, ssn text)',
  'SELECT * FROM ROWS FROM (jsonb_each_text(to_jsonb((SELECT u FROM users u LIMIT 1))))',
  'SELECT (jsonb_populate_record(null::users, to_jsonb(u))).email FROM users u',
  'SELECT lag(email) OVER (ORDER BY id) FROM users',
  'SELECT email FROM users WHERE false UNION SELECT ssn FROM users',
  'SELECT (u).* FROM users u',
  'SELECT x.email FROM (SELECT * FROM users) x',
  'SELECT * FROM users JOIN orders USING (card)',
  'SELECT hstore(u) FROM users u',
  'SELECT array(SELECT phone FROM users)',
  'SELECT (SELECT u FROM users u WHERE id = 1).email',
  'WITH u AS MATERIALIZED (SELECT * FROM users) SELECT u.* FROM u',
  'SELECT jsonb_agg(x) FROM (SELECT card FROM users) x',
  'SELECT email FROM users FETCH FIRST 1 ROW ONLY',
  "SELECT num_nonnulls(email), email IS NULL, coalesce(email, 'x') FROM users",
  "SELECT split_part(address, ',', 1) FROM users",
  'SELECT to_tsvector(full_name) FROM users',
  "SELECT md5(email) = md5('alice.liddell@example.com') FROM users",
  "SELECT convert_from(decode(encode(convert_to(email, 'UTF8'), 'base64'), 'base64'), 'UTF8') FROM users",
  'SELECT ctid, xmin, * FROM users',
  'SELECT tableoid::regclass, * FROM users',
  'SELECT users.*::text FROM users',
  'SELECT ROW(users.*)::text FROM users',
  'SELECT (users).email FROM users',
  'SELECT unnest(ARRAY[(SELECT ssn FROM users WHERE id = 1)])',
  'SELECT generate_series(1, 1), email FROM users',
  'SELECT * FROM unnest((SELECT array_agg(email) FROM users))',
  'SELECT * FROM unnest((SELECT array_agg(email) FROM users), (SELECT array_agg(ssn) FROM users)) AS t(a, b)',
];

/** Ordinary work on the same tables that must still run: nothing classified moves anywhere unmasked. */
const allowed: { name: string; sql: string[] }[] = [
  { name: 'a write that reads a classified table for its rows, not its values', sql: ['BEGIN', "UPDATE orders SET status = 'vip' WHERE user_id IN (SELECT id FROM users WHERE plan = 'pro')", "UPDATE users SET plan = 'gold' WHERE id = 1", 'ROLLBACK'] },
  { name: 'rewriting a classified column in place', sql: ['BEGIN', 'UPDATE users SET email = lower(email), ssn = ssn', 'ROLLBACK'] },
  { name: 'copying into a column of the same class', sql: ['BEGIN', "INSERT INTO orders (id, user_id, amount, status, card) SELECT 200 + id, id, 1, 'new', card FROM users", 'ROLLBACK'] },
  { name: 'unclassified columns into a new table', sql: ['CREATE TEMP TABLE t5 AS SELECT id, plan, created FROM users', 'SELECT count(*) FROM t5'] },
  { name: 'settings and notifications with constants', sql: ["SELECT set_config('statement_timeout', '5s', false), email FROM users", "SELECT pg_notify('c', 'hello') FROM users WHERE id = 1"] },
];

describe('masking: classified values moved to other sinks', () => {
  let t: CapturedTarget;

  before(async () => {
    t = await captureTarget('postgres', 'sink', corpus);
  });
  after(async () => {
    await t?.close();
  });

  const psql = (sql: string[], stopOnError: boolean) => psqlThrough(t, sql, stopOnError ? ['-v', 'ON_ERROR_STOP=1'] : []);

  for (const p of probes) {
    test(p.name, async () => {
      t.proxy.take();
      const r = await psql(p.sql, false);
      const bytes = t.proxy.take();
      assert.deepEqual(leaksOf(corpus.pii, bytes), [], `${p.sql.join('; ')}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
      if (p.stores) assert.match(r.stderr, /dbgov: blocked: this statement stores classified data \(public\.users\.\w+|values of unknown origin/, r.stderr);
      else assert.doesNotMatch(r.stderr, /stores classified data/);
      if (p.code) assert.match(r.stderr, /dbgov: blocked: .*code whose data access dbgov cannot follow/, r.stderr);
    });
  }

  test('the extended protocol and pipelined batches are judged the same way', async () => {
    const c = await tunnelClient(t.conn);
    try {
      await c.query('CREATE TEMP TABLE tp (x text)');
      await assert.rejects(c.query('INSERT INTO tp SELECT email FROM users WHERE id > $1', [0]), /dbgov: blocked: this statement stores classified data/);
      await assert.rejects(c.query({ text: 'SELECT pg_notify($1, ssn) FROM users WHERE id = $2', values: ['c', 1] }), /dbgov: blocked: this statement stores classified data/);
      // Several statements in one simple-protocol message: the storing one is refused, so none run.
      await assert.rejects(c.query("INSERT INTO tp VALUES ('ok'); INSERT INTO tp SELECT card FROM users"), /dbgov: blocked: this statement stores classified data/);
      assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM tp')).rows, [{ n: 0 }]);
    } finally {
      await c.end();
    }
  });

  test('reshaped single statements', async () => {
    for (const sql of reshaped) {
      t.proxy.take();
      const r = await psql([sql], false);
      assert.deepEqual(leaksOf(corpus.pii, t.proxy.take()), [], `${sql}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
    }
  });

  for (const a of allowed) {
    test(`still runs: ${a.name}`, async () => {
      t.proxy.take();
      const r = await psql(a.sql, true);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(leaksOf(corpus.pii, t.proxy.take()), []);
    });
  }
});
