/**
 * Credential hardening at the gateway port: a captured credential replayed from another key, or
 * with a proof lifted from another TLS connection, opens nothing (and is audited); clock skew of
 * ±60 s between the broker that issued a credential and the gateway's clock is tolerated.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import { makeProof, tunnelHello } from '../../src/auth/credentials.js';
import type { CredentialResponse } from '../../src/broker/api-types.js';
import type { Clock } from '../../src/shared/clock.js';
import { SA_TOKENS, createTestDatabase, pgTarget, testClientKey, type TestDatabase } from './harness.js';
import { rogueTunnel, startIdentityBroker, type IdentityBroker } from './identity-harness.js';

describe('credential hardening', () => {
  let db: TestDatabase;
  let tb: IdentityBroker;
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset };

  before(async () => {
    db = await createTestDatabase('cred');
    tb = await startIdentityBroker({ targets: { staging: pgTarget(db.name, { env: 'staging' }) }, clock });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  /** A credential issued to this process's CLI key (the one `dbgov connect` would hold). */
  const issue = async (ttlSeconds = 600): Promise<CredentialResponse['credential']> => {
    const key = await testClientKey();
    const out = await tb.client(SA_TOKENS.ci).requestCredential({ target: 'staging', ttlSeconds, publicKey: key.publicJwk as Record<string, unknown> });
    assert.equal(out.status, 'issued');
    return (out as CredentialResponse).credential;
  };

  /** Connects a pg client through a rogue tunnel; resolves with what the gateway answered. */
  const attempt = async (makeHello: (binding: Buffer) => Buffer): Promise<{ ok: boolean; message: string; bindings: Buffer[] }> => {
    const rogue = await rogueTunnel(tb.broker.gateway, makeHello);
    const c = new pg.Client({ host: '127.0.0.1', port: rogue.port, user: 'ci-bot', database: db.name, connectionTimeoutMillis: 10_000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const one = (await c.query('select 1 as one')).rows[0].one as number;
      await c.end();
      return { ok: one === 1, message: '', bindings: rogue.bindings };
    } catch (e) {
      return { ok: false, message: (e as Error).message, bindings: rogue.bindings };
    } finally {
      await rogue.close();
    }
  };

  const helloWith = (cred: { id: string; token: string }, privateKey: Parameters<typeof makeProof>[0], publicJwk: Record<string, unknown>, binding: Buffer) =>
    tunnelHello({ credential: cred.token, proof: makeProof(privateKey, binding, cred.id), publicJwk, clientVersion: 'rogue' });

  test('the holder\'s key opens a session (the hand-made tunnel is faithful)', async () => {
    const cred = await issue();
    const key = await testClientKey();
    const r = await attempt((b) => helloWith(cred, key.privateKey, key.publicJwk as Record<string, unknown>, b));
    assert.equal(r.ok, true, r.message);
  });

  const other = generateKeyPairSync('ed25519');
  const otherJwk = (() => {
    const j = other.publicKey.export({ format: 'jwk' });
    return { kty: 'OKP', crv: 'Ed25519', x: j.x as string };
  })();

  const replays: { name: string; hello: (cred: { id: string; token: string }, stale: Buffer | undefined) => (binding: Buffer) => Buffer | Promise<Buffer>; message: RegExp; code: string }[] = [
    {
      name: 'captured credential replayed with another key',
      hello: (cred) => (b) => helloWith(cred, other.privateKey, otherJwk, b),
      message: /belongs to another client key/,
      code: 'credential_key_mismatch',
    },
    {
      name: "the holder's public key, but a signature from another key",
      hello: (cred) => (b) => {
        const key = keyCache as NonNullable<typeof keyCache>;
        return helloWith(cred, other.privateKey, key.publicJwk as Record<string, unknown>, b);
      },
      message: /does not match this connection/,
      code: 'credential_bad_proof',
    },
    {
      name: 'a proof lifted from another TLS connection',
      hello: (cred, stale) => () => {
        const key = keyCache as NonNullable<typeof keyCache>;
        return helloWith(cred, key.privateKey, key.publicJwk as Record<string, unknown>, stale as Buffer);
      },
      message: /does not match this connection/,
      code: 'credential_bad_proof',
    },
  ];
  let keyCache: Awaited<ReturnType<typeof testClientKey>> | undefined;

  for (const c of replays) {
    test(`refused and audited: ${c.name}`, async () => {
      keyCache = await testClientKey();
      const cred = await issue();
      // A genuine connection first, whose channel binding (and so its proof) an attacker saw.
      const genuine = await attempt((b) => helloWith(cred, (keyCache as NonNullable<typeof keyCache>).privateKey, (keyCache as NonNullable<typeof keyCache>).publicJwk as Record<string, unknown>, b));
      assert.equal(genuine.ok, true, genuine.message);
      const before = (await tb.events((e) => e.kind === 'session.refused')).length;
      const r = await attempt(c.hello(cred, genuine.bindings[0]) as (b: Buffer) => Buffer);
      assert.equal(r.ok, false);
      assert.match(r.message, c.message);
      const refused = (await tb.events((e) => e.kind === 'session.refused')).slice(before);
      assert.deepEqual(refused.map((e) => (e.detail as { code?: string }).code), [c.code]);
      const sessions = await tb.events((e) => e.kind === 'session.start' && (e.detail as { credentialId?: string }).credentialId === cred.id);
      assert.equal(sessions.length, 1, 'only the genuine connection opened a session');
    });
  }

  test('clock skew of ±60 s is tolerated at the gateway, and no more', async () => {
    const key = await testClientKey();
    const open = async (cred: { id: string; token: string }) => attempt((b) => helloWith(cred, key.privateKey, key.publicJwk as Record<string, unknown>, b));
    const cred = await issue(60);
    const cases: { shift: number; ok: boolean; message?: RegExp }[] = [
      { shift: -55_000, ok: true }, // the gateway's clock is behind: the credential looks issued in the future
      { shift: -125_000, ok: false, message: /not issued by this broker|nbf/ },
      { shift: 60_000 + 50_000, ok: true }, // 50 s past expiry
      { shift: 60_000 + 70_000, ok: false, message: /expired/ },
    ];
    try {
      for (const c of cases) {
        offset = c.shift;
        const r = await open(cred);
        assert.equal(r.ok, c.ok, `shift ${c.shift}: ${r.message}`);
        if (c.message) assert.match(r.message, c.message, `shift ${c.shift}`);
      }
    } finally {
      offset = 0;
    }
  });
});
