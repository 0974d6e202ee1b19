import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { createOidcVerifier, type OidcVerifierConfig } from '../../src/auth/oidc-verify.js';
import { AuthError } from '../../src/shared/errors.js';
import { nowSec, startTestIssuer, type TestIssuer } from './test-issuer.js';

const CLIENT = 'dbgov-cli';
let idp: TestIssuer;
let other: TestIssuer;

before(async () => {
  idp = await startTestIssuer();
  other = await startTestIssuer();
});
after(async () => {
  await idp.close();
  await other.close();
});

const base = (): JWTPayload => ({ iss: idp.issuer, aud: CLIENT, sub: 'u1', email: 'Ann@Acme.com', email_verified: true, name: 'Ann', groups: ['developers', 'oncall'], iat: nowSec(), exp: nowSec() + 300 });

interface Case {
  name: string;
  token: () => Promise<string>;
  config?: Partial<OidcVerifierConfig>;
  expect: { id: string; groups: string[] } | { code: string };
}

const cases: Case[] = [
  { name: 'valid token', token: () => idp.sign(base()), expect: { id: 'ann@acme.com', groups: ['developers', 'oncall'] } },
  {
    name: 'wrong key (same kid)',
    token: async () => idp.sign(base(), { key: (await generateKeyPair('ES256')).privateKey }),
    expect: { code: 'id_token_invalid' },
  },
  { name: 'alg none', token: async () => new UnsecuredJWT(base()).encode(), expect: { code: 'id_token_bad_alg' } },
  {
    name: 'HS256 keyed with a guessable secret',
    token: () => new SignJWT(base()).setProtectedHeader({ alg: 'HS256', kid: 'test-key-1' }).sign(new TextEncoder().encode('secret-secret-secret-secret-1234')),
    expect: { code: 'id_token_bad_alg' },
  },
  { name: 'expired beyond the 60 s skew', token: () => idp.sign({ ...base(), iat: nowSec() - 400, exp: nowSec() - 90 }), expect: { code: 'id_token_expired' } },
  { name: 'expired within the 60 s skew', token: () => idp.sign({ ...base(), iat: nowSec() - 400, exp: nowSec() - 30 }), expect: { id: 'ann@acme.com', groups: ['developers', 'oncall'] } },
  { name: 'issued 30 s in the future (skew)', token: () => idp.sign({ ...base(), iat: nowSec() + 30 }), expect: { id: 'ann@acme.com', groups: ['developers', 'oncall'] } },
  { name: 'issued 5 min in the future', token: () => idp.sign({ ...base(), iat: nowSec() + 300, exp: nowSec() + 900 }), expect: { code: 'id_token_invalid' } },
  { name: 'wrong audience', token: () => idp.sign({ ...base(), aud: 'other-app' }), expect: { code: 'id_token_invalid' } },
  { name: 'several audiences, azp not us', token: () => idp.sign({ ...base(), aud: [CLIENT, 'other-app'], azp: 'other-app' }), expect: { code: 'id_token_wrong_audience' } },
  { name: 'wrong issuer claim', token: () => idp.sign({ ...base(), iss: 'https://evil.example' }), expect: { code: 'id_token_invalid' } },
  { name: 'token from another issuer', token: () => other.sign({ ...base(), iss: other.issuer }), expect: { code: 'id_token_invalid' } },
  { name: 'too old (iat 1 h ago)', token: () => idp.sign({ ...base(), iat: nowSec() - 3600, exp: nowSec() + 3600 }), expect: { code: 'id_token_too_old' } },
  {
    name: 'email domain allowed',
    token: () => idp.sign(base()),
    config: { allowedEmailDomains: ['acme.com'] },
    expect: { id: 'ann@acme.com', groups: ['developers', 'oncall'] },
  },
  { name: 'email domain not allowed', token: () => idp.sign(base()), config: { allowedEmailDomains: ['corp.example'] }, expect: { code: 'email_domain_not_allowed' } },
  {
    name: 'unverified email is neither allowed nor used as id',
    token: () => idp.sign({ ...base(), email_verified: false }),
    config: { allowedEmailDomains: ['acme.com'] },
    expect: { code: 'email_domain_not_allowed' },
  },
  { name: 'unverified email falls back to sub', token: () => idp.sign({ ...base(), email_verified: false }), expect: { id: 'u1', groups: ['developers', 'oncall'] } },
  {
    name: 'nested groups claim',
    token: () => idp.sign({ ...base(), groups: undefined, realm_access: { roles: ['dba'] } }),
    config: { groupsClaim: 'realm_access.roles' },
    expect: { id: 'ann@acme.com', groups: ['dba'] },
  },
];

describe('oidc-verify: ID tokens from the corporate issuer', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const verifier = createOidcVerifier({ issuer: idp.issuer, clientId: CLIENT, ...c.config });
      const run = verifier.verifyIdToken(await c.token());
      if ('code' in c.expect) {
        const code = c.expect.code;
        await assert.rejects(run, (e: unknown) => e instanceof AuthError && e.code === code && e.actions.length > 0);
      } else {
        const identity = await run;
        assert.equal(identity.id, c.expect.id);
        assert.deepEqual(identity.groups, c.expect.groups);
        assert.equal(identity.kind, 'human');
        assert.equal(identity.source, 'oidc');
        assert.equal(identity.issuer, idp.issuer);
      }
    });
  }

  test('a discovery document naming another issuer is refused (mix-up)', async () => {
    const verifier = createOidcVerifier({ issuer: `${idp.issuer}/`, clientId: CLIENT });
    await assert.rejects(verifier.verifyIdToken(await idp.sign(base())), (e: unknown) => e instanceof AuthError && e.code === 'idp_discovery_mismatch');
  });

  test('a plain-http issuer off loopback is refused', async () => {
    const verifier = createOidcVerifier({ issuer: 'http://idp.example.com', clientId: CLIENT });
    await assert.rejects(verifier.verifyIdToken(await idp.sign(base())), (e: unknown) => e instanceof AuthError && e.code === 'insecure_idp_url');
  });
});
