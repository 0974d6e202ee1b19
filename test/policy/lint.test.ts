import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lintPolicy } from '../../src/policy/lint.js';

const rule = (name: string, action: string, match: unknown = {}, extra: Record<string, unknown> = {}) => ({ name, action, match, ...extra });

const cases: { name: string; raw: unknown; want: RegExp[] }[] = [
  { name: 'clean policy', raw: { approvers: { groups: ['dba'] }, statements: [rule('weights', 'review', { statement: { relations: { names: ['public.model_weights'] } } })] }, want: [] },
  { name: 'unknown kind is an error', raw: { statements: [rule('x', 'block', { statement: { kinds: ['dropp'] } })] }, want: [/must be one of/] },
  { name: 'every schema error is reported', raw: { statements: [rule('x', 'nope'), rule('y', 'block', { statement: { kinds: ['bad'] } })] }, want: [/statements\.0\.action/, /statements\.1\.match\.statement\.kinds\.0/] },
  {
    name: 'shadowed by an earlier broader rule',
    raw: { statements: [rule('all-updates', 'block', { statement: { kinds: ['update', 'delete'] } }), rule('weights-updates', 'block', { statement: { kinds: ['update'], relations: { names: ['public.model_weights'] } } })] },
    want: [/rule weights-updates never decides: rule all-updates \(block\)/],
  },
  {
    name: 'an allow rule under a more severe broader rule',
    raw: { statements: [rule('no-devs', 'block', { identity: { groups: ['devs'] } }), rule('devs-select', 'allow', { identity: { groups: ['devs'] }, statement: { kinds: ['select'] } })] },
    want: [/devs-select never decides/],
  },
  { name: 'allow under a default guardrail', raw: { statements: [rule('allow-drop-prod', 'allow', { target: { protected: true }, statement: { tags: ['DROP TABLE'] } })] }, want: [/default rule block-drop/] },
  { name: 'narrower earlier rule does not shadow', raw: { statements: [rule('a', 'block', { statement: { kinds: ['update'], relations: { names: ['public.x'] } } }), rule('b', 'block', { statement: { kinds: ['update'] } })] }, want: [] },
  { name: 'where on selects matches nothing', raw: { statements: [rule('x', 'block', { statement: { kinds: ['select'], where: 'missing' } })] }, want: [/matches no statement: where/] },
  { name: 'empty list matches nothing', raw: { statements: [rule('x', 'block', { databases: [] })] }, want: [/databases is an empty list/] },
  { name: 'onBehalfOf for humans only', raw: { statements: [rule('x', 'block', { identity: { kinds: ['human'], onBehalfOf: { ids: ['a'] } } })] }, want: [/only agents act on behalf/] },
  { name: 'prod is never unprotected', raw: { statements: [rule('x', 'block', { target: { labels: { env: 'prod' }, protected: false } })] }, want: [/always protected/] },
  { name: 'review without approvers', raw: { statements: [rule('x', 'review', { statement: { kinds: ['insert'] } })] }, want: [/names no approver groups/] },
  { name: 'access review without approvers', raw: { access: [rule('x', 'review', { access: ['admin'] })] }, want: [/names no approver groups/] },
  { name: 'access shadowing', raw: { access: [rule('deny-contractors', 'deny', { identity: { groups: ['contractors'] } }), rule('contractor-reads', 'allow', { identity: { groups: ['contractors'] }, access: ['read'] })] }, want: [/contractor-reads never decides/] },
  { name: 'reason on a deny rule', raw: { access: [rule('x', 'deny', { access: ['admin'] }, { reason: { pattern: 'INC' } })] }, want: [/reason requirement has no effect/] },
];

test('lintPolicy: table', () => {
  for (const c of cases) {
    const findings = lintPolicy(c.raw, { file: 'dbgov.yaml' });
    assert.equal(findings.length, c.want.length, `${c.name}: ${JSON.stringify(findings.map((f) => f.message))}`);
    c.want.forEach((re, i) => assert.match(findings[i].message, re, c.name));
    for (const f of findings) assert.ok(f.fix.length > 0, `${c.name}: every finding has a fix`);
  }
});

test('lintPolicy: findings carry the rule line', () => {
  const lines: Record<string, number> = { 'policy.statements.0': 3, 'policy.statements.1': 7 };
  const findings = lintPolicy({ statements: [rule('a', 'block', { statement: { kinds: ['update'] } }), rule('b', 'block', { statement: { kinds: ['update'] } })] }, { file: 'dbgov.yaml', lineOf: (p) => lines[p.join('.')] });
  assert.equal(findings.length, 1);
  assert.equal(findings[0].line, 7);
});
