/**
 * The broker's one entry point for "who is calling": the login exchange (POST /v1/auth/exchange)
 * and the bearer check on every other API call. It composes the single-concern modules.
 */
import { createHash } from 'node:crypto';
import type { ExchangeRequest, ExchangeResponse } from '../broker/api-types.js';
import { AuthError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Identity } from '../shared/types.js';
import type { ServiceAccountRecord, Store } from '../store/store.js';
import { issueBrokerToken, verifyBrokerToken, type BrokerKey } from './broker-tokens.js';
import type { OidcVerifier } from './oidc-verify.js';
import { authenticateServiceAccount } from './service-accounts.js';
import type { WorkloadVerifier } from './workload.js';

export interface AuthenticatorDeps {
  brokerKey: BrokerKey;
  oidc?: OidcVerifier;
  workload?: WorkloadVerifier;
  serviceAccounts: readonly ServiceAccountRecord[];
  store?: Pick<Store, 'findServiceAccountByTokenHash'> & Partial<Pick<Store, 'tokensRevokedAt'>>;
  accessTokenTtlMs?: number;
  /** How long a successful "still active at the IdP" check is trusted (default 5 s). */
  idpRecheckMs?: number;
  clock?: Clock;
}

/** What the broker remembers of an SSO login, to ask the IdP again whether the user is active. */
interface IdpSession {
  accessToken: string;
  sub: string;
  /** The broker token's expiry: the entry is useless after it. */
  expiresAt: number;
  checkedAt: number;
  /** Set once the IdP said no: the token stays refused until it expires. */
  refused?: AuthError;
}

const DEFAULT_IDP_RECHECK_MS = 5_000;
export const MAX_ID_TOKEN_CHARS = 16 * 1024;

function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export interface Caller {
  identity: Identity;
  /** Null for service accounts, whose tokens do not expire. */
  expiresAt: number | null;
}

export interface Authenticator {
  exchange(req: ExchangeRequest): Promise<ExchangeResponse>;
  authenticate(authorizationHeader: string | undefined): Promise<Caller>;
}

export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  const clock = deps.clock ?? systemClock;
  const options = { clock, ...(deps.accessTokenTtlMs !== undefined ? { ttlMs: deps.accessTokenTtlMs } : {}) };
  const recheckMs = deps.idpRecheckMs ?? DEFAULT_IDP_RECHECK_MS;
  // Broker tokens of SSO logins whose IdP access token we hold, by token hash (never the token).
  const idpSessions = new Map<string, IdpSession>();
  const remember = (brokerToken: string, expiresAt: number, accessToken: string, sub: string): void => {
    const now = clock.now();
    for (const [k, v] of idpSessions) if (v.expiresAt <= now) idpSessions.delete(k);
    idpSessions.set(tokenKey(brokerToken), { accessToken, sub, expiresAt, checkedAt: now });
  };

  /**
   * A user disabled at the IdP must not get new credentials with a broker token that is still
   * unexpired: the IdP is asked again (at most every `recheckMs`) while the token is in use.
   * Tokens from another broker sharing the store are not known here and run out at their TTL.
   */
  const stillActive = async (brokerToken: string): Promise<void> => {
    const key = tokenKey(brokerToken);
    const s = idpSessions.get(key);
    if (!s || !deps.oidc) return;
    if (s.refused) throw s.refused;
    if (clock.now() - s.checkedAt < recheckMs) return;
    try {
      await deps.oidc.checkStillActive(s.accessToken, s.sub);
    } catch (e) {
      // Only a definite "no" ends the token; an IdP that is down does not lock everyone out.
      if (!(e instanceof AuthError)) return;
      s.refused = e;
      throw e;
    }
    s.checkedAt = clock.now();
  };

  return {
    async exchange(req) {
      // Real ID tokens (IdP, GitHub, GitLab, Kubernetes) are a few KiB. A larger one is refused
      // before any parsing, so an unauthenticated caller cannot make each refusal (and its audit
      // record, which quotes the token's issuer) arbitrarily large.
      if (typeof req.idToken !== 'string' || req.idToken.length > MAX_ID_TOKEN_CHARS) {
        throw new AuthError('id_token_too_large', `the ID token is missing or longer than ${MAX_ID_TOKEN_CHARS} characters`, { actions: ['pass the raw OIDC token your IdP, CI or Kubernetes issued'] });
      }
      let identity: Identity;
      let idp: { accessToken: string; sub: string } | undefined;
      switch (req.grant) {
        case 'oidc': {
          if (!deps.oidc) throw new AuthError('oidc_not_configured', 'this broker has no identity provider for human logins', { actions: ['set DBGOV_TOKEN to a service-account token, or ask your admin to configure identity.oidc'] });
          identity = await deps.oidc.verifyIdToken(req.idToken);
          // When the CLI sends its IdP access token, a user disabled at the IdP is caught now, not at ID-token expiry.
          if (req.accessToken !== undefined) {
            const sub = JSON.parse(Buffer.from(req.idToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string };
            await deps.oidc.checkStillActive(req.accessToken, sub.sub);
            idp = { accessToken: req.accessToken, sub: sub.sub };
          }
          break;
        }
        case 'workload': {
          if (!deps.workload) throw new AuthError('workload_not_configured', 'this broker trusts no workload issuers', { actions: ['ask your admin to add identity.workloadIssuers to dbgov.yaml'] });
          identity = await deps.workload.verify(req.idToken);
          break;
        }
        default: {
          const never: never = req;
          throw new AuthError('unknown_grant', `unknown exchange grant ${String((never as { grant: unknown }).grant)}`, { actions: ['upgrade the dbgov CLI'] });
        }
      }
      const { token, expiresAt } = await issueBrokerToken(identity, deps.brokerKey, options);
      if (idp) remember(token, expiresAt, idp.accessToken, idp.sub);
      return { accessToken: token, expiresAt, identity };
    },

    async authenticate(header) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
      if (!m) throw new AuthError('not_logged_in', 'you are not logged in to this broker', { actions: ['run `dbgov login`', 'or set DBGOV_TOKEN to a service-account token'] });
      const token = m[1];
      // Broker tokens are JWTs; anything else (including config tokens without the dbgov_sa_ prefix) is a service-account token.
      if (token.split('.').length !== 3) {
        return { identity: await authenticateServiceAccount(token, { config: deps.serviceAccounts, ...(deps.store ? { store: deps.store } : {}) }), expiresAt: null };
      }
      const caller = await verifyBrokerToken(token, deps.brokerKey.publicKey, { clock });
      // `dbgov revoke --identity` must also stop a copied login from minting new credentials
      // for the rest of its hour; a login made after the revocation works again.
      const revokedAt = await deps.store?.tokensRevokedAt?.(caller.identity.id);
      if (revokedAt !== undefined && caller.issuedAt <= revokedAt) {
        throw new AuthError('token_revoked', 'your dbgov session was revoked', { actions: ['run `dbgov login` to sign in again', 'if you do not know why, ask your dbgov admin'] });
      }
      await stillActive(token);
      return { identity: caller.identity, expiresAt: caller.expiresAt };
    },
  };
}
