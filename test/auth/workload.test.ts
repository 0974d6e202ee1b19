import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, UnsecuredJWT, type JWTPayload } from 'jose';
import { createWorkloadVerifier, globToRegExp, type WorkloadIssuerConfig, type WorkloadVerifier } from '../../src/auth/workload.js';
import { AuthError } from '../../src/shared/errors.js';
import { nowSec, startTestIssuer, type TestIssuer } from './test-issuer.js';

let gh: TestIssuer;
let k8s: TestIssuer;
let untrusted: TestIssuer;
let verifier: WorkloadVerifier;

before(async () => {
  gh = await startTestIssuer({ alg: 'RS256' });
  // Kubernetes API servers are configured with a JWKS URI; no discovery document.
  k8s = await startTestIssuer({ discovery: false, path: '/k8s' });
  untrusted = await startTestIssuer();
  const issuers: WorkloadIssuerConfig[] = [
    {
      issuer: gh.issuer,
      audience: 'https://dbgov.acme.com',
      rules: [
        { match: { sub: 'repo:acme/*:ref:refs/heads/main', repository_owner: 'acme' }, identity: 'ci-main', groups: ['ci'], kind: 'workload' },
        { match: { sub: 'repo:acme/app:**', repository: 'acme/app' }, identity: 'ci-app-any-ref', groups: ['ci-readonly'] },
      ],
    },
    {
      issuer: k8s.issuer,
      audience: 'dbgov',
      jwksUri: k8s.jwksUri,
      rules: [{ match: { sub: 'system:serviceaccount:agents:*' }, identity: 'k8s-agent', groups: ['agents'], kind: 'agent' }],
    },
  ];
  verifier = createWorkloadVerifier(issuers);
});
after(async () => {
  await Promise.all([gh.close(), k8s.close(), untrusted.close()]);
});

const ghClaims = (over: JWTPayload = {}): JWTPayload => ({
  iss: gh.issuer,
  aud: 'https://dbgov.acme.com',
  sub: 'repo:acme/api:ref:refs/heads/main',
  repository: 'acme/api',
  repository_owner: 'acme',
  ref: 'refs/heads/main',
  iat: nowSec(),
  exp: nowSec() + 300,
  ...over,
});
const k8sClaims = (over: JWTPayload = {}): JWTPayload => ({
  iss: k8s.issuer,
  aud: ['dbgov'],
  sub: 'system:serviceaccount:agents:summarizer',
  'kubernetes.io': { namespace: 'agents', serviceaccount: { name: 'summarizer' } },
  iat: nowSec(),
  exp: nowSec() + 600,
  ...over,
});

interface Case {
  name: string;
  token: () => Promise<string>;
  expect: { id: string; kind: string; groups: string[] } | { code: string };
}

const cases: Case[] = [
  { name: 'GitHub Actions, main branch', token: () => gh.sign(ghClaims()), expect: { id: 'ci-main', kind: 'workload', groups: ['ci'] } },
  {
    name: 'GitHub Actions, feature branch of acme/app (second rule)',
    token: () => gh.sign(ghClaims({ sub: 'repo:acme/app:ref:refs/heads/feature', repository: 'acme/app', ref: 'refs/heads/feature' })),
    expect: { id: 'ci-app-any-ref', kind: 'workload', groups: ['ci-readonly'] },
  },
  {
    name: '* does not cross ":" (crafted extra segments)',
    token: () => gh.sign(ghClaims({ sub: 'repo:acme/x:environment:prod:ref:refs/heads/main' })),
    expect: { code: 'workload_no_rule' },
  },
  { name: 'other owner', token: () => gh.sign(ghClaims({ sub: 'repo:evil/api:ref:refs/heads/main', repository_owner: 'evil' })), expect: { code: 'workload_no_rule' } },
  { name: 'missing exact-match claim', token: () => gh.sign(ghClaims({ repository_owner: undefined })), expect: { code: 'workload_no_rule' } },
  { name: 'Kubernetes service account', token: () => k8s.sign(k8sClaims()), expect: { id: 'k8s-agent', kind: 'agent', groups: ['agents'] } },
  { name: 'Kubernetes, other namespace', token: () => k8s.sign(k8sClaims({ sub: 'system:serviceaccount:default:x' })), expect: { code: 'workload_no_rule' } },
  { name: 'wrong key', token: async () => gh.sign(ghClaims(), { key: (await generateKeyPair('RS256')).privateKey }), expect: { code: 'workload_token_invalid' } },
  { name: 'alg none', token: async () => new UnsecuredJWT(ghClaims()).encode(), expect: { code: 'workload_token_bad_alg' } },
  { name: 'expired', token: () => gh.sign(ghClaims({ iat: nowSec() - 900, exp: nowSec() - 120 })), expect: { code: 'workload_token_expired' } },
  { name: 'expired within skew', token: () => gh.sign(ghClaims({ iat: nowSec() - 900, exp: nowSec() - 45 })), expect: { id: 'ci-main', kind: 'workload', groups: ['ci'] } },
  { name: 'wrong audience', token: () => gh.sign(ghClaims({ aud: 'sts.amazonaws.com' })), expect: { code: 'workload_token_wrong_audience' } },
  {
    name: 'token of one trusted issuer claiming the other',
    token: () => k8s.sign(ghClaims()),
    expect: { code: 'workload_token_invalid' },
  },
  { name: 'untrusted issuer', token: () => untrusted.sign(ghClaims({ iss: untrusted.issuer })), expect: { code: 'workload_issuer_untrusted' } },
  { name: 'not a JWT', token: async () => 'hello', expect: { code: 'workload_token_malformed' } },
];

describe('workload identity', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const run = verifier.verify(await c.token());
      if ('code' in c.expect) {
        const code = c.expect.code;
        await assert.rejects(run, (e: unknown) => e instanceof AuthError && e.code === code && e.actions.length > 0);
      } else {
        const identity = await run;
        assert.deepEqual({ id: identity.id, kind: identity.kind, groups: identity.groups }, c.expect);
        assert.equal(identity.source, 'workload');
      }
    });
  }

  const globs: [string, string, boolean][] = [
    ['repo:acme/*:ref:refs/heads/main', 'repo:acme/app:ref:refs/heads/main', true],
    ['repo:acme/*:ref:refs/heads/main', 'repo:acme/a:b:ref:refs/heads/main', false],
    ['repo:acme/app:**', 'repo:acme/app:ref:refs/tags/v1', true],
    ['repo:acme/ap?:*', 'repo:acme/api:x', true],
    ['repo:acme.app:*', 'repo:acmeXapp:x', false],
  ];
  for (const [glob, sub, want] of globs) {
    test(`glob ${glob} vs ${sub} → ${want}`, () => assert.equal(globToRegExp(glob).test(sub), want));
  }
});
