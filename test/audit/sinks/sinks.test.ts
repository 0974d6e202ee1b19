import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent } from '../../../src/audit/event.js';
import { natsSink } from '../../../src/audit/sinks/nats.js';
import { SinkRunner } from '../../../src/audit/sinks/runner.js';
import { syslogSink } from '../../../src/audit/sinks/syslog.js';
import { webhookSignature, webhookSink } from '../../../src/audit/sinks/webhook.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../../src/store/embedded.js';
import { statementInput } from '../fixtures/events.js';

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('audit sinks', () => {
  let dir: string;
  let store: EmbeddedStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dbgov-sinks-'));
    store = await openEmbeddedStore({ dir: join(dir, 'store'), brokerId: 'b1', fsync: 'interval', log: silentLogger });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('webhook: signed batches; a receiver that goes down blocks nothing and its backlog drains when it returns', async () => {
    const secret = 's3cret';
    const received = new Map<number, AuditEvent>();
    let badSignatures = 0;
    const listen = (port: number) =>
      new Promise<Server>((resolve) => {
        const srv = createHttpServer((req, res) => {
          let body = '';
          req.on('data', (c) => (body += c));
          req.on('end', () => {
            const ts = String(req.headers['x-dbgov-timestamp']);
            if (req.headers['x-dbgov-signature'] !== webhookSignature(secret, ts, body)) badSignatures += 1;
            for (const e of (JSON.parse(body) as { events: AuditEvent[] }).events) received.set(e.seq, e);
            res.end('ok');
          });
        });
        srv.listen(port, '127.0.0.1', () => resolve(srv));
      });
    let server = await listen(0);
    const port = (server.address() as { port: number }).port;
    const cursorFile = join(dir, 'webhook.cursor');
    const runner = new SinkRunner({ source: store.audit, transport: webhookSink({ url: `http://127.0.0.1:${port}/hook`, secret }), cursorFile, batchSize: 7, minBackoffMs: 20, maxBackoffMs: 100, log: silentLogger });
    runner.start();
    for (let i = 0; i < 10; i++) store.audit.appendSync(statementInput(i));
    await waitFor(() => received.size >= store.audit.lastSeq);

    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 25; i++) store.audit.appendSync(statementInput(i));
    const appendMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await waitFor(() => runner.consecutiveFailures >= 2);
    const whileDown = received.size;

    server = await listen(port);
    await waitFor(() => runner.cursor === store.audit.lastSeq);
    await runner.stop();
    await new Promise<void>((r) => server.close(() => r()));

    assert.ok(appendMs < 500, `appends took ${appendMs} ms while the sink was down`);
    assert.ok(whileDown < store.audit.lastSeq);
    assert.deepEqual([...received.keys()].sort((a, b) => a - b), Array.from({ length: store.audit.lastSeq }, (_, i) => i + 1));
    assert.equal(badSignatures, 0);
    assert.deepEqual(JSON.parse(await readFile(cursorFile, 'utf8')), { seq: store.audit.lastSeq });
  });

  it('syslog: RFC 5424 frames with octet counting over TCP', async () => {
    let data = '';
    const srv = createTcpServer((s) => s.setEncoding('utf8').on('data', (c: string) => (data += c)));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const runner = new SinkRunner({
      source: store.audit,
      transport: syslogSink({ host: '127.0.0.1', port: (srv.address() as { port: number }).port, hostname: 'broker-1' }),
      cursorFile: join(dir, 'syslog.cursor'),
      log: silentLogger,
    });
    store.audit.appendSync(statementInput(2));
    runner.start();
    await waitFor(() => runner.cursor === store.audit.lastSeq);
    await runner.stop();
    await waitFor(() => data.length > 0);
    await new Promise<void>((r) => srv.close(() => r()));

    const frames: string[] = [];
    let rest = Buffer.from(data);
    while (rest.length > 0) {
      const sp = rest.indexOf(0x20);
      const len = Number(rest.subarray(0, sp).toString());
      frames.push(rest.subarray(sp + 1, sp + 1 + len).toString('utf8'));
      rest = rest.subarray(sp + 1 + len);
    }
    assert.equal(frames.length, store.audit.lastSeq);
    const blocked = frames.find((f) => f.includes('"decision":"block"'))!;
    assert.match(blocked, /^<108>1 \d{4}-\d\d-\d\dT[\d:.]+Z broker-1 dbgov - statement \[dbgov@32473 seq="\d+" id="evt_\w+" hash="[0-9a-f]{64}" identity="[^"]+"\] \uFEFF\{/);
    const event = JSON.parse(blocked.slice(blocked.indexOf('\uFEFF') + 1)) as AuditEvent;
    assert.equal(event.statement?.decision, 'block');
  });

  it('nats: publishes every event to JetStream, creating the stream', async () => {
    const stream = `DBGOV_TEST_${process.pid}_${Date.now()}`;
    const runner = new SinkRunner({ source: store.audit, transport: natsSink({ servers: '127.0.0.1:4222', stream, subjectPrefix: `t${process.pid}.audit` }), cursorFile: join(dir, 'nats.cursor'), log: silentLogger });
    runner.start();
    await waitFor(() => runner.cursor === store.audit.lastSeq, 10_000);
    await runner.stop();
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: '127.0.0.1:4222' });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(stream);
      assert.equal(info.state.messages, store.audit.lastSeq);
      await jsm.streams.delete(stream);
    } finally {
      await nc.close();
    }
  });
});
