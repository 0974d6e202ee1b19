import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/compile.js';
import { decideStatements } from '../../src/policy/decide.js';
import type { StatementAction, StatementContext } from '../../src/policy/types.js';
import type { StatementFacts } from '../../src/sql/facts.js';
import { agent, ctx, dba, facts, staging } from './fixtures.js';

const weights = {
  statements: [
    {
      name: 'review-model-weights',
      match: { statement: { relations: { names: ['public.model_weights'], access: ['write', 'ddl'] } } },
      action: 'review',
      message: 'writes to model weights need a second pair of eyes',
      review: { approvers: { groups: ['ml-leads'], quorum: 2 }, hold: 0, expires: '2h', window: '10m' },
    },
    { name: 'allow-reads', match: { statement: { kinds: ['select'] } }, action: 'allow' },
    { name: 'no-ssn', match: { identity: { kinds: ['agent'] }, statement: { columns: ['public.users.ssn'] } }, action: 'block', message: 'agents never read SSNs' },
  ],
};

const write = (schema: string | undefined, name: string, extra: Partial<StatementFacts> = {}): StatementFacts =>
  facts({ kind: 'update', tag: 'UPDATE', hasWhere: true, relations: [{ ...(schema ? { schema } : {}), name, access: 'write' }], ...extra });

const cases: { name: string; policy?: unknown; ctx?: Partial<StatementContext>; facts: StatementFacts[]; action: StatementAction; rule: string }[] = [
  { name: 'plain select is allowed by default', facts: [facts()], action: 'allow', rule: 'default' },
  { name: 'drop on prod is blocked', facts: [facts({ kind: 'drop', tag: 'DROP TABLE' })], action: 'block', rule: 'block-drop' },
  { name: 'drop on staging is allowed', ctx: { target: staging }, facts: [facts({ kind: 'drop', tag: 'DROP TABLE' })], action: 'allow', rule: 'default' },
  { name: 'defaults: false removes guardrails', policy: { defaults: false }, facts: [facts({ kind: 'drop', tag: 'DROP TABLE' })], action: 'allow', rule: 'default' },
  { name: 'defaults except exempts dba', policy: { defaults: { except: { identity: { groups: ['dba'] } } } }, ctx: { identity: dba }, facts: [facts({ kind: 'truncate', tag: 'TRUNCATE TABLE' })], action: 'allow', rule: 'default' },
  { name: 'defaults except does not exempt others', policy: { defaults: { except: { identity: { groups: ['dba'] } } } }, facts: [facts({ kind: 'truncate', tag: 'TRUNCATE TABLE' })], action: 'block', rule: 'block-truncate' },
  { name: 'alter system', facts: [facts({ kind: 'admin', tag: 'ALTER SYSTEM' })], action: 'block', rule: 'block-alter-system' },
  { name: 'grant', facts: [facts({ kind: 'grant', tag: 'GRANT' })], action: 'block', rule: 'block-grant' },
  { name: 'create role', facts: [facts({ kind: 'role', tag: 'CREATE ROLE' })], action: 'block', rule: 'block-role-management' },
  { name: 'delete without where', facts: [facts({ kind: 'delete', tag: 'DELETE', hasWhere: false, relations: [{ schema: 'public', name: 'orders', access: 'write' }] })], action: 'block', rule: 'block-unbounded-write' },
  { name: 'delete with where', facts: [facts({ kind: 'delete', tag: 'DELETE', hasWhere: true, relations: [{ schema: 'public', name: 'orders', access: 'write' }] })], action: 'allow', rule: 'default' },
  { name: 'copy program', facts: [facts({ kind: 'copy', tag: 'COPY', functions: [{ name: 'copy program', risks: ['program'] }] })], action: 'block', rule: 'block-server-files' },
  { name: 'pg_read_file', facts: [facts({ functions: [{ schema: 'pg_catalog', name: 'pg_read_file', risks: ['file'] }] })], action: 'block', rule: 'block-server-files' },
  { name: 'set role', facts: [facts({ kind: 'set', tag: 'SET', settings: [{ name: 'role', value: 'postgres', local: false }] })], action: 'block', rule: 'block-identity-switch' },
  { name: 'set session authorization', facts: [facts({ kind: 'set', tag: 'SET', settings: [{ name: 'SESSION_AUTHORIZATION', value: 'postgres', local: false }] })], action: 'block', rule: 'block-identity-switch' },
  { name: 'set_config role', facts: [facts({ functions: [{ name: 'set_config', risks: ['identity'] }] })], action: 'block', rule: 'block-identity-function' },
  { name: 'set search_path is fine', facts: [facts({ kind: 'set', tag: 'SET', settings: [{ name: 'search_path', value: 'app', local: false }] })], action: 'allow', rule: 'default' },
  { name: 'parse error fails closed', facts: [facts({ kind: 'unknown', tag: '', opaque: { reason: 'parse-error', detail: 'syntax error' } })], action: 'block', rule: 'fail-closed-opaque' },
  { name: 'parse error on staging passes', ctx: { target: staging }, facts: [facts({ kind: 'unknown', tag: '', opaque: { reason: 'parse-error', detail: 'x' } })], action: 'allow', rule: 'default' },
  { name: 'unknown kind fails closed', facts: [facts({ kind: 'unknown', tag: '' })], action: 'block', rule: 'fail-closed-unknown' },
  { name: 'dblink fails closed', facts: [facts({ functions: [{ name: 'dblink_exec', risks: ['remote'] }] })], action: 'block', rule: 'fail-closed-remote' },
  { name: 'protected: true without env prod fails closed', ctx: { target: { ...staging, protected: true } }, facts: [facts({ kind: 'do', tag: 'DO', opaque: { reason: 'do-block', detail: 'DO' } })], action: 'block', rule: 'fail-closed-opaque' },
  { name: 'env prod with protected: false still fails closed', ctx: { target: { ...staging, labels: { env: 'production' } } }, facts: [facts({ kind: 'do', tag: 'DO', opaque: { reason: 'do-block', detail: 'DO' } })], action: 'block', rule: 'fail-closed-opaque' },
  {
    name: 'an allow rule cannot unlock an opaque statement',
    policy: { statements: [{ name: 'allow-all', action: 'allow' }] },
    facts: [facts({ kind: 'do', tag: 'DO', opaque: { reason: 'do-block', detail: 'DO' } })],
    action: 'block',
    rule: 'fail-closed-opaque',
  },
  { name: 'an allow rule cannot outvote a default block', policy: { statements: [{ name: 'allow-drop', match: { statement: { kinds: ['drop'] } }, action: 'allow' }] }, facts: [facts({ kind: 'drop', tag: 'DROP TABLE' })], action: 'block', rule: 'block-drop' },
  { name: 'review on model weights', policy: weights, facts: [write('public', 'model_weights')], action: 'review', rule: 'review-model-weights' },
  { name: 'unqualified name may be the protected one', policy: weights, facts: [write(undefined, 'model_weights')], action: 'review', rule: 'review-model-weights' },
  { name: 'other schema is not', policy: weights, facts: [write('scratch', 'model_weights')], action: 'allow', rule: 'default' },
  { name: 'resolved name wins over the written one', policy: weights, facts: [write('public', 'renamed', { relations: [{ schema: 'public', name: 'renamed', access: 'write', resolved: { schema: 'public', name: 'model_weights', oid: 1 } }] })], action: 'review', rule: 'review-model-weights' },
  { name: 'temp table shadowing resolves away', policy: weights, facts: [write(undefined, 'model_weights', { relations: [{ name: 'model_weights', access: 'write', resolved: { schema: 'pg_temp_3', name: 'model_weights' } }] })], action: 'allow', rule: 'default' },
  { name: 'reading model weights is allowed by allow-reads', policy: weights, facts: [facts({ relations: [{ schema: 'public', name: 'model_weights', access: 'read' }] })], action: 'allow', rule: 'allow-reads' },
  { name: 'review beats allow across statements', policy: weights, facts: [facts({ multiStatement: true }), write('public', 'model_weights', { multiStatement: true })], action: 'review', rule: 'review-model-weights' },
  { name: 'block beats review across statements', policy: weights, facts: [write('public', 'model_weights', { multiStatement: true }), facts({ kind: 'drop', tag: 'DROP TABLE', multiStatement: true })], action: 'block', rule: 'block-drop' },
  { name: 'unbounded write to weights: block beats review', policy: weights, facts: [write('public', 'model_weights', { hasWhere: false })], action: 'block', rule: 'block-unbounded-write' },
  { name: 'modifying CTE touching weights', policy: weights, facts: [facts({ modifyingCte: true, relations: [{ schema: 'public', name: 'model_weights', access: 'write', via: 'cte' }] })], action: 'review', rule: 'review-model-weights' },
  { name: 'agent writes are blocked on prod', ctx: { identity: agent }, facts: [write('public', 'orders')], action: 'block', rule: 'agents-read-only' },
  { name: 'agent reads are fine', ctx: { identity: agent }, facts: [facts({ relations: [{ schema: 'public', name: 'orders', access: 'read' }] })], action: 'allow', rule: 'default' },
  { name: 'agent writes on staging are fine', ctx: { identity: agent, target: staging }, facts: [write('public', 'orders')], action: 'allow', rule: 'default' },
  { name: 'agent column rule with unqualified column table', policy: weights, ctx: { identity: agent }, facts: [facts({ relations: [{ name: 'users', access: 'read', columns: ['ssn'] }] })], action: 'block', rule: 'no-ssn' },
  { name: 'agent star select may carry ssn', policy: weights, ctx: { identity: agent }, facts: [facts({ relations: [{ schema: 'public', name: 'users', access: 'read', columns: ['*'] }] })], action: 'block', rule: 'no-ssn' },
  { name: 'read credential cannot write, even on staging', ctx: { access: 'read', target: staging }, facts: [write('public', 'orders')], action: 'block', rule: 'read-only-credential' },
  { name: 'read credential may read', ctx: { access: 'read' }, facts: [facts({ relations: [{ schema: 'public', name: 'orders', access: 'read' }] })], action: 'allow', rule: 'default' },
  { name: 'predicate on a masked column', ctx: { classifiedColumns: new Set(['public.users.ssn']) }, facts: [facts({ predicateColumns: [{ table: 'users', column: 'ssn' }] })], action: 'block', rule: 'masked-predicate' },
  { name: 'predicate on a clear column', ctx: { classifiedColumns: new Set(['public.users.ssn']) }, facts: [facts({ predicateColumns: [{ schema: 'public', table: 'users', column: 'id' }] })], action: 'allow', rule: 'default' },
  // Masking patterns are globs: a `*` schema (MySQL predicates always carry the database) still names the column.
  { name: 'predicate on a masked column, schema-qualified, `*` schema pattern', ctx: { classifiedColumns: new Set(['*.users.ssn']) }, facts: [facts({ predicateColumns: [{ schema: 'app', table: 'users', column: 'ssn' }] })], action: 'block', rule: 'masked-predicate' },
  { name: 'predicate on a masked column, glob in every part', ctx: { classifiedColumns: new Set(['app.user?.*ss*']) }, facts: [facts({ predicateColumns: [{ schema: 'app', table: 'Users', column: 'SSN' }] })], action: 'block', rule: 'masked-predicate' },
  { name: 'a filter on a table that is not known may be on any table', ctx: { classifiedColumns: new Set(['*.users.ssn']) }, facts: [facts({ predicateColumns: [{ table: '*', column: 'ssn' }] })], action: 'block', rule: 'masked-predicate' },
  { name: 'a NATURAL JOIN may compare any column of the table', ctx: { classifiedColumns: new Set(['*.users.ssn']) }, facts: [facts({ predicateColumns: [{ schema: 'app', table: 'users', column: '*' }] })], action: 'block', rule: 'masked-predicate' },
  { name: 'predicate on a clear column, `*` schema pattern', ctx: { classifiedColumns: new Set(['*.users.ssn']) }, facts: [facts({ predicateColumns: [{ schema: 'app', table: 'users', column: 'ssn2' }] })], action: 'allow', rule: 'default' },
  { name: 'PREPARE of an unbounded delete is judged by its inner statement', facts: [facts({ kind: 'utility', tag: 'PREPARE', prepare: { name: 'p', inner: facts({ kind: 'delete', tag: 'DELETE', hasWhere: false }) } })], action: 'block', rule: 'block-unbounded-write' },
  { name: 'EXECUTE runs what was prepared', ctx: { prepared: new Map([['p', facts({ kind: 'truncate', tag: 'TRUNCATE TABLE' })]]) }, facts: [facts({ kind: 'utility', tag: 'EXECUTE', execute: { name: 'p' } })], action: 'block', rule: 'block-truncate' },
  { name: 'EXECUTE of a harmless prepared statement', ctx: { prepared: new Map([['p', facts()]]) }, facts: [facts({ kind: 'utility', tag: 'EXECUTE', execute: { name: 'p' } })], action: 'allow', rule: 'default' },
  { name: 'EXECUTE of an unknown name fails closed', ctx: { prepared: new Map() }, facts: [facts({ kind: 'utility', tag: 'EXECUTE', execute: { name: 'p' } })], action: 'block', rule: 'fail-closed-opaque' },
  {
    name: 'PREPARE then EXECUTE in one message',
    ctx: { prepared: new Map([['p', facts()]]) },
    facts: [
      facts({ kind: 'utility', tag: 'PREPARE', multiStatement: true, prepare: { name: 'p', inner: facts({ kind: 'drop', tag: 'DROP TABLE' }) } }),
      facts({ kind: 'utility', tag: 'EXECUTE', multiStatement: true, execute: { name: 'p' } }),
    ],
    action: 'block',
    rule: 'block-drop',
  },
  {
    name: 'except with an uncertain match does not exempt',
    policy: { statements: [{ name: 'no-writes-billing', match: { statement: { kinds: ['update'] } }, except: { statement: { relations: { names: ['scratch.*'] } } }, action: 'block' }] },
    facts: [write(undefined, 'ledger')],
    action: 'block',
    rule: 'no-writes-billing',
  },
  {
    name: 'except with a certain match exempts',
    policy: { statements: [{ name: 'no-writes-billing', match: { statement: { kinds: ['update'] } }, except: { statement: { relations: { names: ['scratch.*'] } } }, action: 'block' }] },
    facts: [write('scratch', 'ledger')],
    action: 'allow',
    rule: 'default',
  },
  {
    name: 'identity, target labels, database and access all match',
    policy: { statements: [{ name: 'payments-ro', match: { identity: { groups: ['dev*'] }, target: { labels: { team: 'payments' } }, databases: ['app'], access: ['write'], statement: { mutating: true } }, action: 'block' }] },
    facts: [facts({ kind: 'insert', tag: 'INSERT', relations: [{ schema: 'public', name: 'x', access: 'write' }] })],
    action: 'block',
    rule: 'payments-ro',
  },
  {
    name: 'onBehalfOf matches the person behind the agent',
    policy: { statements: [{ name: 'dev-agents-review', match: { identity: { onBehalfOf: { groups: ['devs'] } } }, action: 'review' }] },
    ctx: { identity: agent },
    facts: [facts()],
    action: 'review',
    rule: 'dev-agents-review',
  },
  { name: 'multiStatement match', policy: { statements: [{ name: 'one-at-a-time', match: { statement: { multiStatement: true } }, action: 'block' }] }, facts: [facts({ multiStatement: true }), facts({ multiStatement: true })], action: 'block', rule: 'one-at-a-time' },
  { name: 'explainAnalyze match', policy: { statements: [{ name: 'no-analyze', match: { statement: { explainAnalyze: true } }, action: 'review' }] }, facts: [facts({ explainAnalyze: true })], action: 'review', rule: 'no-analyze' },
  { name: 'tag glob', policy: { statements: [{ name: 'no-create', match: { statement: { tags: ['create *'] } }, action: 'block' }] }, facts: [facts({ kind: 'create', tag: 'CREATE INDEX' })], action: 'block', rule: 'no-create' },
  // Server administration that a test cannot run for real (it would stop the shared server).
  { name: 'SHUTDOWN needs admin access on prod', facts: [facts({ kind: 'admin', tag: 'SHUTDOWN' })], action: 'block', rule: 'server-admin-needs-admin-access' },
  { name: 'SHUTDOWN with admin access', ctx: { access: 'admin' }, facts: [facts({ kind: 'admin', tag: 'SHUTDOWN' })], action: 'allow', rule: 'default' },
  { name: 'an ALTER TABLE action matches as a tag', facts: [facts({ kind: 'alter', tag: 'ALTER TABLE', actions: ['ALTER TABLE DROP COLUMN'] })], action: 'block', rule: 'block-destructive-alter' },
  { name: 'an ALTER TABLE without destructive actions', facts: [facts({ kind: 'alter', tag: 'ALTER TABLE' })], action: 'allow', rule: 'default' },
  { name: 'function glob', policy: { statements: [{ name: 'no-locks', match: { statement: { functions: ['pg_advisory*'] } }, action: 'block' }] }, facts: [facts({ functions: [{ schema: 'pg_catalog', name: 'pg_advisory_lock', risks: ['side-effect'] }] })], action: 'block', rule: 'no-locks' },
];

test('decideStatements: table', () => {
  for (const c of cases) {
    const d = decideStatements(compilePolicy(c.policy ?? {}), ctx(c.ctx), c.facts);
    assert.equal(`${d.action} ${d.rule}`, `${c.action} ${c.rule}`, c.name);
    assert.equal(d.statements.length, c.facts.length, c.name);
  }
});

test('a block says dbgov: blocked, names the rule and says what to do', () => {
  const d = decideStatements(compilePolicy({}), ctx(), [facts({ kind: 'update', tag: 'UPDATE', hasWhere: false })]);
  assert.match(d.message, /^dbgov: blocked: /);
  assert.match(d.detail, /block-unbounded-write/);
  assert.match(d.hint, /WHERE/);
});

test('fail-closed message carries the reason', () => {
  const d = decideStatements(compilePolicy({}), ctx(), [facts({ kind: 'do', tag: 'DO', opaque: { reason: 'do-block', detail: 'DO blocks run code dbgov cannot see' } })]);
  assert.match(d.message, /^dbgov: blocked: .*do-block/);
  assert.match(d.detail, /cannot be turned off/);
});

test('review carries approvers, hold, expiry and window', () => {
  const d = decideStatements(compilePolicy(weights), ctx(), [write('public', 'model_weights')]);
  assert.deepEqual(d.review, { approvers: { groups: ['ml-leads'], quorum: 2 }, holdMs: 0, expiresMs: 7_200_000, windowMs: 600_000 });
  assert.equal(d.message, 'writes to model weights need a second pair of eyes');
});

test('per-statement verdicts and which statement decided', () => {
  const d = decideStatements(compilePolicy({}), ctx(), [facts({ multiStatement: true }), facts({ kind: 'drop', tag: 'DROP TABLE', multiStatement: true })]);
  assert.deepEqual(d.statements, [
    { action: 'allow', rule: 'default' },
    { action: 'block', rule: 'block-drop' },
  ]);
  assert.match(d.detail, /statement 2 of 2/);
});
