/**
 * Audit as evidence, end to end: a real broker on the real PostgreSQL, real tunnels, the real CLI
 * as a subprocess (`npm run build` first), a real HTTP receiver and the NATS JetStream server on
 * this machine. Covers a realistic mixed day (report and search), export in every format, tamper
 * detection on an exported file, sinks going down and coming back, retention, and config errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import pg from 'pg';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { eventHash } from '../../src/audit/canonical.js';
import { CSV_COLUMNS } from '../../src/audit/csv.js';
import type { AuditEvent } from '../../src/audit/event.js';
import type { AccessReport } from '../../src/audit/report.js';
import { openEmbeddedStore } from '../../src/store/embedded.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { Connection } from '../../src/cli/connect.js';
import { SA_TOKENS, createTestDatabase, pgTarget, run, tunnelClient, type TestDatabase } from './harness.js';
import { CLI, cli, startAuditBroker, waitFor, type AuditBroker } from './audit-helpers.js';

const SCHEMA = `
  CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, plan text);
  INSERT INTO users VALUES (1, 'ada@example.com', 'pro'), (2, 'linus@example.org', 'free'), (3, 'grace@example.net', 'pro');
  CREATE TABLE orders (id serial PRIMARY KEY, user_id int, amount int);
  CREATE TABLE payouts (id int PRIMARY KEY, amount int); INSERT INTO payouts VALUES (1, 100);`;

const POLICY = {
  access: [{ name: 'everyone-may-write', action: 'allow' }],
  statements: [
    { name: 'payouts-review', match: { statement: { relations: { names: ['public.payouts'], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '30s' } },
  ],
};
const MASKING = { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email' } };

/** All pages of a CLI search, following `next`. */
async function searchAll(apiUrl: string, args: string[], limit: number): Promise<{ events: AuditEvent[]; pages: number }> {
  const events: AuditEvent[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const r = await cli(apiUrl, ['audit', 'search', ...args, '--limit', String(limit), ...(cursor ? ['--cursor', cursor] : []), '--json']);
    assert.equal(r.code, 0, `audit search ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    const page = r.json!.result as { events: AuditEvent[]; next?: string };
    assert.ok(page.events.length <= limit);
    events.push(...page.events);
    cursor = page.next;
    pages += 1;
  } while (cursor !== undefined);
  return { events, pages };
}

describe('audit: a realistic day through the broker — report, search, export, tamper detection', () => {
  let db: TestDatabase;
  let tb: AuditBroker;
  let work: string;
  const phase: Record<string, string> = {};
  let agentSession = '';
  let all: AuditEvent[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'dbgov-audit-day-'));
    db = await createTestDatabase('auditday', SCHEMA);
    tb = await startAuditBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }), analytics: pgTarget('postgres', { env: 'staging' }) },
      policy: POLICY,
      masking: MASKING,
      audit: { checkpointEvery: 10, retention: '400d' },
    });

    // Night: the CI pipeline (workload) deploys and checks, and trips the unbounded-write guardrail.
    phase.ciStart = new Date().toISOString();
    const ci = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write', reason: 'deploy 42' });
    const ciDb = await tunnelClient(ci);
    for (let i = 0; i < 5; i++) await ciDb.query(`INSERT INTO orders (user_id, amount) VALUES (${(i % 3) + 1}, ${10 * (i + 1)})`);
    for (let i = 0; i < 3; i++) await ciDb.query('SELECT count(*) FROM orders');
    await assert.rejects(ciDb.query('DELETE FROM orders'), /dbgov: blocked/);
    await ciDb.end();
    await ci.close();
    const ciAnalytics = await tb.connect(SA_TOKENS.ci, { target: 'analytics', access: 'read' });
    const an = await tunnelClient(ciAnalytics);
    await an.query('SELECT 1 AS one');
    await an.query('SELECT 2 AS two');
    await an.end();
    await ciAnalytics.close();
    phase.ciEnd = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));

    // Day: a support agent reads customers (emails masked) and tries a write it may not make.
    phase.agentStart = new Date().toISOString();
    const agent = await tb.connect(SA_TOKENS.agent, { target: 'prod', access: 'read', reason: 'ticket SUP-7' });
    const agDb = await tunnelClient(agent);
    for (let id = 1; id <= 4; id++) {
      const r = await agDb.query(`SELECT id, email FROM users WHERE id = ${Math.min(id, 3)}`);
      assert.doesNotMatch(JSON.stringify(r.rows), /ada@|linus@|grace@/, `emails come back masked: ${JSON.stringify(r.rows)}`);
    }
    await assert.rejects(agDb.query("UPDATE users SET plan = 'free' WHERE id = 1"), /dbgov: blocked/);
    await agDb.end();
    await agent.close();
    phase.agentEnd = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));

    // Afternoon: an admin's payout correction is held, the approver approves, and it runs.
    const admin = await tb.connect(SA_TOKENS.admin, { target: 'prod', access: 'write', reason: 'FIN-9' });
    const adDb = await tunnelClient(admin);
    const held = adDb.query('UPDATE payouts SET amount = 120 WHERE id = 1');
    const requestId = await waitFor('the payout request', async () => (await tb.client(SA_TOKENS.approver).requests('pending')).requests[0]?.id);
    await tb.client(SA_TOKENS.approver).approve(requestId, 'matches FIN-9');
    assert.equal((await held).rowCount, 1);
    await adDb.end();
    await admin.close();

    await tb.store.audit.sync();
    all = await tb.events();
    agentSession = all.find((e) => e.kind === 'session.start' && e.identity?.id === 'agent-bot')!.sessionId!;
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  test('report --format json|md|html: the day in numbers, per identity, per target, masked columns, blocks, approvals', async () => {
    const j = await cli(tb.apiUrl, ['audit', 'report', '--since', '1d', '--format', 'json', '--json']);
    assert.equal(j.code, 0, j.stdout + j.stderr);
    const r = (j.json!.result as { report: AccessReport }).report;
    const byId = Object.fromEntries(r.identities.map((i) => [i.id, i]));
    const rows: [string, unknown, unknown][] = [
      // ci: 5 inserts + 3 selects + 1 blocked delete on prod, 2 selects on analytics.
      ['ci-bot statements', byId['ci-bot']?.statements, 11],
      ['ci-bot blocked', byId['ci-bot']?.blocked, 1],
      ['ci-bot kind', byId['ci-bot']?.kind, 'workload'],
      ['ci-bot targets', byId['ci-bot']?.targets, ['analytics', 'prod']],
      ['ci-bot rows (5 inserted, 3 counts, 2 selects)', byId['ci-bot']?.rows, 10],
      ['agent-bot statements', byId['agent-bot']?.statements, 5],
      ['agent-bot blocked', byId['agent-bot']?.blocked, 1],
      ['agent-bot kind', byId['agent-bot']?.kind, 'agent'],
      // The held statement's decision (review) and its approved run are two records.
      ['admin-bot statements', byId['admin-bot']?.statements, 2],
      ['totals.statements', r.totals.statements, 18],
      ['totals.blocked', r.totals.blocked, 2],
      ['totals.held', r.totals.held, 1],
      ['targets', r.targets.map((t) => [t.name, t.statements]), [['prod', 16], ['analytics', 2]]],
      ['email masked', r.sensitiveColumns.find((c) => c.column === 'public.users.email')?.masked, 4],
      ['email in clear', r.sensitiveColumns.find((c) => c.column === 'public.users.email')?.clear, 0],
      ['blocked rules', r.blockedByRule.map((b) => b.rule).sort(), ['block-unbounded-write', 'read-only-credential']],
      ['blocked identities', r.blocked.map((b) => b.identity).sort(), ['agent-bot', 'ci-bot']],
      ['approvals', r.approvals.map((a) => [a.requester, a.approver, a.decision, a.comment]), [['admin-bot', 'approver-bot', 'approve', 'matches FIN-9']]],
    ];
    for (const [name, got, want] of rows) assert.deepEqual(got, want, name);

    const md = await cli(tb.apiUrl, ['audit', 'report', '--since', '1d', '--format', 'md', '--out', join(work, 'review.md'), '--json']);
    assert.equal(md.code, 0, md.stdout + md.stderr);
    const mdText = readFileSync(join(work, 'review.md'), 'utf8');
    for (const line of ['18 statements by 3 identities on 2 targets', '| ci-bot | workload | 11 | 1 | 10 |', '| agent-bot | agent | 5 | 1 |', '| public.users.email | 4 | 0 |', '| block-unbounded-write | 1 |', 'approver-bot | approve | matches FIN-9']) {
      assert.ok(mdText.includes(line), `markdown has "${line}"`);
    }

    const html = await cli(tb.apiUrl, ['audit', 'report', '--since', '1d', '--format', 'html', '--out', join(work, 'review.html'), '--json']);
    assert.equal(html.code, 0, html.stdout + html.stderr);
    const page = readFileSync(join(work, 'review.html'), 'utf8');
    assert.ok((page.match(/<svg /g) ?? []).length >= 3, 'charts per identity, per hour, per target');
    assert.doesNotMatch(page, /<script/i);
    for (const s of ['<h2>Approvals</h2>', 'matches FIN-9', 'read-only-credential', 'DELETE FROM orders']) assert.ok(page.includes(s), s);

    const denied = await cli(tb.apiUrl, ['audit', 'report', '--since', '1d', '--format', 'json', '--json'], SA_TOKENS.ci);
    assert.notEqual(denied.code, 0, 'only auditors get the report');
    // The refusal is part of the day's trail, under the identity that tried.
    all = await tb.events();
    assert.deepEqual(all.filter((e) => e.kind === 'api.refused').map((e) => [e.identity?.id, (e.detail as { route?: string }).route]), [['ci-bot', 'GET /v1/audit/report']]);
  });

  test('search filters through the CLI match the log exactly, newest first, across pages', async () => {
    const st = (e: AuditEvent) => e.statement;
    const cases: { args: string[]; want: (e: AuditEvent) => boolean; min: number }[] = [
      { args: ['--identity', 'agent-bot'], want: (e) => e.identity?.id === 'agent-bot', min: 8 },
      { args: ['--kind', 'agent'], want: (e) => e.identity?.kind === 'agent', min: 8 },
      { args: ['--target', 'analytics'], want: (e) => e.target === 'analytics', min: 4 },
      { args: ['--database', 'postgres'], want: (e) => e.database === 'postgres', min: 4 },
      { args: ['--table', 'payouts'], want: (e) => (st(e)?.tables ?? []).includes('public.payouts'), min: 3 },
      { args: ['--column', 'email'], want: (e) => (st(e)?.maskedColumns ?? []).includes('public.users.email'), min: 4 },
      { args: ['--decision', 'block'], want: (e) => st(e)?.decision === 'block', min: 2 },
      { args: ['--since', phase.agentStart, '--until', phase.agentEnd], want: (e) => e.time >= phase.agentStart && e.time < phase.agentEnd, min: 10 },
      { args: ['--text', 'orders'], want: (e) => (st(e)?.text.toLowerCase().includes('orders') ?? false) || JSON.stringify(e.detail ?? {}).toLowerCase().includes('orders'), min: 9 },
      { args: ['--session', agentSession], want: (e) => e.sessionId === agentSession, min: 8 },
      { args: ['--event', 'session.start,approval.requested'], want: (e) => e.kind === 'session.start' || e.kind === 'approval.requested', min: 4 },
      { args: ['--event', 'statement.result', '--identity', 'agent-bot'], want: (e) => e.kind === 'statement.result' && e.identity?.id === 'agent-bot', min: 4 },
      { args: ['--identity', 'ci-bot', '--decision', 'allow', '--target', 'prod'], want: (e) => e.identity?.id === 'ci-bot' && st(e)?.decision === 'allow' && e.target === 'prod', min: 16 },
    ];
    for (const c of cases) {
      const want = all.filter(c.want).reverse();
      assert.ok(want.length >= c.min, `${c.args.join(' ')}: the day has ${want.length} such events`);
      const got = await searchAll(tb.apiUrl, c.args, 25);
      assert.deepEqual(got.events.map((e) => e.seq), want.map((e) => e.seq), c.args.join(' '));
    }

    // Paging: small pages continue exactly where the previous one stopped, no gaps, no repeats.
    const paged = await searchAll(tb.apiUrl, ['--identity', 'ci-bot'], 4);
    const want = all.filter((e) => e.identity?.id === 'ci-bot').reverse();
    assert.ok(paged.pages >= 5, `${paged.pages} pages`);
    assert.deepEqual(paged.events.map((e) => e.id), want.map((e) => e.id));

    // A non-auditor only ever sees their own trail.
    const own = await cli(tb.apiUrl, ['audit', 'search', '--limit', '1000', '--json'], SA_TOKENS.agent);
    const ownEvents = (own.json!.result as { events: AuditEvent[] }).events;
    assert.ok(ownEvents.length > 0 && ownEvents.every((e) => e.identity?.id === 'agent-bot'));
    const other = await cli(tb.apiUrl, ['audit', 'search', '--identity', 'ci-bot', '--json'], SA_TOKENS.agent);
    assert.notEqual(other.code, 0);
    all = await tb.events();
    assert.equal(all.filter((e) => e.kind === 'api.refused' && e.identity?.id === 'agent-bot').length, 1, 'the refused search is on the record');
  });

  test('export round trip: jsonl, csv and ocsf carry the same events; OCSF validates against its schema', async () => {
    const until = new Date().toISOString();
    const files = { jsonl: join(work, 'day.jsonl'), csv: join(work, 'day.csv'), ocsf: join(work, 'day.ocsf.jsonl') };
    for (const [format, out] of Object.entries(files)) {
      const r = await cli(tb.apiUrl, ['audit', 'export', '--since', '1d', '--until', until, '--format', format, '--out', out, '--json']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    const inRange = all.filter((e) => e.time < until);
    const jsonl = readFileSync(files.jsonl, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    assert.deepEqual(jsonl, inRange, 'jsonl is the log itself, byte for byte in content');
    for (const e of jsonl) assert.equal(eventHash(e), e.hash);

    const csvLines = readFileSync(files.csv, 'utf8').trimEnd().split('\r\n');
    assert.equal(csvLines[0], CSV_COLUMNS.join(','));
    assert.equal(csvLines.length - 1, jsonl.length);
    const hashCol = CSV_COLUMNS.indexOf('hash');
    const seqCol = CSV_COLUMNS.indexOf('seq');
    csvLines.slice(1).forEach((line, i) => {
      // The hash is the last column and never quoted; seq is the first.
      const cells = line.split(',');
      assert.equal(cells[seqCol], String(jsonl[i].seq));
      assert.equal(cells[cells.length - (CSV_COLUMNS.length - hashCol)], jsonl[i].hash);
    });
    const blockedRow = csvLines.find((l) => l.includes('block-unbounded-write'))!;
    assert.match(blockedRow, /DELETE FROM orders/);

    const schema = JSON.parse(readFileSync(resolve(process.cwd(), 'schema/ocsf-datastore-activity.schema.json'), 'utf8')) as object;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const ocsf = readFileSync(files.ocsf, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    assert.equal(ocsf.length, jsonl.length);
    ocsf.forEach((o, i) => {
      assert.ok(validate(o), `OCSF line ${i + 1}: ${JSON.stringify(validate.errors)}`);
      assert.equal(o.metadata.uid, jsonl[i].id);
    });
    const blocked = ocsf.find((o) => o.unmapped.rule === 'block-unbounded-write')!;
    assert.equal(blocked.class_uid, 6005);
    assert.equal(blocked.activity_id, 7, 'a DELETE is Datastore Activity: Delete');
    assert.equal(blocked.status_id, 2, 'blocked is a failure outcome');
    assert.equal(blocked.actor.user.uid, 'ci-bot');
    const masked = ocsf.find((o) => o.unmapped.dbgov_kind === 'statement.result' && (o.unmapped.masked_columns ?? []).length > 0)!;
    assert.equal(masked.actor.user.uid, 'agent-bot');
    assert.equal(masked.activity_id, 4, 'a SELECT is Query');
    assert.equal(masked.status_id, 1);
  });

  test('tamper detection on an exported file: edit, rehashed edit, delete, reorder and a cut tail each fail and name the event', async () => {
    const file = join(work, 'evidence.jsonl');
    const exp = await cli(tb.apiUrl, ['audit', 'export', '--format', 'jsonl', '--out', file, '--json']);
    assert.equal(exp.code, 0, exp.stdout + exp.stderr);
    // The checkpoints file as of the export: what reveals a cut tail.
    const checkpoints = join(work, 'checkpoints.jsonl');
    copyFileSync(join(tb.dir, 'checkpoints.jsonl'), checkpoints);
    const key = await tb.client(SA_TOKENS.auditor).auditPublicKey();
    const pub = join(work, 'audit-public.pem');
    writeFileSync(pub, key.publicKeyPem);

    const verify = (f: string, extra: string[] = []) => cli(tb.apiUrl, ['audit', 'verify', '--file', f, '--public-key', pub, ...extra, '--json']);
    const ok = await verify(file, ['--checkpoints', checkpoints]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const res = ok.json!.result as { events: number; checkpoints: number };
    assert.ok(res.checkpoints >= 3, `${res.checkpoints} signed checkpoints in the file`);

    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l) as AuditEvent);
    const target = events.findIndex((e) => e.kind === 'statement' && e.statement?.decision === 'block');
    const victim = events[target];
    const lastCheckpoint = events.map((e) => e.kind).lastIndexOf('checkpoint');
    assert.ok(target > 0 && target < lastCheckpoint - 2);

    const rehashed = { ...victim, statement: { ...victim.statement!, decision: 'allow' as const } };
    rehashed.hash = eventHash(rehashed);
    const cases: { name: string; lines: string[]; extra?: string[]; says: RegExp; names: RegExp }[] = [
      { name: 'edited', lines: lines.map((l, i) => (i === target ? l.replace('"decision":"block"', '"decision":"allow"') : l)), says: /was changed/, names: new RegExp(`Event ${victim.seq} \\(${victim.id}\\)`) },
      { name: 'edited, hash recomputed', lines: lines.map((l, i) => (i === target ? JSON.stringify(rehashed) : l)), says: /changed and its hash recomputed/, names: new RegExp(`Event ${victim.seq} \\(${victim.id}\\)`) },
      { name: 'deleted', lines: lines.filter((_, i) => i !== target), says: /missing/, names: new RegExp(`Event ${victim.seq} is missing`) },
      { name: 'reordered', lines: lines.map((l, i) => (i === target ? lines[target + 1] : i === target + 1 ? lines[target] : l)), says: /reordered|out of order/, names: new RegExp(`Event ${victim.seq} \\(${victim.id}\\)`) },
      { name: 'truncated', lines: lines.slice(0, lastCheckpoint), extra: ['--checkpoints', checkpoints], says: /tail was cut/, names: new RegExp(`ends at event ${events[lastCheckpoint - 1].seq}`) },
    ];
    for (const c of cases) {
      const f = join(work, `tampered-${c.name.replace(/\W+/g, '-')}.jsonl`);
      writeFileSync(f, c.lines.join('\n') + '\n');
      const r = await verify(f, c.extra);
      assert.notEqual(r.code, 0, `${c.name}: verify must fail`);
      assert.notEqual(r.json?.status, 0, c.name);
      assert.match(r.json!.message!, /does not verify/, c.name);
      // The first problem (lowest seq) is the tampered event, named by seq and id.
      assert.match(r.json!.message!, c.names, `${c.name}: ${r.json!.message}`);
      assert.match(r.json!.message!, c.says, `${c.name}: ${r.json!.message}`);
    }

    // Online, against the broker's own log and published key.
    const online = await cli(tb.apiUrl, ['audit', 'verify', '--json']);
    assert.equal(online.code, 0, online.stdout + online.stderr);
    assert.ok((online.json!.result as { events: number }).events >= events.length);

    // Anyone else sees only their own events; verifying that narrowed view reported "tampered".
    const notAuditor = await cli(tb.apiUrl, ['audit', 'verify', '--json'], SA_TOKENS.ci);
    assert.equal(notAuditor.code, 4, notAuditor.stdout + notAuditor.stderr);
    assert.equal(notAuditor.json!.name, 'DeniedError');
    assert.match(notAuditor.json!.message!, /only auditors may read the whole audit log/);
    assert.doesNotMatch(notAuditor.json!.message!, /does not verify/);
  });
});

describe('audit sinks from the broker: a webhook that goes down and comes back, NATS JetStream', () => {
  let db: TestDatabase;
  let tb: AuditBroker;
  let conn: Connection;
  let client: pg.Client;
  const secret = randomBytes(16).toString('hex');
  const received = new Map<number, AuditEvent>();
  let badSignatures = 0;
  let hookPort = 0;
  let receiver: Server | undefined;
  const tag = randomBytes(4).toString('hex');
  const stream = `DBGOV_E2E_${tag}`;
  const prefix = `dbgove2e.${tag}`;

  const listen = (port: number) =>
    new Promise<Server>((res) => {
      const srv = createServer((req, reply) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const ts = String(req.headers['x-dbgov-timestamp']);
          const want = 'sha256=' + createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
          // A receiver that authenticates: an unsigned or re-signed batch is refused.
          if (req.headers['x-dbgov-signature'] !== want || Math.abs(Date.now() / 1000 - Number(ts)) > 300) {
            badSignatures += 1;
            reply.statusCode = 401;
            reply.end();
            return;
          }
          for (const e of (JSON.parse(body) as { events: AuditEvent[] }).events) received.set(e.seq, e);
          reply.end('ok');
        });
      });
      srv.listen(port, '127.0.0.1', () => res(srv));
    });
  const stopReceiver = async () => {
    const srv = receiver!;
    receiver = undefined;
    await new Promise<void>((r) => {
      srv.close(() => r());
      srv.closeAllConnections();
    });
  };
  const deliveredAll = (events: AuditEvent[]) => events.every((e) => received.get(e.seq)?.hash === e.hash);

  before(async () => {
    db = await createTestDatabase('auditsink', SCHEMA);
    receiver = await listen(0);
    hookPort = (receiver.address() as { port: number }).port;
    tb = await startAuditBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }) },
      policy: POLICY,
      audit: {
        sinks: [
          { type: 'webhook', name: 'siem', url: `http://127.0.0.1:${hookPort}/dbgov`, secret: '${env:T_HOOK_SECRET}' },
          { type: 'nats', servers: 'nats://127.0.0.1:4222', stream, subjectPrefix: prefix },
        ],
      },
      env: { T_HOOK_SECRET: secret },
    });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write', reason: 'sink test' });
    client = await tunnelClient(conn);
  });
  after(async () => {
    await client?.end();
    await conn?.close();
    await tb?.close();
    if (receiver) await stopReceiver();
    await db?.drop();
    const nc = await natsConnect({ servers: 'nats://127.0.0.1:4222' });
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  test('webhook: statements never wait on a dead receiver; the backlog arrives, signed, once it is back', async () => {
    for (let i = 0; i < 10; i++) await client.query('SELECT count(*) FROM users');
    await waitFor('the first events at the receiver', async () => deliveredAll(await tb.events()));

    await stopReceiver();
    const down = Date.now();
    const latencies: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await client.query(`INSERT INTO orders (user_id, amount) VALUES (1, ${i})`);
      latencies.push(performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 500));
    const log = await tb.events();
    const inserts = log.filter((e) => e.kind === 'statement' && e.statement?.kind === 'insert');
    assert.equal(inserts.length, 100, 'every statement ran and was audited while the sink was down');
    assert.ok(inserts.every((e) => !received.has(e.seq)), 'nothing reached a receiver that was down');
    const worst = Math.max(...latencies);
    assert.ok(worst < 1000, `slowest statement while the sink was down: ${worst.toFixed(1)} ms`);
    assert.ok(Date.now() - down < 30_000);

    receiver = await listen(hookPort);
    await waitFor('the backlog at the receiver', async () => deliveredAll(await tb.events()), 60_000);
    assert.equal(badSignatures, 0);
    // The cursor is saved after the receiver acknowledged the batch: wait for that write too.
    const cursorSeq = (): number => (JSON.parse(readFileSync(join(tb.dir, 'sinks', 'siem.cursor.json'), 'utf8')) as { seq: number }).seq;
    await waitFor('the durable cursor to move past the backlog', async () => cursorSeq() >= inserts.at(-1)!.seq, 10_000);
    assert.ok(cursorSeq() >= inserts.at(-1)!.seq, 'the durable cursor moved past the backlog');
  });

  test('NATS JetStream: statement events arrive on <prefix>.statement, identical to the log', async () => {
    await client.query('SELECT id FROM users WHERE id = 2');
    const statements = (await tb.events()).filter((e) => e.kind === 'statement');
    const nc = await natsConnect({ servers: 'nats://127.0.0.1:4222' });
    try {
      const jsm = await jetstreamManager(nc);
      const want = (await tb.events()).length;
      await waitFor('the stream to hold the log', async () => {
        const info = await jsm.streams.info(stream).catch(() => undefined);
        return info !== undefined && info.state.messages >= want;
      });
      const info = await jsm.streams.info(stream);
      const got = new Map<string, { subject: string; event: AuditEvent }>();
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(stream, { seq });
        if (m) got.set((m.json() as AuditEvent).id, { subject: m.subject, event: m.json() as AuditEvent });
      }
      for (const e of statements) {
        const m = got.get(e.id);
        assert.ok(m, `statement ${e.seq} is in the stream`);
        assert.equal(m.subject, `${prefix}.statement`);
        assert.equal(m.event.hash, e.hash);
      }
    } finally {
      await nc.close();
    }
  });
});

describe('audit retention through the broker', () => {
  test('a broker with retention prunes old segments at start; a signed checkpoint marks the new start and the log verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbgov-retention-e2e-'));
    const db = await createTestDatabase('auditret', SCHEMA);
    try {
      // A year of history from an earlier broker on this folder, in small segments.
      const old = await openEmbeddedStore({ dir, brokerId: 'earlier', fsync: 'interval', segmentBytes: 4096, checkpointEvery: 20, log: silentLogger });
      const yearAgo = Date.now() - 365 * 86_400_000;
      for (let i = 0; i < 300; i++) {
        old.audit.appendSync({ kind: 'statement', identity: { id: 'ci-bot', kind: 'workload', groups: ['ci'] }, target: 'prod', database: 'app', sessionId: `ses_${i % 5}`, at: yearAgo + i * 60_000, statement: { fingerprint: 'f', text: 'SELECT ?', kind: 'select', tables: [], decision: 'allow', rule: null, rows: 1, durationMs: 1, maskedColumns: [] } });
      }
      await old.close();

      const tb = await startAuditBroker({ dir, targets: { prod: pgTarget(db.name) }, audit: { retention: '90d' } });
      try {
        const pruned = await waitFor('the retention run', async () => (await tb.events()).find((e) => e.kind === 'retention.pruned'));
        const events = await tb.events();
        assert.ok(events[0].seq > 1, 'old events are gone');
        assert.ok(events.filter((e) => e.kind === 'statement').length < 300);
        assert.equal(pruned.detail?.firstSeq, events[0].seq);
        const startCheckpoint = events.find((e) => e.kind === 'checkpoint' && (e.detail as { claim?: { start?: { seq: number } } }).claim?.start?.seq === events[0].seq);
        assert.ok(startCheckpoint, 'a signed checkpoint names the new first event');

        const online = await cli(tb.apiUrl, ['audit', 'verify', '--json']);
        assert.equal(online.code, 0, online.stdout + online.stderr);
        assert.equal((online.json!.result as { firstSeq: number }).firstSeq, events[0].seq);
      } finally {
        await tb.close({ keepDir: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await db.drop();
    }
  });
});

describe('audit config errors', () => {
  const cases: { name: string; audit: string; line: number; message: RegExp }[] = [
    { name: 'a retention that is not a duration', audit: 'audit:\n  retention: ninety days\n', line: 8, message: /audit\.retention/ },
    { name: 'a sink without its url', audit: 'audit:\n  sinks:\n    - type: webhook\n      secret: "${env:HOOK}"\n', line: 9, message: /url/ },
    { name: 'an inline webhook secret', audit: 'audit:\n  sinks:\n    - { type: webhook, url: "http://x", secret: plain }\n', line: 9, message: /secret written inline/ },
    { name: 'a signing key that is not Ed25519', audit: 'audit:\n  signingKey: "${file:rsa.pem}"\n', line: 8, message: /Ed25519/ },
  ];
  for (const c of cases) {
    test(`broker start refuses ${c.name}, naming the file and line`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'dbgov-auditcfg-'));
      try {
        writeFileSync(join(dir, 'rsa.pem'), generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
        const yaml = `broker:\n  api: 127.0.0.1:0\n  gateway: 127.0.0.1:0\n  store: ${join(dir, 'store')}\ntargets:\n  prod: { engine: postgres, host: 127.0.0.1, database: postgres, user: postgres }\n${c.audit}`;
        writeFileSync(join(dir, 'dbgov.yaml'), yaml);
        const r = await run(process.execPath, [CLI, 'broker', 'start', '--config', join(dir, 'dbgov.yaml'), '--json'], { env: { HOOK: 'x', DBGOV_LOG_LEVEL: 'silent' }, timeoutMs: 30_000 });
        assert.notEqual(r.code, 0, r.stdout + r.stderr);
        assert.ok(r.stdout.trim().startsWith('{'), `the JSON envelope on stdout (code ${r.code}): ${r.stdout}${r.stderr}`);
        const out = JSON.parse(r.stdout) as { message: string };
        assert.ok(out.message.includes(`dbgov.yaml:${c.line}:`), out.message);
        assert.match(out.message, c.message);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

