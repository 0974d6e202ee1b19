import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { generateBrokerKey, issueBrokerToken, loadOrCreateBrokerKey, verifyBrokerToken } from '../../src/auth/broker-tokens.js';
import { issueCredential } from '../../src/auth/credentials.js';
import { AuthError, ConfigError } from '../../src/shared/errors.js';
import type { Identity } from '../../src/shared/types.js';

const ann: Identity = { id: 'ann@acme.com', kind: 'human', groups: ['developers'], source: 'oidc', email: 'ann@acme.com' };
const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;
const at = (ms: number) => ({ clock: { now: () => ms } });

describe('broker access tokens', () => {
  const cases: { name: string; verifyAt: number; expect: 'ok' | string }[] = [
    { name: 'fresh', verifyAt: T0, expect: 'ok' },
    { name: 'verifier clock 59 s behind', verifyAt: T0 - 59_000, expect: 'ok' },
    { name: 'verifier clock 2 min behind', verifyAt: T0 - 120_000, expect: 'token_invalid' },
    { name: '59 s past the 1 h expiry', verifyAt: T0 + HOUR + 59_000, expect: 'ok' },
    { name: '61 s past the 1 h expiry', verifyAt: T0 + HOUR + 61_000, expect: 'token_expired' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const key = await generateBrokerKey();
      const { token, expiresAt } = await issueBrokerToken(ann, key, at(T0));
      assert.equal(expiresAt, T0 + HOUR);
      const run = verifyBrokerToken(token, key.publicKey, at(c.verifyAt));
      if (c.expect === 'ok') assert.deepEqual((await run).identity, ann);
      else await assert.rejects(run, (e: unknown) => e instanceof AuthError && e.code === c.expect && e.actions.includes('run `dbgov login`'));
    });
  }

  test('a token from another broker key is refused', async () => {
    const { token } = await issueBrokerToken(ann, await generateBrokerKey(), at(T0));
    await assert.rejects(verifyBrokerToken(token, (await generateBrokerKey()).publicKey, at(T0)), (e: unknown) => e instanceof AuthError && e.code === 'token_invalid');
  });

  test('a database credential is not an API token', async () => {
    const key = await generateBrokerKey();
    const { token } = await issueCredential({ identity: ann, target: 'prod', database: 'app', access: 'read', ttlMs: HOUR, keyThumbprint: 'x', now: T0 }, key);
    await assert.rejects(verifyBrokerToken(token, key.publicKey, at(T0)), (e: unknown) => e instanceof AuthError && e.code === 'token_invalid');
  });
});

describe('broker signing key on disk', () => {
  test('created 0600 once, then loaded unchanged', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dbgov-bk-'));
    try {
      const a = await loadOrCreateBrokerKey(join(dir, 'data'));
      const b = await loadOrCreateBrokerKey(join(dir, 'data'));
      assert.equal(a.kid, b.kid);
      assert.equal((await stat(join(dir, 'data', 'broker-signing-key.pem'))).mode & 0o777, 0o600);
      const { token } = await issueBrokerToken(ann, a);
      assert.equal((await verifyBrokerToken(token, b.publicKey)).identity.id, ann.id);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a corrupt key file is a config error naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dbgov-bk-'));
    try {
      await writeFile(join(dir, 'broker-signing-key.pem'), 'not a key', { mode: 0o644 });
      await assert.rejects(loadOrCreateBrokerKey(dir), (e: unknown) => e instanceof ConfigError && e.message.includes('broker-signing-key.pem'));
      assert.equal((await stat(join(dir, 'broker-signing-key.pem'))).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
