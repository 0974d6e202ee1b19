/**
 * The MySQL masking corpus (test/corpus/mysql-masking.yaml) through the real tunnel with mysql2
 * (text and binary protocol) and the mariadb CLI: a capturing proxy records every byte the
 * client receives, and no seeded PII value may appear in it, in any case or reversed. Columns
 * that are not PII must come back exactly as the server sends them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import mysql from 'mysql2/promise';
import { SA_TOKENS, run, startTestBroker, type TestBroker } from './harness.js';
import { CaptureProxy, leaks as leaksOf } from './capture-proxy.js';
import { MYSQL, createMysqlDatabase, mysqlTarget, type MysqlTestDatabase } from './mysql-harness.js';
import type { Connection } from '../../src/cli/connect.js';

interface Shape {
  name: string;
  sql: string;
  clear?: string[];
  setup?: string[];
  params?: unknown[];
  prepared?: boolean;
  error?: boolean;
  writes?: boolean;
  todo?: string;
}
interface MaskingCorpus {
  schema: string;
  seed: string;
  masking: Record<string, unknown>;
  pii: string[];
  queries: Shape[];
}

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/mysql-masking.yaml'), 'utf8')) as MaskingCorpus;

/** A TCP proxy in front of the tunnel that keeps every byte sent back to the client. */
const leaks = (bytes: Buffer): string[] => leaksOf(corpus.pii, bytes);

async function runShape(c: mysql.Connection, q: Shape): Promise<{ rows: Record<string, unknown>[]; failed: boolean }> {
  let rows: Record<string, unknown>[] = [];
  let failed = false;
  if (q.writes) await c.query('BEGIN');
  for (const s of q.setup ?? []) await c.query(s);
  try {
    const [r] = q.prepared ? await c.execute(q.sql, (q.params ?? []) as (string | number)[]) : await c.query(q.sql);
    rows = Array.isArray(r) ? (r as Record<string, unknown>[]) : [];
  } catch {
    failed = true;
  }
  if (q.writes) await c.query('ROLLBACK').catch(() => undefined);
  return { rows, failed };
}

describe('mysql masking corpus through the tunnel', () => {
  let db: MysqlTestDatabase;
  let tb: TestBroker;
  let conn: Connection;
  let auditorConn: Connection;
  let proxy: CaptureProxy;

  before(async () => {
    db = await createMysqlDatabase('mask', `${corpus.schema}\n${corpus.seed}`);
    const masking = { ...corpus.masking, key: '${env:T_MASK_KEY}', unmask: [{ groups: ['auditors'] }] };
    tb = await startTestBroker({ targets: { staging: mysqlTarget(db.name, { env: 'staging' }) }, masking, policy: { access: [{ name: 'any', action: 'allow' }] } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'write' });
    auditorConn = await tb.connect(SA_TOKENS.auditor, { target: 'staging', access: 'read' });
    proxy = new CaptureProxy(conn.tunnel.port);
    await proxy.start();
  });
  after(async () => {
    await proxy?.close();
    await conn?.close();
    await auditorConn?.close();
    await tb?.close();
    await db?.drop();
  });

  test(`the corpus has at least 30 shapes (${corpus.queries.length})`, () => {
    assert.ok(corpus.queries.length >= 30);
  });

  for (const q of corpus.queries) {
    test(`mysql2: ${q.name}`, { ...(q.todo ? { todo: q.todo } : {}) }, async () => {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'ci-bot', database: db.name });
      c.on('error', () => undefined);
      proxy.take();
      let out: { rows: Record<string, unknown>[]; failed: boolean };
      try {
        out = await runShape(c, q);
      } finally {
        await c.end().catch(() => undefined);
      }
      assert.deepEqual(leaks(proxy.take()), [], `${q.sql}: clear PII reached the client`);
      if (q.error) assert.ok(out.failed, `${q.sql} should fail`);
      else assert.ok(!out.failed, `${q.sql} should run`);
      if (q.clear?.length) {
        const direct = await mysql.createConnection({ ...MYSQL, database: db.name });
        try {
          const want = await runShape(direct, q);
          for (const col of q.clear) assert.deepEqual(out.rows.map((r) => r[col]), want.rows.map((r) => r[col]), `column ${col} of ${q.sql}`);
        } finally {
          await direct.end();
        }
      }
    });

    if (q.prepared) continue;
    test(`mariadb CLI: ${q.name}`, { ...(q.todo ? { todo: q.todo } : {}) }, async () => {
      const cmds = [...(q.writes ? ['BEGIN'] : []), ...(q.setup ?? []), q.sql, ...(q.writes ? ['ROLLBACK'] : [])];
      proxy.take();
      const r = await run('mariadb', ['--no-defaults', '--batch', '--force', '--skip-ssl', '-h', '127.0.0.1', '-P', String(proxy.port), '-u', 'ci-bot', db.name, '-e', cmds.join(';\n')]);
      assert.deepEqual(leaks(proxy.take()), [], `${q.sql}: clear PII in the wire bytes`);
      // On an error the CLI echoes the statement it sent: the user's own literal, not server data.
      const printed = (r.stdout + r.stderr).split(q.sql).join('');
      assert.deepEqual(leaks(Buffer.from(printed)), [], `${q.sql}: clear PII printed by the CLI`);
      if (!q.error) assert.ok(r.stdout.length > 0, `${q.sql} printed rows: ${r.stderr}`);
    });
  }

  test('unmask by group: an auditor sees clear values, through the same gateway', async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: auditorConn.tunnel.port, user: 'auditor-bot', database: db.name });
    try {
      const [rows] = await c.query('SELECT email, ssn FROM users WHERE id = 1');
      assert.deepEqual(rows, [{ email: 'alice.liddell@example.com', ssn: '123-45-6789' }]);
    } finally {
      await c.end();
    }
  });

  test('the deterministic hash joins across two tables', async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: conn.tunnel.port, user: 'ci-bot', database: db.name });
    try {
      const [u] = await c.query('SELECT id, card FROM users ORDER BY id');
      const [o] = await c.query('SELECT user_id, card FROM orders ORDER BY id');
      const byUser = new Map((u as { id: number; card: string }[]).map((r) => [r.id, r.card]));
      for (const row of o as { user_id: number; card: string }[]) {
        assert.match(row.card, /^tok_/);
        assert.equal(row.card, byUser.get(row.user_id), 'same card, same token in both tables');
      }
      assert.equal(new Set(byUser.values()).size, 3);
    } finally {
      await c.end();
    }
  });

  test('the audit records which columns were masked, and never the values', async () => {
    const events = await tb.events((e) => e.kind === 'statement.result' && (e.statement?.maskedColumns.length ?? 0) > 0);
    assert.ok(events.length > 10);
    assert.deepEqual(leaks(Buffer.from(JSON.stringify(await tb.events()))), [], 'no clear value in the audit log');
  });
});
