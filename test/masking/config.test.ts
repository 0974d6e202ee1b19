import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { classifyColumn, compileMasking, mayUnmask, maskingJsonSchema } from '../../src/masking/config.js';
import { ConfigError } from '../../src/shared/errors.js';

const KEY = 'k'.repeat(32);
const full = {
  key: KEY,
  onUnprovable: 'block',
  classes: { email: { function: 'hash' }, customer_ref: { function: 'fake', like: 'card' } },
  columns: {
    'public.users.email': 'email',
    '*.*.password': 'secret',
    'billing.cards.pan': { class: 'card', targets: ['prod'] },
    'crm.accounts.ref': { class: 'customer_ref', function: 'hash' },
  },
  unmask: [{ groups: ['support'], classes: ['email'] }, { groups: ['bots'], agents: true }],
  contentScan: { targets: ['prod'], detectors: ['email', 'card'] },
};

test('a full config compiles and the schema accepts it', () => {
  const c = compileMasking(full);
  assert.equal(c.onUnprovable, 'block');
  assert.equal(c.classes.get('email')!.function, 'hash');
  assert.equal(c.classes.get('customer_ref')!.shape, 'card');
  assert.equal(c.columns.length, 4);
  assert.deepEqual(c.contentScan?.detectors, ['email', 'card']);
  const validate = new Ajv({ strict: false }).compile(maskingJsonSchema);
  assert.equal(validate(full), true, JSON.stringify(validate.errors));
  assert.equal(validate({ columns: { 'a.b.c': { klass: 'x' } } }), false);
});

test('classification: globs, case, targets and per-column function', () => {
  const c = compileMasking(full);
  const cases: [string, string | undefined, string, string, string | null, string | null][] = [
    ['prod', 'public', 'users', 'email', 'email', 'hash'],
    ['prod', 'PUBLIC', 'Users', 'EMAIL', 'email', 'hash'],
    ['prod', undefined, 'users', 'email', 'email', 'hash'],
    ['prod', 'other', 'users', 'email', null, null],
    ['dev', 'app', 'accounts', 'password', 'secret', 'redact'],
    ['prod', 'billing', 'cards', 'pan', 'card', 'partial'],
    ['dev', 'billing', 'cards', 'pan', null, null],
    ['dev', 'crm', 'accounts', 'ref', 'customer_ref', 'hash'],
    ['dev', 'public', 'users', 'id', null, null],
  ];
  for (const [target, schema, table, column, cls, fn] of cases) {
    const got = classifyColumn(c, target, schema, table, column);
    assert.equal(got?.cls.name ?? null, cls, `${target} ${schema}.${table}.${column}`);
    assert.equal(got?.function ?? null, fn, `${target} ${schema}.${table}.${column}`);
  }
});

test('unmask: by group and class; agents only where a rule opts in', () => {
  const c = compileMasking(full);
  const cases: [string, 'human' | 'agent' | 'workload', string[], string, boolean][] = [
    ['support human sees email', 'human', ['support'], 'email', true],
    ['support human not ssn', 'human', ['support'], 'ssn', false],
    ['support agent never', 'agent', ['support'], 'email', false],
    ['bots agent opted in', 'agent', ['bots'], 'ssn', true],
    ['no group', 'human', ['dev'], 'email', false],
  ];
  for (const [name, kind, groups, cls, expected] of cases) assert.equal(mayUnmask(c, { id: 'x', kind, groups }, 'prod', cls), expected, name);
  assert.equal(mayUnmask(c, { id: 'x', kind: 'agent', groups: [] }, 'prod', 'ssn', ['ssn']), true, 'an approval unmasks');
});

test('errors name the file, line and fix', () => {
  const cases: [string, unknown, RegExp][] = [
    ['bad column path', { columns: { 'users.email': 'email' } }, /not schema\.table\.column/],
    ['unknown class', { columns: { 'a.b.c': 'emial' } }, /unknown class "emial"/],
    ['unknown function', { classes: { email: { function: 'scramble' } } }, /unknown function/],
    ['hash without key', { classes: { email: { function: 'hash' } } }, /need a deployment key/],
    ['short key', { key: 'short' }, /at least 16/],
    ['unknown key', { colums: {} }, /unknown key "colums"/],
    ['bad onUnprovable', { onUnprovable: 'warn' }, /unknown value/],
    ['unmask without groups', { unmask: [{ classes: ['email'] }] }, /list of names|at least one group/],
    ['unknown detector', { contentScan: { detectors: ['dna'] } }, /unknown detector/],
  ];
  for (const [name, raw, re] of cases) {
    assert.throws(
      () => compileMasking(raw, { file: 'dbgov.yaml', lineOf: (p) => p.length * 10 }),
      (e: unknown) => e instanceof ConfigError && re.test(e.message) && e.file === 'dbgov.yaml' && typeof e.line === 'number' && e.fix.length > 0,
      name,
    );
  }
});
