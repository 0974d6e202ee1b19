/**
 * Broker side of a human login: verifies an ID token from the configured corporate issuer and
 * maps it to an Identity. Discovery and the JWKS are fetched from the issuer; nothing the CLI
 * says about the user is trusted beyond what the issuer signed.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { AuthError, UnreachableError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Identity } from '../shared/types.js';
import { CLOCK_SKEW_SEC } from './broker-tokens.js';

export interface OidcVerifierConfig {
  issuer: string;
  clientId: string;
  /** Claim holding the user's groups (default `groups`). A dotted path reaches nested claims. */
  groupsClaim?: string;
  /** If set, only these email domains may log in, and the email must be verified. */
  allowedEmailDomains?: string[];
  /** Signature algorithms accepted; `none` and HMAC are never accepted. */
  algorithms?: string[];
  /**
   * Oldest ID token accepted, by `iat` (default 600 s). The CLI refreshes at the IdP to get a
   * fresh one, and that refresh fails for a disabled user; an old token cannot stand in for it.
   */
  maxTokenAgeSec?: number;
}

export interface OidcVerifier {
  verifyIdToken(idToken: string): Promise<Identity>;
  /**
   * Asks the IdP's userinfo endpoint whether the access token still works for `sub`: a user
   * disabled at the IdP fails here even while an ID token is unexpired.
   */
  checkStillActive(accessToken: string, sub: string): Promise<void>;
}

export const DEFAULT_OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
const DEFAULT_MAX_TOKEN_AGE_SEC = 600;

const LOGIN_AGAIN = 'run `dbgov login` to sign in again';

interface Discovery {
  issuer: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
}

export function isLoopbackHost(url: URL): boolean {
  return url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
}

/** Only https, except on loopback, so a JWKS or discovery document cannot be swapped in transit. */
export function assertSecureUrl(url: URL, what: string): void {
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url))) return;
  throw new AuthError('insecure_idp_url', `the ${what} ${url.href} must use https`, { actions: ['fix the issuer URL in dbgov.yaml (identity section)'] });
}

export async function fetchDiscovery(issuer: string): Promise<Discovery> {
  const url = new URL(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  assertSecureUrl(url, 'issuer');
  let doc: Partial<Discovery>;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as Partial<Discovery>;
  } catch (e) {
    throw new UnreachableError('idp_unreachable', `cannot read the identity provider's discovery document at ${url.href}: ${(e as Error).message}`, {
      cause: e,
      actions: ['check that the identity provider is up and reachable from the broker'],
    });
  }
  // A discovery document for another issuer would let that issuer's tokens in (mix-up).
  if (doc.issuer !== issuer || typeof doc.jwks_uri !== 'string') {
    throw new AuthError('idp_discovery_mismatch', `the discovery document at ${url.href} names issuer ${String(doc.issuer)}, not ${issuer}`, {
      actions: ['set the identity issuer in dbgov.yaml to exactly the `issuer` your IdP publishes'],
    });
  }
  assertSecureUrl(new URL(doc.jwks_uri), 'JWKS URL');
  return doc as Discovery;
}

export function createOidcVerifier(config: OidcVerifierConfig, options: { clock?: Clock } = {}): OidcVerifier {
  const clock = options.clock ?? systemClock;
  const algorithms = (config.algorithms ?? [...DEFAULT_OIDC_ALGORITHMS]).filter((a) => a !== 'none' && !a.startsWith('HS'));
  let loaded: Promise<{ doc: Discovery; jwks: JWTVerifyGetKey }> | undefined;
  const load = () => {
    loaded ??= fetchDiscovery(config.issuer).then((doc) => ({ doc, jwks: createRemoteJWKSet(new URL(doc.jwks_uri)) }));
    // A failed discovery is retried on the next login rather than cached forever.
    loaded.catch(() => {
      loaded = undefined;
    });
    return loaded;
  };

  return {
    async verifyIdToken(idToken) {
      const { jwks } = await load();
      const now = clock.now();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(idToken, jwks, {
          issuer: config.issuer,
          audience: config.clientId,
          algorithms,
          currentDate: new Date(now),
          clockTolerance: CLOCK_SKEW_SEC,
          maxTokenAge: config.maxTokenAgeSec ?? DEFAULT_MAX_TOKEN_AGE_SEC,
          requiredClaims: ['sub', 'exp', 'iat'],
        }));
      } catch (e) {
        throw joseToAuthError(e, config.issuer);
      }
      // With several audiences, azp must name us, or a token minted for another app gets in.
      if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== config.clientId) {
        throw new AuthError('id_token_wrong_audience', 'the ID token was issued to another application', { actions: [LOGIN_AGAIN] });
      }
      return toIdentity(payload, config);
    },

    async checkStillActive(accessToken, sub) {
      const { doc } = await load();
      if (!doc.userinfo_endpoint) return;
      const url = new URL(doc.userinfo_endpoint);
      assertSecureUrl(url, 'userinfo URL');
      let res: Response;
      try {
        res = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(10_000) });
      } catch (e) {
        throw new UnreachableError('idp_unreachable', `cannot reach the identity provider's userinfo endpoint: ${(e as Error).message}`, { cause: e, actions: ['try again in a minute'] });
      }
      const body = res.ok ? ((await res.json()) as { sub?: string }) : undefined;
      // Another user's access token must not vouch for this one.
      if (!body || body.sub !== sub) {
        throw new AuthError('idp_user_inactive', 'the identity provider no longer accepts your sign-in (the account may be disabled)', {
          actions: [LOGIN_AGAIN, 'if that fails, ask your administrator whether your account is active'],
        });
      }
    },
  };
}

function joseToAuthError(e: unknown, issuer: string): AuthError {
  if (e instanceof joseErrors.JWTExpired) {
    // jose reports an ID token older than maxTokenAge as an expired `iat`.
    return e.claim === 'iat'
      ? new AuthError('id_token_too_old', 'the ID token is too old to exchange', { cause: e, actions: [LOGIN_AGAIN] })
      : new AuthError('id_token_expired', 'your sign-in has expired', { cause: e, actions: [LOGIN_AGAIN] });
  }
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    const what = e.claim === 'iss' ? `was not issued by ${issuer}` : e.claim === 'aud' ? 'was issued to another application' : e.claim === 'iat' ? 'is issued in the future; check the clocks of the broker and the IdP' : `has an invalid ${e.claim} claim`;
    return new AuthError('id_token_invalid', `the ID token ${what}`, { cause: e, actions: [LOGIN_AGAIN] });
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) {
    return new AuthError('id_token_bad_alg', 'the ID token uses a signature algorithm dbgov does not accept', { cause: e, actions: [LOGIN_AGAIN] });
  }
  if (e instanceof joseErrors.JWKSTimeout || e instanceof TypeError) {
    return new AuthError('idp_unreachable', `cannot fetch the signing keys of ${issuer}`, { cause: e, actions: ['check the broker can reach the identity provider'] });
  }
  return new AuthError('id_token_invalid', 'the ID token signature does not verify', { cause: e, actions: [LOGIN_AGAIN] });
}

function claimAt(payload: JWTPayload, path: string): unknown {
  if (path in payload) return payload[path];
  let cur: unknown = payload;
  for (const part of path.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
  return cur;
}

function toIdentity(payload: JWTPayload, config: OidcVerifierConfig): Identity {
  // An email the IdP marks unverified could be anyone's address: never use it as the identity.
  const email = typeof payload.email === 'string' && payload.email_verified !== false ? payload.email.toLowerCase() : undefined;
  if (config.allowedEmailDomains?.length) {
    const domain = email?.split('@')[1];
    if (!email || !domain || !config.allowedEmailDomains.some((d) => d.toLowerCase() === domain)) {
      throw new AuthError('email_domain_not_allowed', `${email ?? 'this account'} is not in an allowed email domain (${config.allowedEmailDomains.join(', ')})`, {
        actions: ['sign in with your company account: run `dbgov login`'],
      });
    }
  }
  const rawGroups = claimAt(payload, config.groupsClaim ?? 'groups');
  const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : typeof rawGroups === 'string' ? [rawGroups] : [];
  return {
    id: email ?? (payload.sub as string),
    kind: 'human',
    groups,
    source: 'oidc',
    issuer: payload.iss as string,
    ...(email ? { email } : {}),
    ...(typeof payload.name === 'string' ? { name: payload.name } : {}),
  };
}
