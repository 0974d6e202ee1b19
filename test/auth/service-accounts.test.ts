import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  authenticateServiceAccount,
  findByTokenHash,
  generateServiceAccountToken,
  hashServiceAccountToken,
  isServiceAccountToken,
  serviceAccountsFromConfig,
} from '../../src/auth/service-accounts.js';
import { AuthError } from '../../src/shared/errors.js';
import type { ServiceAccountRecord } from '../../src/store/store.js';

describe('service accounts', () => {
  test('tokens have the documented format and do not repeat', () => {
    const tokens = new Set(Array.from({ length: 200 }, generateServiceAccountToken));
    assert.equal(tokens.size, 200);
    for (const t of tokens) assert.match(t, /^dbgov_sa_[0-9A-Za-z]{43}$/);
    assert.ok([...tokens].every(isServiceAccountToken));
    assert.equal(isServiceAccountToken('dbgov_sa_short'), false);
  });

  test('config accounts keep only the hash', () => {
    const [rec] = serviceAccountsFromConfig([{ id: 'ci-bot', token: 'dbgov_sa_secret', groups: ['ci'], kind: 'workload' }], 1);
    assert.equal(rec.tokenHash, hashServiceAccountToken('dbgov_sa_secret'));
    assert.match(rec.tokenHash, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(rec).includes('dbgov_sa_secret'));
    assert.equal(rec.origin, 'config');
  });

  const config = serviceAccountsFromConfig(
    [
      { id: 'ci-bot', token: 'tok-ci', groups: ['ci'] },
      { id: 'summarizer', token: 'tok-agent', groups: ['agents'], kind: 'agent' },
    ],
    1,
  );
  const apiToken = generateServiceAccountToken();
  const revokedToken = generateServiceAccountToken();
  const stored: ServiceAccountRecord[] = [
    { id: 'etl', tokenHash: hashServiceAccountToken(apiToken), groups: ['etl'], kind: 'workload', createdAt: 1, origin: 'api' },
    { id: 'old', tokenHash: hashServiceAccountToken(revokedToken), groups: [], kind: 'workload', createdAt: 1, revokedAt: 2, origin: 'api' },
  ];
  const store = { findServiceAccountByTokenHash: async (h: string) => findByTokenHash(stored, h) };

  const cases: { name: string; token: string; expect: { id: string; kind: string; groups: string[] } | string }[] = [
    { name: 'config workload account', token: 'tok-ci', expect: { id: 'ci-bot', kind: 'workload', groups: ['ci'] } },
    { name: 'config agent account', token: 'tok-agent', expect: { id: 'summarizer', kind: 'agent', groups: ['agents'] } },
    { name: 'API-created account from the store', token: apiToken, expect: { id: 'etl', kind: 'workload', groups: ['etl'] } },
    { name: 'revoked account', token: revokedToken, expect: 'service_account_revoked' },
    { name: 'unknown token', token: generateServiceAccountToken(), expect: 'service_account_unknown' },
    { name: 'the stored hash itself is not a token', token: hashServiceAccountToken('tok-ci'), expect: 'service_account_unknown' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const run = authenticateServiceAccount(c.token, { config, store });
      if (typeof c.expect === 'string') {
        const code = c.expect;
        await assert.rejects(run, (e: unknown) => e instanceof AuthError && e.code === code && e.actions.length > 0);
      } else {
        const id = await run;
        assert.deepEqual({ id: id.id, kind: id.kind, groups: id.groups }, c.expect);
        assert.equal(id.source, 'service-account');
      }
    });
  }
});
