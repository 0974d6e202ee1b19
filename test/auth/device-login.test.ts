import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BUILTIN_SCOPES, startBuiltinIdp, type BuiltinIdp } from '../../src/auth/builtin-idp.js';
import { deviceLogin, refreshTokens, type DevicePrompt, type IdpTokens } from '../../src/auth/device-login.js';
import { createOidcVerifier } from '../../src/auth/oidc-verify.js';
import { AuthError } from '../../src/shared/errors.js';
import { approveDeviceLogin } from './browser.js';

// A "corporate IdP" with groups, run in-process on a free port.
let idp: BuiltinIdp;
before(async () => {
  idp = await startBuiltinIdp({
    users: [
      { id: 'ann', email: 'ann@acme.com', name: 'Ann Dev', password: 'pw-ann', groups: ['developers'] },
      { id: 'bob', email: 'bob@acme.com', name: 'Bob Ops', password: 'pw-bob', groups: ['dba', 'oncall'] },
      { id: 'eve', email: 'eve@acme.com', name: 'Eve Left', password: 'pw-eve', groups: ['developers'] },
    ],
    devicePollIntervalSec: 0.1,
  });
});
after(() => idp.close());

/** The CLI's real device flow, with the user approving in a cookie-jar browser. */
async function login(email: string, password: string): Promise<{ tokens: IdpTokens; prompt: DevicePrompt; page: Promise<{ status: number; html: string }> }> {
  let prompt: DevicePrompt | undefined;
  let page: Promise<{ status: number; html: string }> | undefined;
  const tokens = await deviceLogin({
    issuer: idp.issuer,
    clientId: idp.clientId,
    scopes: [...BUILTIN_SCOPES],
    openBrowser: false,
    onPrompt: (p) => {
      prompt = p;
      page = approveDeviceLogin(p.verificationUriComplete as string, email, password);
    },
    signal: AbortSignal.timeout(15_000),
  });
  return { tokens, prompt: prompt as DevicePrompt, page: page as Promise<{ status: number; html: string }> };
}

const verifier = () => createOidcVerifier({ issuer: idp.issuer, clientId: idp.clientId, allowedEmailDomains: ['acme.com'] });

describe('device login against the built-in IdP', () => {
  const users: { email: string; password: string; groups: string[] }[] = [
    { email: 'ann@acme.com', password: 'pw-ann', groups: ['developers'] },
    { email: 'bob@acme.com', password: 'pw-bob', groups: ['dba', 'oncall'] },
  ];
  for (const u of users) {
    test(`${u.email}: device login, then the broker maps the ID token to an identity with groups`, async () => {
      const { tokens, prompt, page } = await login(u.email, u.password);
      assert.match(prompt.userCode, /^[A-Z]{4}-[A-Z]{4}$/);
      assert.ok(prompt.verificationUriComplete?.startsWith(`${idp.issuer}/device`));
      const done = await page;
      assert.equal(done.status, 200);
      assert.match(done.html, /dbgov-login-success/);
      assert.ok(tokens.refreshToken, 'offline_access gives a refresh token');
      assert.ok(tokens.expiresAt > Date.now());
      const identity = await verifier().verifyIdToken(tokens.idToken);
      assert.deepEqual({ id: identity.id, kind: identity.kind, source: identity.source, groups: identity.groups }, { id: u.email, kind: 'human', source: 'oidc', groups: u.groups });
      await verifier().checkStillActive(tokens.accessToken, u.email.split('@')[0]);
    });
  }

  test('refresh rotates the refresh token and picks up group changes', async () => {
    const { tokens } = await login('ann@acme.com', 'pw-ann');
    idp.setUserGroups('ann', ['developers', 'approvers']);
    try {
      const next = await refreshTokens({ issuer: idp.issuer, clientId: idp.clientId, refreshToken: tokens.refreshToken as string });
      assert.notEqual(next.refreshToken, tokens.refreshToken);
      assert.deepEqual((await verifier().verifyIdToken(next.idToken)).groups, ['developers', 'approvers']);
      // The old refresh token was rotated out.
      await assert.rejects(refreshTokens({ issuer: idp.issuer, clientId: idp.clientId, refreshToken: tokens.refreshToken as string }), AuthError);
    } finally {
      idp.setUserGroups('ann', ['developers']);
    }
  });

  test('a wrong password is refused on the login page', async () => {
    const ctrl = new AbortController();
    const pages: { status: number; html: string }[] = [];
    const run = deviceLogin({
      issuer: idp.issuer,
      clientId: idp.clientId,
      scopes: ['openid'],
      openBrowser: false,
      signal: AbortSignal.any([ctrl.signal, AbortSignal.timeout(15_000)]),
      onPrompt: (p) => {
        void approveDeviceLogin(p.verificationUriComplete as string, 'ann@acme.com', 'wrong').then((page) => {
          pages.push(page);
          ctrl.abort();
        });
      },
    });
    await assert.rejects(run, (e: unknown) => e instanceof AuthError && e.code === 'device_login_failed');
    assert.equal(pages[0]?.status, 401);
    assert.match(pages[0]?.html ?? '', /Wrong email or password/);
  });

  test('a user disabled at the IdP cannot refresh, cannot pass the activity check, and cannot log in', async () => {
    const { tokens } = await login('eve@acme.com', 'pw-eve');
    idp.disableUser('eve');
    await assert.rejects(
      refreshTokens({ issuer: idp.issuer, clientId: idp.clientId, refreshToken: tokens.refreshToken as string }),
      (e: unknown) => e instanceof AuthError && e.code === 'refresh_failed' && e.actions.some((a) => a.includes('dbgov login')),
    );
    await assert.rejects(verifier().checkStillActive(tokens.accessToken, 'eve'), (e: unknown) => e instanceof AuthError && e.code === 'idp_user_inactive');

    const ctrl = new AbortController();
    const statuses: number[] = [];
    const run = deviceLogin({
      issuer: idp.issuer,
      clientId: idp.clientId,
      scopes: ['openid'],
      openBrowser: false,
      signal: AbortSignal.any([ctrl.signal, AbortSignal.timeout(15_000)]),
      onPrompt: (p) => {
        void approveDeviceLogin(p.verificationUriComplete as string, 'eve@acme.com', 'pw-eve').then((page) => {
          statuses.push(page.status);
          ctrl.abort();
        });
      },
    });
    await assert.rejects(run, AuthError);
    assert.deepEqual(statuses, [403]);
  });

  test("another user's access token does not vouch for this user", async () => {
    const { tokens } = await login('bob@acme.com', 'pw-bob');
    await assert.rejects(verifier().checkStillActive(tokens.accessToken, 'ann'), (e: unknown) => e instanceof AuthError && e.code === 'idp_user_inactive');
  });
});
