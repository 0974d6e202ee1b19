/**
 * The tunnel's live view: each statement's decision, rows and time stream to the credential's
 * owner as they happen, and only to them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, createTestDatabase, pgTarget, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import type { ActivityEvent } from '../../src/broker/api-types.js';
import { formatActivity } from '../../src/cli/render.js';

describe('live activity', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  before(async () => {
    db = await createTestDatabase('act', 'CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 12);');
    tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'prod' }) }, policy: { access: [{ name: 'any', action: 'allow' }] } });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  test('allowed and blocked statements appear on the owner\'s stream, not on anyone else\'s', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
    const stop = new AbortController();
    const seen: ActivityEvent[] = [];
    const following = (async () => {
      try {
        for await (const e of tb.client(SA_TOKENS.ci).activity(conn.credential.id, stop.signal)) seen.push(e);
      } catch {
        // aborted
      }
    })();
    await assert.rejects(tb.client(SA_TOKENS.auditor).activity(conn.credential.id, stop.signal).next(), (e: { exitCode?: number }) => e.exitCode === 7, 'another identity cannot watch it');
    await new Promise((r) => setTimeout(r, 200));
    const c = await tunnelClient(conn);
    try {
      await c.query('select * from t');
      await assert.rejects(c.query('drop table t'));
    } finally {
      await c.end();
    }
    const until = Date.now() + 5000;
    while (Date.now() < until && !(seen.some((e) => e.decision === 'block') && seen.some((e) => e.type === 'session.end'))) await new Promise((r) => setTimeout(r, 50));
    stop.abort();
    await following;
    const select = seen.find((e) => e.type === 'statement' && e.decision === 'allow' && e.rows === 12);
    assert.ok(select, JSON.stringify(seen));
    assert.match(formatActivity(select), /✔ SELECT 12 rows/);
    const blocked = seen.find((e) => e.decision === 'block');
    assert.ok(blocked);
    assert.match(formatActivity(blocked), /✖ blocked/);
    assert.ok(seen.some((e) => e.type === 'session.start'));
    await conn.close();
  });
});
