/**
 * Corporate SSO end to end: a separate oidc-provider instance plays the company IdP, configured
 * as the broker's `identity.oidc`. Groups from the IdP reach policy; a user disabled at the IdP
 * gets no new broker token or credential; credentials already held run out within their TTL;
 * `dbgov revoke` by session, identity and credential ends live sessions at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { startBuiltinIdp, BUILTIN_SCOPES, type BuiltinIdp } from '../../src/auth/builtin-idp.js';
import { deviceLogin, type IdpTokens } from '../../src/auth/device-login.js';
import { ApiClient } from '../../src/cli/api-client.js';
import { approveDeviceLogin } from '../../src/demo/form-browser.js';
import type { Connection } from '../../src/cli/connect.js';
import type { Clock } from '../../src/shared/clock.js';
import { SA_TOKENS, createTestDatabase, pgTarget, psqlArgs, run, testClientKey, tunnelClient, type TestDatabase } from './harness.js';
import { cli, cliDeviceLogin, cliHome, envelope, eventually, startIdentityBroker, type IdentityBroker } from './identity-harness.js';

const CORP_USERS = [
  { id: 'ron', email: 'ron@corp.example', name: 'Ron', password: 'ron-pw', groups: ['sre'] },
  { id: 'gina', email: 'gina@corp.example', name: 'Gina', password: 'gina-pw', groups: ['analysts'] },
  { id: 'vic', email: 'vic@corp.example', name: 'Vic', password: 'vic-pw', groups: ['sre'] },
  { id: 'rita', email: 'rita@corp.example', name: 'Rita', password: 'rita-pw', groups: ['sre'] },
  { id: 'out', email: 'out@elsewhere.example', name: 'Outsider', password: 'out-pw', groups: ['sre'] },
];

describe('corporate SSO (identity.oidc)', () => {
  let db: TestDatabase;
  let corp: BuiltinIdp;
  let tb: IdentityBroker;
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset };

  /** A person's device login at the corporate IdP, exchanged at the broker. */
  const login = async (email: string): Promise<{ token: string; idp: IdpTokens }> => {
    const user = CORP_USERS.find((u) => u.email === email);
    if (!user) throw new Error(`no corporate user ${email}`);
    const idp = await deviceLogin({
      issuer: corp.issuer,
      clientId: corp.clientId,
      scopes: [...BUILTIN_SCOPES],
      openBrowser: false,
      onPrompt: (p) => void approveDeviceLogin(p.verificationUriComplete ?? p.verificationUri, user.email, user.password),
    });
    const ex = await tb.client().exchange({ grant: 'oidc', idToken: idp.idToken, accessToken: idp.accessToken });
    return { token: ex.accessToken, idp };
  };

  before(async () => {
    db = await createTestDatabase('sso', 'create table t (id int); insert into t values (1), (2);');
    corp = await startBuiltinIdp({ users: CORP_USERS, clientId: 'corp-dbgov', devicePollIntervalSec: 0.1 });
    tb = await startIdentityBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }) },
      identity: { oidc: { issuer: corp.issuer, clientId: corp.clientId, scopes: [...BUILTIN_SCOPES], groupsClaim: 'groups', allowedDomains: ['corp.example'] } },
      policy: {
        accessHelp: 'ask for the sre group in #db-access',
        access: [{ name: 'sre-prod', match: { identity: { groups: ['sre'] }, target: { labels: { env: 'prod' } } }, action: 'allow', maxTtl: '10m' }],
      },
      clock,
    });
  });
  after(async () => {
    await tb?.close();
    await corp?.close();
    await db?.drop();
  });

  test('the broker advertises the corporate IdP, and groups from its ID token reach policy', async () => {
    const info = await tb.client().info();
    assert.equal(info.oidc?.issuer, corp.issuer);
    assert.equal(info.oidc?.clientId, 'corp-dbgov');

    const ron = await login('ron@corp.example');
    const who = await tb.client(ron.token).whoami();
    assert.deepEqual([who.identity.id, who.identity.kind, who.identity.source, who.identity.issuer], ['ron@corp.example', 'human', 'oidc', corp.issuer]);
    assert.deepEqual(who.identity.groups, ['sre']);
    const conn = await tb.connect(ron.token, { target: 'prod' });
    try {
      const c = await tunnelClient(conn);
      assert.equal((await c.query('select count(*)::int as n from t')).rows[0].n, 2);
      await c.end();
    } finally {
      await conn.close();
    }

    // Not in the group at the IdP: refused, with the rule-less reason and how to ask.
    const gina = await login('gina@corp.example');
    await assert.rejects(tb.connect(gina.token, { target: 'prod' }), (e: { exitCode?: number; message?: string; actions?: string[] }) => {
      assert.equal(e.exitCode, 4);
      assert.match(e.message ?? '', /no access rule gives gina@corp\.example read access to prod/);
      assert.ok(e.actions?.some((a) => /#db-access/.test(a)), 'says how to ask');
      return true;
    });
    // The IdP adds her to the group; her next login carries it and policy lets her in.
    corp.setUserGroups('gina', ['analysts', 'sre']);
    const gina2 = await login('gina@corp.example');
    const conn2 = await tb.connect(gina2.token, { target: 'prod' });
    assert.deepEqual(conn2.credential.identity.groups, ['analysts', 'sre']);
    await conn2.close();
    corp.setUserGroups('gina', ['analysts']);
  });

  test('an account outside the allowed email domains is refused at login and the refusal is audited', async () => {
    await assert.rejects(login('out@elsewhere.example'), (e: { exitCode?: number; message?: string }) => e.exitCode === 3 && /not in an allowed email domain/.test(e.message ?? ''));
    const failed = await tb.events((e) => e.kind === 'login.failed' && (e.detail as { code?: string }).code === 'email_domain_not_allowed');
    assert.equal(failed.length, 1);
  });

  test('disabled at the IdP: no new broker token or credential (CLI exit 3, names dbgov login); held credentials run out within their TTL', async () => {
    const home = cliHome();
    const env = { DBGOV_HOME: home.home, DBGOV_BROKER: tb.apiUrl };
    try {
      // A real `dbgov login` through the corporate IdP, saved in the CLI's home.
      const li = await cliDeviceLogin(env, 'vic@corp.example', 'vic-pw');
      assert.equal(li.code, 0, li.stdout + li.stderr);
      const out = envelope<{ identity: { id: string; groups: string[] } }>(li);
      assert.equal(out.result?.identity.id, 'vic@corp.example');
      assert.deepEqual(out.result?.identity.groups, ['sre']);
      const saved = JSON.parse(readFileSync(join(home.home, 'credentials.json'), 'utf8')) as Record<string, string>;
      const savedLogin = JSON.parse(Object.entries(saved).find(([k]) => k.startsWith('http'))?.[1] ?? '{}') as { brokerAccessToken: string; idp?: { tokens: IdpTokens } };
      assert.ok(savedLogin.idp?.tokens.refreshToken, 'the CLI kept a refresh token');
      const ok = await cli(['whoami', '--json'], env);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);

      // Credentials Vic holds before the IdP disables him: a 60 s one and a 2 s one in use.
      const held = await tb.connect(savedLogin.brokerAccessToken, { target: 'prod', ttlSeconds: 60 });
      const shortLived = await tb.connect(savedLogin.brokerAccessToken, { target: 'prod', ttlSeconds: 2 });
      const shortClient = await tunnelClient(shortLived);
      const shortEnded = new Promise<{ code?: string; message?: string }>((resolve) => shortClient.on('error', resolve));
      try {
        corp.disableUser('vic');
        await new Promise((r) => setTimeout(r, 5_200)); // the broker re-asks the IdP at most every 5 s

        // The unexpired broker token no longer gets credentials: the broker asked the IdP again.
        await assert.rejects(tb.client(savedLogin.brokerAccessToken).requestCredential({ target: 'prod', publicKey: (await testClientKey()).publicJwk as Record<string, unknown> }), (e: { exitCode?: number; message?: string }) => e.exitCode === 3 && /no longer accepts your sign-in/.test(e.message ?? ''));
        // The ID token and IdP access token he holds cannot be exchanged again either.
        await assert.rejects(new ApiClient({ broker: tb.apiUrl }).exchange({ grant: 'oidc', idToken: savedLogin.idp?.tokens.idToken ?? '', accessToken: savedLogin.idp?.tokens.accessToken ?? '' }), (e: { exitCode?: number }) => e.exitCode === 3);
        // The CLI tries to renew at the IdP, which refuses: exit 3, and it names `dbgov login`.
        for (const args of [['connect', 'prod', '--json'], ['whoami', '--json']]) {
          const r = await cli(args, env);
          assert.equal(r.code, 3, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
          const e = envelope(r);
          assert.equal(e.status, 3);
          assert.ok(e.actions?.some((a) => a.includes('dbgov login')), JSON.stringify(e));
        }
        const failed = await tb.events((e) => e.kind === 'login.failed' && (e.detail as { code?: string }).code === 'idp_user_inactive');
        assert.ok(failed.length >= 1, 'the refused re-exchange is audited');

        // The short credential's live session ends on its own at expiry.
        const err = await shortEnded;
        assert.equal(err.code, '57P01');
        assert.match(err.message ?? '', /session ended: .*credential expired/);
        // The 60 s credential still works for new connections until it runs out (that is the bound)…
        const again = await tunnelClient(held);
        assert.equal((await again.query('select 1 as one')).rows[0].one, 1);
        await again.end();
        // …and past its TTL (plus the 60 s skew allowance) it opens nothing.
        offset = 125_000;
        const r = await run('psql', psqlArgs(held, '-c', 'select 1'));
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /expired/);
      } finally {
        offset = 0;
        corp.enableUser('vic');
        await held.close();
        await shortLived.close();
      }
    } finally {
      home.remove();
    }
  });

  describe('dbgov revoke ends live sessions at once and blocks new connections', () => {
    const home = cliHome();
    after(() => home.remove());
    const cases: { by: 'session' | 'identity' | 'credential'; as: 'self' | 'admin' }[] = [
      { by: 'session', as: 'self' },
      { by: 'identity', as: 'admin' },
      { by: 'credential', as: 'self' },
    ];
    for (const c of cases) {
      test(`by ${c.by} (${c.as === 'self' ? 'the holder' : 'an admin'})`, async () => {
        const rita = await login('rita@corp.example');
        const conn: Connection = await tb.connect(rita.token, { target: 'prod' });
        let client: pg.Client | undefined;
        try {
          client = await tunnelClient(conn);
          const running = client.query('select pg_sleep(30)').then(
            () => ({ code: 'none', message: 'the query finished' }),
            (e: { code?: string; message?: string }) => e,
          );
          const sessionId = await eventually(async () => (await tb.client(rita.token).sessions()).sessions.find((s) => s.credentialId === conn.credential.id)?.id, 5000, 'the live session');
          const arg = c.by === 'session' ? ['--session', sessionId] : c.by === 'identity' ? ['--identity', 'rita@corp.example'] : ['--credential', conn.credential.id];
          const r = await cli(['revoke', ...arg, '--json'], { DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: c.as === 'self' ? rita.token : SA_TOKENS.admin, DBGOV_HOME: home.home });
          // Timed from the revoke's answer, not from the CLI's start (a Node process that takes
          // seconds to start on a loaded machine): the session must already be ending by then.
          const revoked = Date.now();
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const out = envelope<{ credentials: string[]; sessions: string[] }>(r);
          assert.ok(out.result?.credentials.includes(conn.credential.id), 'the credential is revoked');
          assert.ok(out.result?.sessions.includes(sessionId), 'the session is ended');
          const err = await running;
          assert.ok(Date.now() - revoked < 5000, 'the running query ends within 5 s of the revoke (pg_sleep(30) would run on)');
          assert.equal(err.code, '57P01');
          assert.match(err.message ?? '', /^dbgov: session ended/);
          assert.match(err.message ?? '', /revoked/);
          // A new connection with the same credential, through the same tunnel, is refused.
          const again = await run('psql', psqlArgs(conn, '-c', 'select 1'));
          assert.notEqual(again.code, 0);
          assert.match(again.stderr, /revoked/);
          const audit = await tb.events((e) => e.kind === 'credential.revoked' && ((e.detail as { credentials?: string[] }).credentials ?? []).includes(conn.credential.id));
          assert.equal(audit.length, 1);
          const end = await tb.events((e) => e.kind === 'session.end' && e.sessionId === sessionId);
          assert.match(String((end[0]?.detail as { reason?: string } | undefined)?.reason), /revoked/);
        } finally {
          await client?.end().catch(() => undefined);
          await conn.close();
        }
      });
    }

    test('someone else cannot revoke your identity', async () => {
      const gina = await login('gina@corp.example');
      const r = await cli(['revoke', '--identity', 'rita@corp.example', '--json'], { DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: gina.token, DBGOV_HOME: home.home });
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.match(envelope(r).message ?? '', /only admins and approvers/);
    });
  });
});
