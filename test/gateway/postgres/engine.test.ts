import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import pg from 'pg';
import { AuthError } from '../../../src/shared/errors.js';
import { BLOCKED, clientFor, createDatabase, directClient, dropDatabase, MASKED, startGateway, startRefuser, withClient, type Gateway } from './harness.js';

let db: string;
before(async () => {
  db = await createDatabase();
  await withClient(directClient(db), async (c) => {
    await c.query(`CREATE TABLE people (id int primary key, email text, note text)`);
    await c.query(`INSERT INTO people SELECT g, 'user' || g || '@example.com', 'n' || g FROM generate_series(1, 100) g`);
    await c.query(`CREATE TABLE ledger (id serial primary key, amount int)`);
  });
});
after(async () => {
  await dropDatabase(db);
});

/** A refusal in dbgov's words that holds what the test scrub hook would mask in a server text. */
const OWN_WORDS = { sqlstate: '42501', message: 'dbgov: approval denied (request R1) by secret-value', detail: 'rule: weights; reason: secret-value said no' };

function errOf(p: Promise<unknown>): Promise<pg.DatabaseError> {
  return p.then(
    () => assert.fail('expected an error'),
    (e: unknown) => e as pg.DatabaseError,
  );
}

describe('statement path', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      database: db,
      maskColumn: 'email',
      block: (req) => (/own-words/.test(req.sql) ? OWN_WORDS : /drop table/i.test(req.sql) ? BLOCKED : undefined),
    });
  });
  after(() => gw.close());

  test("the gateway's own refusal is not scrubbed as if it were a server text", async () => {
    await withClient(clientFor(gw, db), async (c) => {
      for (const run of [() => c.query("SELECT 'own-words'"), () => c.query('SELECT $1::text AS own_words_param -- own-words', ['x'])]) {
        const e = await errOf(run());
        assert.equal(e.code, '42501');
        assert.equal(e.message, OWN_WORDS.message, 'names the approver (secret-value stands for one) as written');
        assert.equal(e.detail, OWN_WORDS.detail);
      }
    });
  });

  test('simple and extended queries return what the server returns, with hook calls', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      const cases: { run: () => Promise<pg.QueryResult>; rows: number; via: string }[] = [
        { run: () => c.query('SELECT id, note FROM people WHERE id <= 3 ORDER BY id'), rows: 3, via: 'simple' },
        { run: () => c.query('SELECT id, note FROM people WHERE id <= $1 ORDER BY id', [5]), rows: 5, via: 'parse' },
        { run: () => c.query({ name: 'byid', text: 'SELECT note FROM people WHERE id = $1', values: [7] }), rows: 1, via: 'parse' },
        { run: () => c.query({ name: 'byid', text: 'SELECT note FROM people WHERE id = $1', values: [8] }), rows: 1, via: 'parse' },
      ];
      for (const k of cases) {
        const before = gw.calls.completed.length;
        const r = await k.run();
        assert.equal(r.rowCount, k.rows);
        const done = gw.calls.completed.slice(before);
        assert.equal(done.length, 1, 'one completed call per statement');
        assert.equal(done[0].outcome.rows, k.rows);
        assert.equal(gw.sqlOf(done[0].id)?.startsWith('SELECT'), true);
        assert.ok(gw.calls.executing.includes(done[0].id));
      }
      const r = await c.query({ name: 'byid', text: 'SELECT note FROM people WHERE id = $1', values: [9] });
      assert.deepEqual(r.rows, [{ note: 'n9' }]);
    });
  });

  test('masking replaces the named column in text and binary formats', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      const text = await c.query('SELECT id, email FROM people WHERE id IN (1, 2) ORDER BY id');
      assert.deepEqual(text.rows, [
        { id: 1, email: 'MASKED' },
        { id: 2, email: 'MASKED' },
      ]);
      const ext = await c.query('SELECT email, note FROM people WHERE id = $1', [3]);
      assert.deepEqual(ext.rows, [{ email: 'MASKED', note: 'n3' }]);
      const binary = await c.query({ text: 'SELECT email, id FROM people WHERE id = $1', values: [4], binary: true } as pg.QueryConfig);
      assert.equal(Buffer.from(binary.rows[0].email as string).toString(), MASKED.toString());
      const nulls = await c.query(`SELECT NULL::text AS email`);
      assert.equal(nulls.rows[0].email, null);
    });
  });

  test('a blocked statement gives 42501 and the session stays usable', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      for (const run of [() => c.query('DROP TABLE people'), () => c.query('DROP TABLE people WHERE $1', [1])]) {
        const e = await errOf(run());
        assert.equal(e.code, '42501');
        assert.equal(e.message, BLOCKED.message);
        assert.equal(e.detail, BLOCKED.detail);
        assert.equal(e.hint, BLOCKED.hint);
        const ok = await c.query('SELECT count(*)::int AS n FROM people');
        assert.equal(ok.rows[0].n, 100);
      }
    });
  });

  test('a block inside a transaction aborts it on the server too', async () => {
    for (const extended of [false, true]) {
      await withClient(clientFor(gw, db), async (c) => {
        await c.query('BEGIN');
        await c.query('INSERT INTO ledger (amount) VALUES ($1)', [extended ? 2 : 1]);
        const e = await errOf(extended ? c.query('DROP TABLE people -- $1', []) : c.query('DROP TABLE people'));
        assert.equal(e.code, '42501');
        const next = await errOf(c.query('SELECT 1'));
        assert.equal(next.code, '25P02', 'client sees the aborted transaction');
        const commit = await c.query('COMMIT');
        assert.equal(commit.command, 'ROLLBACK');
      });
    }
    await withClient(directClient(db), async (c) => {
      const r = await c.query('SELECT count(*)::int AS n FROM ledger');
      assert.equal(r.rows[0].n, 0, 'the server rolled the inserts back');
    });
  });

  test('a block in an already-aborted transaction still says dbgov: blocked', async () => {
    for (const extended of [false, true]) {
      await withClient(clientFor(gw, db), async (c) => {
        await c.query('BEGIN');
        assert.equal((await errOf(c.query('SELECT 1/0'))).code, '22012');
        const e = await errOf(extended ? c.query('DROP TABLE people -- $1', []) : c.query('DROP TABLE people'));
        assert.equal(e.code, '42501');
        assert.equal(e.message, BLOCKED.message);
        assert.equal((await errOf(c.query('SELECT 1'))).code, '25P02', 'still aborted, as on the server');
        assert.equal((await c.query('ROLLBACK')).command, 'ROLLBACK');
        assert.equal((await c.query('SELECT 5 AS x')).rows[0].x, 5);
      });
    }
  });

  test('an error in a transaction, then ROLLBACK, leaves the session usable', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      await c.query('BEGIN');
      const e = await errOf(c.query('SELECT 1/0'));
      assert.equal(e.code, '22012');
      const rb = await c.query('ROLLBACK');
      assert.equal(rb.command, 'ROLLBACK');
      const r = await c.query('SELECT 42 AS x');
      assert.equal(r.rows[0].x, 42);
      const last = gw.calls.completed.find((x) => gw.sqlOf(x.id) === 'SELECT 1/0');
      assert.equal(last?.outcome.error?.sqlstate, '22012');
    });
  });

  test('server error texts pass through the scrub hook', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      const e = await errOf(c.query(`SELECT 'secret-value'::int`));
      assert.equal(e.code, '22P02');
      assert.match(e.message, /\[scrubbed\]/);
      assert.doesNotMatch(e.message, /secret-value/);
    });
  });

  test('pipelined extended batches are attributed statement by statement', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      const before = gw.calls.completed.length;
      const ids = Array.from({ length: 20 }, (_, i) => i + 1);
      const results = await Promise.all(ids.map((i) => c.query('SELECT id, email, note FROM people WHERE id = $1', [i])));
      for (const [i, r] of results.entries()) assert.deepEqual(r.rows, [{ id: i + 1, email: 'MASKED', note: `n${i + 1}` }]);
      assert.equal(gw.calls.completed.length - before, 20);
    });
  });

});

describe('asynchronous mask plans and large results', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ database: db, maskColumn: 'email', asyncDescribe: true });
  });
  after(() => gw.close());

  test('rows wait for a plan that arrives later, in order, also pipelined', async () => {
    await withClient(clientFor(gw, db), async (c) => {
      const simple = await c.query('SELECT id, email FROM people WHERE id <= 2 ORDER BY id');
      assert.deepEqual(simple.rows, [
        { id: 1, email: 'MASKED' },
        { id: 2, email: 'MASKED' },
      ]);
      const piped = await Promise.all([1, 2, 3].map((i) => c.query('SELECT email, $1::int AS i FROM people WHERE id = $1', [i])));
      assert.deepEqual(
        piped.map((r) => r.rows[0]),
        [1, 2, 3].map((i) => ({ email: 'MASKED', i })),
      );
    });
  });

  const sizes: { name: string; sql: string; rows: number }[] = [
    { name: 'pass-through', sql: `SELECT g AS id, repeat('x', 100) AS note FROM generate_series(1, 200000) g`, rows: 200000 },
    { name: 'masked', sql: `SELECT g AS id, 'e' || g AS email FROM generate_series(1, 100000) g`, rows: 100000 },
  ];
  for (const k of sizes) {
    test(`a large ${k.name} result streams through whole`, async () => {
      await withClient(clientFor(gw, db), async (c) => {
        const r = await c.query(k.sql);
        assert.equal(r.rowCount, k.rows);
        assert.equal(r.rows[k.rows - 1].id, k.rows);
        if ('email' in r.rows[0]) assert.ok(r.rows.every((row) => row.email === 'MASKED'));
      });
    });
  }
});

describe('refuse', () => {
  test('a refused client gets FATAL 28000 with the next command', async () => {
    const r = await startRefuser(new AuthError('credential-expired', 'dbgov: your credential expired', { actions: ['Run `dbgov connect prod` again.'] }));
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: r.port, user: 'x', database: 'y' });
      const e = await errOf(c.connect());
      assert.equal(e.code, '28000');
      assert.equal(e.message, 'dbgov: your credential expired');
      assert.equal(e.hint, 'Run `dbgov connect prod` again.');
    } finally {
      await r.close();
    }
  });

  test('a raw socket that sends nothing is closed without a crash', async () => {
    const r = await startRefuser(new AuthError('x', 'dbgov: no'));
    const s = connect(r.port, '127.0.0.1');
    await new Promise((res) => s.once('connect', res));
    s.end();
    await new Promise((res) => s.once('close', res));
    await r.close();
  });
});
