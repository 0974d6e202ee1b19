/**
 * Runs the guardrail corpus through the real SQL analyser and the policy engine (pure: no
 * server). test/e2e runs the same file through the tunnel against PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { compilePolicy } from '../../src/policy/compile.js';
import { decideStatements } from '../../src/policy/decide.js';
import type { Policy, StatementAction, StatementContext } from '../../src/policy/types.js';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';
import type { StatementFacts } from '../../src/sql/facts.js';
import type { AccessLevel, Identity } from '../../src/shared/types.js';

interface CorpusCase {
  name: string;
  sql: string;
  expect: StatementAction;
  rule?: string;
  as?: string;
  access?: AccessLevel;
  policy?: string;
  before?: string[];
  classified?: string[];
  needsCatalog?: boolean;
  setup?: string;
  check?: string;
}
interface Corpus {
  setup: string;
  identities: Record<string, Omit<Identity, 'source'>>;
  target: { name: string; env: string; protected: boolean; database: string };
  policies: Record<string, unknown>;
  cases: CorpusCase[];
}

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/postgres-guardrails.yaml'), 'utf8')) as Corpus;
const policies = new Map<string, Policy>(Object.entries(corpus.policies).map(([name, raw]) => [name, compilePolicy(raw, { file: `corpus:${name}` })]));

test('the corpus is big enough and well-formed', () => {
  assert.ok(corpus.cases.length >= 150, `${corpus.cases.length} cases`);
  const names = new Set<string>();
  for (const c of corpus.cases) {
    assert.ok(!names.has(c.name), `duplicate case name ${c.name}`);
    names.add(c.name);
    assert.ok(['allow', 'block', 'review'].includes(c.expect), `${c.name}: expect ${c.expect}`);
    assert.ok(c.as === undefined || corpus.identities[c.as], `${c.name}: unknown identity ${c.as}`);
    assert.ok(c.policy === undefined || policies.has(c.policy), `${c.name}: unknown policy ${c.policy}`);
  }
  for (const action of ['allow', 'block', 'review'] as const) assert.ok(corpus.cases.some((c) => c.expect === action), `no ${action} case`);
});

test('every corpus case gets its expected decision', async (t) => {
  await loadSqlParser();
  const t0 = corpus.target;
  for (const c of corpus.cases) {
    if (c.needsCatalog) continue;
    await t.test(c.name, () => {
      const policy = policies.get(c.policy ?? 'default') as Policy;
      const prepared = new Map<string, StatementFacts>();
      const ctx: StatementContext = {
        identity: { source: 'builtin', ...corpus.identities[c.as ?? 'developer'] },
        target: { name: t0.name, engine: 'postgres', labels: { env: t0.env }, database: t0.database, protected: t0.protected },
        database: t0.database,
        access: c.access ?? 'write',
        prepared,
        ...(c.classified ? { classifiedColumns: new Set(c.classified) } : {}),
      };
      for (const sql of c.before ?? []) {
        const facts = analysePostgres(sql).statements;
        assert.equal(decideStatements(policy, ctx, facts).action, 'allow', `before: ${sql}`);
        for (const f of facts) if (f.prepare) prepared.set(f.prepare.name, f.prepare.inner);
      }
      const facts = analysePostgres(c.sql).statements;
      const d = decideStatements(policy, ctx, facts);
      const shown = JSON.stringify(facts.map(({ text, redacted, fingerprint, lineage, ...rest }) => rest));
      assert.equal(d.action, c.expect, `${c.sql}\n  decided ${d.action} by ${d.rule}\n  facts ${shown}`);
      if (c.rule) assert.equal(d.rule, c.rule, `${c.sql}\n  facts ${shown}`);
      if (d.action === 'block') assert.match(d.message, /^dbgov: blocked: /);
    });
  }
});
