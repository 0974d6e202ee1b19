/**
 * The broker's own Ed25519 signing key and the broker access tokens it issues after a login
 * exchange. Credentials (credentials.ts) are signed with the same key but carry another `typ`
 * and audience, so neither kind of token is accepted in place of the other.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, errors as joseErrors, jwtVerify, SignJWT, type JWK } from 'jose';
import { AuthError, ConfigError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Identity } from '../shared/types.js';
import { IDENTITY_KINDS } from '../shared/types.js';
import { makeDir } from '../shared/dirs.js';

export interface BrokerKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  /** RFC 7638 thumbprint; the `kid` of every token signed with this key. */
  kid: string;
}

export const BROKER_ISSUER = 'dbgov-broker';
export const ACCESS_TOKEN_TYPE = 'dbgov-at+jwt';
const ACCESS_TOKEN_AUDIENCE = 'dbgov-api';
export const CLOCK_SKEW_SEC = 60;
export const DEFAULT_ACCESS_TOKEN_TTL_MS = 3_600_000;
const KEY_FILE = 'broker-signing-key.pem';

export async function brokerKeyFrom(privateKey: KeyObject): Promise<BrokerKey> {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError('broker signing key', undefined, `the key is ${privateKey.asymmetricKeyType}, not Ed25519`, 'generate one with `openssl genpkey -algorithm ed25519`');
  }
  const publicKey = createPublicKey(privateKey);
  const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
  return { privateKey, publicKey, publicJwk, kid: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

export async function generateBrokerKey(): Promise<BrokerKey> {
  return brokerKeyFrom(generateKeyPairSync('ed25519').privateKey);
}

/**
 * Loads `<dataDir>/broker-signing-key.pem`, creating it (0600) on first start. Brokers that scale
 * out must share this file, or their tokens are not accepted by each other.
 */
export async function loadOrCreateBrokerKey(dataDir: string): Promise<BrokerKey> {
  const file = join(dataDir, KEY_FILE);
  let pem: string | undefined;
  try {
    pem = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (pem !== undefined) {
    // A signing key other users can read lets them mint tokens for anyone: tighten it.
    await chmod(file, 0o600);
    try {
      return await brokerKeyFrom(createPrivateKey(pem));
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(file, undefined, 'the broker signing key is not a readable PEM private key', `move it aside and restart the broker to generate a new one (logged-in users must run \`dbgov login\` again)`, { cause: e });
    }
  }
  await makeDir(dataDir, 0o700);
  const key = await generateBrokerKey();
  // 'wx' so two brokers starting at once on a shared folder cannot overwrite each other's key.
  await writeFile(file, key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return brokerKeyFrom(createPrivateKey(await readFile(file, 'utf8')));
}

export interface IssuedBrokerToken {
  token: string;
  expiresAt: number;
}

export async function issueBrokerToken(identity: Identity, key: BrokerKey, options: { ttlMs?: number; clock?: Clock } = {}): Promise<IssuedBrokerToken> {
  const now = (options.clock ?? systemClock).now();
  const expiresAt = now + (options.ttlMs ?? DEFAULT_ACCESS_TOKEN_TTL_MS);
  // iat is whole seconds; revocation needs to tell a login made just before it from one just after.
  const token = await new SignJWT({ idn: identity, iat_ms: now })
    .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TOKEN_TYPE, kid: key.kid })
    .setIssuer(BROKER_ISSUER)
    .setAudience(ACCESS_TOKEN_AUDIENCE)
    .setSubject(identity.id)
    .setIssuedAt(Math.floor(now / 1000))
    // nbf lets the verifier refuse a token from a clock more than the skew ahead.
    .setNotBefore(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(expiresAt / 1000))
    .sign(key.privateKey);
  return { token, expiresAt: Math.floor(expiresAt / 1000) * 1000 };
}

export interface VerifiedBrokerToken {
  identity: Identity;
  expiresAt: number;
  /** Epoch ms the token was issued: revocation refuses tokens issued at or before it. */
  issuedAt: number;
}

export async function verifyBrokerToken(token: string, publicKey: KeyObject, options: { clock?: Clock } = {}): Promise<VerifiedBrokerToken> {
  const now = (options.clock ?? systemClock).now();
  try {
    const { payload } = await jwtVerify(token, publicKey, {
      // Only EdDSA: a token claiming `none` or an HMAC alg keyed with the public key is refused.
      algorithms: ['EdDSA'],
      issuer: BROKER_ISSUER,
      audience: ACCESS_TOKEN_AUDIENCE,
      // A credential has another typ: it must not work as an API token.
      typ: ACCESS_TOKEN_TYPE,
      currentDate: new Date(now),
      clockTolerance: CLOCK_SKEW_SEC,
      requiredClaims: ['exp', 'iat', 'sub'],
    });
    const identity = payload.idn as Identity | undefined;
    if (!identity || typeof identity.id !== 'string' || identity.id !== payload.sub || !IDENTITY_KINDS.includes(identity.kind) || !Array.isArray(identity.groups)) {
      throw new AuthError('token_invalid', 'your dbgov session token is malformed', { actions: ['run `dbgov login`'] });
    }
    const issuedAt = typeof payload.iat_ms === 'number' && Number.isFinite(payload.iat_ms) ? payload.iat_ms : (payload.iat as number) * 1000;
    return { identity, expiresAt: (payload.exp as number) * 1000, issuedAt };
  } catch (e) {
    if (e instanceof AuthError) throw e;
    if (e instanceof joseErrors.JWTExpired) {
      throw new AuthError('token_expired', 'your dbgov session has expired', { cause: e, actions: ['run `dbgov login`'] });
    }
    throw new AuthError('token_invalid', 'your dbgov session token is not valid for this broker', {
      cause: e,
      actions: ['run `dbgov login`', 'check DBGOV_BROKER points at the broker you logged in to'],
    });
  }
}
