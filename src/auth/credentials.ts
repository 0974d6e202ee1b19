/**
 * Short-lived, scoped, key-bound credentials.
 *
 * The broker issues a JWT naming one identity, target, database and access level, bound by
 * `cnf.jkt` (RFC 7638 thumbprint, as in RFC 9449) to an Ed25519 key the CLI holds. On each
 * tunnel→gateway TLS connection the tunnel signs the connection's TLS exported keying material
 * (RFC 5705) with that key. The gateway checks the signature, the expiry, the revocation state
 * and the proof, so a copied token without the key, or a proof lifted from another connection,
 * does not work.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { calculateJwkThumbprint, errors as joseErrors, jwtVerify, SignJWT, type JWK } from 'jose';
import { AuthError, ProtocolError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { AccessLevel, Identity } from '../shared/types.js';
import { ACCESS_LEVELS } from '../shared/types.js';
import type { CredentialRecord } from '../store/store.js';
import { BROKER_ISSUER, CLOCK_SKEW_SEC, type BrokerKey } from './broker-tokens.js';

export const CREDENTIAL_TYPE = 'dbgov-cred+jwt';
const CREDENTIAL_AUDIENCE = 'dbgov-gateway';
/** Label for `tlsSocket.exportKeyingMaterial(32, label, …)` on both ends of the tunnel. */
export const CHANNEL_BINDING_LABEL = 'EXPORTER-dbgov-credential';
export const CHANNEL_BINDING_LENGTH = 32;
const PROOF_CONTEXT = 'dbgov-credential-proof-v1';

/**
 * The channel binding both ends use: RFC 5705 keying material exported from this TLS connection.
 * Tunnel and gateway must call this same function, or their bindings differ (an absent and an
 * empty exporter context give different bytes).
 */
export function channelBindingOf(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(CHANNEL_BINDING_LENGTH, CHANNEL_BINDING_LABEL, Buffer.alloc(0));
}

export interface IssueCredentialInput {
  identity: Identity;
  target: string;
  database: string;
  access: AccessLevel;
  ttlMs: number;
  keyThumbprint: string;
  reason?: string;
  now?: number;
}

export interface IssuedCredential {
  record: CredentialRecord;
  token: string;
}

export async function issueCredential(input: IssueCredentialInput, brokerKey: BrokerKey): Promise<IssuedCredential> {
  const issuedAt = input.now ?? Date.now();
  // JWT times are whole seconds; store the same instant the token carries.
  const expiresAt = Math.floor((issuedAt + input.ttlMs) / 1000) * 1000;
  const record: CredentialRecord = {
    id: newId('cred'),
    identity: input.identity,
    target: input.target,
    database: input.database,
    access: input.access,
    keyThumbprint: input.keyThumbprint,
    ...(input.reason !== undefined ? { reason: input.reason } : {}),
    issuedAt,
    expiresAt,
  };
  const token = await new SignJWT({ cnf: { jkt: record.keyThumbprint }, tgt: record.target, db: record.database, acc: record.access, knd: record.identity.kind })
    .setProtectedHeader({ alg: 'EdDSA', typ: CREDENTIAL_TYPE, kid: brokerKey.kid })
    .setIssuer(BROKER_ISSUER)
    .setAudience(CREDENTIAL_AUDIENCE)
    .setSubject(record.identity.id)
    .setJti(record.id)
    .setIssuedAt(Math.floor(issuedAt / 1000))
    // nbf lets the verifier refuse a token from a clock more than the skew ahead.
    .setNotBefore(Math.floor(issuedAt / 1000))
    .setExpirationTime(expiresAt / 1000)
    .sign(brokerKey.privateKey);
  return { record, token };
}

/** Thumbprint of an Ed25519 public JWK, refusing anything else. */
export async function ed25519Thumbprint(jwk: JWK): Promise<string> {
  // Only Ed25519 keys: an RSA or EC key (or a JWK carrying a private part) is not what the CLI makes.
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk) || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || 'd' in jwk) {
    throw new AuthError('bad_client_key', 'the client key must be a public Ed25519 JWK', { actions: ['upgrade the dbgov CLI, then run `dbgov connect` again'] });
  }
  return calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'sha256');
}

function proofMessage(channelBinding: Buffer, credentialId: string): Buffer {
  const head = Buffer.from(`${PROOF_CONTEXT}\0${credentialId}\0`, 'utf8');
  return Buffer.concat([head, channelBinding]);
}

/** Tunnel side: signs this TLS connection's keying material and the credential id. */
export function makeProof(privateKey: KeyObject, channelBinding: Buffer, credentialId: string): string {
  return sign(null, proofMessage(channelBinding, credentialId), privateKey).toString('base64url');
}

export interface CredentialProof {
  proof: string;
  publicJwk: JWK;
}

export interface VerifyCredentialOptions {
  brokerPublicKey: KeyObject;
  now: number;
  lookup: (id: string) => Promise<CredentialRecord | undefined>;
  /** When the gateway already knows the target the connection is for. */
  expectTarget?: string;
}

function connectAgain(target: string | undefined): string {
  return `run \`dbgov connect ${target ?? '<target>'}\` to get a new credential`;
}

/** Gateway side: returns the credential's record only if every check passes. */
export async function verifyCredential(token: string, proof: CredentialProof, channelBinding: Buffer, options: VerifyCredentialOptions): Promise<CredentialRecord> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, options.brokerPublicKey, {
      // Only EdDSA: `alg: none` or an HMAC keyed with the broker's public key is refused.
      algorithms: ['EdDSA'],
      issuer: BROKER_ISSUER,
      audience: CREDENTIAL_AUDIENCE,
      // A broker API token has another typ: it must not open a database session.
      typ: CREDENTIAL_TYPE,
      currentDate: new Date(options.now),
      clockTolerance: CLOCK_SKEW_SEC,
      requiredClaims: ['jti', 'exp', 'iat', 'sub'],
    }));
  } catch (e) {
    const target = peekTarget(token);
    if (e instanceof joseErrors.JWTExpired) {
      throw new AuthError('credential_expired', 'your database credential has expired', { cause: e, actions: [connectAgain(target)] });
    }
    throw new AuthError('credential_invalid', 'the database credential was not issued by this broker', { cause: e, actions: [connectAgain(target)] });
  }
  const id = payload.jti as string;
  // From here the broker's signature holds: a refusal can name the credential and its subject,
  // and, once the key proof passed too, the identity that really tried (for the audit record).
  let proven: CredentialRecord | undefined;
  try {
    return await checkVerified(payload, id, proof, channelBinding, options, (r) => (proven = r));
  } catch (e) {
    if (!(e instanceof AuthError)) throw e;
    const claimed = { credentialId: id, claimedIdentity: typeof payload.sub === 'string' ? payload.sub : null };
    throw new AuthError(e.code, e.message, { cause: e.cause, actions: e.actions, detail: { ...(e.detail ?? {}), ...claimed, ...(proven ? { identity: proven.identity } : {}) } });
  }
}

async function checkVerified(
  payload: Record<string, unknown>,
  id: string,
  proof: CredentialProof,
  channelBinding: Buffer,
  options: VerifyCredentialOptions,
  onProven: (record: CredentialRecord) => void,
): Promise<CredentialRecord> {
  const target = payload.tgt as string;
  const jkt = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
  if (typeof jkt !== 'string' || typeof target !== 'string' || !ACCESS_LEVELS.includes(payload.acc as AccessLevel)) {
    throw new AuthError('credential_invalid', 'the database credential is malformed', { actions: [connectAgain(undefined)] });
  }
  // The gateway for one target must not accept a credential scoped to another.
  if (options.expectTarget !== undefined && options.expectTarget !== target) {
    throw new AuthError('credential_wrong_target', `this credential is for target ${target}, not ${options.expectTarget}`, { actions: [connectAgain(options.expectTarget)] });
  }

  // Proof of possession first, so a stolen token cannot even probe the revocation state.
  if (typeof proof.proof !== 'string' || !proof.publicJwk || typeof proof.publicJwk !== 'object') {
    throw new AuthError('credential_no_proof', 'the connection carries no proof of the client key', { actions: ['upgrade the dbgov CLI', connectAgain(target)] });
  }
  const thumbprint = await ed25519Thumbprint(proof.publicJwk);
  // A captured credential replayed with another key fails here.
  if (thumbprint !== jkt) {
    throw new AuthError('credential_key_mismatch', 'this credential belongs to another client key (a copied credential is not usable)', {
      actions: [connectAgain(target), 'if you did not copy it, report it: the credential may have leaked'],
    });
  }
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: proof.publicJwk.x as string }, format: 'jwk' });
  // A proof made on another TLS connection (a replay) has another channel binding and fails here.
  if (!verify(null, proofMessage(channelBinding, id), publicKey, Buffer.from(proof.proof, 'base64url'))) {
    throw new AuthError('credential_bad_proof', 'the key proof does not match this connection (replayed or tampered)', { actions: [connectAgain(target)] });
  }

  const record = await options.lookup(id);
  // A credential the store does not know (wiped store, another broker cluster) is not trusted.
  if (!record) {
    throw new AuthError('credential_unknown', 'this broker has no record of the credential', { actions: [connectAgain(target)] });
  }
  // Only a record whose subject matches the signed token is the identity that proved the key.
  if (record.identity.id === payload.sub && record.keyThumbprint === jkt) onProven(record);
  // Revocation applies at once to new connections.
  if (record.revokedAt !== undefined) {
    throw new AuthError('credential_revoked', `your database credential was revoked${record.revokedBy ? ` by ${record.revokedBy}` : ''}`, {
      actions: [connectAgain(target), 'if you do not know why, ask the person who revoked it'],
    });
  }
  // The token and the stored record must agree, so an edited store row or a key mix-up is caught.
  if (record.keyThumbprint !== jkt || record.target !== target || record.database !== payload.db || record.access !== payload.acc || record.identity.id !== payload.sub) {
    throw new AuthError('credential_invalid', 'the credential does not match the broker record', { actions: [connectAgain(target)] });
  }
  if (record.expiresAt + CLOCK_SKEW_SEC * 1000 <= options.now) {
    throw new AuthError('credential_expired', 'your database credential has expired', { actions: [connectAgain(target)] });
  }
  return record;
}

/** For error messages only: the target an (unverified) credential names. */
function peekTarget(token: string): string | undefined {
  try {
    const body = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { tgt?: unknown };
    return typeof body.tgt === 'string' && /^[\w.-]{1,64}$/.test(body.tgt) ? body.tgt : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Tunnel hello: the first bytes the tunnel sends on the TLS connection to the gateway.
//   magic  "DBGOV" 0x01   (6 bytes; the last byte is the preamble version)
//   length uint32 big-endian (JSON byte length, at most MAX_TUNNEL_HELLO)
//   body   UTF-8 JSON { credential, proof, publicJwk, clientVersion }
// ---------------------------------------------------------------------------------------------

export const TUNNEL_MAGIC = Buffer.from('DBGOV\x01', 'latin1');
const HEADER_LENGTH = TUNNEL_MAGIC.length + 4;
export const MAX_TUNNEL_HELLO = 8 * 1024;

export interface TunnelHello extends CredentialProof {
  credential: string;
  clientVersion: string;
}

export type TunnelHelloRead =
  | { status: 'need-more' }
  /** The peer is not a dbgov tunnel (e.g. psql pointed straight at the gateway). */
  | { status: 'not-dbgov' }
  | { status: 'ok'; hello: TunnelHello; rest: Buffer };

export function tunnelHello(hello: TunnelHello): Buffer {
  const body = Buffer.from(JSON.stringify({ credential: hello.credential, proof: hello.proof, publicJwk: hello.publicJwk, clientVersion: hello.clientVersion }), 'utf8');
  if (body.length > MAX_TUNNEL_HELLO) throw new ProtocolError(`tunnel hello is ${body.length} bytes, over the ${MAX_TUNNEL_HELLO}-byte limit`);
  const header = Buffer.alloc(HEADER_LENGTH);
  TUNNEL_MAGIC.copy(header, 0);
  header.writeUInt32BE(body.length, TUNNEL_MAGIC.length);
  return Buffer.concat([header, body]);
}

/**
 * Parses a hello from the bytes received so far. Never reads past the hello: `rest` is the
 * start of the database protocol stream.
 */
export function readTunnelHello(buf: Buffer): TunnelHelloRead {
  const seen = Math.min(buf.length, TUNNEL_MAGIC.length);
  if (!buf.subarray(0, seen).equals(TUNNEL_MAGIC.subarray(0, seen))) return { status: 'not-dbgov' };
  if (buf.length < HEADER_LENGTH) return { status: 'need-more' };
  const length = buf.readUInt32BE(TUNNEL_MAGIC.length);
  // Refuse before buffering: a peer must not make the gateway hold an arbitrarily large preamble.
  if (length > MAX_TUNNEL_HELLO || length === 0) throw new ProtocolError(`tunnel hello length ${length} is outside 1..${MAX_TUNNEL_HELLO}`);
  if (buf.length < HEADER_LENGTH + length) return { status: 'need-more' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.subarray(HEADER_LENGTH, HEADER_LENGTH + length).toString('utf8'));
  } catch {
    throw new ProtocolError('tunnel hello is not valid JSON');
  }
  const h = parsed as Partial<TunnelHello> | null;
  if (!h || typeof h !== 'object' || typeof h.credential !== 'string' || typeof h.proof !== 'string' || !h.publicJwk || typeof h.publicJwk !== 'object' || Array.isArray(h.publicJwk) || typeof h.clientVersion !== 'string') {
    throw new ProtocolError('tunnel hello lacks credential, proof, publicJwk or clientVersion');
  }
  return {
    status: 'ok',
    hello: { credential: h.credential, proof: h.proof, publicJwk: h.publicJwk, clientVersion: h.clientVersion },
    rest: buf.subarray(HEADER_LENGTH + length),
  };
}

/** Reads the hello from a socket, giving back any bytes past it; refuses slow or silent peers. */
export function receiveTunnelHello(socket: NodeJS.ReadableStream & { pause(): void }, timeoutMs = 10_000): Promise<TunnelHelloRead & { status: 'ok' | 'not-dbgov'; received: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (fn: () => void) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.pause();
      fn();
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let r: TunnelHelloRead;
      try {
        r = readTunnelHello(buf);
      } catch (e) {
        done(() => reject(e));
        return;
      }
      if (r.status !== 'need-more') {
        const received = buf;
        done(() => resolve({ ...r, received }));
      }
    };
    const onEnd = () => done(() => reject(new ProtocolError('connection closed before the tunnel hello')));
    const onError = (e: Error) => done(() => reject(new ProtocolError(`connection failed before the tunnel hello: ${e.message}`, { cause: e })));
    // A peer that connects and stays silent must not hold a gateway slot forever.
    const timer = setTimeout(() => done(() => reject(new ProtocolError(`no tunnel hello within ${timeoutMs} ms`))), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
  });
}
