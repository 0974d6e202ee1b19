/**
 * Pipelines end to end, through the real CLI: workload identity (an in-process OIDC issuer with
 * its own JWKS, GitHub-Actions-style claims mapped by rules) and service accounts created,
 * listed and revoked with `dbgov admin service-account`. Forged workload tokens each get a
 * clear refusal, a login.failed audit record, and no access.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, type JWTPayload } from 'jose';
import { hashServiceAccountToken } from '../../src/auth/service-accounts.js';
import { startTestIssuer, nowSec, type TestIssuer } from '../auth/test-issuer.js';
import { SA_TOKENS, createTestDatabase, pgTarget, type TestDatabase } from './harness.js';
import { cli, cliHome, envelope, startIdentityBroker, type IdentityBroker } from './identity-harness.js';

const AUD = 'https://dbgov.acme.example';

/** GitHub Actions-style claims for acme/api on main. */
function ghaClaims(iss: string, over: JWTPayload = {}): JWTPayload {
  const now = nowSec();
  return {
    iss,
    aud: AUD,
    sub: 'repo:acme/api:ref:refs/heads/main',
    repository: 'acme/api',
    ref: 'refs/heads/main',
    iat: now,
    nbf: now,
    exp: now + 300,
    ...over,
  };
}

function unsigned(claims: JWTPayload): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('workload identity and service accounts through the CLI', () => {
  let db: TestDatabase;
  let gha: TestIssuer;
  let other: TestIssuer;
  let untrusted: TestIssuer;
  let tb: IdentityBroker;
  const tmp = mkdtempSync(join(tmpdir(), 'dbgov-wl-'));
  const tokenFile = (name: string, token: string): string => {
    const f = join(tmp, name);
    writeFileSync(f, `${token}\n`);
    return f;
  };

  before(async () => {
    db = await createTestDatabase('wl', 'create table builds (id int, status text); insert into builds values (1, $$ok$$), (2, $$ok$$);');
    [gha, other, untrusted] = await Promise.all([startTestIssuer(), startTestIssuer({ alg: 'RS256' }), startTestIssuer()]);
    tb = await startIdentityBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }) },
      identity: {
        workload: [
          {
            issuer: gha.issuer,
            audience: AUD,
            rules: [
              { match: { sub: 'repo:acme/api:ref:refs/heads/*', repository: 'acme/api', ref: 'refs/heads/main' }, identity: 'gha:acme/api@main', groups: ['ci', 'deployers'] },
              { match: { sub: 'repo:acme/api:**' }, identity: 'gha:acme/api', groups: ['ci'] },
            ],
          },
          { issuer: other.issuer, audience: AUD, rules: [{ match: { sub: '*' }, identity: 'k8s-any', groups: ['k8s'] }] },
        ],
      },
    });
  });
  after(async () => {
    await tb?.close();
    await Promise.all([gha?.close(), other?.close(), untrusted?.close()]);
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('dbgov login --workload --id-token-file: kind workload in whoami and in the audit of a statement run with dbgov exec', async () => {
    const home = cliHome();
    const env = { DBGOV_HOME: home.home, DBGOV_BROKER: tb.apiUrl };
    try {
      const f = tokenFile('gha.jwt', await gha.sign(ghaClaims(gha.issuer)));
      const li = await cli(['login', '--workload', '--id-token-file', f, '--json'], env);
      assert.equal(li.code, 0, li.stdout + li.stderr);
      assert.equal(envelope<{ method: string }>(li).result?.method, 'workload');

      const who = envelope<{ identity: { id: string; kind: string; groups: string[]; source: string; issuer: string } }>(await cli(['whoami', '--json'], env));
      assert.equal(who.status, 0);
      assert.deepEqual(who.result?.identity, { id: 'gha:acme/api@main', kind: 'workload', groups: ['ci', 'deployers'], source: 'workload', issuer: gha.issuer });

      const ex = await cli(['exec', 'prod', '--sql', 'select count(*)::int as n from builds', '--json'], env);
      assert.equal(ex.code, 0, ex.stdout + ex.stderr);
      assert.equal(envelope<{ statements: { rows: { n: number }[] }[] }>(ex).result?.statements[0].rows[0].n, 2);
      const stmts = await tb.events((e) => e.statement !== undefined && e.target === 'prod' && (e.statement.tables ?? []).includes('public.builds'));
      assert.ok(stmts.length >= 1, 'the statement is audited');
      assert.deepEqual(stmts.map((e) => [e.identity?.id, e.identity?.kind]), stmts.map(() => ['gha:acme/api@main', 'workload']));
      const logins = await tb.events((e) => e.kind === 'login' && e.identity?.id === 'gha:acme/api@main');
      assert.equal((logins[0]?.detail as { grant?: string; issuer?: string }).grant, 'workload');
    } finally {
      home.remove();
    }
  });

  test('DBGOV_ID_TOKEN logs in with no flag and no prompt; rules glob on sub and match other claims exactly', async () => {
    const home = cliHome();
    const env = { DBGOV_HOME: home.home, DBGOV_BROKER: tb.apiUrl };
    try {
      // A feature branch matches only the second rule: another identity, fewer groups.
      const token = await gha.sign(ghaClaims(gha.issuer, { sub: 'repo:acme/api:ref:refs/heads/feature/x', ref: 'refs/heads/feature/x' }));
      const li = await cli(['login', '--json'], { ...env, DBGOV_ID_TOKEN: token });
      assert.equal(li.code, 0, li.stdout + li.stderr);
      const id = envelope<{ identity: { id: string; kind: string; groups: string[] } }>(li).result?.identity;
      assert.deepEqual([id?.id, id?.kind, id?.groups], ['gha:acme/api', 'workload', ['ci']]);
    } finally {
      home.remove();
    }
  });

  const attacker = generateKeyPair('ES256');
  const forged: { name: string; token: () => Promise<string>; code: string; message: RegExp }[] = [
    { name: 'signed with another key (same kid)', token: async () => gha.sign(ghaClaims(gha.issuer), { key: (await attacker).privateKey }), code: 'workload_token_invalid', message: /signature does not verify/ },
    { name: 'alg none', token: async () => unsigned(ghaClaims(gha.issuer)), code: 'workload_token_bad_alg', message: /signature algorithm/ },
    { name: 'expired (past the 60 s skew)', token: async () => gha.sign(ghaClaims(gha.issuer, { iat: nowSec() - 900, nbf: nowSec() - 900, exp: nowSec() - 120 })), code: 'workload_token_expired', message: /expired/ },
    { name: 'wrong audience', token: async () => gha.sign(ghaClaims(gha.issuer, { aud: 'https://someone-else.example' })), code: 'workload_token_wrong_audience', message: /not for audience/ },
    { name: 'claims another trusted issuer (wrong iss for its key)', token: async () => gha.sign(ghaClaims(other.issuer), { alg: 'ES256' }), code: 'workload_token_invalid', message: /does not verify against/ },
    { name: 'from an untrusted issuer', token: async () => untrusted.sign(ghaClaims(untrusted.issuer)), code: 'workload_issuer_untrusted', message: /not trusted by this broker/ },
    { name: 'valid, but no rule names it', token: async () => gha.sign(ghaClaims(gha.issuer, { sub: 'repo:evil/fork:ref:refs/heads/main', repository: 'evil/fork' })), code: 'workload_no_rule', message: /no rule/ },
    { name: 'a repository claim that differs from the rule', token: async () => gha.sign(ghaClaims(gha.issuer, { sub: 'repo:acme/api-evil:ref:refs/heads/main', repository: 'acme/api-evil' })), code: 'workload_no_rule', message: /no rule/ },
  ];
  for (const c of forged) {
    test(`forged workload token refused: ${c.name}`, async () => {
      const home = cliHome();
      const env = { DBGOV_HOME: home.home, DBGOV_BROKER: tb.apiUrl };
      try {
        const before = (await tb.events((e) => e.kind === 'login.failed')).length;
        const r = await cli(['login', '--workload', '--id-token-file', tokenFile(`forged-${c.code}.jwt`, await c.token()), '--json'], env);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        const e = envelope(r);
        assert.match(e.message ?? '', c.message);
        assert.ok((e.actions ?? []).length > 0, 'says what to do');
        const failed = (await tb.events((x) => x.kind === 'login.failed')).slice(before);
        assert.deepEqual(failed.map((x) => (x.detail as { code?: string }).code), [c.code]);
        // No access: nothing was saved, so the CLI has no identity to use.
        const who = await cli(['whoami', '--json'], env);
        assert.equal(who.code, 3, who.stdout);
      } finally {
        home.remove();
      }
    });
  }

  test('clock skew: a workload token up to 60 s from the future or past its expiry is accepted, beyond that refused', async () => {
    const client = tb.client();
    const at = (shift: number) => gha.sign(ghaClaims(gha.issuer, { iat: nowSec() + shift, nbf: nowSec() + shift, exp: nowSec() + shift + 300 }));
    assert.equal((await client.exchange({ grant: 'workload', idToken: await at(50) })).identity.kind, 'workload', 'issued 50 s in the future');
    const lateExp = await gha.sign(ghaClaims(gha.issuer, { iat: nowSec() - 600, nbf: nowSec() - 600, exp: nowSec() - 50 }));
    assert.equal((await client.exchange({ grant: 'workload', idToken: lateExp })).identity.kind, 'workload', 'expired 50 s ago');
    await assert.rejects(client.exchange({ grant: 'workload', idToken: await at(180) }), (e: { exitCode?: number }) => e.exitCode === 3);
  });

  test('service accounts: create prints the token once and the store keeps only its hash; list; revoke stops the token at once', async () => {
    const home = cliHome();
    const admin = { DBGOV_HOME: home.home, DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: SA_TOKENS.admin };
    try {
      const created = await cli(['admin', 'service-account', 'create', 'deployer', '--groups', 'ci,deploy', '--json'], admin);
      assert.equal(created.code, 0, created.stdout + created.stderr);
      const out = JSON.parse(created.stdout) as { result: { token: string; account: Record<string, unknown> }; warnings: string[] };
      const token = out.result.token;
      assert.match(token, /^dbgov_sa_[0-9A-Za-z]{43}$/);
      assert.equal(out.result.account.tokenHash, undefined);
      assert.ok(out.warnings.some((w) => /only once/.test(w)), 'warns that the token is shown once');

      // Only the hash is stored: the token appears in no file of the broker's store.
      await tb.broker.core.store.audit.sync();
      const files = filesUnder(tb.dir).map((f) => readFileSync(f));
      assert.ok(files.length > 0);
      assert.ok(!files.some((b) => b.includes(token)), 'the token is in no store file');
      assert.ok(files.some((b) => b.includes(hashServiceAccountToken(token))), 'its hash is (so the search above looked in the right place)');

      const user = { DBGOV_HOME: home.home, DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: token };
      const who = envelope<{ identity: { id: string; kind: string; groups: string[] }; source: string }>(await cli(['whoami', '--json'], user));
      assert.deepEqual([who.result?.identity.id, who.result?.identity.kind, who.result?.identity.groups, who.result?.source], ['deployer', 'workload', ['ci', 'deploy'], 'service-account']);
      const ex = await cli(['exec', 'prod', '--sql', 'select 1 as one', '--json'], user);
      assert.equal(ex.code, 0, ex.stdout + ex.stderr);

      const list = await cli(['admin', 'service-account', 'list', '--json'], admin);
      const accounts = envelope<{ accounts: { id: string; revokedAt?: number; tokenHash?: string }[] }>(list).result?.accounts ?? [];
      const mine = accounts.find((a) => a.id === 'deployer');
      assert.ok(mine && mine.revokedAt === undefined && mine.tokenHash === undefined, list.stdout);
      assert.ok(accounts.some((a) => a.id === 'ci-bot'), 'config accounts are listed too');
      assert.ok(!list.stdout.includes(token));

      // Only admins manage service accounts.
      const notAdmin = await cli(['admin', 'service-account', 'create', 'sneaky', '--json'], { ...admin, DBGOV_TOKEN: SA_TOKENS.ci });
      assert.equal(notAdmin.code, 4, notAdmin.stdout);

      const revoked = await cli(['admin', 'service-account', 'revoke', 'deployer', '--json'], admin);
      assert.equal(revoked.code, 0, revoked.stdout + revoked.stderr);
      for (const args of [['whoami', '--json'], ['exec', 'prod', '--sql', 'select 1', '--json']]) {
        const r = await cli(args, user);
        assert.equal(r.code, 3, `${args[0]}: ${r.stdout}`);
        assert.match(envelope(r).message ?? '', /revoked/);
      }
      const after = envelope<{ accounts: { id: string; revokedAt?: number }[] }>(await cli(['admin', 'service-account', 'list', '--json'], admin));
      assert.ok(after.result?.accounts.find((a) => a.id === 'deployer')?.revokedAt !== undefined);
      const kinds = (await tb.events((e) => e.kind.startsWith('service-account.'))).map((e) => e.kind);
      assert.deepEqual(kinds, ['service-account.created', 'service-account.revoked']);
      // Revoked already: not found, and told where to look.
      const again = envelope(await cli(['admin', 'service-account', 'revoke', 'deployer', '--json'], admin));
      assert.equal(again.status, 7);
      assert.deepEqual(again.actions, ['list them with `dbgov admin service-account list`']);
    } finally {
      home.remove();
    }
  });
});
