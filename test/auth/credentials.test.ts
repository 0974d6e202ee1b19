import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { before, describe, test } from 'node:test';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { generate } from 'selfsigned';
import { generateBrokerKey, issueBrokerToken, type BrokerKey } from '../../src/auth/broker-tokens.js';
import {
  CHANNEL_BINDING_LENGTH,
  channelBindingOf,
  issueCredential,
  makeProof,
  MAX_TUNNEL_HELLO,
  readTunnelHello,
  receiveTunnelHello,
  tunnelHello,
  verifyCredential,
  type TunnelHello,
} from '../../src/auth/credentials.js';
import { AuthError, ProtocolError } from '../../src/shared/errors.js';
import type { Identity } from '../../src/shared/types.js';
import type { CredentialRecord } from '../../src/store/store.js';

interface CliKey {
  privateKey: KeyObject;
  publicJwk: JWK;
  thumbprint: string;
}
async function cliKey(): Promise<CliKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
  return { privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

const ann: Identity = { id: 'ann@acme.com', kind: 'human', groups: ['developers'], source: 'oidc' };
const T0 = Date.parse('2030-01-01T00:00:00Z');
const TTL = 30 * 60_000;

let broker: BrokerKey;
let otherBroker: BrokerKey;
let key: CliKey;
let thief: CliKey;

before(async () => {
  broker = await generateBrokerKey();
  otherBroker = await generateBrokerKey();
  key = await cliKey();
  thief = await cliKey();
});

interface Setup {
  token: string;
  record: CredentialRecord;
  bindingA: Buffer;
}

interface Case {
  name: string;
  /** Builds what the gateway receives. Defaults: the right key, binding A, now = issue time. */
  present?: (s: Setup) => Partial<{ token: string; proof: string; publicJwk: JWK; binding: Buffer; now: number; stored: CredentialRecord | undefined; expectTarget: string }>;
  issueWith?: () => BrokerKey;
  expect: 'ok' | string;
}

const cases: Case[] = [
  { name: 'valid credential and proof', expect: 'ok' },
  { name: 'clock skew: gateway 59 s behind the broker', present: () => ({ now: T0 - 59_000 }), expect: 'ok' },
  { name: 'clock skew: 59 s after expiry', present: () => ({ now: T0 + TTL + 59_000 }), expect: 'ok' },
  { name: 'expired: 61 s after expiry', present: () => ({ now: T0 + TTL + 61_000 }), expect: 'credential_expired' },
  { name: 'not yet valid: gateway 2 min behind', present: () => ({ now: T0 - 120_000 }), expect: 'credential_invalid' },
  {
    name: 'replay from another key (thief signs with own key)',
    present: (s) => ({ proof: makeProof(thief.privateKey, s.bindingA, s.record.id), publicJwk: thief.publicJwk }),
    expect: 'credential_key_mismatch',
  },
  {
    name: 'replay: right public key, proof signed by another key',
    present: (s) => ({ proof: makeProof(thief.privateKey, s.bindingA, s.record.id) }),
    expect: 'credential_bad_proof',
  },
  { name: 'proof for binding A used on connection B', present: () => ({ binding: randomBytes(CHANNEL_BINDING_LENGTH) }), expect: 'credential_bad_proof' },
  { name: 'proof for another credential id', present: (s) => ({ proof: makeProof(key.privateKey, s.bindingA, 'cred_other') }), expect: 'credential_bad_proof' },
  { name: 'revoked', present: (s) => ({ stored: { ...s.record, revokedAt: T0, revokedBy: 'sec@acme.com' } }), expect: 'credential_revoked' },
  { name: 'unknown to the store', present: () => ({ stored: undefined }), expect: 'credential_unknown' },
  { name: 'store record disagrees (other database)', present: (s) => ({ stored: { ...s.record, database: 'other' } }), expect: 'credential_invalid' },
  { name: 'credential for another target', present: () => ({ expectTarget: 'staging' }), expect: 'credential_wrong_target' },
  { name: 'signed by another broker', issueWith: () => otherBroker, expect: 'credential_invalid' },
  { name: 'tampered token (scope edited)', present: (s) => ({ token: editPayload(s.token, { acc: 'admin' }) }), expect: 'credential_invalid' },
  { name: 'alg none token', present: (s) => ({ token: noneToken(s.token) }), expect: 'credential_invalid' },
  { name: 'RSA JWK instead of Ed25519', present: () => ({ publicJwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } }), expect: 'bad_client_key' },
];

function editPayload(token: string, patch: Record<string, unknown>): string {
  const [h, p, sig] = token.split('.');
  const body = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), ...patch };
  return [h, Buffer.from(JSON.stringify(body)).toString('base64url'), sig].join('.');
}
function noneToken(token: string): string {
  const p = token.split('.')[1];
  return [Buffer.from(JSON.stringify({ alg: 'none', typ: 'dbgov-cred+jwt' })).toString('base64url'), p, ''].join('.');
}

describe('credentials: issue and verify', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const { record, token } = await issueCredential(
        { identity: ann, target: 'prod', database: 'app', access: 'read', ttlMs: TTL, keyThumbprint: key.thumbprint, reason: 'INC-1', now: T0 },
        c.issueWith?.() ?? broker,
      );
      const bindingA = randomBytes(CHANNEL_BINDING_LENGTH);
      const p = c.present?.({ token, record, bindingA }) ?? {};
      const stored = 'stored' in p ? p.stored : record;
      const run = verifyCredential(
        p.token ?? token,
        { proof: p.proof ?? makeProof(key.privateKey, bindingA, record.id), publicJwk: p.publicJwk ?? key.publicJwk },
        p.binding ?? bindingA,
        { brokerPublicKey: broker.publicKey, now: p.now ?? T0, lookup: async (id) => (id === record.id ? stored : undefined), ...(p.expectTarget ? { expectTarget: p.expectTarget } : {}) },
      );
      if (c.expect === 'ok') {
        const got = await run;
        assert.equal(got.id, record.id);
        assert.equal(got.identity.id, 'ann@acme.com');
        assert.equal(got.expiresAt, T0 + TTL);
      } else {
        await assert.rejects(run, (e: unknown) => e instanceof AuthError && e.code === c.expect && e.actions.length > 0);
      }
    });
  }

  test('an expired credential says which command to run', async () => {
    const { record, token } = await issueCredential({ identity: ann, target: 'prod', database: 'app', access: 'read', ttlMs: TTL, keyThumbprint: key.thumbprint, now: T0 }, broker);
    const b = randomBytes(32);
    await assert.rejects(
      verifyCredential(token, { proof: makeProof(key.privateKey, b, record.id), publicJwk: key.publicJwk }, b, { brokerPublicKey: broker.publicKey, now: T0 + TTL + 120_000, lookup: async () => record }),
      (e: unknown) => e instanceof AuthError && e.actions.includes('run `dbgov connect prod` to get a new credential'),
    );
  });

  test('a broker API token is not a credential', async () => {
    const { token } = await issueBrokerToken(ann, broker, { clock: { now: () => T0 } });
    const b = randomBytes(32);
    await assert.rejects(
      verifyCredential(token, { proof: makeProof(key.privateKey, b, 'x'), publicJwk: key.publicJwk }, b, { brokerPublicKey: broker.publicKey, now: T0, lookup: async () => undefined }),
      (e: unknown) => e instanceof AuthError && e.code === 'credential_invalid',
    );
  });
});

describe('credentials: proof bound to the real TLS connection', () => {
  test('exporter material matches on both ends, and a proof from one connection fails on another', async () => {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], { keySize: 2048 });
    const { record, token } = await issueCredential({ identity: ann, target: 'prod', database: 'app', access: 'read', ttlMs: TTL, keyThumbprint: key.thumbprint }, broker);
    const server = createServer({ key: pems.private, cert: pems.cert });
    const accepted: Promise<{ ok: boolean; code?: string }>[] = [];
    server.on('secureConnection', (sock: TLSSocket) => {
      accepted.push(
        (async () => {
          const got = await receiveTunnelHello(sock);
          if (got.status !== 'ok') return { ok: false, code: 'not-dbgov' };
          const binding = channelBindingOf(sock);
          try {
            await verifyCredential(got.hello.credential, got.hello, binding, { brokerPublicKey: broker.publicKey, now: Date.now(), lookup: async () => record });
            return { ok: true };
          } catch (e) {
            return { ok: false, code: (e as AuthError).code };
          } finally {
            sock.destroy();
          }
        })(),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const open = async () => {
      const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      await once(s, 'secureConnect');
      return s;
    };
    try {
      const first = await open();
      const bindingA = channelBindingOf(first);
      const hello: TunnelHello = { credential: token, proof: makeProof(key.privateKey, bindingA, record.id), publicJwk: key.publicJwk, clientVersion: '0.1.0' };
      first.write(tunnelHello(hello));
      // The captured hello replayed verbatim on a second connection.
      const second = await open();
      second.write(tunnelHello(hello));
      while (accepted.length < 2) await new Promise((r) => setTimeout(r, 10));
      const results = await Promise.all(accepted);
      first.destroy();
      second.destroy();
      assert.deepEqual(results, [{ ok: true }, { ok: false, code: 'credential_bad_proof' }]);
    } finally {
      server.close();
    }
  });
});

describe('tunnel hello framing', () => {
  const hello: TunnelHello = { credential: 'a.b.c', proof: 'p', publicJwk: { kty: 'OKP', crv: 'Ed25519', x: 'x' }, clientVersion: '0.1.0' };
  const frame = Buffer.concat([tunnelHello(hello), Buffer.from('Q-startup')]);

  test('every split offset yields need-more, then the hello and the rest untouched', () => {
    const helloLen = frame.length - 'Q-startup'.length;
    for (let i = 0; i < frame.length; i++) {
      const r = readTunnelHello(frame.subarray(0, i));
      if (i < helloLen) assert.equal(r.status, 'need-more', `offset ${i}`);
      else {
        assert.equal(r.status, 'ok');
        if (r.status === 'ok') assert.equal(r.rest.toString(), 'Q-startup'.slice(0, i - helloLen));
      }
    }
    const r = readTunnelHello(frame);
    assert.ok(r.status === 'ok' && r.rest.toString() === 'Q-startup');
    if (r.status === 'ok') assert.deepEqual(r.hello, hello);
  });

  const header = (len: number) => {
    const b = Buffer.alloc(10);
    b.write('DBGOV\x01', 'latin1');
    b.writeUInt32BE(len, 6);
    return b;
  };
  const refusals: [string, Buffer, 'not-dbgov' | 'protocol'][] = [
    ['psql SSLRequest', Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), 'not-dbgov'],
    ['psql StartupMessage', Buffer.from([0, 0, 0, 0x29, 0, 3, 0, 0]), 'not-dbgov'],
    ['HTTP request', Buffer.from('GET / HTTP/1.1\r\n'), 'not-dbgov'],
    ['other preamble version', Buffer.from('DBGOV\x02'), 'not-dbgov'],
    ['first byte only, wrong', Buffer.from('X'), 'not-dbgov'],
    ['length over the limit', header(MAX_TUNNEL_HELLO + 1), 'protocol'],
    ['length 4 GiB', header(0xffffffff), 'protocol'],
    ['length zero', header(0), 'protocol'],
    ['garbage JSON', Buffer.concat([header(5), Buffer.from('{nope')]), 'protocol'],
    ['JSON missing fields', Buffer.concat([header(2), Buffer.from('{}')]), 'protocol'],
    ['JSON array', Buffer.concat([header(2), Buffer.from('[]')]), 'protocol'],
  ];
  for (const [name, bytes, want] of refusals) {
    test(`refuses ${name}`, () => {
      if (want === 'not-dbgov') assert.equal(readTunnelHello(bytes).status, 'not-dbgov');
      else assert.throws(() => readTunnelHello(bytes), ProtocolError);
    });
  }

  test('random bytes never throw anything but ProtocolError', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = randomBytes(1 + (i % 64));
      if (i % 2) Buffer.from('DBGOV\x01', 'latin1').copy(bytes);
      try {
        readTunnelHello(bytes);
      } catch (e) {
        assert.ok(e instanceof ProtocolError, String(e));
      }
    }
  });
});
