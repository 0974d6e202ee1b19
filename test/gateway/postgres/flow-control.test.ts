/**
 * Backpressure through the gateway: a client that stops reading must stop the server, not make
 * the gateway queue the rest of the result in memory. Seen from the server, its backend waits
 * on ClientWrite; seen from this process (the gateway runs in it), few Buffers are held.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { FrameReader } from '../../../src/gateway/postgres/protocol/reader.js';
import * as ser from '../../../src/gateway/postgres/protocol/serializer.js';
import { ADMIN, createDatabase, dropDatabase, startGateway, type Gateway } from './harness.js';

/** Rows of ~1 kB: 128 MB, far more than the kernel buffers of both hops hold together. */
const ROWS = 131_072;
const BUFFERED_LIMIT = 32 * 1024 * 1024;

let db: string;
let gw: Gateway;
before(async () => {
  db = await createDatabase();
  gw = await startGateway({ database: db });
});
after(async () => {
  await gw.close();
  await dropDatabase(db);
});

/** A wire client that counts DataRows and keeps no message it does not need. */
class CountingClient {
  private readonly reader = new FrameReader(1 << 20);
  private readyWaiter: (() => void) | undefined;
  rows = 0;
  error: string | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      for (let m = this.reader.next(); m !== null; m = this.reader.next()) {
        if (m[0] === 0x44) this.rows++;
        else if (m[0] === 0x45) this.error = m.subarray(5).toString('latin1');
        else if (m[0] === 0x5a) this.readyWaiter?.();
      }
    });
    socket.on('error', (e) => (this.error = e.message));
  }

  ready(): Promise<void> {
    return new Promise((resolve) => (this.readyWaiter = resolve));
  }
}

async function backendWait(tag: string): Promise<{ state: string; wait_event: string | null } | undefined> {
  const admin = new pg.Client(ADMIN);
  await admin.connect();
  try {
    const r = await admin.query<{ state: string; wait_event: string | null }>('SELECT state, wait_event FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()', [`%${tag}%`]);
    return r.rows[0];
  } finally {
    await admin.end();
  }
}

test('a client that stops reading holds the server in ClientWrite; the gateway does not queue the result', async () => {
  const socket = connect(gw.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const client = new CountingClient(socket);
  try {
    let ready = client.ready();
    socket.write(ser.startupMessage([['user', 'raw'], ['database', db]]));
    await ready;

    const tag = `flow_${randomBytes(4).toString('hex')}`;
    socket.pause();
    ready = client.ready();
    socket.write(ser.query(`SELECT repeat('x', 1000) AS ${tag} FROM generate_series(1, ${ROWS})`));

    let seen: Awaited<ReturnType<typeof backendWait>>;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      seen = await backendWait(tag);
      if (seen?.wait_event === 'ClientWrite') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(seen?.wait_event, 'ClientWrite', `the server should be blocked writing; saw ${JSON.stringify(seen)}`);
    // Without backpressure the gateway would keep reading and the server would finish.
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await backendWait(tag), { state: 'active', wait_event: 'ClientWrite' });
    assert.ok(process.memoryUsage().arrayBuffers < BUFFERED_LIMIT, `the gateway holds ${process.memoryUsage().arrayBuffers} bytes of Buffers`);

    socket.resume();
    await ready;
    assert.equal(client.error, undefined);
    assert.equal(client.rows, ROWS, 'every row arrives after the client reads again');
  } finally {
    socket.end(ser.terminate());
  }
});
