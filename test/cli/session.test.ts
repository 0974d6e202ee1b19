import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loginStore } from '../../src/cli/login-store.js';
import { resolveSession, type SessionDeps } from '../../src/cli/session.js';
import { apiError, startFakeBroker, tempHome, type FakeBroker } from './helpers.js';

const alice = { id: 'alice', kind: 'human' as const, groups: ['dev'], source: 'oidc' as const };

describe('session: silent refresh of an expired login (fake broker)', () => {
  let broker: FakeBroker;
  let home: Awaited<ReturnType<typeof tempHome>>;
  let valid = 'bat_new';
  before(async () => {
    home = await tempHome();
    broker = await startFakeBroker({
      'POST /v1/auth/exchange': (req) =>
        (req.body as { idToken: string }).idToken === 'id_new'
          ? { body: { accessToken: 'bat_new', expiresAt: Date.now() + 3_600_000, identity: alice } }
          : apiError(401, 'invalid_id_token', 'bad id token'),
      'GET /v1/whoami': (req) => (req.headers.authorization === `Bearer ${valid}` ? { body: { identity: alice, expiresAt: null } } : apiError(401, 'token_expired', 'token expired')),
    });
  });
  after(async () => {
    await broker.close();
    await home.cleanup();
  });

  const deps = (refreshed: string[], idToken = 'id_new'): SessionDeps => ({
    env: { DBGOV_BROKER: broker.url },
    store: loginStore({ DBGOV_HOME: home.dir }),
    clock: { now: () => Date.now() },
    refreshIdp: async (idp) => {
      refreshed.push(idp.tokens.refreshToken ?? '');
      return { idToken, accessToken: 'at_new', expiresAt: Date.now() + 3_600_000 };
    },
  });
  const save = (expiresAt: number, refreshToken?: string) =>
    loginStore({ DBGOV_HOME: home.dir }).save({
      brokerUrl: broker.url,
      brokerAccessToken: 'bat_old',
      expiresAt,
      identity: alice,
      idp: { issuer: 'http://idp', clientId: 'dbgov', tokens: { idToken: 'id_old', accessToken: 'at_old', expiresAt, ...(refreshToken ? { refreshToken } : {}) } },
    });

  it('an expired token with a refresh token is renewed before the call, and saved', async () => {
    await save(Date.now() - 60_000, 'rt_1');
    const refreshed: string[] = [];
    const s = await resolveSession({}, deps(refreshed));
    assert.deepEqual(refreshed, ['rt_1']);
    assert.equal((await s.client.whoami()).identity.id, 'alice');
    const stored = await loginStore({ DBGOV_HOME: home.dir }).load(broker.url);
    assert.equal(stored?.brokerAccessToken, 'bat_new');
    assert.equal(stored?.idp?.tokens.refreshToken, 'rt_1', 'the refresh token is kept when the IdP does not rotate it');
  });

  it('a token the broker rejects mid-life triggers one refresh and a retry', async () => {
    await save(Date.now() + 3_600_000, 'rt_2');
    const refreshed: string[] = [];
    const s = await resolveSession({}, deps(refreshed));
    assert.equal(refreshed.length, 0);
    assert.equal((await s.client.whoami()).identity.id, 'alice');
    assert.deepEqual(refreshed, ['rt_2']);
  });

  it('a refresh the broker refuses ends in exit 3 naming `dbgov login`', async () => {
    await save(Date.now() - 60_000, 'rt_3');
    await assert.rejects(resolveSession({}, deps([], 'id_bad')), (e: { exitCode: number; actions: string[] }) => e.exitCode === 3 && e.actions.includes('run `dbgov login`'));
  });

  it('without a refresh token there is no refresh attempt', async () => {
    await save(Date.now() - 60_000);
    const refreshed: string[] = [];
    await assert.rejects(resolveSession({}, deps(refreshed)), /expired/);
    assert.equal(refreshed.length, 0);
  });
});
