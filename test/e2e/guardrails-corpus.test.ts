/**
 * The guardrail corpus (test/corpus/postgres-guardrails.yaml) through the real tunnel and
 * gateway against the real PostgreSQL: each case in a fresh session, its decision read off the
 * wire (42501 + "dbgov: blocked" / "dbgov: approval required"), and the server's state checked
 * afterwards to prove a refused statement did nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import type pg from 'pg';
import { adminQuery, createTestDatabase, pgTarget, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import type { Connection } from '../../src/cli/connect.js';
import type { AccessLevel } from '../../src/shared/types.js';

interface CorpusCase {
  name: string;
  sql: string;
  expect: 'allow' | 'block' | 'review';
  rule?: string;
  as?: string;
  access?: AccessLevel;
  policy?: string;
  before?: string[];
  classified?: string[];
  setup?: string;
  check?: string;
}
interface Corpus {
  setup: string;
  policies: Record<string, Record<string, unknown>>;
  cases: CorpusCase[];
}

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/postgres-guardrails.yaml'), 'utf8')) as Corpus;
const DEV = { id: 'dev', email: 'dev@example.com', name: 'Dev', password: 'dev-pw', groups: ['devs'] };

/** Cases that need the same broker configuration run on one broker. */
function groupKey(c: CorpusCase): string {
  return `${c.policy ?? 'default'}|${(c.classified ?? []).join(',')}`;
}

describe('guardrail corpus through the tunnel', () => {
  let db: TestDatabase;
  const brokers = new Map<string, TestBroker>();
  const tunnels = new Map<string, Connection>();

  before(async () => {
    db = await createTestDatabase('guard', corpus.setup);
  });
  after(async () => {
    for (const c of tunnels.values()) await c.close();
    for (const b of brokers.values()) await b.close();
    await db?.drop();
  });

  const brokerFor = async (c: CorpusCase): Promise<TestBroker> => {
    const key = groupKey(c);
    let tb = brokers.get(key);
    if (!tb) {
      const policy = { ...(corpus.policies[c.policy ?? 'default'] ?? {}), access: [{ name: 'corpus-any-access', action: 'allow' }] };
      const masking = c.classified ? { columns: Object.fromEntries(c.classified.map((col) => [col, 'ssn'])) } : {};
      tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'prod' }) }, policy, masking, builtinIdp: true, humans: [DEV] });
      brokers.set(key, tb);
    }
    return tb;
  };

  const devTokens = new Map<TestBroker, string>();
  const tunnelFor = async (c: CorpusCase): Promise<Connection> => {
    const tb = await brokerFor(c);
    const access = c.access ?? 'write';
    const as = c.as ?? 'developer';
    const key = `${groupKey(c)}|${access}|${as}`;
    let conn = tunnels.get(key);
    if (!conn) {
      let token = devTokens.get(tb);
      if (!token) {
        token = await tb.loginHuman(DEV.email);
        devTokens.set(tb, token);
      }
      conn = await tb.connect(token, { target: 'prod', access, ...(as === 'agent' ? { agent: 'corpus-agent' } : {}) });
      tunnels.set(key, conn);
    }
    return conn;
  };

  test(`the corpus has at least 150 cases (${corpus.cases.length})`, () => {
    assert.ok(corpus.cases.length >= 150);
  });

  for (const c of corpus.cases) {
    test(c.name, async () => {
      if (c.setup) await adminQuery(c.setup, [], db.name);
      const conn = await tunnelFor(c);
      const client: pg.Client = await tunnelClient(conn);
      try {
        for (const sql of c.before ?? []) await client.query(sql);
        let outcome: 'allow' | 'block' | 'review' = 'allow';
        let error: { code?: string; message?: string; detail?: string } | undefined;
        try {
          await client.query(c.sql);
        } catch (e) {
          error = e as typeof error;
          if (error?.message?.startsWith('dbgov: blocked')) outcome = 'block';
          else if (error?.message?.startsWith('dbgov: approval required')) outcome = 'review';
        }
        assert.equal(outcome, c.expect, `${c.sql}\n  got ${error ? `${error.code} ${error.message} (${error.detail ?? ''})` : 'no error'}`);
        if (outcome !== 'allow') {
          assert.equal(error?.code, '42501');
          if (c.rule) assert.match(error?.detail ?? '', new RegExp(`\\b${c.rule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`), `deciding rule for ${c.sql}`);
        }
        // The session stays usable after a refusal.
        if (outcome !== 'allow') {
          await client.query('rollback').catch(() => undefined);
          assert.equal((await client.query('select 1 as ok')).rows[0].ok, 1);
        }
      } finally {
        await client.end().catch(() => undefined);
      }
      if (c.check) {
        const r = await adminQuery(c.check, [], db.name);
        assert.equal(Object.values(r.rows[0] ?? {})[0], true, `check failed: ${c.check}`);
      }
    });
  }
});
