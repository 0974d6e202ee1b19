/**
 * Per-statement approvals end to end, with real identities from the built-in IdP: the
 * requester's session waits, another process approves with the CLI, and the statement runs.
 * Also deny, timeout, quorum, refused self-approval, and a block inside a transaction.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, adminQuery, createTestDatabase, pgTarget, psqlArgs, run, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import type { Connection } from '../../src/cli/connect.js';
import { RawPg, fe } from './pg-raw.js';
import { createMysqlDatabase, mysqlAdmin, mysqlTarget, mysqlTunnelClient, type MysqlTestDatabase } from './mysql-harness.js';

const PEOPLE = [
  { id: 'alice', email: 'alice@example.com', name: 'Alice', password: 'alice-pw', groups: ['developers'] },
  { id: 'bob', email: 'bob@example.com', name: 'Bob', password: 'bob-pw', groups: ['approvers'] },
  { id: 'carol', email: 'carol@example.com', name: 'Carol', password: 'carol-pw', groups: ['approvers'] },
  { id: 'erin', email: 'erin@example.com', name: 'Erin', password: 'erin-pw', groups: ['developers', 'approvers'] },
];

async function pendingRequest(tb: TestBroker, token: string, predicate: (sql: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const { requests } = await tb.client(token).requests('pending');
    const r = requests.find((x) => predicate(x.sql ?? ''));
    if (r) return r.id;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('no pending request appeared');
}

describe('approvals', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  const tokens: Record<string, string> = {};
  let aliceConn: Connection;

  before(async () => {
    db = await createTestDatabase(
      'appr',
      `CREATE TABLE model_weights (id int PRIMARY KEY, w float8);
       INSERT INTO model_weights VALUES (1, 0.5), (2, 0.25), (3, 0.125);
       CREATE TABLE ledger (id int PRIMARY KEY, amount int); INSERT INTO ledger VALUES (1, 100);
       CREATE TABLE slow_table (id int PRIMARY KEY, v int); INSERT INTO slow_table VALUES (1, 1);
       CREATE TABLE notes (id serial PRIMARY KEY, note text);`,
    );
    tb = await startTestBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }) },
      builtinIdp: true,
      humans: PEOPLE,
      policy: {
        access: [{ name: 'everyone-may-write', action: 'allow' }],
        statements: [
          { name: 'weights-review', match: { statement: { relations: { names: ['public.model_weights'], access: ['write', 'ddl'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '30s', window: '5m' } },
          { name: 'ledger-two-approvers', match: { statement: { relations: { names: ['public.ledger'], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'], quorum: 2 }, hold: '30s' } },
          { name: 'slow-review', match: { statement: { relations: { names: ['public.slow_table'], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '1s' } },
        ],
      },
    });
    for (const p of PEOPLE) tokens[p.id] = await tb.loginHuman(p.email);
    aliceConn = await tb.connect(tokens.alice, { target: 'prod', access: 'write', reason: 'INC-1' });
  });
  after(async () => {
    await aliceConn?.close();
    await tb?.close();
    await db?.drop();
  });

  test("the requester's psql waits, another process approves with the CLI, and the statement runs", async () => {
    const psql = run('psql', psqlArgs(aliceConn, '-c', 'update model_weights set w = 0.9 where id = 1'), { timeoutMs: 40_000 });
    const id = await pendingRequest(tb, tokens.bob, (sql) => sql.includes('model_weights'));
    const view = await tb.client(tokens.bob).request(id);
    assert.equal(view.requester.id, 'alice@example.com');
    assert.equal(view.requester.kind, 'human');
    assert.equal(view.reason, 'INC-1');
    assert.deepEqual(view.tables, ['public.model_weights']);
    assert.equal(view.estimatedRows, 1, 'EXPLAIN estimate of the rows the UPDATE touches');
    assert.doesNotMatch(view.sql ?? '', /0\.9/, 'literal values are not shown to approvers by default');
    const approve = await run(process.execPath, ['bin/run.js', 'approve', id, '--comment', 'looks right', '--json'], { env: { DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: tokens.bob } });
    assert.equal(approve.code, 0, approve.stdout + approve.stderr);
    const r = await psql;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`dbgov: waiting for approval ${id}`));
    assert.match(r.stdout, /UPDATE 1/);
    const w = await adminQuery('select w from model_weights where id = 1', [], db.name);
    assert.equal(w.rows[0].w, 0.9);
    const kinds = (await tb.events((e) => JSON.stringify(e.detail ?? {}).includes(id) || e.statement?.requestId === id)).map((e) => e.kind);
    for (const k of ['approval.requested', 'approval.vote', 'approval.decided', 'approval.released']) assert.ok(kinds.includes(k as never), `audit has ${k}`);
  });

  test('deny: the client gets "dbgov: approval denied" with the reason, and nothing changes', async () => {
    const c = await tunnelClient(aliceConn);
    try {
      const pending = c.query('update model_weights set w = 7 where id = 2').then(() => undefined, (e: { code?: string; message?: string; detail?: string }) => e);
      const id = await pendingRequest(tb, tokens.bob, (sql) => sql.includes('model_weights'));
      await tb.client(tokens.carol).deny(id, 'not during the freeze');
      const err = await pending;
      assert.equal(err?.code, '42501');
      assert.match(err?.message ?? '', /^dbgov: approval denied/);
      assert.match(err?.detail ?? '', /not during the freeze/);
      assert.equal((await adminQuery('select w from model_weights where id = 2', [], db.name)).rows[0].w, 0.25);
      assert.equal((await c.query('select 1 as ok')).rows[0].ok, 1, 'session still usable');
    } finally {
      await c.end();
    }
  });

  test('timeout: after the hold time the client gets "dbgov: approval required (request <id>)"', async () => {
    const c = await tunnelClient(aliceConn);
    try {
      const started = Date.now();
      const err = await c.query('update slow_table set v = 2 where id = 1').then(() => undefined, (e: { code?: string; message?: string }) => e);
      assert.equal(err?.code, '42501');
      assert.match(err?.message ?? '', /^dbgov: approval required \(request [0-9A-Z]+\)/);
      assert.ok(Date.now() - started >= 900);
      assert.equal((await adminQuery('select v from slow_table where id = 1', [], db.name)).rows[0].v, 1);
    } finally {
      await c.end();
    }
  });

  test('quorum 2: one approval is not enough, two distinct approvers release it', async () => {
    const c = await tunnelClient(aliceConn);
    try {
      const pending = c.query('update ledger set amount = 50 where id = 1');
      const id = await pendingRequest(tb, tokens.bob, (sql) => sql.includes('ledger'));
      const first = await tb.client(tokens.bob).approve(id);
      assert.equal(first.status, 'pending');
      await assert.rejects(tb.client(tokens.bob).approve(id), /already voted/);
      const second = await tb.client(tokens.carol).approve(id);
      assert.equal(second.status, 'approved');
      await pending;
      assert.equal((await adminQuery('select amount from ledger where id = 1', [], db.name)).rows[0].amount, 50);
    } finally {
      await c.end();
    }
  });

  test('nobody approves their own statement, directly or through their agent', async () => {
    const erinConn = await tb.connect(tokens.erin, { target: 'prod', access: 'write' });
    const agentConn = await tb.connect(tokens.erin, { target: 'prod', access: 'read', agent: 'helper' });
    const c = await tunnelClient(erinConn);
    try {
      const pending = c.query('update model_weights set w = 1 where id = 3').then(() => 'ran', (e: { message?: string }) => e.message);
      const id = await pendingRequest(tb, tokens.bob, (sql) => sql.includes('model_weights'));
      await assert.rejects(tb.client(tokens.erin).approve(id), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /your own request/.test(e.message ?? ''));
      await tb.client(tokens.bob).deny(id, 'cleanup');
      assert.match(String(await pending), /approval denied/);
      assert.equal(agentConn.credential.identity.kind, 'agent');
      assert.equal(agentConn.credential.identity.onBehalfOf?.id, 'erin@example.com');
    } finally {
      await c.end();
      await erinConn.close();
      await agentConn.close();
    }
  });

  test('an approved statement may be re-run once in the window, and not twice', async () => {
    const c = await tunnelClient(aliceConn);
    try {
      const sql = 'update model_weights set w = 0.3 where id = 3';
      const pending = c.query(sql).then(() => 'ran', (e: { message?: string }) => e.message);
      const id = await pendingRequest(tb, tokens.bob, (s) => s.includes('model_weights'));
      await tb.client(tokens.bob).approve(id);
      assert.equal(await pending, 'ran');
      // The approval was spent on the held run; the same text needs a new approval.
      const again = c.query(sql).then(() => 'ran', (e: { message?: string }) => e.message);
      const id2 = await pendingRequest(tb, tokens.bob, (s) => s.includes('model_weights'));
      assert.notEqual(id2, id);
      await tb.client(tokens.bob).deny(id2, 'once is enough');
      assert.match(String(await again), /approval denied/);
    } finally {
      await c.end();
    }
  });

  test('a blocked statement inside a transaction keeps client and server in the same state', async () => {
    const c = await tunnelClient(aliceConn);
    try {
      await c.query('begin');
      await c.query("insert into notes(note) values ('in tx')");
      await assert.rejects(c.query('drop table notes'), (e: { code?: string; message?: string }) => e.code === '42501' && e.message?.startsWith('dbgov: blocked') === true);
      // Extended protocol too, and the refusal carries no trace of the gateway's injected statement.
      await assert.rejects(c.query('delete from notes where $1::int = $1::int or true', [1]), (e: { code?: string; message?: string; where?: string }) => e.code === '42501' && e.message?.startsWith('dbgov: blocked') === true && e.where === undefined);
      await assert.rejects(c.query('select 1'), (e: { code?: string }) => e.code === '25P02', 'the transaction is aborted on both sides');
      const end = await c.query('commit');
      assert.equal(end.command, 'ROLLBACK');
      assert.equal((await adminQuery("select count(*)::int as n from notes where note = 'in tx'", [], db.name)).rows[0].n, 0);
      assert.equal((await c.query('select 2 as two')).rows[0].two, 2);
    } finally {
      await c.end();
    }
  });

  test('protection follows the table through a rename', async () => {
    await adminQuery('alter table model_weights rename to mw_renamed', [], db.name);
    try {
      await tb.broker.refreshCatalogs();
      const c = await tunnelClient(aliceConn);
      try {
        const pending = c.query('update mw_renamed set w = 5 where id = 2').then(() => 'ran', (e: { message?: string; detail?: string }) => `${e.message} ${e.detail}`);
        const id = await pendingRequest(tb, tokens.bob, (s) => s.includes('mw_renamed'));
        await tb.client(tokens.bob).deny(id, 'renamed but still protected');
        assert.match(String(await pending), /approval denied/);
      } finally {
        await c.end();
      }
    } finally {
      await adminQuery('alter table mw_renamed rename to model_weights', [], db.name);
    }
  });
});

describe('hold 0: the statement fails at once, and once approved the same identity re-runs it once (both engines)', () => {
  let pgDb: TestDatabase;
  let myDb: MysqlTestDatabase;
  let tb: TestBroker;
  const tokens: Record<string, string> = {};
  const SQL = 'update model_weights set w = 0.75 where id = 1';

  before(async () => {
    const setup = 'CREATE TABLE model_weights (id int PRIMARY KEY, w float8); INSERT INTO model_weights VALUES (1, 0.5);';
    pgDb = await createTestDatabase('hold0', `${setup} CREATE VIEW mw AS SELECT * FROM model_weights; CREATE SCHEMA archive; CREATE TABLE archive.model_weights (id int PRIMARY KEY, w float8); INSERT INTO archive.model_weights VALUES (1, 0.5);`);
    myDb = await createMysqlDatabase('hold0', setup);
    const rule = (names: string[]) => ({ relations: { names, access: ['write'] } });
    tb = await startTestBroker({
      targets: { prod: pgTarget(pgDb.name, { env: 'prod' }), myprod: mysqlTarget(myDb.name, { env: 'prod' }) },
      builtinIdp: true,
      humans: PEOPLE,
      policy: {
        access: [{ name: 'everyone-may-write', action: 'allow' }],
        statements: [
          { name: 'weights-now-or-later', match: { statement: rule(['public.model_weights', 'archive.model_weights', `${myDb.name}.model_weights`]) }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '0s', window: '5m' } },
        ],
      },
    });
    for (const p of PEOPLE) tokens[p.id] = await tb.loginHuman(p.email);
  });
  after(async () => {
    await tb?.close();
    await pgDb?.drop();
    await myDb?.drop();
  });

  interface Engine {
    target: string;
    /** Runs one statement on a fresh session: 'ran', or the request id the refusal names. */
    run(conn: Connection, sql: string): Promise<{ outcome: string; notices: string[] }>;
    /** Prepares `bump` (add a parameter to the weight) once on one session and executes it each time `next` asks. */
    prepared(conn: Connection, next: (outcome: string) => Promise<boolean>): Promise<void>;
    weight(): Promise<number>;
  }
  const refusal = (e: { message?: string }): string => /^dbgov: approval required \(request ([0-9A-Z]+)\)/.exec(e.message ?? '')?.[1] ?? `unexpected: ${e.message}`;
  const engines: Engine[] = [
    {
      target: 'prod',
      async run(conn, sql) {
        const c = await tunnelClient(conn);
        const notices: string[] = [];
        c.on('notice', (n) => notices.push(n.message ?? ''));
        try {
          return { outcome: await c.query(sql).then(() => 'ran', refusal), notices };
        } finally {
          await c.end();
        }
      },
      weight: async () => Number((await adminQuery('select w from model_weights where id = 1', [], pgDb.name)).rows[0].w),
      async prepared(conn, next) {
        const c = await tunnelClient(conn);
        try {
          // A named statement: node-postgres sends Parse once, then only Bind and Execute.
          const q = { name: 'bump', text: 'update model_weights set w = w + $1 where id = 1', values: [1] };
          while (await next(await c.query(q).then(() => 'ran', refusal)));
        } finally {
          await c.end();
        }
      },
    },
    {
      target: 'myprod',
      async run(conn, sql) {
        const c = await mysqlTunnelClient(conn);
        try {
          return { outcome: await c.query(sql).then(() => 'ran', refusal), notices: [] };
        } finally {
          await c.end();
        }
      },
      weight: async () => Number((await mysqlAdmin<{ w: number }[]>('SELECT w FROM model_weights WHERE id = 1', myDb.name))[0].w),
      async prepared(conn, next) {
        const c = await mysqlTunnelClient(conn);
        try {
          // mysql2 keeps the prepared statement: COM_STMT_PREPARE once, then COM_STMT_EXECUTE.
          while (await next(await c.execute('update model_weights set w = w + ? where id = 1', [1]).then(() => 'ran', refusal)));
        } finally {
          await c.end();
        }
      },
    },
  ];

  test('prod: an Execute that resumes a suspended portal continues the approved run, and is not another run', async () => {
    const alice = await tb.connect(tokens.alice, { target: 'prod', access: 'write' });
    const c = await RawPg.open(alice.tunnel.port, alice.credential.identity.id, alice.credential.database);
    try {
      const sql = 'with u as (update model_weights set w = w + 1 where id = 1 returning id) select g from u, generate_series(1, 3) g';
      c.send(fe.parse('', sql), fe.sync());
      const refused = (await c.ready()).find((m) => m.type === 'E')?.body.toString('latin1') ?? '';
      const id = /approval required \(request ([0-9A-Z]+)\)/.exec(refused)?.[1];
      assert.ok(id, refused);
      await tb.client(tokens.bob).approve(id);
      // One run fetched a row at a time: Execute, Execute, Execute of the same portal.
      c.send(fe.parse('', sql), fe.bind('', ''), fe.execute('', 1), fe.execute('', 1), fe.execute('', 0), fe.sync());
      const types = (await c.ready()).map((m) => m.type).join('');
      assert.equal(types, '12DsDsDCZ', 'rows come a portal suspension at a time, with no refusal');
      assert.equal(await engines[0].weight(), 1.5, 'the update ran once');
    } finally {
      c.end();
      await alice.close();
      await adminQuery('update model_weights set w = 0.5', [], pgDb.name);
    }
  });

  test('prod: an approval of EXECUTE p is an approval of what p was prepared as, and the approver is shown it', async () => {
    const alice = await tb.connect(tokens.alice, { target: 'prod', access: 'write' });
    const c = await tunnelClient(alice);
    const q = (sql: string): Promise<string> => c.query(sql).then(() => 'ran', refusal);
    /** Runs `sql`, which needs an approval: asks, has bob approve, runs it again; returns the request. */
    const approved = async (sql: string): Promise<string> => {
      const id = await q(sql);
      assert.match(id, /^[0-9A-Z]+$/, `${sql}: ${id}`);
      await tb.client(tokens.bob).approve(id);
      return id;
    };
    try {
      await approved('prepare p as update model_weights set w = w + 1 where id = 1');
      assert.equal(await q('prepare p as update model_weights set w = w + 1 where id = 1'), 'ran');
      const exec = await approved('execute p');
      const view = await tb.client(tokens.bob).request(exec);
      assert.match(view.sql ?? '', /EXECUTE p runs: (prepare p as )?update model_weights set w = w \+ \$1 where id = \$2/i, 'the approver sees what EXECUTE p runs');
      assert.deepEqual(view.tables, ['public.model_weights']);
      // p is prepared as something else (that PREPARE is approved on its own): `execute p` is new.
      assert.equal(await q('deallocate p'), 'ran');
      await approved('prepare p as update model_weights set w = 100 where id = 1');
      assert.equal(await q('prepare p as update model_weights set w = 100 where id = 1'), 'ran');
      const again = await q('execute p');
      assert.match(again, /^[0-9A-Z]+$/, 'the approval of the first p is not spent on the second');
      assert.notEqual(again, exec);
      assert.equal(await engines[0].weight(), 0.5, 'nothing ran');
      const records = await tb.events((ev) => ev.kind === 'statement' && ev.statement?.requestId === again);
      assert.deepEqual(records[0]?.statement?.tables, ['public.model_weights'], 'the audit record of an EXECUTE names the tables it touches');
      // What EXECUTE runs is judged as resolved when it was prepared: through a view, too.
      await approved('prepare v as update mw set w = 9 where id = 1');
      assert.equal(await q('prepare v as update mw set w = 9 where id = 1'), 'ran');
      assert.match(await q('execute v'), /^[0-9A-Z]+$/, 'EXECUTE of a write through a view of the table is reviewed too');
      assert.equal(await engines[0].weight(), 0.5, 'nothing ran');
    } finally {
      await c.end();
      await alice.close();
    }
  });

  test('prod: the same text pointed at another table by search_path does not spend the approval', async () => {
    const alice = await tb.connect(tokens.alice, { target: 'prod', access: 'write' });
    const c = await tunnelClient(alice);
    const q = (sql: string): Promise<string> => c.query(sql).then(() => 'ran', refusal);
    try {
      const id = await q(SQL);
      assert.match(id, /^[0-9A-Z]+$/);
      await tb.client(tokens.bob).approve(id);
      assert.equal(await q('set search_path = archive, public'), 'ran');
      const other = await q(SQL);
      assert.match(other, /^[0-9A-Z]+$/, 'archive.model_weights is another statement to approve');
      assert.notEqual(other, id);
      assert.deepEqual((await tb.client(tokens.bob).request(other)).tables, ['archive.model_weights']);
      assert.equal((await adminQuery('select w from archive.model_weights', [], pgDb.name)).rows[0].w, 0.5);
      assert.equal(await q('set search_path = public'), 'ran');
      assert.equal(await q(SQL), 'ran', 'the approval is still there for what was approved');
      assert.equal(await engines[0].weight(), 0.75);
    } finally {
      await c.end();
      await alice.close();
      await adminQuery('update model_weights set w = 0.5', [], pgDb.name);
    }
  });

  for (const e of engines) {
    test(`${e.target}: a prepared statement approved once runs once; each further execution needs its own approval`, async () => {
      const alice = await tb.connect(tokens.alice, { target: e.target, access: 'write' });
      const seen: string[] = [];
      try {
        const start = await e.weight();
        await e.prepared(alice, async (outcome) => {
          seen.push(outcome);
          if (outcome === 'ran') return seen.length < 4;
          // A request: approve it, and (re-)prepare or execute again.
          await tb.client(tokens.bob).approve(outcome);
          return true;
        });
        // prepare refused (hold 0) → approved → prepared again, runs → executed again: refused with a
        // new request → approved → the same prepared statement runs → executed again: refused …
        assert.equal(seen[0].length > 0 && seen[0] !== 'ran', true, `${seen}`);
        assert.equal(seen.filter((x) => x === 'ran').length, 2, `${seen}`);
        assert.equal(new Set(seen.filter((x) => x !== 'ran')).size, seen.filter((x) => x !== 'ran').length, 'every refusal names a new request');
        assert.equal(await e.weight(), start + 2, 'two runs, two approvals');
      } finally {
        await alice.close();
        if (e.target === 'prod') await adminQuery('update model_weights set w = 0.5', [], pgDb.name);
        else await mysqlAdmin('UPDATE model_weights SET w = 0.5', myDb.name);
      }
    });

    test(`${e.target}: approved once, runs once, for its requester and that exact text only`, async () => {
      const alice = await tb.connect(tokens.alice, { target: e.target, access: 'write', reason: 'CHG-9' });
      const erin = await tb.connect(tokens.erin, { target: e.target, access: 'write' });
      try {
        const first = await e.run(alice, SQL);
        assert.match(first.outcome, /^[0-9A-Z]+$/, 'fails at once, naming the request');
        const id = first.outcome;
        assert.equal((await tb.client(tokens.bob).request(id)).status, 'pending');
        await tb.client(tokens.bob).approve(id, 'go ahead');

        // Someone else, or other text, does not spend it: each is a new request.
        const other = await e.run(erin, SQL);
        assert.match(other.outcome, /^[0-9A-Z]+$/);
        assert.notEqual(other.outcome, id);
        const changed = await e.run(alice, SQL.replace('0.75', '0.8'));
        assert.match(changed.outcome, /^[0-9A-Z]+$/);
        assert.notEqual(changed.outcome, id);
        assert.equal(await e.weight(), 0.5, 'nothing ran yet');

        const rerun = await e.run(alice, SQL);
        assert.equal(rerun.outcome, 'ran');
        assert.deepEqual(rerun.notices.filter((n) => n.includes('waiting for approval')), [], 'nothing waits: no notice');
        assert.equal(await e.weight(), 0.75);
        assert.equal((await tb.client(tokens.bob).request(id)).status, 'used');

        const twice = await e.run(alice, SQL);
        assert.match(twice.outcome, /^[0-9A-Z]+$/, 'the approval is spent');
        assert.notEqual(twice.outcome, id);

        const records = await tb.events((ev) => ev.kind.startsWith('statement') && ev.statement?.requestId === id);
        assert.deepEqual(
          records.map((r) => [r.kind, r.identity?.id, r.statement?.decision, r.statement?.rows ?? null]),
          [
            ['statement', 'alice@example.com', 'review', null],
            ['statement', 'alice@example.com', 'approved', null],
            ['statement.result', 'alice@example.com', 'approved', 1],
          ],
          'the refusal that made the request (once), then the released run and its outcome',
        );
        const released = await tb.events((ev) => ev.kind === 'approval.released' && JSON.stringify(ev.detail).includes(id));
        assert.deepEqual(released.map((r) => r.sessionId), [records[1].sessionId], 'released once, on the session that re-ran it');
        assert.notEqual(records[0].sessionId, records[1].sessionId);
      } finally {
        await alice.close();
        await erin.close();
        if (e.target === 'prod') await adminQuery('update model_weights set w = 0.5', [], pgDb.name);
        else await mysqlAdmin('UPDATE model_weights SET w = 0.5', myDb.name);
      }
    });
  }
});

describe('approval webhook', () => {
  test('a held statement POSTs a signed, Slack-compatible message carrying the approve and deny commands', async () => {
    const { createServer } = await import('node:http');
    const { createHmac } = await import('node:crypto');
    const received: { body: string; signature: string | undefined }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push({ body, signature: req.headers['x-dbgov-signature'] as string | undefined });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const db = await createTestDatabase('hook', 'CREATE TABLE model_weights (id int PRIMARY KEY, w float8); INSERT INTO model_weights VALUES (1, 0.5);');
    const tb = await startTestBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }) },
      policy: {
        access: [{ name: 'any', action: 'allow' }],
        notify: { webhook: { url: `http://127.0.0.1:${port}/hook`, secret: '${env:T_MASK_KEY}' } },
        statements: [{ name: 'weights-review', match: { statement: { relations: { names: ['public.model_weights'], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '0s' } }],
      },
    });
    try {
      const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write', reason: 'CHG-7' });
      const c = await tunnelClient(conn);
      await assert.rejects(c.query('update model_weights set w = 1 where id = 1'), /approval required/);
      await c.end();
      await conn.close();
      const until = Date.now() + 5000;
      while (received.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.equal(received.length, 1);
      const msg = JSON.parse(received[0].body) as { text: string; blocks: unknown[]; dbgov: { requestId: string; approve: string; deny: string; tables: string[] } };
      assert.match(msg.text, /approval needed/);
      assert.ok(msg.blocks.length >= 3, 'Slack blocks');
      assert.equal(msg.dbgov.approve, `dbgov approve ${msg.dbgov.requestId}`);
      assert.match(msg.dbgov.deny, new RegExp(`^dbgov deny ${msg.dbgov.requestId} --reason`));
      assert.deepEqual(msg.dbgov.tables, ['public.model_weights']);
      assert.equal(received[0].signature, `sha256=${createHmac('sha256', tb.env.T_MASK_KEY as string).update(received[0].body).digest('hex')}`);
      assert.doesNotMatch(received[0].body, /w = 1\b/, 'literals are not sent');
    } finally {
      server.close();
      await tb.close();
      await db.drop();
    }
  });
});
