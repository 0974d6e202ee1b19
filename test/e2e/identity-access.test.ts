/**
 * Contextual access, just-in-time elevation and agents, end to end with real identities from the
 * built-in IdP, service accounts, the real CLI and PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SA_TOKENS, adminQuery, createTestDatabase, pgTarget, startTestBroker, tunnelClient, testClientKey, type TestBroker, type TestDatabase } from './harness.js';
import { cli, cliHome, envelope, eventually } from './identity-harness.js';

const PEOPLE = [
  { id: 'alice', email: 'alice@example.com', name: 'Alice', password: 'alice-pw', groups: ['developers'] },
  { id: 'bob', email: 'bob@example.com', name: 'Bob', password: 'bob-pw', groups: ['approvers'] },
  { id: 'carol', email: 'carol@example.com', name: 'Carol', password: 'carol-pw', groups: ['approvers'] },
  { id: 'sam', email: 'sam@example.com', name: 'Sam', password: 'sam-pw', groups: ['staging-devs'] },
  { id: 'erin', email: 'erin@example.com', name: 'Erin', password: 'erin-pw', groups: ['developers', 'approvers'] },
];

const hhmm = (d: Date): string => `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
/** A UTC window around now (now−1h … now+1h) and one that excludes now (now+2h … now+3h). */
function windows(): { inside: Record<string, unknown>; outside: Record<string, unknown> } {
  const at = (h: number) => new Date(Date.now() + h * 3600_000);
  return {
    inside: { hours: `${hhmm(at(-1))}-${hhmm(at(1))}`, timezone: 'UTC' },
    outside: { hours: `${hhmm(at(2))}-${hhmm(at(3))}`, timezone: 'UTC' },
  };
}

/** A CLI command running in the background, with its stderr readable while it runs. */
function background(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['bin/run.js', ...args], { env: { ...process.env, DBGOV_ID_TOKEN: '', DBGOV_LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, ...out });
    }),
  );
  return { out, done, kill: () => child.kill('SIGKILL') };
}

describe('contextual access and just-in-time elevation', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  const tokens: Record<string, string> = {};
  const home = cliHome();
  const w = windows();

  before(async () => {
    db = await createTestDatabase('acc', 'create table t (id int primary key, v int); insert into t values (1, 1), (2, 2);');
    tb = await startTestBroker({
      targets: {
        prod: pgTarget(db.name, { env: 'prod', databases: ['postgres'] }),
        staging: pgTarget(db.name, { env: 'staging' }),
      },
      builtinIdp: true,
      humans: PEOPLE,
      policy: {
        accessHelp: 'ask in #db-access',
        access: [
          { name: 'staging-devs', match: { identity: { groups: ['staging-devs'] }, target: { labels: { env: 'staging' } } }, action: 'allow' },
          { name: 'dev-read-prod', match: { identity: { groups: ['developers', 'approvers'] }, target: { labels: { env: 'prod' } }, databases: ['dbgov_acc_*'], access: ['read'] }, action: 'allow', maxTtl: '15m' },
          {
            name: 'prod-write-jit',
            match: { identity: { groups: ['developers'], kinds: ['human', 'workload'] }, target: { labels: { env: 'prod' } }, access: ['write'] },
            action: 'review',
            reason: { pattern: '^INC-\\d+$' },
            approvers: { groups: ['approvers'], quorum: 2 },
            maxTtl: '5m',
            expires: '10m',
          },
          { name: 'prod-admin-jit', match: { identity: { groups: ['developers'] }, target: { labels: { env: 'prod' } }, access: ['admin'] }, action: 'review', approvers: { groups: ['approvers'] }, expires: '1s' },
          { name: 'ci-in-window', match: { identity: { ids: ['ci-bot'] }, target: { labels: { env: 'staging' } }, when: [w.inside] }, action: 'allow' },
          { name: 'auditors-out-of-window', match: { identity: { ids: ['auditor-bot'] }, target: { labels: { env: 'staging' } }, when: [w.outside] }, action: 'allow' },
          { name: 'admins-from-vpn', match: { identity: { ids: ['admin-bot'] }, target: { labels: { env: 'staging' } }, sourceCidrs: ['10.0.0.0/8'] }, action: 'allow' },
          { name: 'approver-bot-from-loopback', match: { identity: { ids: ['approver-bot'] }, target: { labels: { env: 'staging' } }, sourceCidrs: ['127.0.0.0/8', '::1/128'] }, action: 'allow' },
        ],
      },
    });
    for (const p of PEOPLE) tokens[p.id] = await tb.loginHuman(p.email);
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
    home.remove();
  });

  const env = (token: string): NodeJS.ProcessEnv => ({ DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: token, DBGOV_HOME: home.home });

  test('a staging-only identity asking for prod is refused, naming the rule and how to ask', async () => {
    const r = await cli(['connect', 'prod', '--json'], env(tokens.sam));
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const e = envelope(r);
    assert.match(e.message ?? '', /no access rule gives sam@example\.com read access to prod/);
    assert.match(e.message ?? '', /rule staging-devs applies to you, but env=prod not in \[staging\]/);
    assert.ok(e.actions?.includes('ask in #db-access'), JSON.stringify(e.actions));
    const denied = await tb.events((x) => x.kind === 'credential.denied' && x.identity?.id === 'sam@example.com');
    assert.equal(denied.length, 1);
    // Where the rule does give access, it works.
    const ok = await tb.connect(tokens.sam, { target: 'staging', access: 'write' });
    await ok.close();
  });

  test('rules on target database, time window and source address', async () => {
    const key = await testClientKey();
    const ask = (token: string, target: string, extra: Record<string, unknown> = {}) => tb.client(token).requestCredential({ target, publicKey: key.publicJwk as Record<string, unknown>, ...extra });
    // Database: the read rule covers the app database, not `postgres` on the same target.
    assert.equal((await ask(tokens.alice, 'prod')).status, 'issued');
    await assert.rejects(ask(tokens.alice, 'prod', { database: 'postgres' }), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /rule dev-read-prod applies to you, but database postgres/.test(e.message ?? ''));
    // Time window (UTC, around now) and one that is not now.
    assert.equal((await ask(SA_TOKENS.ci, 'staging')).status, 'issued');
    await assert.rejects(ask(SA_TOKENS.auditor, 'staging'), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /rule auditors-out-of-window applies to you, but .*outside/.test(e.message ?? ''));
    // Source address: the API sees the request from loopback.
    assert.equal((await ask(SA_TOKENS.approver, 'staging')).status, 'issued');
    await assert.rejects(ask(SA_TOKENS.admin, 'staging'), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /rule admins-from-vpn applies to you, but .*not in \[10\.0\.0\.0\/8\]/.test(e.message ?? ''));
  });

  test('maximum TTL: a 2 h ask is capped at the rule\'s 15 m', async () => {
    const conn = await tb.connect(tokens.alice, { target: 'prod', ttlSeconds: 7200 });
    try {
      const ttl = conn.credential.expiresAt - Date.now();
      assert.ok(ttl <= 15 * 60_000 && ttl > 14 * 60_000, `ttl ${ttl}`);
    } finally {
      await conn.close();
    }
  });

  test('a reason that does not match the required pattern is refused and audited', async () => {
    const r = await cli(['connect', 'prod', '--access', 'write', '--reason', 'because I need to', '--json'], env(tokens.alice));
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const e = envelope(r);
    assert.match(e.message ?? '', /rule prod-write-jit grants write access to prod only with a reason: the reason "because I need to" does not match/);
    assert.ok(e.actions?.some((a) => a.includes('--reason')));
    const none = await cli(['connect', 'prod', '--access', 'write', '--json'], env(tokens.alice));
    assert.match(envelope(none).message ?? '', /a reason is required/);
    const denied = await tb.events((x) => x.kind === 'credential.denied' && x.identity?.id === 'alice@example.com' && x.access === 'write');
    assert.equal(denied.length, 2);
  });

  test('JIT elevation: the CLI waits, self-approval is refused, quorum 2 is honoured, then psql runs; the credential lives no longer than approved', async () => {
    const sql = 'update t set v = 20 where id = 2';
    const c = background(['connect', 'prod', '--access', 'write', '--reason', 'INC-123', '--exec', '--', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql], env(tokens.alice));
    try {
      // No TTY: the request id is printed on stderr, with the command an approver runs.
      const id = await eventually(async () => /dbgov approve (\w+)/.exec(c.out.stderr)?.[1], 15_000, 'the request id on stderr');
      const listed = envelope<{ requests: { id: string; type: string; reason?: string; access?: { level: string; ttlMs: number } }[] }>(await cli(['requests', '--json'], env(tokens.bob)));
      const req = listed.result?.requests.find((r) => r.id === id);
      assert.equal(req?.type, 'access');
      assert.equal(req?.reason, 'INC-123');
      assert.equal(req?.access?.level, 'write');
      assert.ok((req?.access?.ttlMs ?? Infinity) <= 5 * 60_000, 'the request carries the capped TTL');

      const self = await cli(['approve', id, '--json'], env(tokens.alice));
      assert.equal(self.code, 4);
      assert.match(envelope(self).message ?? '', /your own request/);
      const first = await cli(['approve', id, '--json'], env(tokens.bob));
      assert.equal(first.code, 0, first.stdout + first.stderr);
      assert.equal(envelope<{ status: string }>(first).result?.status, 'pending', 'one approval of two');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await adminQuery<{ v: number }>('select v from t where id = 2', [], db.name)).rows[0].v, 2, 'nothing ran yet');
      const second = await cli(['approve', id, '--json'], env(tokens.carol));
      assert.equal(envelope<{ status: string }>(second).result?.status, 'approved');

      const r = await c.done;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /UPDATE 1/);
      assert.equal((await adminQuery<{ v: number }>('select v from t where id = 2', [], db.name)).rows[0].v, 20);

      const issued = await tb.events((e) => e.kind === 'credential.issued' && (e.detail as { requestId?: string }).requestId === id);
      assert.equal(issued.length, 1);
      const d = issued[0].detail as { ttlMs: number; expiresAt: string; rule: string };
      assert.ok(d.ttlMs <= 5 * 60_000, `elevation ttl ${d.ttlMs}`);
      assert.ok(Date.parse(d.expiresAt) <= Date.now() + 5 * 60_000, 'it expires on its own within the approved TTL');
      assert.equal(issued[0].identity?.id, 'alice@example.com');

      // The approval was spent: asking again with the same request id gets nothing.
      const key = await testClientKey();
      await assert.rejects(
        tb.client(tokens.alice).requestCredential({ target: 'prod', access: 'write', reason: 'INC-123', publicKey: key.publicJwk as Record<string, unknown>, requestId: id } as never),
        (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /already used/.test(e.message ?? ''),
      );
      // Nor can someone else's approved request be spent.
      await assert.rejects(
        tb.client(tokens.erin).requestCredential({ target: 'prod', access: 'write', reason: 'INC-123', publicKey: key.publicJwk as Record<string, unknown>, requestId: id } as never),
        (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /not an access request for this identity/.test(e.message ?? ''),
      );
    } finally {
      c.kill();
    }
  });

  test('an expired access request cannot be approved, and the waiting requester is told', async () => {
    const key = await testClientKey();
    const pending = await tb.client(tokens.alice).requestCredential({ target: 'prod', access: 'admin', publicKey: key.publicJwk as Record<string, unknown> });
    assert.equal(pending.status, 'pending');
    const id = (pending as { requestId: string }).requestId;
    await new Promise((r) => setTimeout(r, 1300));
    const late = await cli(['approve', id, '--json'], env(tokens.bob));
    assert.notEqual(late.code, 0);
    assert.match(envelope(late).message ?? '', /expired/);
    const st = await tb.client(tokens.alice).accessRequest(id);
    assert.equal(st.status, 'expired');
    const decided = await tb.events((e) => e.kind === 'approval.decided' && (e.detail as { requestId?: string }).requestId === id);
    assert.equal((decided[0]?.detail as { status?: string }).status, 'expired');
  });
});

describe('agents acting for a person (default policy)', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let alice = '';
  let bob = '';
  const home = cliHome();

  before(async () => {
    db = await createTestDatabase('agt', 'create table t (id int primary key, v int); insert into t values (1, 1);');
    tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'prod' }) }, builtinIdp: true, humans: PEOPLE, policy: { approvers: { groups: ['approvers'] } } });
    alice = await tb.loginHuman('alice@example.com');
    bob = await tb.loginHuman('bob@example.com');
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
    home.remove();
  });

  const env = (token: string): NodeJS.ProcessEnv => ({ DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: token, DBGOV_HOME: home.home });

  test('dbgov connect prod --agent NAME: kind agent, on behalf of the person, in the credential and the audit', async () => {
    const r = await cli(['connect', 'prod', '--agent', 'helper', '--json', '--exec', '--', 'psql', '-X', '-At', '-c', 'select count(*) from t'], env(alice));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // With --json stdout is the envelope alone; the command's own output is on stderr.
    assert.equal(envelope(r).status, 0);
    assert.match(r.stderr, /^1$/m);
    const issued = await tb.events((e) => e.kind === 'credential.issued' && e.identity?.kind === 'agent');
    assert.equal(issued.length, 1);
    assert.equal(issued[0].identity?.id, 'agent:helper@alice@example.com');
    assert.equal(issued[0].identity?.onBehalfOf?.id, 'alice@example.com');
    const credential = await tb.broker.core.store.getCredential((issued[0].detail as { credentialId: string }).credentialId);
    assert.equal(credential?.identity.kind, 'agent');
    assert.equal(credential?.identity.onBehalfOf?.id, 'alice@example.com');
    const session = await tb.events((e) => (e.kind === 'session.start' || e.kind === 'statement') && e.identity?.kind === 'agent');
    assert.ok(session.some((e) => e.kind === 'session.start'));
    assert.ok(session.some((e) => e.kind === 'statement'), 'the statement record names the agent');
    for (const e of session) assert.equal(e.identity?.onBehalfOf?.id, 'alice@example.com');
  });

  test('agents are read-only on protected targets: no write credential, and no write through a read one', async () => {
    const w = await cli(['connect', 'prod', '--agent', 'helper', '--access', 'write', '--reason', 'INC-1', '--json'], env(alice));
    assert.equal(w.code, 4, w.stdout + w.stderr);
    assert.match(envelope(w).message ?? '', /agents may only read a protected target/);
    const bot = await cli(['connect', 'prod', '--access', 'write', '--json'], env(SA_TOKENS.agent));
    assert.equal(bot.code, 4, 'an agent service account neither');

    const conn = await tb.connect(alice, { target: 'prod', agent: 'helper' });
    const c = await tunnelClient(conn);
    try {
      await assert.rejects(c.query('update t set v = 9 where id = 1'), (e: { code?: string; message?: string }) => e.code === '42501' && /^dbgov: blocked/.test(e.message ?? ''));
      assert.equal((await adminQuery<{ v: number }>('select v from t where id = 1', [], db.name)).rows[0].v, 1);
    } finally {
      await c.end();
      await conn.close();
    }
  });

  test('agents never approve, not even a request that is not their person\'s', async () => {
    const key = await testClientKey();
    const p = await tb.client(bob).requestCredential({ target: 'prod', access: 'write', reason: 'INC-9', publicKey: key.publicJwk as Record<string, unknown> });
    assert.equal(p.status, 'pending');
    const id = (p as { requestId: string }).requestId;
    const r = await cli(['approve', id, '--json'], env(SA_TOKENS.agent));
    assert.equal(r.code, 4, r.stdout);
    assert.match(envelope(r).message ?? '', /agents never approve/);
    const refused = await tb.events((e) => e.kind === 'approval.vote' && (e.detail as { requestId?: string; refused?: string }).requestId === id);
    assert.match(String((refused[0]?.detail as { refused?: string }).refused), /agents never approve/);
    assert.equal((await tb.client(bob).accessRequest(id)).status, 'pending');
  });
});
