import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ApprovalView, TargetView } from '../../src/broker/api-types.js';
import Targets from '../../src/commands/targets.js';
import Requests from '../../src/commands/requests.js';
import Approve from '../../src/commands/approve.js';
import Deny from '../../src/commands/deny.js';
import Revoke from '../../src/commands/revoke.js';
import Login from '../../src/commands/login.js';
import Logout from '../../src/commands/logout.js';
import Whoami from '../../src/commands/whoami.js';
import AuditSearch from '../../src/commands/audit/search.js';
import AuditExport from '../../src/commands/audit/export.js';
import ServiceAccountCreate from '../../src/commands/admin/service-account/create.js';
import { apiError, runCommand, startFakeBroker, tempHome, type FakeBroker } from './helpers.js';

const target = (name: string, env: string, levels: [string, boolean, boolean][]): TargetView => ({
  name,
  engine: 'postgres',
  labels: { env },
  database: 'app',
  access: levels.map(([level, allowed, requiresApproval]) => ({ level: level as 'read', allowed, requiresApproval, rule: null })),
});

const pending: ApprovalView = {
  id: '7KQ2MX',
  type: 'statement',
  status: 'pending',
  requester: { id: 'agent-7', kind: 'agent', groups: ['agents'], onBehalfOf: { id: 'alice' } },
  target: 'prod',
  database: 'app',
  reason: 'INC-123',
  sql: 'UPDATE users SET email = $1 WHERE id = $2',
  tables: ['public.users'],
  statementKind: 'update',
  estimatedRows: 1,
  rule: 'prod-writes-need-review',
  approvers: { groups: ['dba'], quorum: 2 },
  votes: [],
  createdAt: new Date(Date.now() - 60_000).toISOString(),
  expiresAt: new Date(Date.now() + 240_000).toISOString(),
};

describe('commands against a fake broker (CLI rendering and request shapes)', () => {
  let broker: FakeBroker;
  let home: Awaited<ReturnType<typeof tempHome>>;
  let env: Record<string, string>;
  before(async () => {
    home = await tempHome();
    broker = await startFakeBroker({
      'GET /v1/targets': () => ({ body: { targets: [target('prod', 'prod', [['read', true, false], ['write', true, true], ['admin', false, false]]), target('staging', 'staging', [['read', false, false]])] } }),
      'GET /v1/requests': () => ({ body: { requests: [pending] } }),
      'POST /v1/requests/7KQ2MX/approve': (req) => ({
        body: { ...pending, votes: [{ identity: 'bob', decision: 'approve', comment: (req.body as { comment?: string }).comment, at: new Date().toISOString() }] },
      }),
      'POST /v1/requests/7KQ2MX/deny': (req) => ({ body: { ...pending, status: 'denied', votes: [{ identity: 'bob', decision: 'deny', comment: (req.body as { reason: string }).reason, at: new Date().toISOString() }] } }),
      'POST /v1/requests/GONE/approve': () => apiError(404, 'request_not_found', 'no request GONE', ['list open requests with `dbgov requests`']),
      'POST /v1/requests/DONE/approve': () => apiError(409, 'already_decided', 'request DONE was already denied'),
      'POST /v1/revoke': (req) => ({ body: { credentials: ['cred_1'], sessions: (req.body as { sessionId?: string }).sessionId ? ['ses_9'] : [] } }),
      'GET /v1/audit/events': (req) => ({
        body: {
          events: [
            {
              id: 'evt_1', time: '2026-03-10T11:59:00.123Z', seq: 1, broker: 'b1', kind: 'statement', identity: { id: 'alice', kind: 'human', groups: [] },
              target: 'prod', database: 'app', sessionId: 'ses_1', prevHash: 'x', hash: 'y',
              statement: { fingerprint: 'f', text: 'SELECT email FROM users WHERE id = $1', kind: 'select', tables: ['public.users'], decision: 'allow', rule: null, rows: 1, durationMs: 2, maskedColumns: ['email'] },
            },
          ],
          ...(req.url.searchParams.get('cursor') ? {} : { next: 'c2' }),
        },
      }),
      'GET /v1/audit/export': (req) => ({
        contentType: 'application/x-ndjson',
        raw: Readable.from((function* () {
          for (let i = 1; i <= 5000; i++) yield `${JSON.stringify({ id: `evt_${i}`, seq: i, format: req.url.searchParams.get('format') })}\n`;
        })()),
      }),
      'POST /v1/service-accounts': (req) => {
        const body = req.body as { name: string; groups: string[]; kind: 'workload' };
        return { status: 201, body: { account: { id: 'sa_1', name: body.name, groups: body.groups, kind: body.kind, createdAt: new Date().toISOString() }, token: 'dbgov_sa_secret' } };
      },
      'POST /v1/auth/exchange': (req) => {
        const body = req.body as { grant: string; idToken: string };
        if (body.idToken !== 'gha-jwt') return apiError(401, 'invalid_id_token', 'the ID token did not verify');
        return { body: { accessToken: 'bat_1', expiresAt: Date.now() + 3_600_000, identity: { id: 'repo:acme/app:ref:refs/heads/main', kind: 'workload', groups: ['ci'], source: 'workload' } } };
      },
      'GET /v1/whoami': (req) =>
        req.headers.authorization === 'Bearer bat_1'
          ? { body: { identity: { id: 'repo:acme/app:ref:refs/heads/main', kind: 'workload', groups: ['ci'], source: 'workload' }, expiresAt: Date.now() + 3_600_000 } }
          : apiError(401, 'invalid_token', 'bad token'),
    });
    env = { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'sa-token', DBGOV_HOME: home.dir };
  });
  after(async () => {
    await broker.close();
    await home.cleanup();
  });

  it('targets: a table of name, engine, env, database and what access needs approval', async () => {
    const r = await runCommand(Targets, [], env);
    assert.equal(r.error, undefined);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^NAME\s+ENGINE\s+ENV\s+DATABASE\s+ACCESS$/);
    assert.match(lines[1], /^prod\s+postgres\s+prod\s+app\s+read, write \(approval\)$/);
    assert.match(lines[2], /^staging\s+postgres\s+staging\s+app\s+none$/);
    const j = await runCommand(Targets, ['--json'], env);
    assert.equal(j.json.result.targets.length, 2);
  });

  it('requests: shows requester and kind, agent principal, reason, SQL, tables, estimated rows, votes and the commands', async () => {
    const r = await runCommand(Requests, [], env);
    for (const expected of ['7KQ2MX', 'agent-7 (agent) for alice', 'prod / app', 'INC-123', 'UPDATE users SET email = $1 WHERE id = $2', 'public.users', '~1 (estimated)', '0/2 approvals', 'dbgov approve 7KQ2MX']) {
      assert.ok(r.stdout.includes(expected), `missing ${expected} in\n${r.stdout}`);
    }
    assert.equal(broker.seen.at(-1)?.url.searchParams.get('status'), 'pending');
  });

  it('requests --watch with --json is refused as usage, not left polling', async () => {
    const r = await runCommand(Requests, ['--watch', '--json'], env);
    assert.equal(r.json.status, 2);
  });

  it('approve sends the comment and reports the quorum still needed', async () => {
    const r = await runCommand(Approve, ['7KQ2MX', '--comment', 'looks right'], env);
    assert.equal((broker.seen.at(-1)?.body as { comment: string }).comment, 'looks right');
    assert.match(r.stdout, /1\/2 approvals, waiting for 1 more/);
  });

  it('approve of an unknown request → exit 7; of a decided one → exit 9', async () => {
    const gone = await runCommand(Approve, ['GONE', '--json'], env);
    assert.equal(gone.json.status, 7);
    assert.deepEqual(gone.json.actions, ['list open requests with `dbgov requests`']);
    const done = await runCommand(Approve, ['DONE', '--json'], env);
    assert.equal(done.json.status, 9);
  });

  it('deny without --reason does not prompt when there is no TTY: usage error naming the flag', async () => {
    const seenBefore = broker.seen.length;
    const r = await runCommand(Deny, ['7KQ2MX', '--json'], env);
    assert.equal(r.json.status, 2);
    assert.ok(r.json.actions.some((a: string) => a.includes('--reason')));
    assert.equal(broker.seen.length, seenBefore);
  });

  it('deny --reason sends it', async () => {
    const r = await runCommand(Deny, ['7KQ2MX', '--reason', 'add a WHERE', '--json'], env);
    assert.equal(r.json.result.status, 'denied');
    assert.deepEqual(broker.seen.at(-1)?.body, { reason: 'add a WHERE' });
  });

  it('revoke needs a target, and sends exactly what was asked', async () => {
    const none = await runCommand(Revoke, ['--json'], env);
    assert.equal(none.json.status, 2);
    const r = await runCommand(Revoke, ['--session', 'ses_9', '--json'], env);
    assert.deepEqual(broker.seen.at(-1)?.body, { sessionId: 'ses_9' });
    assert.deepEqual(r.json.result, { credentials: ['cred_1'], sessions: ['ses_9'] });
  });

  it('audit search turns flags into the query string and returns {events, next}', async () => {
    const r = await runCommand(AuditSearch, ['--user', 'alice', '--kind', 'human', '--table', 'public.users', '--since', '1h', '--limit', '10', '--json'], env);
    const q = broker.seen.at(-1)!.url.searchParams;
    assert.equal(q.get('identity'), 'alice');
    assert.equal(q.get('identityKind'), 'human');
    assert.equal(q.get('table'), 'public.users');
    assert.equal(q.get('limit'), '10');
    const since = Date.parse(q.get('since') ?? '');
    assert.ok(Math.abs(Date.now() - 3_600_000 - since) < 60_000);
    assert.equal(r.json.result.next, 'c2');
    assert.equal(r.json.result.events[0].id, 'evt_1');
    const table = await runCommand(AuditSearch, ['--cursor', 'c1'], env);
    assert.match(table.stdout, /2026-03-10 11:59:00Z\s+alice\s+human\s+statement\s+prod\/app\s+allow\s+SELECT email FROM users/);
    assert.doesNotMatch(table.stdout, /more:/);
  });

  it('audit export streams the body to a file and reports lines and bytes', async () => {
    const out = join(home.dir, 'audit.ocsf.jsonl');
    const r = await runCommand(AuditExport, ['--since', '30d', '--format', 'ocsf', '--out', out, '--json'], env);
    assert.equal(r.json.status, 0);
    assert.equal(r.json.result.lines, 5000);
    assert.equal(r.json.result.bytes, (await stat(out)).size);
    const text = await readFile(out, 'utf8');
    assert.equal(JSON.parse(text.split('\n')[4999]).id, 'evt_5000');
    assert.equal(broker.seen.at(-1)?.url.searchParams.get('format'), 'ocsf');
    await assert.rejects(stat(`${out}.partial`));
  });

  it('audit export --json without --out is refused: stdout carries one envelope', async () => {
    const r = await runCommand(AuditExport, ['--json'], env);
    assert.equal(r.json.status, 2);
  });

  it('service-account create returns the token once and warns that it will not be shown again', async () => {
    const r = await runCommand(ServiceAccountCreate, ['ci-deploy', '--groups', 'ci, deploy', '--json'], env);
    assert.deepEqual(broker.seen.at(-1)?.body, { name: 'ci-deploy', groups: ['ci', 'deploy'], kind: 'workload' });
    assert.equal(r.json.result.token, 'dbgov_sa_secret');
    assert.equal(r.json.warnings.length, 1);
    assert.match(r.json.warnings[0], /shown only once/);
  });

  it('login --workload with DBGOV_ID_TOKEN exchanges with no prompt and later commands use the saved login', async () => {
    const ciEnv = { DBGOV_BROKER: broker.url, DBGOV_HOME: home.dir, DBGOV_ID_TOKEN: 'gha-jwt' };
    const r = await runCommand(Login, ['--json'], ciEnv);
    assert.equal(r.json.status, 0, JSON.stringify(r.json));
    assert.equal(r.json.result.method, 'workload');
    assert.deepEqual(broker.seen.at(-1)?.body, { grant: 'workload', idToken: 'gha-jwt' });
    // Without DBGOV_BROKER: the last login is the default broker.
    const who = await runCommand(Whoami, ['--json'], { DBGOV_HOME: home.dir });
    assert.equal(who.json.result.identity.kind, 'workload');
    assert.equal(broker.seen.at(-1)?.headers.authorization, 'Bearer bat_1');
    const out = await runCommand(Logout, ['--json'], { DBGOV_HOME: home.dir });
    assert.deepEqual(out.json.result, { broker: broker.url, removed: true });
    const after = await runCommand(Whoami, ['--json'], { DBGOV_HOME: home.dir });
    assert.equal(after.json.status, 2, 'no broker is known any more');
  });

  it('login with a bad workload token → exit 3', async () => {
    const r = await runCommand(Login, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_HOME: home.dir, DBGOV_ID_TOKEN: 'forged' });
    assert.equal(r.json.status, 3);
    assert.equal(r.json.message, 'the ID token did not verify');
  });
});
