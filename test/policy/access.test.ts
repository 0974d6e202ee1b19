import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/compile.js';
import { decideAccess } from '../../src/policy/decide.js';
import type { AccessAction, AccessContext } from '../../src/policy/types.js';
import type { Identity } from '../../src/shared/types.js';
import { accessCtx, agent, dba, staging } from './fixtures.js';

const stagingDev: Identity = { id: 'sam@example.com', kind: 'human', groups: ['staging-devs'], source: 'oidc' };
const oncall: Identity = { id: 'olu@example.com', kind: 'human', groups: ['oncall'], source: 'oidc' };

const rules = {
  accessHelp: 'ask in #db-access',
  approvers: { groups: ['dba'], quorum: 1 },
  access: [
    { name: 'staging-devs', match: { identity: { groups: ['staging-devs'] }, target: { labels: { env: 'staging' } } }, action: 'allow' },
    { name: 'everyone-reads-prod', match: { identity: { groups: ['devs', 'oncall', 'dba'] }, target: { labels: { env: 'prod' } }, access: ['read'] }, action: 'allow', maxTtl: '8h' },
    {
      name: 'oncall-writes',
      match: { identity: { groups: ['oncall'] }, access: ['write'], when: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], hours: '09:00-18:00', timezone: 'Europe/Paris' }], sourceCidrs: ['10.0.0.0/8'] },
      reason: { pattern: '^INC-\\d+$' },
      action: 'allow',
      maxTtl: '1h',
    },
    { name: 'admin-needs-two', match: { access: ['admin'], target: { protected: true } }, action: 'review', approvers: { groups: ['dba'], quorum: 2 }, expires: '30m' },
    { name: 'no-contractors', match: { identity: { ids: ['*@contractor.example'] } }, action: 'deny', message: 'contractors do not get database access', hint: 'ask your sponsor' },
  ],
};

// Monday 6 Jan 2025 10:00 UTC = 11:00 in Paris.
const monday = Date.UTC(2025, 0, 6, 10, 0);
const sunday = Date.UTC(2025, 0, 5, 10, 0);

const cases: { name: string; raw?: unknown; ctx: Partial<AccessContext>; action: AccessAction; rule: string; maxTtlMs?: number | null; message?: RegExp }[] = [
  { name: 'default: anyone reads', raw: {}, ctx: {}, action: 'allow', rule: 'default-read', maxTtlMs: null },
  { name: 'default: write on prod needs review', raw: {}, ctx: { access: 'write' }, action: 'review', rule: 'default-elevation' },
  { name: 'default: write on staging is fine', raw: {}, ctx: { access: 'write', target: staging }, action: 'allow', rule: 'default-unprotected' },
  { name: 'default: agents never write prod', raw: {}, ctx: { access: 'write', identity: agent }, action: 'deny', rule: 'default-agent-read-only' },
  { name: 'staging dev on staging', ctx: { identity: stagingDev, target: staging, access: 'write' }, action: 'allow', rule: 'staging-devs' },
  { name: 'staging dev asking for prod is told why', ctx: { identity: stagingDev }, action: 'deny', rule: 'default', message: /rule staging-devs applies to you, but env=prod not in \[staging\]/ },
  { name: 'dev reads prod, capped at 8h', ctx: {}, action: 'allow', rule: 'everyone-reads-prod', maxTtlMs: 28_800_000 },
  { name: 'oncall write in hours from office with ticket', ctx: { identity: oncall, access: 'write', now: monday, sourceIp: '10.1.2.3', reason: 'INC-42' }, action: 'allow', rule: 'oncall-writes', maxTtlMs: 3_600_000 },
  { name: 'ipv4-mapped source address', ctx: { identity: oncall, access: 'write', now: monday, sourceIp: '::ffff:10.1.2.3', reason: 'INC-42' }, action: 'allow', rule: 'oncall-writes' },
  { name: 'oncall write without reason', ctx: { identity: oncall, access: 'write', now: monday, sourceIp: '10.1.2.3' }, action: 'deny', rule: 'oncall-writes', message: /a reason is required/ },
  { name: 'oncall write with a bad reason', ctx: { identity: oncall, access: 'write', now: monday, sourceIp: '10.1.2.3', reason: 'because' }, action: 'deny', rule: 'oncall-writes', message: /does not match/ },
  { name: 'oncall write on sunday', ctx: { identity: oncall, access: 'write', now: sunday, sourceIp: '10.1.2.3', reason: 'INC-42' }, action: 'deny', rule: 'default', message: /outside mon,tue,wed,thu,fri 09:00-18:00 Europe\/Paris/ },
  { name: 'oncall write from home', ctx: { identity: oncall, access: 'write', now: monday, sourceIp: '192.168.1.5', reason: 'INC-42' }, action: 'deny', rule: 'default', message: /not in \[10.0.0.0\/8\]/ },
  { name: 'admin on prod needs two', ctx: { identity: dba, access: 'admin' }, action: 'review', rule: 'admin-needs-two' },
  { name: 'deny beats allow', ctx: { identity: { id: 'x@contractor.example', kind: 'human', groups: ['devs'], source: 'oidc' } }, action: 'deny', rule: 'no-contractors', message: /^dbgov: access denied: contractors/ },
];

test('decideAccess: table', () => {
  const compiled = compilePolicy(rules);
  for (const c of cases) {
    const policy = c.raw === undefined ? compiled : compilePolicy(c.raw);
    const d = decideAccess(policy, accessCtx(c.ctx));
    assert.equal(`${d.action} ${d.rule}`, `${c.action} ${c.rule}`, `${c.name}: ${d.message}`);
    if (c.maxTtlMs !== undefined) assert.equal(d.maxTtlMs, c.maxTtlMs, c.name);
    if (c.message) assert.match(d.message, c.message, c.name);
    if (d.action === 'deny') assert.ok(d.hint.length > 0, `${c.name}: a denial says what to do`);
  }
});

test('decideAccess: review carries approvers and expiry; denial hint is the access help', () => {
  const p = compilePolicy(rules);
  const r = decideAccess(p, accessCtx({ identity: dba, access: 'admin' }));
  assert.deepEqual(r.approvers, { groups: ['dba'], quorum: 2 });
  assert.equal(r.expiresMs, 1_800_000);
  assert.equal(decideAccess(p, accessCtx({ identity: stagingDev })).hint, 'ask in #db-access');
});

test('time windows wrap past midnight', () => {
  const p = compilePolicy({ access: [{ name: 'night', match: { when: [{ days: ['mon'], hours: '22:00-06:00', timezone: 'UTC' }] }, action: 'allow' }] });
  const at = (d: number, h: number) => decideAccess(p, accessCtx({ now: Date.UTC(2025, 0, d, h, 30) })).action;
  assert.deepEqual([at(6, 23), at(7, 3), at(7, 7), at(6, 3)], ['allow', 'allow', 'deny', 'deny']);
});
