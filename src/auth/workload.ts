/**
 * Workload identity: a pipeline or a pod presents an OIDC JWT from a trusted issuer (GitHub
 * Actions, GitLab, a Kubernetes service-account token). The broker verifies it against that
 * issuer's JWKS and maps its claims to an Identity through config rules.
 */
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { AuthError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Identity } from '../shared/types.js';
import { CLOCK_SKEW_SEC } from './broker-tokens.js';
import { assertSecureUrl, DEFAULT_OIDC_ALGORITHMS, fetchDiscovery } from './oidc-verify.js';

export interface WorkloadRule {
  /**
   * Claims that must match. `sub` is a glob: `*` matches within one `:`-separated segment,
   * `**` matches across segments. Every other claim must be equal (as a string).
   */
  match: Record<string, string>;
  identity: string;
  groups?: string[];
  kind?: 'workload' | 'agent';
}

export interface WorkloadIssuerConfig {
  issuer: string;
  audience: string;
  /** Skips discovery (Kubernetes API servers often do not serve it to the broker). */
  jwksUri?: string;
  algorithms?: string[];
  rules: WorkloadRule[];
}

export interface WorkloadVerifier {
  verify(token: string): Promise<Identity>;
}

const ACTION = 'check the identity.workloadIssuers section of dbgov.yaml, or that the pipeline requests its token with the right audience';

/** Compiles a sub glob: `*` never crosses `:`, so `repo:acme/*:ref:…` cannot match a sub crafted with extra segments. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^:]*';
    else if (c === '?') re += '[^:]';
    else re += c.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function matchRule(rule: WorkloadRule, claims: JWTPayload): boolean {
  return Object.entries(rule.match).every(([name, expected]) => {
    const actual = claims[name];
    // A missing or structured claim never matches, so a rule cannot be satisfied by omission.
    if (typeof actual !== 'string' && typeof actual !== 'number' && typeof actual !== 'boolean') return false;
    return name === 'sub' ? globToRegExp(expected).test(String(actual)) : String(actual) === expected;
  });
}

export function createWorkloadVerifier(issuers: readonly WorkloadIssuerConfig[], options: { clock?: Clock } = {}): WorkloadVerifier {
  const clock = options.clock ?? systemClock;
  const keySets = new Map<string, Promise<JWTVerifyGetKey>>();
  const keysFor = (cfg: WorkloadIssuerConfig): Promise<JWTVerifyGetKey> => {
    let p = keySets.get(cfg.issuer);
    if (!p) {
      p = (async () => {
        const uri = new URL(cfg.jwksUri ?? (await fetchDiscovery(cfg.issuer)).jwks_uri);
        assertSecureUrl(uri, 'JWKS URL');
        return createRemoteJWKSet(uri);
      })();
      // A failed discovery is retried next time rather than cached.
      p.catch(() => keySets.delete(cfg.issuer));
      keySets.set(cfg.issuer, p);
    }
    return p;
  };

  return {
    async verify(token) {
      let unverified: JWTPayload;
      try {
        unverified = decodeJwt(token);
      } catch (e) {
        throw new AuthError('workload_token_malformed', 'the workload token is not a JWT', { cause: e, actions: ['pass the raw OIDC token from your CI or Kubernetes'] });
      }
      // The unverified iss only picks which trusted keys to check against; an unknown issuer stops here.
      const cfg = issuers.find((i) => i.issuer === unverified.iss);
      if (!cfg) {
        throw new AuthError('workload_issuer_untrusted', `workload tokens from ${String(unverified.iss)} are not trusted by this broker`, { actions: [ACTION] });
      }
      const algorithms = (cfg.algorithms ?? [...DEFAULT_OIDC_ALGORITHMS]).filter((a) => a !== 'none' && !a.startsWith('HS'));
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(token, await keysFor(cfg), {
          issuer: cfg.issuer,
          audience: cfg.audience,
          algorithms,
          currentDate: new Date(clock.now()),
          clockTolerance: CLOCK_SKEW_SEC,
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (e) {
        throw workloadError(e, cfg);
      }
      const rule = cfg.rules.find((r) => matchRule(r, claims));
      // A valid token from a trusted issuer still gets nothing unless a rule names it.
      if (!rule) {
        throw new AuthError('workload_no_rule', `no rule for ${cfg.issuer} matches sub ${String(claims.sub)}`, {
          actions: ['add a rule for this workload under identity.workloadIssuers in dbgov.yaml'],
        });
      }
      return { id: rule.identity, kind: rule.kind ?? 'workload', groups: [...(rule.groups ?? [])], source: 'workload', issuer: cfg.issuer };
    },
  };
}

function workloadError(e: unknown, cfg: WorkloadIssuerConfig): AuthError {
  if (e instanceof AuthError) return e;
  if (e instanceof joseErrors.JWTExpired) {
    return new AuthError('workload_token_expired', 'the workload token has expired', { cause: e, actions: ['request a fresh OIDC token in the pipeline step that runs dbgov'] });
  }
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    const what = e.claim === 'aud' ? `is not for audience ${cfg.audience}` : e.claim === 'iss' ? `was not issued by ${cfg.issuer}` : `has an invalid ${e.claim} claim`;
    return new AuthError(`workload_token_wrong_${e.claim === 'aud' ? 'audience' : e.claim === 'iss' ? 'issuer' : 'claim'}`, `the workload token ${what}`, { cause: e, actions: [ACTION] });
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed || e instanceof joseErrors.JOSENotSupported) {
    return new AuthError('workload_token_bad_alg', 'the workload token uses a signature algorithm dbgov does not accept', { cause: e, actions: [ACTION] });
  }
  return new AuthError('workload_token_invalid', `the workload token's signature does not verify against ${cfg.issuer}'s keys`, { cause: e, actions: [ACTION] });
}
