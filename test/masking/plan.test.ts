import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMasking } from '../../src/masking/config.js';
import { PgType } from '../../src/masking/functions.js';
import { buildMaskPlan, isMaskBlock, type MaskPlanInput } from '../../src/masking/plan.js';
import type { ColumnLineage, RelationRef } from '../../src/sql/facts.js';
import type { MaskPlan, ResultColumn } from '../../src/gateway/engine.js';
import type { IdentityRef } from '../../src/shared/types.js';

const config = compileMasking({
  key: 'plan-test-key-0123456789',
  classes: { card: { function: 'hash' } },
  columns: {
    'public.users.email': 'email',
    'public.users.ssn': 'ssn',
    'public.users.card': 'card',
    'public.orders.card': 'card',
  },
  unmask: [{ groups: ['support'], classes: ['email'] }],
});
const blocking = compileMasking({ columns: { 'public.users.email': 'email' }, onUnprovable: 'block' });

/** (oid, attnum) → column, as the broker's catalog resolver would answer. */
const CATALOG: Record<string, { schema: string; table: string; column: string }> = {
  '100:1': { schema: 'public', table: 'users', column: 'id' },
  '100:2': { schema: 'public', table: 'users', column: 'email' },
  '100:3': { schema: 'public', table: 'users', column: 'ssn' },
  '100:4': { schema: 'public', table: 'users', column: 'card' },
  '200:3': { schema: 'public', table: 'orders', column: 'card' },
  '300:2': { schema: 'public', table: 'users_view', column: 'email' },
};

const dev: IdentityRef = { id: 'dev', kind: 'human', groups: ['dev'] };
const support: IdentityRef = { id: 'sup', kind: 'human', groups: ['support'] };
const supportAgent: IdentityRef = { id: 'bot', kind: 'agent', groups: ['support'] };

type Col = [name: string, oid: number, attnum: number, typeId?: number];
const cols = (...c: Col[]): ResultColumn[] => c.map(([name, tableOid, attnum, typeId], index) => ({ index, name, tableOid, attnum, typeId: typeId ?? PgType.text, format: 0 }));
const lin = (name: string, sources: string[], opts: { direct?: boolean; opaque?: boolean } = {}): ColumnLineage => ({
  index: 0,
  name,
  sources: sources.map((s) => {
    const [schema, table, column] = s.split('.');
    return { schema, table, column };
  }),
  direct: opts.direct ?? false,
  opaque: opts.opaque ?? false,
});
const users: RelationRef[] = [{ schema: 'public', name: 'users', access: 'read' }];

interface Case {
  name: string;
  columns: ResultColumn[];
  lineage?: ColumnLineage[];
  relations?: RelationRef[];
  identity?: IdentityRef;
  config?: typeof config;
  values: string[];
  /** Expected output per column: exact text, a pattern, or null. */
  expect: (string | RegExp | null)[];
  masked?: string[];
}

const CASES: Case[] = [
  { name: 'direct columns by origin', columns: cols(['id', 100, 1], ['email', 100, 2]), relations: users, values: ['1', 'alice@example.com'], expect: ['1', '****@example.com'], masked: ['public.users.email'] },
  { name: 'unclassified only: no plan', columns: cols(['id', 100, 1]), relations: users, values: ['1'], expect: ['1'] },
  { name: 'view origin, lineage to base column', columns: cols(['email', 300, 2]), lineage: [lin('email', ['public.users.email'], { direct: true })], relations: users, values: ['alice@example.com'], expect: ['****@example.com'] },
  { name: 'derived: upper(email) redacts, not partial', columns: cols(['upper', 0, 0]), lineage: [lin('upper', ['public.users.email'])], relations: users, values: ['ALICE@EXAMPLE.COM'], expect: ['****'] },
  { name: 'derived: concat of email and ssn', columns: cols(['x', 0, 0]), lineage: [lin('x', ['public.users.email', 'public.users.ssn'])], relations: users, values: ['a@b.io 123-45-6789'], expect: ['****'] },
  { name: 'derived: length(ssn) int4 → type-valid zero', columns: cols(['length', 0, 0, PgType.int4]), lineage: [lin('length', ['public.users.ssn'])], relations: users, values: ['11'], expect: ['0'] },
  // A token of a derived value would be a hashing oracle: lower(left(card, 0) || '<guess>').
  { name: 'derived over hashed source is redacted, not a token', columns: cols(['lower', 0, 0]), lineage: [lin('lower', ['public.users.card'])], relations: users, values: ['4111'], expect: ['****'] },
  { name: 'a UNION of a hashed column with a literal is not a plain column', columns: cols(['card', 0, 0]), lineage: [lin('card', ['public.users.card'])], relations: users, values: ['4111 1111 1111 1111'], expect: ['****'] },
  { name: 'a plain hashed column keeps its token', columns: cols(['card', 0, 0]), lineage: [lin('card', ['public.users.card'], { direct: true })], relations: users, values: ['4111'], expect: [/^tok_[0-9a-f]{16}$/] },
  { name: 'whole-row reference t::text', columns: cols(['t', 0, 0]), lineage: [lin('t', ['public.users.*'])], relations: users, values: ['(1,alice@example.com)'], expect: ['****'] },
  { name: 'whole row of an unclassified table stays', columns: cols(['o', 0, 0]), lineage: [lin('o', ['public.products.*'])], relations: users, values: ['(1,x)'], expect: ['(1,x)'] },
  { name: 'opaque lineage on a classified statement masks', columns: cols(['f', 0, 0]), lineage: [lin('f', [], { opaque: true })], relations: users, values: ['alice@example.com'], expect: ['****'], masked: ['f (unprovable)'] },
  { name: 'no lineage, derived, classified statement masks', columns: cols(['f', 0, 0]), relations: users, values: ['alice@example.com'], expect: ['****'] },
  { name: 'no lineage, derived, unclassified statement stays', columns: cols(['f', 0, 0]), relations: [{ schema: 'public', name: 'products', access: 'read' }], values: ['x'], expect: ['x'] },
  { name: 'unknown relations are assumed classified', columns: cols(['f', 0, 0]), values: ['x'], expect: ['****'] },
  { name: 'support sees email clear', columns: cols(['email', 100, 2], ['ssn', 100, 3]), relations: users, identity: support, values: ['alice@example.com', '123-45-6789'], expect: ['alice@example.com', '****'] },
  { name: 'support agent never sees clear', columns: cols(['email', 100, 2]), relations: users, identity: supportAgent, values: ['alice@example.com'], expect: ['****@example.com'] },
  { name: 'support: derived of email+ssn still masked', columns: cols(['x', 0, 0]), lineage: [lin('x', ['public.users.email', 'public.users.ssn'])], relations: users, identity: support, values: ['a@b.io/1'], expect: ['****'] },
  { name: 'lineage misaligned: ignored, derived masked', columns: cols(['a', 0, 0], ['b', 0, 0]), lineage: [lin('a', [])], relations: users, values: ['x', 'y'], expect: ['****', '****'] },
  { name: 'unresolvable origin on classified statement', columns: cols(['c', 999, 1]), relations: users, values: ['x'], expect: ['****'] },
];

function apply(plan: MaskPlan | null, columns: ResultColumn[], values: string[]): (string | null)[] {
  return values.map((v, i) => {
    const m = plan?.columns.find((c) => c.index === i);
    if (!m) return v;
    const out = m.mask(Buffer.from(v), columns[i].format, columns[i].typeId);
    return out === null ? null : out.toString();
  });
}

test('buildMaskPlan: direct, derived, unprovable and unmasked columns', () => {
  for (const c of CASES) {
    const input: MaskPlanInput = {
      columns: c.columns,
      lineage: c.lineage,
      relations: c.relations,
      resolve: (oid, att) => CATALOG[`${oid}:${att}`],
      identity: c.identity ?? dev,
      target: 'prod',
      config: c.config ?? config,
    };
    const plan = buildMaskPlan(input);
    assert.ok(!isMaskBlock(plan), c.name);
    const got = apply(plan, c.columns, c.values);
    for (const [i, e] of c.expect.entries()) {
      if (e instanceof RegExp) assert.match(got[i] ?? '', e, `${c.name} [${i}]`);
      else assert.equal(got[i], e, `${c.name} [${i}]`);
    }
    if (c.expect.every((e, i) => e === c.values[i])) assert.equal(plan, null, `${c.name}: unchanged results need no plan`);
    if (c.masked) assert.deepEqual(plan?.maskedColumns, c.masked, c.name);
  }
});

test('onUnprovable: block returns a 42501 marker naming the columns', () => {
  const r = buildMaskPlan({ columns: cols(['f', 0, 0]), lineage: [lin('f', [], { opaque: true })], relations: users, resolve: () => undefined, identity: dev, target: 'prod', config: blocking });
  assert.ok(isMaskBlock(r));
  assert.equal(r.error.sqlstate, '42501');
  assert.match(r.error.message, /^dbgov: blocked/);
  assert.deepEqual(r.columns, ['f (unprovable)']);
});

test('deterministic hash joins across two tables', () => {
  const card = '4111111111111111';
  const plan = (oid: number, att: number) => buildMaskPlan({ columns: cols(['card', oid, att]), relations: users, resolve: (o, a) => CATALOG[`${o}:${a}`], identity: dev, target: 'prod', config }) as MaskPlan;
  const fromUsers = plan(100, 4).columns[0].mask(Buffer.from(card), 0, PgType.text)!.toString();
  const fromOrders = plan(200, 3).columns[0].mask(Buffer.from(card), 0, PgType.text)!.toString();
  assert.match(fromUsers, /^tok_/);
  assert.equal(fromUsers, fromOrders);
  assert.notEqual(plan(200, 3).columns[0].mask(Buffer.from('4000000000000002'), 0, PgType.text)!.toString(), fromUsers);
});

test('binary result format: text masked in place, int replaced type-valid', () => {
  const columns: ResultColumn[] = [
    { index: 0, name: 'email', tableOid: 100, attnum: 2, typeId: PgType.text, format: 1 },
    { index: 1, name: 'n', tableOid: 0, attnum: 0, typeId: PgType.int4, format: 1 },
  ];
  const plan = buildMaskPlan({ columns, lineage: [lin('email', ['public.users.email'], { direct: true }), lin('n', ['public.users.ssn'])], relations: users, resolve: (o, a) => CATALOG[`${o}:${a}`], identity: dev, target: 'prod', config }) as MaskPlan;
  assert.equal(plan.columns[0].mask(Buffer.from('alice@example.com'), 1, PgType.text)!.toString(), '****@example.com');
  assert.deepEqual(plan.columns[1].mask(Buffer.from([0, 0, 0, 11]), 1, PgType.int4), Buffer.alloc(4));
});

test('MySQL: the column the server names (org_table / org_name) is masked whatever the lineage says', () => {
  // A statement the analyser read differently from the server: lineage says a constant, touching nothing.
  const columns: ResultColumn[] = [
    { index: 0, name: 'x', orgSchema: 'public', orgTable: 'users', orgName: 'ssn', typeId: PgType.text, format: 0 },
    { index: 1, name: 'id', orgSchema: 'public', orgTable: 'users', orgName: 'id', typeId: PgType.text, format: 0 },
    { index: 2, name: 'e', orgSchema: '', orgTable: '', orgName: '', typeId: PgType.text, format: 0 },
  ];
  const plan = buildMaskPlan({ columns, lineage: [lin('x', []), lin('id', []), lin('e', [])], relations: [], resolve: () => undefined, identity: dev, target: 'prod', config });
  assert.ok(!isMaskBlock(plan));
  assert.deepEqual(apply(plan, columns, ['123-45-6789', '1', 'y']), ['****', '1', 'y']);
});
