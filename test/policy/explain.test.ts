import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/compile.js';
import { explain } from '../../src/policy/explain.js';
import { ctx, facts } from './fixtures.js';

test('explain: decision, facts and a trace of every rule with why', () => {
  const policy = compilePolicy({ statements: [{ name: 'no-orders', match: { statement: { relations: { names: ['public.orders'] } } }, action: 'block' }] });
  const analysed = [facts({ kind: 'delete', tag: 'DELETE', hasWhere: false, relations: [{ schema: 'public', name: 'orders', access: 'write' }] })];
  const e = explain(policy, ctx(), 'DELETE FROM public.orders', () => ({ statements: analysed }));
  assert.equal(e.decision.action, 'block');
  assert.equal(e.decision.rule, 'no-orders');
  assert.deepEqual(e.facts, analysed);
  const byRule = new Map(e.trace.map((t) => [t.rule, t]));
  const rows: [string, boolean, RegExp][] = [
    ['no-orders', true, /write public\.orders/],
    ['block-unbounded-write', true, /no WHERE/],
    ['block-drop', false, /tag DELETE not in \[DROP \*, CREATE OR REPLACE TABLE, CREATE OR REPLACE SEQUENCE, CREATE OR REPLACE DATABASE\]/],
    ['read-only-credential', false, /access write not in \[read\]/],
    ['agents-read-only', false, /kind human not in \[agent\]/],
  ];
  for (const [rule, matched, why] of rows) {
    assert.equal(byRule.get(rule)?.matched, matched, rule);
    assert.match(byRule.get(rule)?.why ?? '', why, rule);
  }
});
