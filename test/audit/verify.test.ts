import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventHash } from '../../src/audit/canonical.js';
import { readCheckpointsFile, type CheckpointRecord } from '../../src/audit/checkpoint.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { verifyAudit, type ProblemKind } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openEmbeddedStore } from '../../src/store/embedded.js';
import { statementInput } from './fixtures/events.js';

/** Rewrites hashes from index `from` on, as an attacker covering an edit would. */
function rechain(events: AuditEvent[], from: number): AuditEvent[] {
  const out = events.map((e) => structuredClone(e));
  for (let i = from; i < out.length; i++) {
    if (i > 0) out[i].prevHash = out[i - 1].hash;
    out[i].hash = eventHash(out[i]);
  }
  return out;
}

const at = (events: AuditEvent[], seq: number) => events.findIndex((e) => e.seq === seq);

describe('verifyAudit', () => {
  let dir: string;
  let events: AuditEvent[];
  let checkpoints: CheckpointRecord[];
  let publicKeyPem: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dbgov-verify-'));
    const store = await openEmbeddedStore({ dir: join(dir, 'store'), brokerId: 'b1', fsync: 'interval', checkpointEvery: 10, log: silentLogger });
    for (let i = 0; i < 50; i++) store.audit.appendSync(statementInput(i));
    events = [];
    for await (const e of store.audit.stream({})) events.push(e);
    publicKeyPem = store.publicKeyPem();
    await store.close();
    checkpoints = await readCheckpointsFile(join(dir, 'store', 'checkpoints.jsonl'));
    // A checkpoint every 10 events: 50 statements + 5 checkpoints. Close adds none (nothing new).
    assert.equal(events.length, 55);
    assert.equal(checkpoints.length, 5);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: { name: string; tamper: (e: AuditEvent[]) => AuditEvent[]; kind: ProblemKind | null; seq?: number }[] = [
    { name: 'an untouched log', tamper: (e) => e, kind: null },
    {
      name: 'an edited event',
      tamper: (e) => e.map((x) => (x.seq === 20 ? { ...x, statement: { ...x.statement!, text: 'SELECT 1' } } : x)),
      kind: 'edited',
      seq: 20,
    },
    {
      name: 'an edited event with its hash recomputed',
      tamper: (e) => e.map((x) => (x.seq === 20 ? { ...x, identity: null, hash: eventHash({ ...x, identity: null }) } : x)),
      kind: 'edited',
      seq: 20,
    },
    {
      name: 'an edit covered by rewriting the rest of the chain',
      tamper: (e) => rechain(e.map((x) => (x.seq === 20 ? { ...x, target: 'dev' } : x)), at(e, 20)),
      kind: 'edited',
      seq: 21,
    },
    { name: 'a deleted event', tamper: (e) => e.filter((x) => x.seq !== 30), kind: 'deleted', seq: 30 },
    { name: 'a deleted first event', tamper: (e) => e.filter((x) => x.seq !== 1), kind: 'deleted', seq: 1 },
    {
      name: 'reordered events',
      tamper: (e) => {
        const out = [...e];
        const i = at(e, 40);
        [out[i], out[i + 1]] = [out[i + 1], out[i]];
        return out;
      },
      kind: 'reordered',
      seq: 40,
    },
    { name: 'a truncated tail', tamper: (e) => e.slice(0, -8), kind: 'truncated', seq: 48 },
    {
      name: 'a forged checkpoint signature',
      tamper: (e) =>
        rechain(
          e.map((x) => (x.seq === 11 ? { ...x, detail: { ...x.detail, signature: Buffer.alloc(64, 1).toString('base64') } } : x)),
          at(e, 11),
        ),
      kind: 'bad-signature',
      seq: 11,
    },
  ];

  for (const c of cases) {
    it(`${c.kind === null ? 'accepts' : `reports ${c.kind} for`} ${c.name}, offline from an exported file`, async () => {
      const file = join(dir, `${c.name.replace(/\W+/g, '-')}.jsonl`);
      await writeFile(file, c.tamper(events).map((e) => JSON.stringify(e) + '\n').join(''));
      const r = await verifyAudit(file, { publicKeyPem, checkpoints, complete: true });
      if (c.kind === null) {
        assert.deepEqual(r.problems, []);
        assert.equal(r.ok, true);
        assert.equal(r.checkpoints, 5);
        return;
      }
      assert.equal(r.ok, false);
      const hit = r.problems.find((p) => p.kind === c.kind);
      assert.ok(hit, `expected a ${c.kind} problem, got ${JSON.stringify(r.problems)}`);
      assert.equal(hit.seq, c.seq, hit.message);
    });
  }

  it('reports a tampered checkpoints file as a bad signature', async () => {
    const forged = checkpoints.map((cp, i) => (i === 2 ? { ...cp, seq: cp.seq + 100 } : cp));
    const r = await verifyAudit(join(dir, 'an-untouched-log.jsonl'), { publicKeyPem, checkpoints: forged });
    assert.deepEqual(r.problems.map((p) => p.kind), ['bad-signature']);
  });

  it('rejects checkpoints signed by another key', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const r = await verifyAudit(join(dir, 'an-untouched-log.jsonl'), { publicKeyPem: other });
    assert.equal(r.problems.filter((p) => p.kind === 'bad-signature').length, 5);
  });
});
