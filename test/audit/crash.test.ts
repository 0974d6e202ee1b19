import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { verifyAudit } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openEmbeddedStore } from '../../src/store/embedded.js';

describe('crash safety', () => {
  it('keeps every acknowledged event through kill -9 under load, and the chain verifies', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dbgov-crash-'));
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'test/audit/fixtures/crash-writer.ts'), dir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acked = new Set<number>();
      let partial = '';
      await new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited early: ${code}`))));
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => {
          const text = partial + chunk;
          const lines = text.split('\n');
          partial = lines.pop() ?? '';
          for (const l of lines) if (l) acked.add(Number(l));
          if (acked.size >= 5000 && !child.killed) child.kill('SIGKILL');
        });
      });
      assert.ok(acked.size >= 5000);

      const store = await openEmbeddedStore({ dir, brokerId: 'crash', fsync: 'interval', log: silentLogger });
      const present = new Set<number>();
      for await (const e of store.audit.stream({})) present.add(e.seq);
      const missing = [...acked].filter((s) => !present.has(s));
      const result = await verifyAudit(store.audit.stream({}), { publicKeyPem: store.publicKeyPem(), checkpoints: store.audit.checkpointsPath, complete: true });
      await store.close();
      assert.deepEqual(missing, []);
      assert.deepEqual(result.problems, []);
      assert.ok(result.checkpoints >= 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
