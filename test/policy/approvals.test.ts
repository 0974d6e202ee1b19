import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canApprove, tally } from '../../src/policy/approvals.js';
import type { ApprovalRequest } from '../../src/store/store.js';
import type { Identity } from '../../src/shared/types.js';
import { agent, dev } from './fixtures.js';

const alice: Identity = { id: 'alice', kind: 'human', groups: ['dba'], source: 'oidc' };
const bob: Identity = { id: 'bob', kind: 'human', groups: ['dba'], source: 'oidc' };
const carol: Identity = { id: 'carol', kind: 'human', groups: ['devs'], source: 'oidc' };
const ciBot: Identity = { id: 'ci-bot', kind: 'workload', groups: ['ci'], source: 'service-account' };
const aliceAgent: Identity = { id: 'agent-a', kind: 'agent', groups: ['dba'], source: 'service-account', onBehalfOf: { id: 'alice', kind: 'human', groups: ['dba'] } };

function request(p: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return { id: 'req_1', type: 'statement', status: 'pending', requester: dev, target: 'prod', database: 'app', rule: 'r', approvers: { groups: ['dba'], quorum: 2 }, votes: [], createdAt: 0, expiresAt: 1000, ...p };
}

const owners = new Map([['ci-bot', 'alice'], ['stamp', 'alice']]);
const stamp: Identity = { id: 'stamp', kind: 'workload', groups: ['dba'], source: 'service-account' };

const cases: { name: string; req: ApprovalRequest; approver: Identity; ok: boolean; reason?: RegExp }[] = [
  { name: 'an approver in the group', req: request(), approver: alice, ok: true },
  { name: 'not in an approver group', req: request(), approver: carol, ok: false, reason: /only members of dba/ },
  { name: 'own request', req: request({ requester: alice }), approver: alice, ok: false, reason: /your own request/ },
  { name: 'own agent', req: request({ requester: aliceAgent }), approver: alice, ok: false, reason: /your own request/ },
  { name: 'own service account', req: request({ requester: ciBot }), approver: alice, ok: false, reason: /your own request/ },
  { name: 'someone else may approve the service account', req: request({ requester: ciBot }), approver: bob, ok: true },
  { name: 'agents never approve', req: request(), approver: aliceAgent, ok: false, reason: /agents never approve/ },
  { name: 'an agent acting for the approver', req: request({ requester: agent }), approver: { ...dev, groups: ['dba'] }, ok: false, reason: /your own request/ },
  { name: 'one vote per identity', req: request({ votes: [{ identity: 'alice', decision: 'approve', at: 1 }] }), approver: alice, ok: false, reason: /already voted/ },
  { name: 'voting on one\'s own request with a service account one owns', req: request({ requester: alice }), approver: stamp, ok: false, reason: /your own request/ },
  { name: 'a service account votes for its owner', req: request({ votes: [{ identity: 'alice', decision: 'approve', at: 1 }] }), approver: stamp, ok: false, reason: /already voted/ },
  { name: 'an owner after their service account', req: request({ votes: [{ identity: 'stamp', person: 'alice', decision: 'approve', at: 1 }] }), approver: alice, ok: false, reason: /already voted/ },
  { name: 'a service account someone else owns may vote', req: request({ votes: [{ identity: 'bob', decision: 'approve', at: 1 }] }), approver: stamp, ok: true },
  { name: 'not pending', req: request({ status: 'approved' }), approver: alice, ok: false, reason: /approved, not pending/ },
];

test('canApprove: table', () => {
  for (const c of cases) {
    const r = canApprove(c.req, c.approver, { owners, now: 10 });
    assert.equal(r.ok, c.ok, c.name);
    if (!r.ok && c.reason) assert.match(r.reason, c.reason, c.name);
  }
});

test('canApprove: expired', () => {
  assert.equal(canApprove(request(), alice, { now: 1000 }).ok, false);
});

test('tally: quorum, duplicates and denials', () => {
  const v = (identity: string, decision: 'approve' | 'deny') => ({ identity, decision, at: 1 });
  const cases: [ApprovalRequest['votes'], number, string][] = [
    [[], 1, 'pending'],
    [[v('alice', 'approve')], 1, 'approved'],
    [[v('alice', 'approve')], 2, 'pending'],
    [[v('alice', 'approve'), v('alice', 'approve')], 2, 'pending'],
    [[v('alice', 'approve'), v('bob', 'approve')], 2, 'approved'],
    [[v('alice', 'approve'), v('bob', 'deny')], 1, 'denied'],
    [[v('bob', 'deny')], 2, 'denied'],
    [[v('alice', 'approve'), { identity: 'stamp', person: 'alice', decision: 'approve', at: 1 }], 2, 'pending'],
  ];
  for (const [votes, quorum, want] of cases) assert.equal(tally(request({ votes, approvers: { groups: ['dba'], quorum } })), want, JSON.stringify({ votes, quorum }));
});
