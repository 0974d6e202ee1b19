import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator, type Authenticator } from '../../src/auth/authenticator.js';
import { generateBrokerKey } from '../../src/auth/broker-tokens.js';
import { createOidcVerifier } from '../../src/auth/oidc-verify.js';
import { serviceAccountsFromConfig } from '../../src/auth/service-accounts.js';
import { createWorkloadVerifier } from '../../src/auth/workload.js';
import { AuthError } from '../../src/shared/errors.js';
import { nowSec, startTestIssuer, type TestIssuer } from './test-issuer.js';

let idp: TestIssuer;
let ci: TestIssuer;
let auth: Authenticator;
before(async () => {
  idp = await startTestIssuer();
  ci = await startTestIssuer();
  auth = createAuthenticator({
    brokerKey: await generateBrokerKey(),
    oidc: createOidcVerifier({ issuer: idp.issuer, clientId: 'dbgov-cli' }),
    workload: createWorkloadVerifier([{ issuer: ci.issuer, audience: 'dbgov', rules: [{ match: { sub: 'repo:acme/*:ref:refs/heads/main' }, identity: 'ci-main', groups: ['ci'] }] }]),
    serviceAccounts: serviceAccountsFromConfig([{ id: 'ci-bot', token: 'plain-config-token', groups: ['ci'] }], 0),
  });
});
after(async () => {
  await idp.close();
  await ci.close();
});

describe('authenticator: exchange, then bearer', () => {
  const grants: { name: string; req: () => Promise<Parameters<Authenticator['exchange']>[0]>; id: string; kind: string }[] = [
    {
      name: 'oidc',
      req: async () => ({ grant: 'oidc', idToken: await idp.sign({ iss: idp.issuer, aud: 'dbgov-cli', sub: 'u1', email: 'ann@acme.com', groups: ['dev'], iat: nowSec(), exp: nowSec() + 300 }) }),
      id: 'ann@acme.com',
      kind: 'human',
    },
    {
      name: 'workload',
      req: async () => ({ grant: 'workload', idToken: await ci.sign({ iss: ci.issuer, aud: 'dbgov', sub: 'repo:acme/app:ref:refs/heads/main', iat: nowSec(), exp: nowSec() + 300 }) }),
      id: 'ci-main',
      kind: 'workload',
    },
  ];
  for (const g of grants) {
    test(g.name, async () => {
      const res = await auth.exchange(await g.req());
      assert.equal(res.identity.id, g.id);
      const caller = await auth.authenticate(`Bearer ${res.accessToken}`);
      assert.deepEqual({ id: caller.identity.id, kind: caller.identity.kind }, { id: g.id, kind: g.kind });
      assert.equal(caller.expiresAt, res.expiresAt);
    });
  }

  const bearers: [string, string | undefined, string | { id: string }][] = [
    ['service-account token from config', 'Bearer plain-config-token', { id: 'ci-bot' }],
    ['no header', undefined, 'not_logged_in'],
    ['basic auth', 'Basic dXNlcjpwYXNz', 'not_logged_in'],
    ['unknown service-account token', 'Bearer dbgov_sa_nope', 'service_account_unknown'],
    ['a raw ID token is not a broker token', 'Bearer a.b.c', 'token_invalid'],
  ];
  for (const [name, header, want] of bearers) {
    test(name, async () => {
      const run = auth.authenticate(header);
      if (typeof want === 'string') await assert.rejects(run, (e: unknown) => e instanceof AuthError && e.code === want);
      else assert.equal((await run).identity.id, want.id);
    });
  }
});

test('a broker token issued at or before its identity was revoked is refused; one issued after works', async () => {
  let revokedAt: number | undefined;
  const ci = serviceAccountsFromConfig([{ id: 'ci-bot', token: 'plain-config-token', groups: ['ci'] }], 0);
  const a = createAuthenticator({
    brokerKey: await generateBrokerKey(),
    workload: createWorkloadVerifier([{ issuer: idp.issuer, audience: 'dbgov', rules: [{ match: { sub: 'w' }, identity: 'w-id' }] }]),
    serviceAccounts: ci,
    store: { findServiceAccountByTokenHash: async () => undefined, tokensRevokedAt: async (id) => (id === 'w-id' ? revokedAt : undefined) },
  });
  const login = async () => (await a.exchange({ grant: 'workload', idToken: await idp.sign({ iss: idp.issuer, aud: 'dbgov', sub: 'w', iat: nowSec(), exp: nowSec() + 300 }) })).accessToken;
  const before = await login();
  assert.equal((await a.authenticate(`Bearer ${before}`)).identity.id, 'w-id');
  revokedAt = Date.now();
  await assert.rejects(a.authenticate(`Bearer ${before}`), (e: AuthError) => e.code === 'token_revoked');
  await new Promise((r) => setTimeout(r, 5));
  // Same second, later millisecond: a new login is not caught by the old revocation.
  const afterwards = await login();
  assert.equal((await a.authenticate(`Bearer ${afterwards}`)).identity.id, 'w-id');
  // Service-account tokens carry no issue time: revoking the identity does not lock them out for good.
  assert.equal((await a.authenticate('Bearer plain-config-token')).identity.id, 'ci-bot');
});
