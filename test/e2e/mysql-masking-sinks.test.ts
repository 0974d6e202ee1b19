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
import { SA_TOKENS, run, startTestBroker, type TestBroker } from './harness.js';
import { CaptureProxy, leaks as leaksOf } from './capture-proxy.js';
import { createMysqlDatabase, mysqlTarget, type MysqlTestDatabase } from './mysql-harness.js';
import type { Connection } from '../../src/cli/connect.js';

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/mysql-masking.yaml'), 'utf8')) as { schema: string; seed: string; masking: Record<string, unknown>; pii: string[] };

const probes: { name: string; sql: string[] }[] = [
  { name: 'user variable by assignment in a select list', sql: ['SELECT @v := email FROM users WHERE id = 1', 'SELECT @v'] },
  { name: 'user variable by SET', sql: ['SET @w = (SELECT ssn FROM users WHERE id = 1)', 'SELECT @w', 'SELECT CONCAT(@w, "")'] },
  { name: 'SELECT … INTO a variable', sql: ['SELECT card INTO @x FROM users WHERE id = 1', 'SELECT @x'] },
  { name: 'CREATE TABLE … AS SELECT', sql: ['CREATE TEMPORARY TABLE t1 AS SELECT email AS x, ssn AS y FROM users', 'SELECT * FROM t1'] },
  { name: 'INSERT … SELECT into another table', sql: ['BEGIN', 'INSERT INTO orders (id, user_id, amount, status) SELECT 100 + id, id, 0, ssn FROM users', 'SELECT status FROM orders', 'ROLLBACK'] },
  { name: 'UPDATE another table from a classified column', sql: ['BEGIN', 'UPDATE orders SET status = (SELECT LEFT(phone, 10) FROM users WHERE id = 1) WHERE id = 10', 'SELECT status FROM orders WHERE id = 10', 'ROLLBACK'] },
  { name: 'multi-table UPDATE', sql: ['BEGIN', 'UPDATE orders o JOIN users u ON u.id = o.user_id SET o.status = LEFT(u.ssn, 10)', 'SELECT status FROM orders', 'ROLLBACK'] },
];

describe('mysql masking: classified values moved to other sinks', () => {
  let db: MysqlTestDatabase;
  let tb: TestBroker;
  let conn: Connection;
  let proxy: CaptureProxy;

  before(async () => {
    db = await createMysqlDatabase('sink', `${corpus.schema}\n${corpus.seed}`);
    const masking = { ...corpus.masking, key: '${env:T_MASK_KEY}' };
    tb = await startTestBroker({ targets: { staging: mysqlTarget(db.name, { env: 'staging' }) }, masking, policy: { access: [{ name: 'any', action: 'allow' }] } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'write' });
    proxy = new CaptureProxy(conn.tunnel.port);
    await proxy.start();
  });
  after(async () => {
    await proxy?.close();
    await conn?.close();
    await tb?.close();
    await db?.drop();
  });

  for (const p of probes) {
    test(p.name, async () => {
      proxy.take();
      const r = await run('mariadb', ['--no-defaults', '--batch', '--force', '--skip-ssl', '-h', '127.0.0.1', '-P', String(proxy.port), '-u', 'ci-bot', db.name, '-e', p.sql.join(';\n')]);
      const bytes = proxy.take();
      assert.deepEqual(leaksOf(corpus.pii, bytes), [], `${p.sql.join('; ')}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
    });
  }
});
