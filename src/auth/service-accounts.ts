/**
 * Service-account tokens for CI pipelines and agents (DBGOV_TOKEN). A token is
 * `dbgov_sa_<43 base62 chars>` (~256 bits); only its SHA-256 is ever stored.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthError } from '../shared/errors.js';
import type { Identity } from '../shared/types.js';
import type { ServiceAccountRecord, Store } from '../store/store.js';

export const SERVICE_ACCOUNT_PREFIX = 'dbgov_sa_';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 43;
const TOKEN_PATTERN = /^dbgov_sa_[0-9A-Za-z]{43}$/;

export function generateServiceAccountToken(): string {
  let out = '';
  while (out.length < RANDOM_LENGTH) {
    for (const b of randomBytes(64)) {
      // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
      if (b < 248 && out.length < RANDOM_LENGTH) out += BASE62[b % 62];
    }
  }
  return SERVICE_ACCOUNT_PREFIX + out;
}

export function isServiceAccountToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

export function hashServiceAccountToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Finds the account whose hash matches, comparing against every candidate in constant time so
 * the response time does not reveal how much of a guessed hash matched.
 */
export function findByTokenHash(accounts: readonly ServiceAccountRecord[], tokenHash: string): ServiceAccountRecord | undefined {
  const wanted = Buffer.from(tokenHash, 'hex');
  let found: ServiceAccountRecord | undefined;
  for (const a of accounts) {
    const have = Buffer.from(a.tokenHash, 'hex');
    if (have.length === wanted.length && timingSafeEqual(have, wanted) && !found) found = a;
  }
  return found;
}

export interface ConfigServiceAccount {
  id: string;
  token: string;
  groups?: string[];
  kind?: 'workload' | 'agent';
  owner?: string;
}

/** Hashes the dbgov.yaml accounts at load; the plain tokens are dropped. */
export function serviceAccountsFromConfig(entries: readonly ConfigServiceAccount[], now: number): ServiceAccountRecord[] {
  return entries.map((e) => ({
    id: e.id,
    tokenHash: hashServiceAccountToken(e.token),
    groups: [...(e.groups ?? [])],
    kind: e.kind ?? 'workload',
    ...(e.owner !== undefined ? { owner: e.owner } : {}),
    createdAt: now,
    origin: 'config' as const,
  }));
}

export function serviceAccountIdentity(account: ServiceAccountRecord): Identity {
  return { id: account.id, kind: account.kind, groups: [...account.groups], source: 'service-account', issuer: 'dbgov' };
}

/** Config accounts first (they cannot be revoked through the API), then the store. */
export async function authenticateServiceAccount(
  token: string,
  sources: { config: readonly ServiceAccountRecord[]; store?: Pick<Store, 'findServiceAccountByTokenHash'> },
): Promise<Identity> {
  const hash = hashServiceAccountToken(token);
  const account = findByTokenHash(sources.config, hash) ?? (await sources.store?.findServiceAccountByTokenHash(hash));
  if (!account) {
    throw new AuthError('service_account_unknown', 'DBGOV_TOKEN is not a valid service-account token', {
      actions: ['check DBGOV_TOKEN', 'ask an admin to run `dbgov admin service-account create NAME` for a new token'],
    });
  }
  // A revoked account's token must stop working at once, even though its hash is still stored.
  if (account.revokedAt !== undefined) {
    throw new AuthError('service_account_revoked', `service account ${account.id} was revoked`, {
      actions: ['ask an admin to run `dbgov admin service-account create NAME` for a new token'],
    });
  }
  return serviceAccountIdentity(account);
}
