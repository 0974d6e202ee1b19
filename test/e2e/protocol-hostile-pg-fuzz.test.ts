/**
 * A seeded, stateful fuzzer for the PostgreSQL gateway: each batch opens a governed session on
 * a protected target and sends a random mix of valid messages (simple and extended protocol,
 * COPY, cursors, named statements) and mutated ones (flipped bytes, cuts, lying lengths, random
 * types). After each batch: no classified value left in clear, and a new session works; at the
 * end, no insert ran upstream without an audit record. DBGOV_FUZZ_SEED=<n> replays a run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, adminQuery, createTestDatabase, pgTarget, startTestBroker, type TestBroker, type TestDatabase } from './harness.js';
import { leaks } from './capture-proxy.js';
import { chunks, fuzzSeed, mutate, rng, type Rng } from './fuzz-tools.js';
import { RawPg, fe, rowsOf } from './pg-raw.js';
import type { Connection } from '../../src/cli/connect.js';

const SCHEMA = `
  CREATE TABLE users (id int PRIMARY KEY, email text, ssn text, plan text);
  INSERT INTO users VALUES (1, 'erin.hostile@example.com', '321-54-9876', 'pro'), (2, 'frank.hostile@example.org', '432-65-0987', 'free'), (3, 'gina.hostile@example.net', '543-76-1098', 'pro');
  CREATE TABLE notes (id int, body text);
  CREATE TABLE hits (n int);
`;
const PII = ['erin.hostile@example.com', 'frank.hostile@example.org', 'gina.hostile@example.net', '321-54-9876', '432-65-0987', '543-76-1098'];
const DERIVED = "SELECT upper(email) AS e, ssn || '' AS s FROM users ORDER BY id";
const INSERT_HIT = 'INSERT INTO hits VALUES (1)';
/** Wall-clock budget for all batches (the machine is shared). */
const BUDGET_MS = 15_000;
const MAX_BATCHES = 60;

const SQL = [DERIVED, 'SELECT email, ssn FROM users', INSERT_HIT, "SELECT upper('a') AS e, 'b' AS s", 'SELECT $1::text AS t', 'TRUNCATE hits', 'SELECT * FROM no_such_table'];
const SIMPLE = [...SQL, 'BEGIN', 'COMMIT', 'ROLLBACK', `DECLARE c1 CURSOR WITH HOLD FOR ${DERIVED}`, 'CLOSE c1', 'CLOSE ALL', 'DEALLOCATE ALL', 'COPY notes FROM STDIN', 'COPY users TO STDOUT', 'COPY (SELECT upper(email) FROM users) TO STDOUT WITH CSV', "PREPARE s1 AS SELECT upper(email) FROM users", 'DISCARD ALL'];
const NAMES = ['', 's1', 's2', 'p1', 'c1'];

/** One valid frontend message, with state the server may or may not share (names are reused on purpose). */
function validMessage(r: Rng, absOid: number | null): Buffer {
  switch (r.int(14)) {
    case 0:
    case 1:
      return fe.query(r.pick(SIMPLE));
    case 2:
    case 3:
      return fe.parse(r.pick(NAMES), r.pick(SQL));
    case 4:
    case 5:
      return fe.bind(r.pick(NAMES), r.pick(NAMES), Array.from({ length: r.int(3) }, () => r.pick(['x', '1', null])));
    case 6:
      return fe.describe(r.pick(['S', 'P'] as const), r.pick(NAMES));
    case 7:
    case 8:
      return fe.execute(r.pick(NAMES), r.pick([0, 0, 1, 2]));
    case 9:
      return fe.close(r.pick(['S', 'P'] as const), r.pick(NAMES));
    case 10:
      return r.chance(0.8) ? fe.sync() : fe.flush();
    case 11:
      return r.pick([fe.copyData('1\tfuzz\n'), fe.copyData(`${INSERT_HIT}\n`), fe.copyDone(), fe.copyFail('fuzz')]);
    case 12:
      return absOid === null ? fe.flush() : fe.functionCall(absOid, ['-3']);
    default:
      return fe.sync();
  }
}

describe('PostgreSQL protocol fuzzer (seeded)', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let prod: Connection;
  let staging: Connection;
  let absOid = 0;
  const seed = fuzzSeed();

  before(async () => {
    db = await createTestDatabase('fpg', SCHEMA);
    tb = await startTestBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod' }), staging: pgTarget(db.name, { env: 'staging' }) },
      masking: { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email', 'public.users.ssn': 'ssn' } },
      policy: { access: [{ name: 'any', action: 'allow' }] },
      broker: { maxMessageBytes: 65536 },
    });
    prod = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
    staging = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'write' });
    absOid = Number((await adminQuery<{ oid: string }>("SELECT 'abs(integer)'::regprocedure::oid AS oid")).rows[0].oid);
  });
  after(async () => {
    await prod?.close();
    await staging?.close();
    await tb?.close();
    await db?.drop();
  });

  test(`random valid and mutated messages, batch by batch (seed ${seed})`, async (t) => {
    t.diagnostic(`DBGOV_FUZZ_SEED=${seed}`);
    const r = rng(seed);
    const start = Date.now();
    let batches = 0;
    for (; batches < MAX_BATCHES && Date.now() - start < BUDGET_MS; batches++) {
      const conn = r.chance(0.8) ? prod : staging;
      const c = await RawPg.open(conn.tunnel.port, conn.credential.identity.id, conn.credential.database);
      const sent: string[] = [];
      const n = 4 + r.int(24);
      for (let k = 0; k < n; k++) {
        // FunctionCall (an opaque message) only where it is refused: a mutated OID must never run.
        let m = validMessage(r, conn === prod ? absOid : null);
        if (r.chance(0.15)) m = mutate(r, m, { offset: 1, size: 4, le: false });
        sent.push(m.toString('hex'));
        for (const part of chunks(r, m)) c.send(part);
      }
      c.send(fe.sync(), fe.query('SELECT 1 AS alive'));
      // A batch may leave its session waiting (COPY, a length not yet satisfied): that is allowed.
      await c.until((m) => m.type === 'D' && rowsOf([m])[0]?.[0] === '1', 1500);
      c.end();
      const where = `seed ${seed}, batch ${batches}: ${sent.join(' ')}`;
      const leaked = leaks(PII, c.allBytes());
      assert.deepEqual(leaked, [], `a classified value left in clear (${where}): ${context(c.allBytes(), leaked[0])}`);
      const fresh = await RawPg.open(prod.tunnel.port, prod.credential.identity.id, prod.credential.database).catch((e: Error) => e);
      assert.ok(fresh instanceof RawPg, `a new session starts (${where}): ${String(fresh)}`);
      fresh.send(fe.query('SELECT 2 AS two'));
      assert.deepEqual(rowsOf(await fresh.ready()), [['2']], `a new session answers (${where})`);
      fresh.end();
    }
    t.diagnostic(`${batches} batches in ${Date.now() - start} ms`);
    const ran = Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM hits', [], db.name)).rows[0].n);
    const audited = (await tb.events((e) => e.kind === 'statement' && e.statement?.decision === 'allow' && /insert into hits/i.test(e.statement.text))).length;
    assert.ok(ran <= audited, `seed ${seed}: ${ran} inserts ran upstream but only ${audited} were audited`);
  });
});

/** The bytes around the first place `value` shows up, for the failure message. */
function context(bytes: Buffer, value: string | undefined): string {
  if (value === undefined) return '';
  const text = bytes.toString('latin1');
  const at = text.indexOf(value);
  return JSON.stringify(text.slice(Math.max(0, at - 200), at + value.length + 40));
}
