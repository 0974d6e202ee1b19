import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import pg from 'pg';
import type { ClientError } from '../../../src/gateway/engine.js';
import { CancelRegistry } from '../../../src/gateway/postgres/cancel.js';
import * as ser from '../../../src/gateway/postgres/protocol/serializer.js';
import { AuthError } from '../../../src/shared/errors.js';
import { BLOCKED, clientFor, codes, createDatabase, dropDatabase, errorFields, RawClient, startGateway, withClient, type Gateway } from './harness.js';

let db: string;
before(async () => {
  db = await createDatabase();
});
after(() => dropDatabase(db));

function errOf(p: Promise<unknown>): Promise<pg.DatabaseError> {
  return p.then(
    () => assert.fail('expected an error'),
    (e: unknown) => e as pg.DatabaseError,
  );
}

/** A decision a test settles by hand. */
function gate(): { promise: Promise<'allow' | ClientError>; settle: (d: 'allow' | ClientError) => void } {
  let settle!: (d: 'allow' | ClientError) => void;
  const promise = new Promise<'allow' | ClientError>((r) => (settle = r));
  return { promise, settle };
}

describe('hold', () => {
  let gw: Gateway;
  let pending: ReturnType<typeof gate>[] = [];
  before(async () => {
    gw = await startGateway({
      database: db,
      hold: (req) => {
        if (!/needs_approval/.test(req.sql)) return undefined;
        const g = gate();
        pending.push(g);
        return g.promise;
      },
    });
  });
  after(() => gw.close());

  const cases: { name: string; decision: 'allow' | ClientError; extended: boolean }[] = [
    { name: 'approve (simple)', decision: 'allow', extended: false },
    { name: 'approve (extended)', decision: 'allow', extended: true },
    { name: 'deny (simple)', decision: { sqlstate: '42501', message: 'dbgov: approval denied by bob', hint: 'Ask bob why.' }, extended: false },
    { name: 'deny (extended)', decision: { sqlstate: '42501', message: 'dbgov: approval denied by bob' }, extended: true },
  ];
  for (const k of cases) {
    test(`hold then ${k.name}`, async () => {
      pending = [];
      await withClient(clientFor(gw, db), async (c) => {
        const notices: string[] = [];
        c.on('notice', (n) => notices.push(n.message ?? ''));
        const run = k.extended ? c.query('SELECT $1::int AS needs_approval', [7]) : c.query('SELECT 7 AS needs_approval');
        const outcome = run.then(
          (r) => r,
          (e: unknown) => e as pg.DatabaseError,
        );
        while (pending.length === 0 || notices.length === 0) await new Promise((r) => setTimeout(r, 10));
        assert.match(notices[0], /^dbgov: waiting for approval st\d+$/);
        pending[0].settle(k.decision);
        const r = await outcome;
        if (k.decision === 'allow') assert.deepEqual((r as pg.QueryResult).rows, [{ needs_approval: 7 }]);
        else {
          assert.equal((r as pg.DatabaseError).code, '42501');
          assert.equal((r as pg.DatabaseError).message, k.decision.message);
        }
        const after = await c.query('SELECT 1 AS ok');
        assert.equal(after.rows[0].ok, 1, 'session usable after the decision');
      });
    });
  }

  test('messages behind a held statement wait for it, in order', async () => {
    pending = [];
    const raw = await RawClient.session(gw.port, db);
    try {
      raw.send(Buffer.concat([ser.query('SELECT 1 AS needs_approval'), ser.query('SELECT 2 AS after')]));
      const notice = await raw.until(0x4e);
      assert.equal(codes(notice), 'N');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(gw.calls.check.filter((c) => c.sql === 'SELECT 2 AS after').length, 0, 'second query not yet read');
      pending[0].settle('allow');
      const first = await raw.until(0x5a);
      assert.equal(codes(first), 'TDCZ');
      const second = await raw.until(0x5a);
      assert.equal(codes(second), 'TDCZ');
      assert.equal(second[1].subarray(11).toString(), '2');
    } finally {
      raw.end();
    }
  });
});

describe('session lifecycle', () => {
  let gw: Gateway;
  let bob: Gateway;
  before(async () => {
    gw = await startGateway({ database: db, failExecuting: (sql) => sql.includes('audit_fail') });
    bob = await startGateway({ database: db, identityId: 'bob' });
  });
  after(async () => {
    await gw.close();
    await bob.close();
  });

  async function sendCancel(port: number, pid: number, key: number): Promise<void> {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    s.end(ser.cancelRequest(pid, key));
    await new Promise((r) => s.once('close', r));
  }

  test('CancelRequest with the gateway key cancels, for the same identity only', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      const real = await c.query('SELECT pg_backend_pid() AS pid');
      assert.notEqual(processID, real.rows[0].pid, 'client sees a gateway-issued pid');

      const slow = c.query('SELECT pg_sleep(0.6)');
      await new Promise((r) => setTimeout(r, 150));
      await sendCancel(bob.port, processID, secretKey);
      await slow; // another identity's cancel is ignored: the sleep completes

      const longer = errOf(c.query('SELECT pg_sleep(30)'));
      await new Promise((r) => setTimeout(r, 150));
      await sendCancel(gw.port, processID, secretKey);
      const e = await longer;
      assert.equal(e.code, '57014');
    });
  });

  test('cancel keys are registered per session and removed when it ends', async () => {
    const cancels = new CancelRegistry();
    const own = await startGateway({ database: db, cancels });
    try {
      const clients = [clientFor(own, db), clientFor(own, db)];
      await Promise.all(clients.map((c) => c.connect()));
      assert.equal(cancels.size, 2);
      await Promise.all(clients.map((c) => c.end()));
      while (own.sessions() > 0) await new Promise((r) => setTimeout(r, 10));
      assert.equal(cancels.size, 0);
    } finally {
      await own.close();
    }
  });

  test('startup: database scope, default database, parameters', async () => {
    const wrong = clientFor(gw, 'otherdb');
    const e = await errOf(wrong.connect());
    assert.equal(e.code, '28000');
    assert.equal(e.message, `dbgov: this credential is for database ${db}, not otherdb`);
    assert.match(e.hint ?? '', /dbgov connect testtarget --database otherdb/);

    const raw = await RawClient.session(gw.port);
    raw.send(ser.query('SELECT current_database()'));
    const rows = await raw.until(0x5a);
    assert.equal(rows[1].subarray(11).toString(), db);
    raw.end();

    // What is reported is what the server applies: the settings read out of `options`, or none
    // of them when `options` is not forwarded.
    const cases: { options: string; setting: string; want: string; reported?: [string, string] }[] = [
      { options: '-c statement_timeout=1234', setting: 'statement_timeout', want: '1234ms', reported: ['statement_timeout', '1234'] },
      { options: '-c work_mem=123kB', setting: 'work_mem', want: '4MB' },
      { options: '-c search_path=public -c role=postgres', setting: 'search_path', want: '"$user", public' },
    ];
    for (const k of cases) {
      const seen = gw.calls.parameter.length;
      await withClient(clientFor(gw, db, { application_name: 'myapp', options: k.options }), async (c) => {
        const r = await c.query(`SELECT current_setting('${k.setting}') AS v, current_setting('application_name') AS app`);
        assert.deepEqual(r.rows[0], { v: k.want, app: 'myapp' }, k.options);
      });
      const reported = gw.calls.parameter.slice(seen);
      assert.ok(!reported.some(([n]) => n === 'options'), 'options is read into settings, not reported raw');
      if (k.reported) assert.ok(reported.some(([n, v]) => n === k.reported![0] && v === k.reported![1]), `reported: ${k.options}`);
      // (A server that reports the setting itself reports its default, not the client's value.)
      else assert.ok(!reported.some(([n, v]) => n === k.setting && k.options.includes(`=${v} `)), `not forwarded, not reported: ${k.options}`);
    }
    assert.ok(gw.calls.parameter.some(([n, v]) => n === 'application_name' && v === 'myapp'));
    assert.ok(gw.calls.parameter.some(([n]) => n === 'server_version'), 'ParameterStatus is reported');
  });

  test('a failing audit hook stops the statement and says why', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      for (const run of [() => c.query('SELECT 1 AS audit_fail'), () => c.query('SELECT $1::int AS audit_fail', [1])]) {
        const e = await errOf(run());
        assert.equal(e.code, '58030');
        assert.equal(e.message, 'dbgov: audit log unavailable; statement not run');
        assert.equal((await c.query('SELECT 3 AS x')).rows[0].x, 3);
      }
    });
  });

  test('with records grouped per event-loop turn, statements wait for theirs, and a failed write refuses them', async () => {
    const batched = await startGateway({ database: db, batched: true, failExecuting: (sql) => sql.includes('audit_fail') });
    try {
      await withClient(clientFor(batched, db), async (c) => {
        for (const run of [() => c.query('SELECT 1 AS audit_fail'), () => c.query('SELECT $1::int AS audit_fail', [1])]) {
          const e = await errOf(run());
          assert.equal(e.code, '58030');
          assert.equal((await c.query('SELECT 3 AS x')).rows[0].x, 3);
        }
        // Several statements in one message, and many sessions at once, each waiting a turn.
        const r = (await c.query('SELECT 1 AS a; SELECT 2 AS b')) as unknown as { rows: Record<string, number>[] }[];
        assert.deepEqual(r.map((x) => x.rows[0]), [{ a: 1 }, { b: 2 }]);
      });
      const many = await Promise.all(
        Array.from({ length: 8 }, (_, i) => withClient(clientFor(batched, db), async (c) => (await c.query('SELECT $1::int AS v', [i])).rows[0].v as number)),
      );
      assert.deepEqual(many, [0, 1, 2, 3, 4, 5, 6, 7]);
      const failed = batched.calls.check.filter((k) => k.sql.includes('audit_fail')).map((k) => k.id);
      assert.ok(failed.length >= 2 && failed.every((id) => !batched.calls.executing.includes(id)), 'a statement whose record failed never counts as executing');
    } finally {
      await batched.close();
    }
  });

  test('revocation ends the session with 57P01 and completes the in-flight statement', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      c.on('error', () => undefined);
      const slow = errOf(c.query('SELECT pg_sleep(5) AS revoked_here'));
      await new Promise((r) => setTimeout(r, 150));
      gw.abortAll(new AuthError('revoked', 'credential revoked by admin', { actions: ['Run `dbgov connect testtarget` again.'] }));
      const e = await slow;
      assert.equal(e.code, '57P01');
      assert.equal(e.message, 'dbgov: session ended: credential revoked by admin');
      assert.equal(e.hint, 'Run `dbgov connect testtarget` again.');
    });
    const id = gw.calls.check.find((x) => x.sql.includes('revoked_here'))?.id;
    const done = gw.calls.completed.find((x) => x.id === id);
    assert.equal(done?.outcome.error?.sqlstate, '08006');
  });

  test('50 concurrent sessions each get their own results', async () => {
    const clients = Array.from({ length: 50 }, () => clientFor(gw, db));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const results = await Promise.all(clients.map(async (c, i) => (await c.query('SELECT $1::int * 2 AS v', [i])).rows[0].v as number));
      assert.deepEqual(results, clients.map((_, i) => i * 2));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe('raw protocol', () => {
  let gw: Gateway;
  let strict: Gateway;
  before(async () => {
    gw = await startGateway({ database: db, maxMessageBytes: 4096, block: (req) => (/forbidden/.test(req.sql) ? BLOCKED : undefined) });
    strict = await startGateway({ database: db, opaqueVerdict: 'block' });
  });
  after(async () => {
    await gw.close();
    await strict.close();
  });

  const blockedBatch = Buffer.concat([ser.parse('', 'SELECT 1 AS forbidden'), ser.bind('', ''), ser.execute(''), ser.sync()]);
  const cases: { name: string; gw: () => Gateway; send: Buffer; want: string; sqlstate?: string; closes?: boolean; opaque?: string }[] = [
    { name: 'unknown message type closes with 08P01', gw: () => gw, send: Buffer.from([0x7a, 0, 0, 0, 4]), want: 'E', sqlstate: '08P01', closes: true },
    { name: 'message over the limit closes with 54000', gw: () => gw, send: ser.query(`SELECT '${'x'.repeat(5000)}'`), want: 'E', sqlstate: '54000', closes: true },
    { name: 'invalid length closes with 08P01', gw: () => gw, send: Buffer.from([0x51, 0, 0, 0, 2]), want: 'E', sqlstate: '08P01', closes: true },
    { name: 'blocked Parse: error where the Parse failed, then ReadyForQuery', gw: () => gw, send: blockedBatch, want: 'EZ', sqlstate: '42501' },
    { name: 'blocked Parse answered before Sync when the client flushes', gw: () => gw, send: Buffer.concat([ser.parse('', 'SELECT 1 AS forbidden'), Buffer.from([0x48, 0, 0, 0, 4])]), want: 'E', sqlstate: '42501' },
    { name: 'FunctionCall goes to the opaque hook', gw: () => strict, send: Buffer.from('46000000120000049800000000000100000000', 'hex'), want: 'EZ', sqlstate: '42501', opaque: 'function-call-message' },
    {
      name: 'Bind of a statement prepared with SQL PREPARE is unprepared-execute',
      gw: () => strict,
      send: Buffer.concat([ser.query('PREPARE p1 AS SELECT 1'), ser.bind('', 'p1'), ser.execute(''), ser.sync()]),
      want: 'CZEZ',
      sqlstate: '42501',
      opaque: 'unprepared-execute',
    },
    { name: 'Execute of a portal never bound is unprepared-execute', gw: () => strict, send: Buffer.concat([ser.execute('nope'), ser.sync()]), want: 'EZ', sqlstate: '42501', opaque: 'unprepared-execute' },
  ];
  for (const k of cases) {
    test(k.name, async () => {
      const g = k.gw();
      const raw = await RawClient.session(g.port, db);
      try {
        raw.send(k.send);
        const zs = [...k.want].filter((c) => c === 'Z').length;
        const msgs = k.closes ? await raw.untilClosed() : await raw.until(zs > 0 ? 0x5a : 0x45, 5000, Math.max(zs, 1));
        assert.equal(codes(msgs), k.want);
        const err = msgs.find((m) => m[0] === 0x45);
        if (k.sqlstate !== undefined) assert.equal(errorFields(err!).C, k.sqlstate);
        if (k.opaque !== undefined) assert.ok(g.calls.opaque.some((o) => o.reason === k.opaque));
        if (!k.closes) {
          if (zs === 0) {
            raw.send(ser.sync());
            assert.equal(codes(await raw.until(0x5a)), 'Z');
          }
          raw.send(ser.query('SELECT 1'));
          assert.equal(codes(await raw.until(0x5a)), 'TDCZ', 'the session is still usable');
        }
      } finally {
        raw.end();
      }
      const after = await RawClient.session(g.port, db);
      after.send(ser.query('SELECT 1'));
      assert.equal(codes(await after.until(0x5a)), 'TDCZ', 'the gateway still serves new sessions');
      after.end();
    });
  }
});
