/**
 * What an approval covers: one identity, one target, one database, one exact text, once; and who
 * counts as the requester (owners of API-created service accounts, and of whoever an agent acts
 * for). Runs the real Approvals against a real embedded store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Approvals } from '../../src/broker/approvals.js';
import { agentIdentity } from '../../src/broker/access.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { Identity } from '../../src/shared/types.js';

const dev: Identity = { id: 'pipeline', kind: 'workload', groups: ['developers'], source: 'service-account' };
const lead: Identity = { id: 'lead@corp.example', kind: 'human', groups: ['approvers'], source: 'oidc' };
const other: Identity = { id: 'erin@corp.example', kind: 'human', groups: ['approvers'], source: 'oidc' };

let dir: string;
let store: EmbeddedStore;
let approvals: Approvals;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbgov-appr-scope-'));
  store = await openEmbeddedStore({ dir, brokerId: 't', fsync: 'interval', log: silentLogger });
  approvals = new Approvals(store, store.audit, silentLogger);
  approvals.owners = async (id) => (await store.listServiceAccounts()).find((a) => a.id === id)?.owner;
  await store.putServiceAccount({ id: 'pipeline', tokenHash: 'ab'.repeat(32), groups: ['developers'], kind: 'workload', owner: lead.id, createdAt: Date.now(), origin: 'api' });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const request = (requester: Identity, sql: string, database = 'app') =>
  approvals.createStatementRequest({
    requester,
    target: 'prod',
    database,
    sessionId: 'ses_1',
    sql,
    redacted: sql,
    fingerprint: 'f',
    kind: 'update',
    tables: ['public.t'],
    estimatedRows: 1,
    rule: 'r',
    approvers: { groups: ['approvers'], quorum: 1 },
    expiresMs: 60_000,
    windowMs: 60_000,
  });

test('an approval is consumed only by the exact text, on the same database, once', async () => {
  const sql = 'update t set v = 1 where id = 2';
  const r = await request(dev, sql);
  await approvals.vote(r.id, other, 'approve');
  const variants: [string, string][] = [
    [`${sql} `, 'app'],
    [`${sql};`, 'app'],
    [`${sql} -- ok`, 'app'],
    [`/* */ ${sql}`, 'app'],
    [sql.toUpperCase(), 'app'],
    [sql.replace('v = 1', 'v = 2'), 'app'],
    [sql, 'app_copy'],
  ];
  for (const [text, database] of variants) {
    assert.equal(await approvals.consume(dev, 'prod', database, text), undefined, `${database}: ${text}`);
    assert.equal(await approvals.consume(dev, 'prod', database, text, r.id), undefined, `${database}: ${text} (by id)`);
  }
  assert.equal(await approvals.consume({ ...dev, id: 'someone-else' }, 'prod', 'app', sql), undefined, 'another identity');
  assert.equal((await approvals.consume(dev, 'prod', 'app', sql))?.id, r.id, 'the exact statement is released');
  assert.equal(await approvals.consume(dev, 'prod', 'app', sql), undefined, 'and only once');
});

test('two sessions racing for one approval: exactly one wins', async () => {
  const sql = 'update t set v = 3 where id = 3';
  const r = await request(dev, sql);
  await approvals.vote(r.id, other, 'approve');
  const wins = await Promise.all(Array.from({ length: 8 }, () => approvals.consume(dev, 'prod', 'app', sql)));
  assert.equal(wins.filter(Boolean).length, 1);
});

test('the owner of an API-created service account cannot approve its request, nor one its agent makes', async () => {
  for (const requester of [dev, agentIdentity(dev, 'helper')]) {
    const r = await request(requester, `update t set v = 4 where id = ${Math.random()}`);
    await assert.rejects(approvals.vote(r.id, lead, 'approve'), /your own request/);
    const votes = (await collect()).filter((e) => e.kind === 'approval.vote' && (e.detail as { requestId?: string }).requestId === r.id);
    assert.equal(votes.length, 1);
    assert.equal(votes[0].identity?.id, lead.id);
    assert.match(String((votes[0].detail as { refused?: string }).refused), /own request/);
    assert.equal((await approvals.vote(r.id, other, 'approve')).status, 'approved', 'someone else may');
  }
});

test('votes on unknown and closed requests are refused and audited under the voter', async () => {
  const r = await request(dev, 'update t set v = 5 where id = 5');
  await approvals.vote(r.id, other, 'deny', 'no');
  for (const id of [r.id, 'NOSUCHID']) {
    await assert.rejects(approvals.vote(id, lead, 'approve'), (e: { detail?: { audited?: boolean } }) => e.detail?.audited === true);
    const votes = (await collect()).filter((e) => e.kind === 'approval.vote' && (e.detail as { requestId?: string }).requestId === id && e.identity?.id === lead.id);
    assert.equal(votes.length, 1, id);
    assert.ok((votes[0].detail as { refused?: string }).refused, id);
  }
  assert.equal((await approvals.get(r.id)).status, 'denied');
});

test('token revocations survive a restart and never move back', async () => {
  await store.revokeTokens('alice', 2_000, 'admin');
  await store.revokeTokens('alice', 1_000, 'admin');
  assert.equal(await store.tokensRevokedAt('alice'), 2_000);
  await store.close();
  store = await openEmbeddedStore({ dir, brokerId: 't', fsync: 'interval', log: silentLogger });
  approvals = new Approvals(store, store.audit, silentLogger);
  assert.equal(await store.tokensRevokedAt('alice'), 2_000);
  assert.equal(await store.tokensRevokedAt('bob'), undefined);
});

async function collect() {
  await store.audit.sync();
  const out = [];
  for await (const e of store.audit.stream({})) out.push(e);
  return out;
}
