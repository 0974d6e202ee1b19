import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventHash } from '../../src/audit/canonical.js';
import { AuditWriteError } from '../../src/audit/errors.js';
import type { AuditEvent, AuditEventInput, AuditFilter } from '../../src/audit/event.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded.js';
import type { ApprovalRequest, CredentialRecord } from '../../src/store/store.js';
import type { Identity } from '../../src/shared/types.js';
import { statementInput } from '../audit/fixtures/events.js';

const T0 = Date.parse('2025-03-01T09:00:00.000Z');

async function open(dir: string, extra: Partial<Parameters<typeof openEmbeddedStore>[0]> = {}): Promise<EmbeddedStore> {
  return openEmbeddedStore({ dir, brokerId: 'b1', fsync: 'interval', log: silentLogger, checkpointEvery: 1_000_000, ...extra });
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('embedded audit log', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dbgov-store-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('assigns seq, time and a chained hash, and continues the chain after reopening', async () => {
    const d = join(dir, 'chain');
    let store = await open(d);
    const a = store.audit.appendSync(statementInput(0, T0));
    const [b, c] = store.audit.appendManySync([statementInput(1, T0 + 1), statementInput(2, T0 + 2)]);
    await store.close();
    store = await open(d);
    const e = store.audit.appendSync(statementInput(3, T0 + 3));
    const stored = await all(store.audit.stream({}));
    await store.close();
    // Closing signs a checkpoint over what was written: it sits in the chain between c and e.
    assert.deepEqual([a.seq, b.seq, c.seq, e.seq], [1, 2, 3, 5]);
    assert.equal(stored[3].kind, 'checkpoint');
    assert.equal(a.time, '2025-03-01T09:00:00.000Z');
    assert.equal(b.prevHash, a.hash);
    assert.equal(stored[3].prevHash, c.hash);
    assert.equal(e.prevHash, stored[3].hash);
    for (const ev of [a, b, c, e]) assert.equal(eventHash(ev), ev.hash);
    const segs = await readdir(join(d, 'segments'));
    const lines = (await readFile(join(d, 'segments', segs[0]), 'utf8')).trim().split('\n');
    assert.deepEqual(JSON.parse(lines[0]), a, 'the stored line round-trips to the returned event');
  });

  it('cuts a torn last record left by a crash and keeps appending', async () => {
    const d = join(dir, 'torn');
    let store = await open(d);
    const a = store.audit.appendSync(statementInput(0));
    await store.close();
    const [seg] = await readdir(join(d, 'segments'));
    await appendFile(join(d, 'segments', seg), '{"seq":3,"id":"evt_half');
    store = await open(d);
    const b = store.audit.appendSync(statementInput(1));
    const events = await all(store.audit.stream({}));
    await store.close();
    assert.equal(b.seq, 3);
    assert.equal(events[1].prevHash, a.hash);
    assert.equal(b.prevHash, events[1].hash);
    assert.deepEqual(events.map((x) => x.kind), ['statement', 'checkpoint', 'statement']);
  });

  it('refuses to append once closed, so the caller refuses the statement', async () => {
    const store = await open(join(dir, 'closed'));
    await store.close();
    assert.throws(() => store.audit.appendSync(statementInput(0)), AuditWriteError);
  });

  it('refuses a second broker on the same folder', async () => {
    const d = join(dir, 'lock');
    const store = await open(d);
    await assert.rejects(open(d), /in use by process/);
    await store.close();
    const again = await open(d);
    await again.close();
  });

  describe('search and stream', () => {
    const inputs: AuditEventInput[] = Array.from({ length: 60 }, (_, i) => statementInput(i, T0 + i * 60_000));
    let store: EmbeddedStore;
    before(async () => {
      // Small segments so that reads cross several files.
      store = await open(join(dir, 'search'), { segmentBytes: 4096 });
      for (const input of inputs) store.audit.appendSync(input);
    });
    after(async () => {
      await store.close();
    });

    const cases: { name: string; filter: AuditFilter; expect: (i: AuditEventInput) => boolean }[] = [
      { name: 'everything', filter: {}, expect: () => true },
      { name: 'identity', filter: { identity: 'bob@example.com' }, expect: (i) => i.identity?.id === 'bob@example.com' },
      { name: 'identity via onBehalfOf', filter: { identity: 'alice@example.com' }, expect: (i) => i.identity?.id === 'alice@example.com' || i.identity?.onBehalfOf?.id === 'alice@example.com' },
      { name: 'identity kind', filter: { identityKind: 'workload' }, expect: (i) => i.identity?.kind === 'workload' },
      { name: 'target', filter: { target: 'staging' }, expect: (i) => i.target === 'staging' },
      { name: 'database', filter: { database: 'nope' }, expect: () => false },
      { name: 'bare table name', filter: { table: 'orders' }, expect: (i) => i.statement!.tables.includes('public.orders') },
      { name: 'qualified table', filter: { table: 'public.model_weights' }, expect: (i) => i.statement!.tables.includes('public.model_weights') },
      { name: 'column', filter: { column: 'email' }, expect: (i) => i.statement!.maskedColumns.includes('public.users.email') },
      { name: 'decision', filter: { decision: 'block' }, expect: (i) => i.statement!.decision === 'block' },
      { name: 'session', filter: { sessionId: 'ses_3' }, expect: (i) => i.sessionId === 'ses_3' },
      { name: 'time range', filter: { since: T0 + 10 * 60_000, until: T0 + 20 * 60_000 }, expect: (i) => i.at! >= T0 + 10 * 60_000 && i.at! < T0 + 20 * 60_000 },
      { name: 'text', filter: { text: 'SET STATUS' }, expect: (i) => i.statement!.text.includes('SET status') },
      { name: 'kind', filter: { kind: ['login', 'session.start'] }, expect: () => false },
      { name: 'combined', filter: { target: 'prod', decision: 'allow', identityKind: 'human' }, expect: (i) => i.target === 'prod' && i.statement!.decision === 'allow' && i.identity?.kind === 'human' },
    ];

    for (const c of cases) {
      it(`filters by ${c.name}, newest first across pages, and streams oldest first`, async () => {
        const expected = inputs.map((inp, idx) => ({ inp, seq: idx + 1 })).filter((x) => c.expect(x.inp)).map((x) => x.seq);
        const paged: number[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.audit.search(c.filter, { limit: 7, ...(cursor ? { cursor } : {}) });
          paged.push(...page.events.map((e) => e.seq));
          cursor = page.next;
          pages += 1;
        } while (cursor && pages < 50);
        assert.deepEqual(paged, [...expected].reverse());
        const streamed = (await all(store.audit.stream(c.filter))).map((e: AuditEvent) => e.seq);
        assert.deepEqual(streamed, expected);
      });
    }

    it('rejects a cursor it did not make', async () => {
      await assert.rejects(store.audit.search({}, { limit: 5, cursor: 'garbage' }), /cursor is not valid/);
    });
  });
});

describe('embedded state', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dbgov-state-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const identity: Identity = { id: 'alice@example.com', kind: 'human', groups: ['dev'], source: 'oidc' };
  const cred = (id: string, who = identity): CredentialRecord => ({
    id, identity: { ...who, groups: [...who.groups] }, target: 'prod', database: 'app', access: 'read', keyThumbprint: 'tp', issuedAt: 1, expiresAt: 2,
  });
  const request = (id: string): ApprovalRequest => ({
    id, type: 'statement', status: 'pending', requester: { ...identity, groups: ['dev'] }, target: 'prod', database: 'app', rule: 'r',
    approvers: { groups: ['approvers'], quorum: 2 }, votes: [], createdAt: 10, expiresAt: 20,
  });

  it('persists records through the journal, revokes, updates atomically and notifies watchers', async () => {
    let store = await open(dir);
    const seen: string[] = [];
    const stop = store.watch((c) => seen.push(`${c.type}:${c.id}`));
    await store.putCredential(cred('c1'));
    await store.putCredential(cred('c2'));
    await store.putCredential(cred('c3', { ...identity, id: 'bob@example.com' }));
    const revoked = await store.revokeCredentials({ identity: 'alice@example.com' }, 'admin', 99);
    await store.putRequest(request('r1'));
    // Two votes in flight at once: neither may be lost.
    await Promise.all(['x', 'y'].map((v) => store.updateRequest('r1', (r) => ({ ...r, votes: [...r.votes, { identity: v, decision: 'approve', at: 11 }] }))));
    await store.putServiceAccount({ id: 'ci-bot', tokenHash: 'h1', groups: ['ci'], kind: 'workload', createdAt: 1, origin: 'api' });
    await store.putDbRole({ target: 'prod', role: 'dbgov_a', identity: 'alice', sessionId: 's', createdAt: 1, expiresAt: 5 });
    await store.putDbRole({ target: 'prod', role: 'dbgov_b', identity: 'bob', sessionId: 's', createdAt: 1, expiresAt: 5, droppedAt: 4 });
    await new Promise((r) => setImmediate(r));
    stop();
    await store.close();

    assert.deepEqual(revoked.map((c) => c.id).sort(), ['c1', 'c2']);
    assert.ok(seen.includes('credential:c1') && seen.includes('request:r1'));
    await assert.rejects(store.updateRequest('nope', (r) => r), /No approval request/);

    store = await open(dir);
    const c1 = await store.getCredential('c1');
    const c3 = await store.getCredential('c3');
    const r1 = await store.getRequest('r1');
    const rows: [string, unknown, unknown][] = [
      ['revocation survives reopen', c1?.revokedAt, 99],
      ['revokedBy', c1?.revokedBy, 'admin'],
      ['other identity untouched', c3?.revokedAt, undefined],
      ['both votes kept', r1?.votes.map((v) => v.identity), ['x', 'y']],
      ['pending list', (await store.listRequests({ status: 'pending' })).length, 1],
      ['token lookup', (await store.findServiceAccountByTokenHash('h1'))?.id, 'ci-bot'],
      ['live roles', (await store.listDbRoles({ live: true })).map((r) => r.role), ['dbgov_a']],
      ['all roles', (await store.listDbRoles({ target: 'prod' })).length, 2],
    ];
    await store.close();
    for (const [name, got, want] of rows) assert.deepEqual(got, want, name);
  });
});
