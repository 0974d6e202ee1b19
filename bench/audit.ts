/**
 * Audit benchmark: sustained durable appends per second into the embedded store (group fsync
 * every 50 ms, then a final sync so every counted event is on disk), and peak RSS while
 * exporting N events. Usage: npx tsx bench/audit.ts [events=1000000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { exportAudit } from '../src/audit/export.js';
import { silentLogger } from '../src/shared/logger.js';
import { openEmbeddedStore } from '../src/store/embedded.js';
import { statementInput } from '../test/audit/fixtures/events.js';

const total = Number(process.argv[2] ?? 1_000_000);
const dir = await mkdtemp(join(tmpdir(), 'dbgov-bench-audit-'));
const out = (line: string) => process.stdout.write(line + '\n');
try {
  const store = await openEmbeddedStore({ dir, brokerId: 'bench', fsync: 'interval', log: silentLogger });
  const inputs = Array.from({ length: 64 }, (_, i) => statementInput(i));
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    store.audit.appendSync(inputs[i & 63]);
    // Yield now and then so the group fsync timer runs, as it does between statements in the broker.
    if ((i & 1023) === 1023) await new Promise((r) => setImmediate(r));
  }
  await store.audit.sync();
  const secs = (performance.now() - t0) / 1000;
  out(`append (one write per event, group fsync 50 ms): ${total} events in ${secs.toFixed(2)} s = ${Math.round(total / secs)} events/s (goal >= 20000)`);

  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const sink = new Writable({ write: (_c, _e, cb) => setImmediate(cb), highWaterMark: 256 * 1024 });
  const e0 = performance.now();
  const r = await exportAudit(store, {}, 'jsonl', sink);
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  out(`export jsonl: ${r.events} events, ${(r.bytes / 1e6).toFixed(0)} MB in ${((performance.now() - e0) / 1000).toFixed(2)} s; peak RSS ${(peak / 1e6).toFixed(0)} MB (goal < 200 MB)`);
  await store.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
