import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { AuditEvent } from '../../src/audit/event.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openEmbeddedStore } from '../../src/store/embedded.js';
import { statementInput } from './fixtures/events.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const DAY = 86_400_000;

describe('retention', () => {
  const cases: { name: string; tamper: boolean; problems: string[] }[] = [
    { name: 'prune keeps a chain that verifies, vouched by a retention checkpoint', tamper: false, problems: [] },
    { name: 'removing a segment by hand is reported as deleted events', tamper: true, problems: ['deleted'] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dbgov-retention-'));
      try {
        const store = await openEmbeddedStore({ dir, brokerId: 'b1', fsync: 'interval', segmentBytes: 8 * 1024, checkpointEvery: 25, log: silentLogger });
        for (let i = 0; i < 200; i++) store.audit.appendSync(statementInput(i, T0 + Math.floor(i / 20) * DAY));
        const before = (await readdir(join(dir, 'segments'))).sort();
        if (c.tamper) await unlink(join(dir, 'segments', before[0]));
        else {
          const r = await store.audit.prune(T0 + 5 * DAY);
          assert.ok(r.removedSegments > 0);
          assert.ok(r.firstSeq > 1);
        }
        const events: AuditEvent[] = [];
        for await (const e of store.audit.stream({})) events.push(e);
        const result = await verifyAudit(store.audit.stream({}), { publicKeyPem: store.publicKeyPem(), checkpoints: store.audit.checkpointsPath, complete: true });
        await store.close();
        assert.deepEqual(result.problems.map((p) => p.kind), c.problems);
        if (!c.tamper) {
          const statements = events.filter((e) => e.kind === 'statement');
          assert.ok(statements.length < 200, 'old events went');
          assert.equal(statements.filter((e) => e.time >= new Date(T0 + 5 * DAY).toISOString()).length, 100, 'newer events stayed');
          assert.ok(events.some((e) => e.kind === 'retention.pruned'));
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
