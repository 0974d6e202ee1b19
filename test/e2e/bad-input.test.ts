/**
 * Bad input gets the client concerned a clear error, and the broker keeps serving everyone else.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { SA_TOKENS, createTestDatabase, psqlArgs, pgTarget, run, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import type { Clock } from '../../src/shared/clock.js';

/** Sends bytes to a port and collects whatever comes back until the peer closes. */
function poke(port: number, bytes: Buffer, timeoutMs = 5000): Promise<{ reply: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = netConnect(port, '127.0.0.1', () => s.write(bytes));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reply: Buffer.concat(chunks), closed: true });
    });
  });
}

describe('bad input', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset };

  before(async () => {
    db = await createTestDatabase('bad');
    tb = await startTestBroker({
      targets: { staging: pgTarget(db.name, { env: 'staging' }), down: pgTarget(db.name, { env: 'staging', port: 1, connectTimeout: '2s' }) },
      broker: { maxMessageBytes: 1048576 },
      clock,
    });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  const healthy = async (): Promise<void> => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'staging' });
    try {
      const c = await tunnelClient(conn);
      assert.equal((await c.query('select 7 as n')).rows[0].n, 7);
      await c.end();
    } finally {
      await conn.close();
    }
  };

  test('random and truncated protocol bytes close only that session', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'staging' });
    try {
      const samples = [randomBytes(64), randomBytes(3), Buffer.from([0, 0, 0, 8]), Buffer.from([0, 0, 0, 200, 0, 3, 0, 0, 117]), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4])];
      for (const bytes of samples) {
        const r = await poke(conn.tunnel.port, bytes, 3000);
        assert.ok(r.closed || r.reply.length >= 0);
      }
      // A hostile message after a valid startup: an unknown frontend message type.
      const c = await tunnelClient(conn);
      const live = await tunnelClient(conn);
      const sock = (c as unknown as { connection: { stream: NodeJS.WritableStream } }).connection.stream;
      const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
      sock.write(Buffer.from([0x7a, 0, 0, 0, 4]));
      await ended;
      assert.equal((await live.query('select 1 as one')).rows[0].one, 1, 'the other session is untouched');
      await live.end();
    } finally {
      await conn.close();
    }
    await healthy();
  });

  test('a message over the configured size limit is refused with 54000', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'staging' });
    try {
      const c = await tunnelClient(conn);
      await assert.rejects(c.query(`select '${'x'.repeat(2 * 1024 * 1024)}'`), (e: { code?: string; message?: string }) => e.code === '54000' && /too large/.test(e.message ?? ''));
      await c.end().catch(() => undefined);
    } finally {
      await conn.close();
    }
    await healthy();
  });

  test('a client speaking straight to the gateway, with no credential, is told to use dbgov connect', async () => {
    const gw = tb.broker.gateway.port;
    const r = await run('psql', ['-X', `host=127.0.0.1 port=${gw} user=x dbname=y sslmode=require connect_timeout=5`, '-c', 'select 1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no dbgov credential/);
    assert.match(r.stderr, /dbgov connect/);
    const plain = await run('psql', ['-X', `host=127.0.0.1 port=${gw} user=x dbname=y sslmode=disable connect_timeout=5`, '-c', 'select 1']);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /no dbgov credential/);
    const refused = await tb.events((e) => e.kind === 'session.refused');
    assert.ok(refused.length >= 2);
  });

  test('an expired credential is refused and names the command to run', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'staging', ttlSeconds: 60 });
    try {
      offset = 3 * 3600_000;
      const r = await run('psql', psqlArgs(conn, '-c', 'select 1'));
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /expired/);
      assert.match(r.stderr, /dbgov connect staging/);
    } finally {
      offset = 0;
      await conn.close();
    }
  });

  test('a credential used for another database is refused', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'staging' });
    try {
      const r = await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(conn.tunnel.port), '-U', 'ci-bot', '-d', 'postgres', '-c', 'select 1']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`credential is for database ${db.name}`));
    } finally {
      await conn.close();
    }
  });

  test('asking for a database the target does not serve is refused at issue time', async () => {
    await assert.rejects(tb.connect(SA_TOKENS.ci, { target: 'staging', database: 'postgres' }), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /does not serve database/.test(e.message ?? ''));
  });

  test('an upstream database that is down gives a clear error', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'down' });
    try {
      const r = await run('psql', psqlArgs(conn, '-c', 'select 1'), { timeoutMs: 20_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /dbgov: upstream/);
    } finally {
      await conn.close();
    }
    await healthy();
  });

  test('a broker that is down: the CLI says so and what to do (exit 5)', async () => {
    const r = await run(process.execPath, ['bin/run.js', 'targets', '--json'], { env: { DBGOV_BROKER: 'http://127.0.0.1:1', DBGOV_TOKEN: 'whatever-token-value' } });
    assert.equal(r.code, 5, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as { status: number; message: string; actions: string[] };
    assert.equal(out.status, 5);
    assert.match(out.message, /cannot reach the broker/i);
    assert.ok(out.actions.length > 0);
  });
});
