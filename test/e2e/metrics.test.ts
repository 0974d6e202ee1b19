/**
 * `GET /metrics`: Prometheus metrics counted from the audit log after the fact, over real
 * sessions on PostgreSQL and MariaDB, for auditors and admins only, with no PII in any label.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, createTestDatabase, pgTarget, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import { createMysqlDatabase, mysqlTarget, mysqlTunnelClient, type MysqlTestDatabase } from './mysql-harness.js';

/** `name{labels} value` lines of one metric, labels parsed. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

function value(text: string, name: string, want: Record<string, string>): number {
  return samples(text, name)
    .filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

describe('broker metrics', () => {
  let db: TestDatabase;
  let my: MysqlTestDatabase;
  let tb: TestBroker;
  before(async () => {
    db = await createTestDatabase('metrics', "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'ann.metrics@example.com'), (2, 'bo.metrics@example.com'), (3, 'cy.metrics@example.com');");
    my = await createMysqlDatabase('metrics', 'CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);');
    tb = await startTestBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }), myprod: mysqlTarget(my.name, { env: 'prod' }) },
      masking: { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email' } },
      policy: {
        access: [{ name: 'any', action: 'allow' }],
        statements: [{ name: 'users-review', match: { statement: { relations: { names: ['public.users'], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '0s' } }],
      },
    });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
    await my?.drop();
  });

  const scrape = async (token: string): Promise<{ status: number; type: string | null; text: string }> => {
    const res = await fetch(`${tb.apiUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };

  test('statements on both engines are counted by target, decision and kind; sessions, approvals and masking show; no PII in the text', async () => {
    const first = await scrape(SA_TOKENS.auditor);
    assert.equal(first.status, 200, first.text);
    assert.match(first.type ?? '', /^text\/plain; version=0\.0\.4/);
    const before = (t: string, want: Record<string, string>): number => value(first.text, t, want);

    const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
    const c = await tunnelClient(conn);
    const myConn = await tb.connect(SA_TOKENS.ci, { target: 'myprod', access: 'write' });
    const m = await mysqlTunnelClient(myConn);
    try {
      for (let i = 0; i < 3; i++) assert.equal((await c.query('SELECT id, email FROM users ORDER BY id')).rowCount, 3);
      await assert.rejects(c.query('DROP TABLE users'), /blocked/);
      await assert.rejects(c.query('SELECT 1/0'), /division by zero/);
      await assert.rejects(c.query('UPDATE users SET id = id WHERE id = 1'), /approval required/);
      await m.query('SELECT id FROM t');
      await assert.rejects(m.query('DROP TABLE t'), /blocked/);

      const live = await scrape(SA_TOKENS.admin);
      assert.equal(live.status, 200);
      assert.equal(value(live.text, 'dbgov_sessions_active', { target: 'prod', identity_kind: 'workload' }), 1);
      assert.equal(value(live.text, 'dbgov_sessions_active', { target: 'myprod' }), 1);
      assert.equal(value(live.text, 'dbgov_approval_requests_pending', { type: 'statement', target: 'prod' }), 1);
    } finally {
      await c.end();
      await m.end();
      await conn.close();
      await myConn.close();
    }
    const now = await scrape(SA_TOKENS.auditor);
    const grew = (name: string, want: Record<string, string>): number => value(now.text, name, want) - before(name, want);
    assert.equal(grew('dbgov_statements_total', { target: 'prod', decision: 'allow', kind: 'select', identity_kind: 'workload' }), 4, now.text);
    assert.equal(grew('dbgov_statements_total', { target: 'prod', decision: 'block' }), 1);
    assert.equal(grew('dbgov_statements_total', { target: 'prod', decision: 'review', kind: 'update' }), 1);
    assert.equal(grew('dbgov_audit_events_total', { kind: 'approval.requested' }), 1);
    assert.equal(grew('dbgov_statements_total', { target: 'myprod', decision: 'allow', kind: 'select' }), 1);
    assert.equal(grew('dbgov_statements_total', { target: 'myprod', decision: 'block' }), 1);
    assert.equal(grew('dbgov_statements_masked_total', { target: 'prod' }), 3);
    assert.equal(grew('dbgov_statement_rows_total', { target: 'prod' }), 9 + 0);
    assert.equal(grew('dbgov_statement_errors_total', { target: 'prod', sqlstate_class: '22' }), 1);
    assert.equal(grew('dbgov_statement_duration_seconds_count', { target: 'prod' }), 4);
    assert.ok(grew('dbgov_audit_events_total', { kind: 'session.start' }) >= 2);
    assert.ok(value(now.text, 'dbgov_audit_last_seq', {}) > value(first.text, 'dbgov_audit_last_seq', {}));
    assert.ok(value(now.text, 'process_resident_memory_bytes', {}) > 0, 'process metrics are there');
    // Sessions closed: the gauge follows.
    const until = Date.now() + 5000;
    let closed = now;
    while (value(closed.text, 'dbgov_sessions_active', {}) > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      closed = await scrape(SA_TOKENS.auditor);
    }
    assert.equal(value(closed.text, 'dbgov_sessions_active', {}), 0);
    for (const pii of ['ann.metrics@example.com', 'metrics@example', 'users', 'SELECT', 'ci-bot']) assert.ok(!closed.text.includes(pii), `metrics hold no ${pii}`);
  });

  test('a service account in the metrics group scrapes, and may not read the audit trail', async () => {
    const created = await fetch(`${tb.apiUrl}/v1/service-accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SA_TOKENS.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'prometheus', groups: ['metrics'], kind: 'workload' }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { token } = (await created.json()) as { token: string };
    const scraped = await scrape(token);
    assert.equal(scraped.status, 200);
    assert.match(scraped.text, /^# HELP dbgov_statements_total /m);
    const audit = await fetch(`${tb.apiUrl}/v1/audit/report`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(audit.status, 403);
  });

  test('a scrape without a token, or by an identity outside metrics, auditors and admins, is refused', async () => {
    const none = await fetch(`${tb.apiUrl}/metrics`);
    assert.equal(none.status, 401);
    const dev = await scrape(SA_TOKENS.ci);
    assert.equal(dev.status, 403);
    assert.match(JSON.parse(dev.text).error.message, /may not read the broker metrics/);
    assert.doesNotMatch(dev.text, /dbgov_statements_total/);
  });
});
