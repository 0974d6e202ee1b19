import assert from 'node:assert/strict';
import { sign, verify, createPublicKey } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { normalizeBrokerUrl, openTokenStore, type StoredLogin } from '../../src/auth/token-store.js';

let home: string;
before(async () => {
  home = await mkdtemp(join(tmpdir(), 'dbgov-home-'));
});
after(() => rm(home, { recursive: true, force: true }));

const login = (brokerUrl: string, token: string): StoredLogin => ({
  brokerUrl,
  brokerAccessToken: token,
  expiresAt: 1_900_000_000_000,
  identity: { id: 'ann@acme.com', kind: 'human', groups: ['developers'], source: 'oidc' },
  idp: { issuer: 'http://127.0.0.1:1', clientId: 'dbgov-cli', tokens: { idToken: 'i', accessToken: 'a', refreshToken: 'r', expiresAt: 1 } },
});

describe('token store: file fallback', () => {
  test('DBGOV_HOME selects the 0600 file, per broker URL', async () => {
    const store = await openTokenStore({ env: { DBGOV_HOME: home } });
    assert.equal(store.backend, 'file');
    assert.equal(store.location, join(home, 'credentials.json'));
    await store.save(login('http://127.0.0.1:7080/', 'tok-a'));
    await store.save(login('https://broker.acme.com', 'tok-b'));
    assert.equal((await stat(store.location)).mode & 0o777, 0o600);
    assert.equal((await stat(home)).mode & 0o077, 0);
    assert.equal((await store.load('http://127.0.0.1:7080'))?.brokerAccessToken, 'tok-a');
    assert.equal((await store.load('https://broker.acme.com/'))?.brokerAccessToken, 'tok-b');
    assert.equal(await store.load('http://127.0.0.1:9999'), undefined);
    assert.equal(await store.remove('http://127.0.0.1:7080'), true);
    assert.equal(await store.load('http://127.0.0.1:7080'), undefined);
    assert.equal((await store.load('https://broker.acme.com'))?.brokerAccessToken, 'tok-b');
  });

  test('a file loosened to 0644 is tightened back on read', async () => {
    const store = await openTokenStore({ env: { DBGOV_HOME: home } });
    await store.save(login('http://a', 't'));
    await chmod(store.location, 0o644);
    await store.load('http://a');
    assert.equal((await stat(store.location)).mode & 0o777, 0o600);
  });

  test('the client key is created once, persists across opens, and signs', async () => {
    const a = await (await openTokenStore({ env: { DBGOV_HOME: home } })).loadOrCreateClientKey();
    const b = await (await openTokenStore({ env: { DBGOV_HOME: home } })).loadOrCreateClientKey();
    assert.equal(a.thumbprint, b.thumbprint);
    assert.match(a.thumbprint, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(Object.keys(a.publicJwk).sort(), ['crv', 'kty', 'x']);
    const sig = sign(null, Buffer.from('m'), b.privateKey);
    assert.ok(verify(null, Buffer.from('m'), createPublicKey({ key: a.publicJwk as never, format: 'jwk' }), sig));
    // The private part is in the 0600 file, never in the public JWK.
    assert.ok((await readFile(join(home, 'credentials.json'), 'utf8')).includes('client-key'));
    assert.equal('d' in a.publicJwk, false);
  });

  const urls: [string, string][] = [
    ['http://127.0.0.1:7080/', 'http://127.0.0.1:7080'],
    ['HTTPS://Broker.ACME.com//', 'https://broker.acme.com'],
    ['https://acme.com/dbgov/', 'https://acme.com/dbgov'],
  ];
  for (const [input, want] of urls) test(`normalizes ${input}`, () => assert.equal(normalizeBrokerUrl(input), want));
});
