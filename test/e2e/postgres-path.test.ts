/**
 * The governed PostgreSQL path, end to end: real psql, pg and pgbench through a real tunnel and
 * gateway to the real server, with every statement tied to the identity in the audit log.
 */
import { stringifiesCanonically } from '../../src/audit/canonical.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { SA_TOKENS, createTestDatabase, psqlArgs, pgTarget, run, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import type { Connection } from '../../src/cli/connect.js';

describe('governed PostgreSQL path', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let conn: Connection;

  before(async () => {
    db = await createTestDatabase('path', 'CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, $$item $$ || g FROM generate_series(1, 100) g;');
    // pgbench's own tables are created directly: its -i drops and truncates, which is the DBA's job.
    const init = await run('pgbench', ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-U', 'postgres', db.name]);
    assert.equal(init.code, 0, init.stderr);
    tb = await startTestBroker({ targets: { staging: pgTarget(db.name, { env: 'staging' }) } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'write' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await db?.drop();
  });

  test('psql runs queries and meta-commands (\\dt+, \\d) through the tunnel', async () => {
    const r = await run('psql', psqlArgs(conn, '-c', 'select count(*) from items', '-c', '\\dt+', '-c', '\\d pgbench_accounts'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\b100\b/);
    assert.match(r.stdout, /pgbench_accounts/);
    assert.match(r.stdout, /Column\s+\|\s+Type/);
  });

  test('pg: simple multi-statement, extended with parameters, and named prepared statements', async () => {
    const c = await tunnelClient(conn);
    try {
      const multi = (await c.query('select 1 as a; select 2 as b')) as unknown as { rows: Record<string, number>[] }[];
      assert.deepEqual(multi.map((r) => r.rows[0]), [{ a: 1 }, { b: 2 }]);
      const p = await c.query('select name from items where id = $1', [7]);
      assert.equal(p.rows[0].name, 'item 7');
      for (let i = 1; i <= 3; i++) {
        const n = await c.query({ name: 'by-id', text: 'select id from items where id = $1', values: [i] });
        assert.equal(n.rows[0].id, i);
      }
    } finally {
      await c.end();
    }
  });

  for (const mode of ['simple', 'extended', 'prepared'] as const) {
    for (const script of ['select-only', 'tpcb-like'] as const) {
      test(`pgbench -b ${script} -M ${mode}, 8 clients`, async () => {
        const r = await run('pgbench', ['-n', '-b', script, '-M', mode, '-c', '8', '-j', '2', '-t', '25', '-h', '127.0.0.1', '-p', String(conn.tunnel.port), '-U', 'ci-bot', db.name], { timeoutMs: 120_000 });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /number of transactions actually processed: 200\/200/);
        assert.match(r.stdout, /number of failed transactions: 0/);
      });
    }
  }

  test('pipelined batches (\\startpipeline) go through and are each audited', async () => {
    const before = (await tb.events((e) => e.kind === 'statement' && e.statement?.text.includes('pipelined_marker') === true)).length;
    const script = "\\startpipeline\nselect 1 as pipelined_marker;\nselect 2 as pipelined_marker;\nselect 3 as pipelined_marker;\n\\endpipeline\n";
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const f = join(mkdtempSync(join(tmpdir(), 'pgb-')), 'pipe.sql');
    writeFileSync(f, script);
    const r = await run('pgbench', ['-n', '-M', 'extended', '-f', f, '-c', '2', '-t', '5', '-h', '127.0.0.1', '-p', String(conn.tunnel.port), '-U', 'ci-bot', db.name]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const after = (await tb.events((e) => e.kind === 'statement' && e.statement?.text.includes('pipelined_marker') === true)).length;
    assert.equal(after - before, 2 * 5 * 3, 'one decision record per statement in each pipelined batch');
  });

  test('COPY FROM STDIN and COPY TO STDOUT both ways', async () => {
    const rows = Array.from({ length: 500 }, (_, i) => `${1000 + i}\tcopied ${i}`).join('\n');
    const inR = await run('psql', psqlArgs(conn, '-c', '\\copy items (id, name) from stdin'), { input: `${rows}\n\\.\n` });
    assert.equal(inR.code, 0, inR.stderr);
    assert.match(inR.stdout, /COPY 500/);
    const outR = await run('psql', psqlArgs(conn, '-c', 'copy (select id, name from items where id >= 1000 order by id) to stdout'));
    assert.equal(outR.code, 0, outR.stderr);
    assert.equal(outR.stdout.trim().split('\n').length, 500);
    assert.equal(outR.stdout.split('\n')[0], '1000\tcopied 0');
  });

  test('a CancelRequest through the tunnel cancels the right backend', async () => {
    const c = await tunnelClient(conn);
    const victim = await tunnelClient(conn);
    try {
      const started = Date.now();
      const sleeping = c.query('select pg_sleep(30)').then(() => 'finished', (e: { code?: string }) => e.code);
      const bystander = victim.query('select pg_sleep(1.5)').then(() => 'finished', (e: { code?: string }) => e.code);
      await new Promise((r) => setTimeout(r, 400));
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(80877102, 4);
      cancel.writeInt32BE(processID, 8);
      cancel.writeInt32BE(secretKey, 12);
      await new Promise<void>((resolve, reject) => {
        const s = netConnect(conn.tunnel.port, '127.0.0.1', () => s.end(cancel));
        s.on('close', () => resolve());
        s.on('error', reject);
      });
      assert.equal(await sleeping, '57014', 'query_canceled');
      assert.ok(Date.now() - started < 10_000);
      assert.equal(await bystander, 'finished', 'another session was not cancelled');
      const again = await c.query('select 42 as n');
      assert.equal(again.rows[0].n, 42);
    } finally {
      await c.end();
      await victim.end();
    }
  });

  test('an error inside a transaction, then ROLLBACK, leaves the session usable', async () => {
    const c = await tunnelClient(conn);
    try {
      await c.query('begin');
      await c.query("insert into items values (5000, 'in tx')");
      await assert.rejects(c.query('select 1/0'), (e: { code?: string }) => e.code === '22012');
      await assert.rejects(c.query('select 1'), (e: { code?: string }) => e.code === '25P02');
      await c.query('rollback');
      const r = await c.query('select count(*)::int as n from items where id = 5000');
      assert.equal(r.rows[0].n, 0);
    } finally {
      await c.end();
    }
  });

  test('LISTEN/NOTIFY reaches the listener', async () => {
    const a = await tunnelClient(conn);
    const b = await tunnelClient(conn);
    try {
      await a.query('listen dbgov_chan');
      const got = new Promise<string | undefined>((resolve) => a.once('notification', (n) => resolve(n.payload)));
      await b.query("notify dbgov_chan, 'hello'");
      assert.equal(await got, 'hello');
    } finally {
      await a.end();
      await b.end();
    }
  });

  test('large rows and large results stream through', async () => {
    const c = await tunnelClient(conn);
    try {
      const big = await c.query("select repeat('x', 20000000) as v");
      assert.equal((big.rows[0].v as string).length, 20_000_000);
      const many = await c.query('select g, md5(g::text) from generate_series(1, 200000) g');
      assert.equal(many.rowCount, 200_000);
    } finally {
      await c.end();
    }
  });

  test('50 concurrent sessions each get their own backend', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => tunnelClient(conn)));
    try {
      const pids = await Promise.all(clients.map(async (c) => (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number));
      assert.equal(new Set(pids).size, 50);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  test('every statement has an audit record tied to the identity', async () => {
    const events = await tb.events();
    const statements = events.filter((e) => e.kind === 'statement');
    const results = events.filter((e) => e.kind === 'statement.result');
    // 6 pgbench runs of 200 transactions: select-only has 1 statement per transaction, TPC-B 7.
    assert.ok(statements.length >= 3 * 200 + 3 * 200 * 7, `got ${statements.length} statement records`);
    for (const e of statements) {
      assert.equal(e.identity?.id, 'ci-bot');
      assert.equal(e.identity?.kind, 'workload');
      assert.deepEqual(e.identity?.groups, ['ci']);
      assert.equal(e.target, 'staging');
      assert.equal(e.database, db.name);
      assert.ok(e.sessionId);
      assert.ok(e.statement?.fingerprint);
    }
    // Literals never reach the log: the pgbench balance deltas and ids are redacted.
    assert.ok(!statements.some((e) => /copied \d/.test(e.statement?.text ?? '')));
    const refs = new Set(statements.map((e) => e.id));
    assert.ok(results.filter((r) => r.statement?.ref && refs.has(r.statement.ref)).length >= statements.length * 0.99);
    const kinds = new Set(events.map((e) => e.kind));
    for (const k of ['credential.issued', 'session.start', 'session.end', 'statement', 'statement.result']) assert.ok(kinds.has(k as never), `missing ${k}`);
    // The statement path builds its records with sorted members, so the log serialises each
    // event once, natively (sealEvent); the lines keep that order when read back.
    for (const e of [...statements, ...results]) {
      assert.ok(stringifiesCanonically(e.statement) && stringifiesCanonically(e.identity), `unsorted record: ${JSON.stringify(e.statement)}`);
    }
  });
});
