/**
 * The masking corpus (test/corpus/postgres-masking.yaml) through the real tunnel with pg and
 * psql: a capturing proxy records every byte the client receives (rows, COPY data, errors,
 * notices), and no seeded PII value may appear in it, in any case or reversed. Columns that
 * are not PII must come back byte-for-byte as the server sent them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import pg from 'pg';
import { SA_TOKENS, adminQuery, createTestDatabase, pgTarget, run, startTestBroker, type TestBroker, type TestDatabase } from './harness.js';
import { CaptureProxy, leaks as leaksOf } from './capture-proxy.js';
import type { Connection } from '../../src/cli/connect.js';

interface Shape {
  name: string;
  sql: string;
  masked?: string[];
  clear?: string[];
  setup?: string[];
  error?: boolean;
  refused?: boolean;
  writes?: boolean;
  copy?: 'text' | 'csv' | 'binary';
  todo?: string;
}
interface MaskingCorpus {
  schema: string;
  seed: string;
  masking: Record<string, unknown>;
  pii: string[];
  queries: Shape[];
}

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/postgres-masking.yaml'), 'utf8')) as MaskingCorpus;

const leaks = (bytes: Buffer): string[] => leaksOf(corpus.pii, bytes);

describe('masking corpus through the tunnel', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let conn: Connection;
  let auditorConn: Connection;
  let proxy: CaptureProxy;

  before(async () => {
    db = await createTestDatabase('mask', `${corpus.schema}\n${corpus.seed}`);
    const masking = { ...corpus.masking, key: '${env:T_MASK_KEY}', unmask: [{ groups: ['auditors'] }] };
    tb = await startTestBroker({ targets: { staging: pgTarget(db.name, { env: 'staging' }) }, masking, policy: { access: [{ name: 'any', action: 'allow' }] } });
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

  test(`the corpus has at least 60 shapes (${corpus.queries.length})`, () => {
    assert.ok(corpus.queries.length >= 60);
  });

  for (const q of corpus.queries) {
    test(`pg: ${q.name}`, async () => {
      const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'ci-bot', database: db.name });
      c.on('error', () => undefined);
      c.on('notice', () => undefined);
      await c.connect();
      proxy.take();
      let rows: Record<string, unknown>[] = [];
      let failed = false;
      try {
        if (q.writes) await c.query('BEGIN');
        for (const s of q.setup ?? []) await c.query(s);
        if (q.copy) {
          // pg has no COPY TO reader; the psql run below checks COPY output. Here: it must run.
          await c.query(q.sql).catch(() => undefined);
        } else {
          try {
            rows = (await c.query(q.sql)).rows;
          } catch (e) {
            failed = true;
            if (q.refused) assert.match((e as Error).message, /^dbgov: blocked/, q.sql);
          }
        }
        if (q.writes || q.setup?.includes('BEGIN')) await c.query('ROLLBACK').catch(() => undefined);
      } finally {
        await c.end().catch(() => undefined);
      }
      const bytes = proxy.take();
      assert.deepEqual(leaks(bytes), [], `${q.sql}: clear PII reached the client`);
      if (q.error || q.refused) assert.ok(failed, `${q.sql} should fail`);
      if (!q.error && !q.copy && q.clear?.length && !q.todo) {
        // Non-PII columns come back exactly as the server sends them.
        const direct = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db.name });
        await direct.connect();
        try {
          if (q.writes) await direct.query('BEGIN');
          for (const s of q.setup ?? []) await direct.query(s);
          const want = (await direct.query(q.sql)).rows;
          await direct.query('ROLLBACK').catch(() => undefined);
          for (const col of q.clear) assert.deepEqual(rows.map((r) => r[col]), want.map((r) => r[col]), `column ${col} of ${q.sql}`);
        } finally {
          await direct.end();
        }
      }
    });

    test(`psql: ${q.name}`, async () => {
      const args = ['-X', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'ci-bot', '-d', db.name];
      const cmds = [...(q.writes ? ['BEGIN'] : []), ...(q.setup ?? []), q.sql, ...(q.writes || q.setup?.includes('BEGIN') ? ['ROLLBACK'] : [])];
      for (const s of cmds) args.push('-c', s);
      proxy.take();
      const r = await run('psql', args);
      const bytes = proxy.take();
      assert.deepEqual(leaks(bytes), [], `${q.sql}: clear PII in the wire bytes`);
      assert.deepEqual(leaks(Buffer.from(r.stdout + r.stderr)), [], `${q.sql}: clear PII printed by psql`);
      if (q.copy) assert.ok(r.stdout.length > 0 || q.copy === 'binary', `COPY produced output: ${r.stderr}`);
    });
  }

  test('unmask by group: an auditor sees clear values, through the same gateway', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: auditorConn.tunnel.port, user: 'auditor-bot', database: db.name });
    await c.connect();
    try {
      const r = await c.query('select email, ssn from users where id = 1');
      assert.equal(r.rows[0].email, 'alice.liddell@example.com');
      assert.equal(r.rows[0].ssn, '123-45-6789');
    } finally {
      await c.end();
    }
  });

  test('the deterministic hash joins across two tables', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: conn.tunnel.port, user: 'ci-bot', database: db.name });
    await c.connect();
    try {
      const u = await c.query('select id, card from users order by id');
      const o = await c.query('select user_id, card from orders order by id');
      const byUser = new Map(u.rows.map((r) => [r.id as number, r.card as string]));
      for (const row of o.rows) {
        assert.match(row.card as string, /^tok_/);
        assert.equal(row.card, byUser.get(row.user_id as number), 'same card, same token in both tables');
      }
      const tokens = new Set(u.rows.map((r) => r.card));
      assert.equal(tokens.size, 3, 'different cards, different tokens');
    } finally {
      await c.end();
    }
  });

  test('binary result format is masked too', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'ci-bot', database: db.name });
    await c.connect();
    proxy.take();
    try {
      const r = await c.query({ text: 'select u.id, u.email, u.ssn, m.weights from users u join model_weights m on u.id = m.id', binary: true } as pg.QueryConfig);
      assert.equal(r.rows.length, 2);
    } finally {
      await c.end();
    }
    assert.deepEqual(leaks(proxy.take()), []);
  });

  test('the audit records which columns were masked, and never the values', async () => {
    const events = await tb.events((e) => e.kind === 'statement.result' && (e.statement?.maskedColumns.length ?? 0) > 0);
    assert.ok(events.length > 10);
    const all = JSON.stringify(await tb.events());
    assert.deepEqual(leaks(Buffer.from(all)), [], 'no clear value in the audit log');
    void adminQuery;
  });
});
