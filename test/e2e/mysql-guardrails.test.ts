/**
 * The MySQL guardrail corpus (test/corpus/mysql-guardrails.yaml) through the real tunnel and
 * gateway against the real MariaDB: each case on a freshly seeded database, in a fresh mysql2
 * session with multi-statements on (so a smuggled second statement would really run), its
 * decision read off the wire (ERR 1227 / 42000 + "dbgov: blocked" / "dbgov: approval required"),
 * and the database compared with its state before, to prove a refused statement did nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { SA_TOKENS, startTestBroker, type TestBroker } from './harness.js';
import { mysqlAdmin, mysqlTarget, mysqlTunnelClient } from './mysql-harness.js';
import type { Connection } from '../../src/cli/connect.js';

interface CorpusCase {
  sql: string;
  expect: 'allow' | 'block' | 'review';
  rule?: string;
  before?: string[];
  after?: string;
  unchanged?: boolean;
  todo?: string;
}

const cases = parse(readFileSync(resolve(process.cwd(), 'test/corpus/mysql-guardrails.yaml'), 'utf8')) as CorpusCase[];

const SETUP = `
  CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100), ssn VARCHAR(20), name VARCHAR(50), vip INT DEFAULT 0, score INT DEFAULT 0);
  CREATE TABLE orders (id INT PRIMARY KEY, user_id INT, uid INT, total DECIMAL(10,2), status VARCHAR(10), flag INT DEFAULT 0);
  CREATE TABLE items (id INT PRIMARY KEY, order_id INT);
  CREATE TABLE bans (uid INT, active INT);
  CREATE TABLE archive LIKE users;
  CREATE TABLE staging LIKE users;
  CREATE TABLE users_new LIKE users;
  CREATE TABLE audit_notes (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100));
  CREATE TABLE t1 (a INT); CREATE TABLE t2 (b INT, x INT); CREATE TABLE t3 (x INT);
  CREATE TABLE \`my table\` (id INT);
  CREATE TABLE \`drop; table\` (id INT);
  INSERT INTO users (id, email, ssn, name) VALUES (1, 'ada@example.com', '123-45-6789', 'Ada'), (2, 'bob@example.com', '987-65-4321', 'Bob'), (3, 'cy@example.com', '555-12-3456', 'Cy');
  INSERT INTO orders VALUES (1, 1, 1, 10, 'new', 0), (2, 2, 2, 200, 'new', 0), (3, 3, 3, 30, 'paid', 0);
  INSERT INTO bans VALUES (2, 0);
`;

/** Tables and their checksums, the server's users and databases: what a refused statement must not change. */
async function snapshot(db: string): Promise<string> {
  const tables = await mysqlAdmin<{ TABLE_NAME: string; TABLE_TYPE: string }[]>(`SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${db}' ORDER BY TABLE_NAME`);
  const sums: string[] = [];
  for (const t of tables) {
    if (t.TABLE_TYPE !== 'BASE TABLE') continue;
    const [r] = await mysqlAdmin<{ Checksum: number | null }[]>(`CHECKSUM TABLE \`${db}\`.\`${t.TABLE_NAME.replace(/`/g, '``')}\``);
    sums.push(`${t.TABLE_NAME}=${r?.Checksum ?? 'null'}`);
  }
  // Other test files run at the same time and create their own dbgov_* databases and users on
  // this shared server: those are not this corpus's state, so they are left out of the snapshot.
  const users = await mysqlAdmin<{ u: string }[]>(`SELECT GROUP_CONCAT(CONCAT(User, '@', Host) ORDER BY User, Host) AS u FROM mysql.user WHERE User NOT LIKE 'dbgov\\_%'`);
  const dbs = await mysqlAdmin<{ d: string }[]>(`SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME) AS d FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT LIKE 'dbgov\\_%' OR SCHEMA_NAME = '${db}'`);
  const cols = await mysqlAdmin<{ c: string }[]>(`SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, '.', COLUMN_NAME) ORDER BY TABLE_NAME, ORDINAL_POSITION) AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '${db}'`);
  return JSON.stringify({ tables: tables.map((t) => t.TABLE_NAME), sums, cols: cols[0]?.c, users: users[0]?.u, dbs: dbs[0]?.d });
}

describe('mysql guardrail corpus through the tunnel', () => {
  const db = `dbgov_myguard_${Date.now().toString(36)}`;
  let tb: TestBroker;
  let conn: Connection;

  before(async () => {
    await mysqlAdmin(`CREATE DATABASE \`${db}\``);
    tb = await startTestBroker({ targets: { prod: mysqlTarget(db, { env: 'prod' }) }, policy: { access: [{ name: 'corpus-any-access', action: 'allow' }] } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await mysqlAdmin(`DROP DATABASE IF EXISTS \`${db}\``);
  });

  test(`the corpus has at least 80 cases with an outcome (${cases.length})`, () => {
    assert.ok(cases.length >= 80);
    assert.ok(cases.every((c) => ['allow', 'block', 'review'].includes(c.expect)));
    assert.ok(cases.filter((c) => c.expect === 'block').length >= 40);
  });

  for (const c of cases) {
    test(c.sql, { ...(c.todo ? { todo: c.todo } : {}) }, async () => {
      // A fresh database per case: an allowed write never changes what a later case sees.
      await mysqlAdmin(`DROP DATABASE IF EXISTS \`${db}\`; CREATE DATABASE \`${db}\`; USE \`${db}\`; ${SETUP}`);
      // The broker's catalog must see the new tables, not a reload caught while they were being made.
      await tb.broker.refreshCatalogs();
      const beforeState = await snapshot(db);
      const client = await mysqlTunnelClient(conn, { multipleStatements: true });
      try {
        for (const sql of c.before ?? []) await client.query(sql.replace('$DB', db));
        let outcome: 'allow' | 'block' | 'review' = 'allow';
        let error: { errno?: number; sqlState?: string; message?: string } | undefined;
        try {
          await client.query(c.sql.replace('$DB', db));
        } catch (e) {
          error = e as typeof error;
          if (error?.message?.startsWith('dbgov: blocked')) outcome = 'block';
          else if (error?.message?.startsWith('dbgov: approval required')) outcome = 'review';
        }
        assert.equal(outcome, c.expect, `${c.sql}\n  got ${error ? `${error.errno} ${error.sqlState} ${error.message}` : 'no error'}`);
        if (outcome !== 'allow') {
          assert.equal(error?.errno, 1227);
          assert.equal(error?.sqlState, '42000');
          if (c.rule) assert.match(error?.message ?? '', new RegExp(`rule[^\\n]*\\b${c.rule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`), `deciding rule for ${c.sql}`);
          // The session stays usable after a refusal.
          const [rows] = await client.query('SELECT 1 AS ok');
          assert.equal((rows as { ok: number }[])[0].ok, 1);
        }
      } finally {
        await client.end().catch(() => undefined);
      }
      if (c.expect !== 'allow' || c.unchanged) assert.equal(await snapshot(db), beforeState, `the database changed under ${c.sql}`);
      if (c.after) await mysqlAdmin(c.after);
    });
  }
});

describe('mysql: a table rule follows writes through updatable views', () => {
  const db = `dbgov_myview_${Date.now().toString(36)}`;
  let tb: TestBroker;
  let conn: Connection;

  before(async () => {
    await mysqlAdmin(`CREATE DATABASE \`${db}\``);
    await mysqlAdmin('CREATE TABLE model_weights (id INT PRIMARY KEY, w DOUBLE)', db);
    await mysqlAdmin('INSERT INTO model_weights VALUES (1, 0.5), (2, 0.25)', db);
    await mysqlAdmin('CREATE VIEW mw AS SELECT * FROM model_weights', db);
    await mysqlAdmin('CREATE VIEW mw2 AS SELECT id, w FROM mw WHERE id > 0', db);
    const rule = { name: 'weights-frozen', match: { statement: { relations: { names: [`${db}.model_weights`], access: ['write'] } } }, action: 'block', message: 'model weights are frozen' };
    tb = await startTestBroker({ targets: { prod: mysqlTarget(db, { env: 'prod' }) }, policy: { statements: [rule], access: [{ name: 'any', action: 'allow' }] } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await mysqlAdmin(`DROP DATABASE IF EXISTS \`${db}\``);
  });

  for (const sql of ['UPDATE model_weights SET w = 0 WHERE id = 1', 'UPDATE mw SET w = 0 WHERE id = 1', 'DELETE FROM mw2 WHERE id = 2', 'INSERT INTO mw VALUES (3, 1)']) {
    test(sql, async () => {
      const c = await mysqlTunnelClient(conn);
      try {
        await assert.rejects(c.query(sql), /dbgov: blocked: model weights are frozen/);
      } finally {
        await c.end();
      }
      const rows = await mysqlAdmin<{ n: number; s: number }[]>('SELECT COUNT(*) AS n, SUM(w) AS s FROM model_weights', db);
      assert.deepEqual([Number(rows[0].n), Number(rows[0].s)], [2, 0.75]);
    });
  }
});
