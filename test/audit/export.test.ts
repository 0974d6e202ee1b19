import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { CSV_COLUMNS } from '../../src/audit/csv.js';
import type { AuditEvent, AuditEventInput } from '../../src/audit/event.js';
import { exportAudit, type ExportFormat } from '../../src/audit/export.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded.js';
import { statementInput } from './fixtures/events.js';

/** RFC 4180 parser, enough to read back what the exporter writes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(cell), (cell = '');
    else if (ch === '\r' && text[i + 1] === '\n') row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    else cell += ch;
  }
  return rows;
}

/** A slow destination with a tiny buffer, so the exporter must honour backpressure. */
class SlowSink extends Writable {
  chunks: Buffer[] = [];
  maxBuffered = 0;
  constructor() {
    super({ highWaterMark: 1024 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
    this.chunks.push(chunk);
    setImmediate(cb);
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

async function run(store: EmbeddedStore, format: ExportFormat): Promise<SlowSink> {
  const sink = new SlowSink();
  const progress: number[] = [];
  const r = await exportAudit(store, {}, format, sink, (p) => progress.push(p.events));
  assert.equal(progress.at(-1), r.events);
  return sink;
}

describe('exportAudit', () => {
  let dir: string;
  let store: EmbeddedStore;
  let events: AuditEvent[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dbgov-export-'));
    store = await openEmbeddedStore({ dir, brokerId: 'b1', fsync: 'interval', checkpointEvery: 50, log: silentLogger });
    const alice = { id: 'alice@example.com', kind: 'human' as const, groups: ['dev'] };
    const other: AuditEventInput[] = [
      { kind: 'login', identity: alice, target: null, database: null, sessionId: null, detail: { client: '10.0.0.7' } },
      { kind: 'session.start', identity: alice, target: 'prod', database: 'app', sessionId: 'ses_1' },
      { kind: 'approval.decided', identity: { id: 'bob@example.com', kind: 'human', groups: ['approvers'] }, target: 'prod', database: 'app', sessionId: null, detail: { requestId: 'req_1', outcome: 'approved', text: 'quote " and, comma\nnewline' } },
    ];
    for (let i = 0; i < 300; i++) store.audit.appendSync(i % 50 < 3 ? other[i % 50] : statementInput(i));
    events = [];
    for await (const e of store.audit.stream({})) events.push(e);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('jsonl round-trips every event, checkpoints included, and the export verifies offline', async () => {
    const sink = await run(store, 'jsonl');
    const lines = sink.text().trimEnd().split('\n');
    assert.deepEqual(lines.map((l) => JSON.parse(l)), events);
    assert.ok(sink.maxBuffered <= 70 * 1024, `buffered ${sink.maxBuffered} bytes`);
    const file = join(dir, 'export.jsonl');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, sink.text());
    const r = await verifyAudit(file, { publicKeyPem: store.publicKeyPem(), complete: true });
    assert.deepEqual(r.problems, []);
    assert.ok(r.checkpoints >= 6);
  });

  it('csv has a header and one row per event that reads back to the same values', async () => {
    const rows = parseCsv((await run(store, 'csv')).text());
    assert.deepEqual(rows[0], [...CSV_COLUMNS]);
    assert.equal(rows.length, events.length + 1);
    const col = (name: (typeof CSV_COLUMNS)[number]) => CSV_COLUMNS.indexOf(name);
    events.forEach((e, i) => {
      const r = rows[i + 1];
      assert.equal(r.length, CSV_COLUMNS.length);
      assert.equal(Number(r[col('seq')]), e.seq);
      assert.equal(r[col('hash')], e.hash);
      assert.equal(r[col('identity_id')], e.identity?.id ?? '');
      assert.equal(r[col('statement_text')], e.statement?.text ?? '');
      assert.equal(r[col('statement_tables')], e.statement?.tables.join(';') ?? '');
      assert.deepEqual(r[col('detail')] ? JSON.parse(r[col('detail')]) : undefined, e.detail);
    });
  });

  it('ocsf lines validate against the published schema and map kind and outcome', async () => {
    const schema = JSON.parse(await readFile(join(process.cwd(), 'schema/ocsf-datastore-activity.schema.json'), 'utf8'));
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const lines = (await run(store, 'ocsf')).text().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    assert.equal(lines.length, events.length);
    for (const l of lines) assert.ok(validate(l), JSON.stringify(validate.errors));

    const bySeq = new Map(lines.map((l) => [l.metadata.sequence as number, l]));
    const expectations: { pick: (e: AuditEvent) => boolean; activity: number; status: number }[] = [
      { pick: (e) => e.statement?.kind === 'select', activity: 4, status: 1 },
      { pick: (e) => e.statement?.kind === 'update', activity: 2, status: 1 },
      { pick: (e) => e.statement?.kind === 'delete', activity: 7, status: 2 },
      { pick: (e) => e.kind === 'session.start', activity: 3, status: 1 },
      { pick: (e) => e.kind === 'login', activity: 99, status: 1 },
    ];
    for (const x of expectations) {
      const e = events.find(x.pick)!;
      const o = bySeq.get(e.seq)!;
      assert.equal(o.activity_id, x.activity, e.kind);
      assert.equal(o.type_uid, 600500 + x.activity);
      assert.equal(o.status_id, x.status, e.kind);
      assert.equal(o.time, Date.parse(e.time));
      assert.equal(o.metadata.uid, e.id);
      assert.equal(o.actor.user.uid, e.identity?.id ?? 'dbgov');
    }
    const agent = lines.find((l) => l.actor.user.uid === 'agent-7')!;
    assert.deepEqual([agent.actor.user.type_id, agent.unmapped.on_behalf_of], [99, 'alice@example.com']);
  });
});
