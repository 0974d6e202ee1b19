/**
 * Hostile PostgreSQL protocol, mid-session: a real governed session through the tunnel, then
 * message sequences no well-behaved client sends (state-machine confusion, lying lengths, COPY
 * abuse, extended-protocol desync, client encodings). Every probe then checks what matters:
 * no classified value left in clear, nothing ran upstream without an audit record (the `hits`
 * table counts the inserts the server really ran), and the broker still serves a new session.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { SA_TOKENS, adminQuery, createTestDatabase, pgTarget, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import { leaks } from './capture-proxy.js';
import { RawPg, errorsOf, fe, field, msg, rowsOf, type BackendMessage } from './pg-raw.js';
import type { Connection } from '../../src/cli/connect.js';

const SCHEMA = `
  CREATE TABLE users (id int PRIMARY KEY, email text, ssn text, plan text);
  INSERT INTO users VALUES (1, 'erin.hostile@example.com', '321-54-9876', 'pro'), (2, 'frank.hostile@example.org', '432-65-0987', 'free'), (3, 'gina.hostile@example.net', '543-76-1098', 'pro');
  CREATE TABLE notes (id int, body text);
  CREATE TABLE hits (n int);
  CREATE FUNCTION secret_of(int) RETURNS text LANGUAGE sql AS 'SELECT email FROM users WHERE id = $1';
`;
/**
 * Values of their own, not the masking corpus's: statement texts of other sessions show in the
 * server's process list (a known gap, see the adversarial probes), and this file's seeding must
 * not show up there as a corpus value while those probes run alongside.
 */
export const PII = ['erin.hostile@example.com', 'frank.hostile@example.org', 'gina.hostile@example.net', '321-54-9876', '432-65-0987', '543-76-1098'];
const MASKING = { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email', 'public.users.ssn': 'ssn' } };
/** Derived columns: masked only through the statement's lineage (RowDescription names no table). */
const DERIVED = "SELECT upper(email) AS e, ssn || '' AS s FROM users ORDER BY id";
/** The same result shape with nothing classified in it. */
const BENIGN = "SELECT upper('a') AS e, 'b' AS s";
const INSERT_HIT = 'INSERT INTO hits VALUES (1)';

describe('hostile PostgreSQL protocol, mid-session', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let staging: Connection;
  let prod: Connection;

  before(async () => {
    db = await createTestDatabase('hpg', SCHEMA);
    tb = await startTestBroker({
      targets: { staging: pgTarget(db.name, { env: 'staging' }), prod: pgTarget(db.name, { env: 'prod' }) },
      masking: MASKING,
      policy: { access: [{ name: 'any', action: 'allow' }] },
      broker: { maxMessageBytes: 1048576 },
    });
    staging = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'write' });
    prod = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
  });
  after(async () => {
    await staging?.close();
    await prod?.close();
    await tb?.close();
    await db?.drop();
  });

  const open = (conn: Connection = staging): Promise<RawPg> => RawPg.open(conn.tunnel.port, conn.credential.identity.id, conn.credential.database);

  /** What every probe must leave true: nothing in clear, nothing unaudited, the broker serving. */
  const invariants = async (c: RawPg, what: string): Promise<void> => {
    c.end();
    assert.deepEqual(leaks(PII, c.allBytes()), [], `${what}: a classified value left in clear`);
    const ran = Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM hits', [], db.name)).rows[0].n);
    const audited = (await tb.events((e) => e.kind === 'statement' && e.statement?.decision === 'allow' && /insert into hits/i.test(e.statement.text))).length;
    assert.ok(ran <= audited, `${what}: ${ran} inserts ran upstream but only ${audited} were audited`);
    const fresh = await tunnelClient(staging);
    try {
      assert.equal((await fresh.query('SELECT 41 + 1 AS n')).rows[0].n, 42, `${what}: a new session works`);
    } finally {
      await fresh.end();
    }
  };

  const masked = (rows: (string | null)[][]): void => {
    assert.equal(rows.length, 3, `three rows: ${JSON.stringify(rows)}`);
    for (const r of rows) for (const v of r) assert.ok(v !== null && !PII.some((p) => v.toLowerCase().includes(p)), `masked: ${JSON.stringify(r)}`);
  };

  const blocked = (ms: BackendMessage[]): void => {
    const e = ms.find((m) => m.type === 'E');
    assert.ok(e, `an error: ${ms.map((m) => m.type).join('')}`);
    assert.equal(field(e, 'C'), '42501', errorsOf(ms).join('; '));
    assert.match(field(e, 'M') ?? '', /^dbgov: blocked/);
  };

  const closedWithError = async (c: RawPg, sqlstate: string | RegExp): Promise<void> => {
    const ms = await c.until(() => false, 3000);
    assert.ok(c.closed || (await c.waitClosed()), 'the session is closed');
    const fatal = ms.find((m) => m.type === 'E' && field(m, 'S') === 'FATAL');
    assert.ok(fatal, `a FATAL error first: ${errorsOf(ms).join('; ')}`);
    if (typeof sqlstate === 'string') assert.equal(field(fatal, 'C'), sqlstate, errorsOf(ms).join('; '));
    else assert.match(field(fatal, 'C') ?? '', sqlstate);
  };

  // ---- defects found by these probes (each failed before its fix) ----

  test('a Parse refused by the server (name in use) does not give the old statement its decision', async () => {
    const c = await open();
    c.send(fe.parse('s1', DERIVED), fe.sync());
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.parse('s1', BENIGN), fe.sync());
    assert.match(errorsOf(await c.ready()).join(), /42P05/);
    c.send(fe.bind('', 's1'), fe.execute(''), fe.sync());
    masked(rowsOf(await c.ready()));
    await invariants(c, 'statement re-Parsed');
  });

  test('a Bind refused by the server (cursor name in use) does not give the cursor its decision', async () => {
    const c = await open();
    c.send(fe.query(`DECLARE hc CURSOR WITH HOLD FOR ${DERIVED}`));
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.parse('', BENIGN), fe.bind('hc', ''), fe.sync());
    assert.match(errorsOf(await c.ready()).join(), /42P03/);
    c.send(fe.execute('hc'), fe.sync());
    masked(rowsOf(await c.ready()));
    await invariants(c, 'cursor re-bound');
  });

  test('the same on a protected target: the cursor is an unprepared execute, and refused', async () => {
    const c = await open(prod);
    c.send(fe.query(`DECLARE hc CURSOR WITH HOLD FOR ${DERIVED}`));
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.parse('', BENIGN), fe.bind('hc', ''), fe.sync());
    assert.match(errorsOf(await c.ready()).join(), /42P03/);
    c.send(fe.execute('hc'), fe.sync());
    blocked(await c.ready());
    await invariants(c, 'cursor re-bound, prod');
  });

  test('DEALLOCATE, then SQL PREPARE under a name the gateway had parsed', async () => {
    const c = await open();
    c.send(fe.parse('s2', BENIGN), fe.sync());
    await c.ready();
    c.send(fe.query('DEALLOCATE s2'));
    await c.ready();
    c.send(fe.query(`PREPARE s2 AS ${DERIVED}`));
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.bind('', 's2'), fe.execute(''), fe.sync());
    const r = await c.ready();
    masked(rowsOf(r));
    c.send(fe.query('DISCARD ALL'), fe.parse('s3', BENIGN), fe.sync());
    await c.ready(2);
    await invariants(c, 'DEALLOCATE + PREPARE');
  });

  test('a portal the server dropped at Sync, its name then DECLAREd WITH HOLD', async () => {
    const c = await open();
    c.send(fe.parse('', BENIGN), fe.bind('p9', ''), fe.sync());
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.query(`DECLARE p9 CURSOR WITH HOLD FOR ${DERIVED}`));
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.execute('p9'), fe.sync());
    masked(rowsOf(await c.ready()));
    await invariants(c, 'portal dropped at Sync');
  });

  test('a portal closed by SQL CLOSE, its name then DECLAREd in the same transaction', async () => {
    const c = await open();
    c.send(fe.query('BEGIN'));
    await c.ready();
    c.send(fe.parse('', BENIGN), fe.bind('p8', ''), fe.sync());
    await c.ready();
    c.send(fe.query(`CLOSE p8; DECLARE p8 CURSOR FOR ${DERIVED}`));
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.execute('p8'), fe.sync());
    masked(rowsOf(await c.ready()));
    c.send(fe.query('ROLLBACK'));
    await c.ready();
    await invariants(c, 'CLOSE + DECLARE');
  });

  test('portals a ROLLBACK, ROLLBACK TO SAVEPOINT or failed transaction dropped, their names then DECLAREd', async () => {
    const shapes: { name: string; before: string[]; drop: string }[] = [
      { name: 'ROLLBACK', before: ['BEGIN'], drop: 'ROLLBACK' },
      { name: 'ROLLBACK in the DECLARE message', before: ['BEGIN'], drop: '' },
      { name: 'ROLLBACK TO SAVEPOINT', before: ['BEGIN', 'SAVEPOINT a'], drop: 'ROLLBACK TO SAVEPOINT a' },
      { name: 'failed transaction, then ROLLBACK', before: ['BEGIN'], drop: 'SELECT 1/0' },
      { name: 'COMMIT', before: ['BEGIN'], drop: 'COMMIT' },
    ];
    for (const [k, sh] of shapes.entries()) {
      const c = await open();
      const name = `pr${k}`;
      for (const q of sh.before) {
        c.send(fe.query(q));
        await c.ready();
      }
      c.send(fe.parse('', BENIGN), fe.bind(name, ''), fe.sync());
      assert.deepEqual(errorsOf(await c.ready()), [], sh.name);
      if (sh.drop !== '') {
        c.send(fe.query(sh.drop));
        await c.ready();
      }
      const rollback = sh.drop === '' || sh.drop.startsWith('SELECT') ? 'ROLLBACK; ' : '';
      const hold = sh.before.includes('SAVEPOINT a') ? '' : ' WITH HOLD';
      c.send(fe.query(`${rollback}DECLARE ${name} CURSOR${hold} FOR ${DERIVED}`));
      assert.deepEqual(errorsOf(await c.ready()), [], `${sh.name}: DECLARE`);
      c.send(fe.execute(name), fe.sync());
      const r = await c.ready();
      const rows = rowsOf(r);
      if (rows.length > 0) masked(rows);
      else assert.ok(errorsOf(r).length > 0, `${sh.name}: refused, or masked rows`);
      c.send(fe.query('ROLLBACK'));
      await c.ready();
      await invariants(c, sh.name);
    }
  });

  test('a Close and a Parse the server discarded after an error in the same batch', async () => {
    const c = await open();
    c.send(fe.parse('s4', DERIVED), fe.sync());
    await c.ready();
    c.send(fe.parse('', 'SELECT * FROM no_such_table'), fe.close('S', 's4'), fe.parse('s4', BENIGN), fe.sync());
    assert.match(errorsOf(await c.ready()).join(), /42P01/);
    c.send(fe.bind('', 's4'), fe.execute(''), fe.sync());
    masked(rowsOf(await c.ready()));
    await invariants(c, 'discarded Close + Parse');
  });

  test('client encodings that fold a backslash into a character are refused', async () => {
    // In SJIS 0x81 0x5c is one character: the server sees the string end where the analyser sees \' .
    const hidden = Buffer.concat([Buffer.from("SELECT E'"), Buffer.from([0x81]), Buffer.from("\\' AS a, upper(email) AS e FROM users --'")]);
    for (const set of ["SET client_encoding = 'SJIS'", "SET NAMES 'GBK'", "SELECT set_config('client_encoding', 'BIG5', false)", "SET client_encoding TO 'windows-932'"]) {
      const c = await open();
      c.send(fe.query(set));
      blocked(await c.ready());
      c.send(fe.query(hidden));
      const r = await c.ready();
      assert.match(errorsOf(r).join(), /22021/, `${set}: the server still reads UTF8, and refuses the bytes`);
      await invariants(c, set);
    }
    // Dynamic SQL the analyser cannot read: refused, or the session ends when the server reports the switch.
    const d = await open();
    d.send(fe.query("DO $$ BEGIN EXECUTE 'SET client_encoding = ' || quote_literal('SJ' || 'IS'); END $$"), fe.query(hidden));
    const r = await d.until(() => false, 2000);
    assert.ok(r.some((m) => m.type === 'E' && (field(m, 'C') === '42501' || field(m, 'C') === '0A000')), errorsOf(r).join('; '));
    await invariants(d, 'DO block that sets the encoding');
    // At startup: the server's word decides (a parameter, `options`, or ALTER DATABASE … SET).
    await adminQuery(`ALTER DATABASE ${db.name} SET client_encoding = 'SJIS'`);
    try {
      for (const params of [{ client_encoding: 'SJIS' }, { options: '-c client_encoding=GBK' }, {}] as Record<string, string>[]) {
        const s = await rawStartup(staging, params);
        assert.match(errorsOf(s).join(), /FATAL 0A000 dbgov: client encoding \w+ is not supported/, JSON.stringify(params));
      }
    } finally {
      await adminQuery(`ALTER DATABASE ${db.name} RESET client_encoding`);
    }
  });

  test('FunctionCall: refused on a protected target; elsewhere audited, and its result masked', async () => {
    const oid = async (fn: string): Promise<number> => Number((await adminQuery<{ oid: string }>(`SELECT '${fn}'::regprocedure::oid AS oid`, [], db.name)).rows[0].oid);
    const secret = await oid('secret_of(int)');
    const p = await open(prod);
    p.send(fe.functionCall(secret, ['1']));
    blocked(await p.ready());
    await invariants(p, 'FunctionCall, prod');
    // The same function through a Query is masked; through FunctionCall its value has no origin at all.
    const s = await open();
    const before = (await tb.events((e) => e.kind === 'statement' && e.statement?.text === '<function-call-message>')).length;
    s.send(fe.functionCall(secret, ['1']), fe.functionCall(await oid('abs(integer)'), ['-5']));
    const r = await s.ready(2);
    assert.equal(r.filter((m) => m.type === 'V').length, 2, `two FunctionCallResponses: ${errorsOf(r).join('; ')}`);
    const after = (await tb.events((e) => e.kind === 'statement' && e.statement?.text === '<function-call-message>')).length;
    assert.equal(after, before + 2, 'one audit record for each');
    await invariants(s, 'FunctionCall, staging');
  });

  // ---- sequences that held ----

  test('CopyData, CopyDone and CopyFail outside COPY are ignored; the session goes on', async () => {
    const c = await open();
    c.send(fe.copyData(`${INSERT_HIT}\n`), fe.copyDone(), fe.copyFail('x'), fe.query('SELECT 1 AS one'));
    const r = await c.ready();
    assert.deepEqual(rowsOf(r), [['1']]);
    await invariants(c, 'copy messages outside COPY');
  });

  test('a Query smuggled into COPY FROM STDIN is not run: the server ends that session', async () => {
    const c = await open();
    c.send(fe.query('COPY notes FROM STDIN'));
    assert.equal((await c.until((m) => m.type === 'G' || m.type === 'Z')).pop()?.type, 'G');
    c.send(fe.query(INSERT_HIT));
    const r = await c.until(() => false, 2000);
    assert.match(errorsOf(r).join(), /08P01/);
    assert.ok(await c.waitClosed());
    await invariants(c, 'Query inside COPY');
  });

  test('COPY FROM STDIN in the extended protocol (as libpq sends it), then more statements', async () => {
    const c = await open();
    c.send(fe.parse('', 'COPY notes FROM STDIN'), fe.bind('', ''), fe.describe('P', ''), fe.execute(''), fe.sync());
    assert.equal((await c.until((m) => m.type === 'G' || m.type === 'Z')).pop()?.type, 'G');
    c.send(fe.copyData('1\thello\n'), fe.copyDone(), fe.sync());
    assert.deepEqual(errorsOf(await c.ready()), []);
    c.send(fe.query(DERIVED));
    masked(rowsOf(await c.ready()));
    c.send(fe.parse('', DERIVED), fe.bind('', ''), fe.execute(''), fe.sync());
    masked(rowsOf(await c.ready()));
    await invariants(c, 'extended COPY');
  });

  test('COPY FROM STDIN with a Sync inside the data is closed, not misread', async () => {
    const c = await open();
    c.send(fe.parse('', 'COPY notes FROM STDIN'), fe.bind('', ''), fe.execute(''), fe.sync());
    assert.equal((await c.until((m) => m.type === 'G' || m.type === 'Z')).pop()?.type, 'G');
    c.send(fe.copyData('2\tx\n'), fe.sync(), fe.copyData('3\ty\n'), fe.copyDone(), fe.sync(), fe.query(DERIVED));
    await closedWithError(c, '08P01');
    await invariants(c, 'Sync inside COPY data');
  });

  test('Bind of a statement never parsed, parsed under another name, or closed: refused on a protected target', async () => {
    const c = await open(prod);
    c.send(fe.bind('', 'never'), fe.execute(''), fe.sync());
    blocked(await c.ready());
    c.send(fe.parse('a1', 'SELECT 1'), fe.sync());
    await c.ready();
    c.send(fe.bind('', 'A1'), fe.execute(''), fe.sync());
    blocked(await c.ready());
    c.send(fe.close('S', 'a1'), fe.sync());
    await c.ready();
    c.send(fe.bind('', 'a1'), fe.execute(''), fe.sync());
    blocked(await c.ready());
    c.send(fe.execute('no_portal'), fe.sync());
    blocked(await c.ready());
    c.send(fe.query('SELECT 2 AS two'));
    assert.deepEqual(rowsOf(await c.ready()), [['2']]);
    await invariants(c, 'unknown statements');
  });

  test('malformed Parse and Bind: wrong and huge parameter counts, negative lengths, NUL, bad UTF-8', async () => {
    const c = await open();
    const cases: [string, Buffer[]][] = [
      ['Bind with a parameter the statement does not take', [fe.parse('', 'SELECT 1'), fe.bind('', '', ['x']), fe.execute(''), fe.sync()]],
      ['Parse declaring 30000 parameter types it does not carry', [msg('P', Buffer.concat([Buffer.from('\0SELECT $1\0'), Buffer.from([0x75, 0x30])])), fe.sync()]],
      ['Bind declaring 30000 parameters it does not carry', [fe.parse('', 'SELECT $1::text'), fe.bind('', '', [], 30000), fe.sync()]],
      ['Bind with a negative parameter length', [fe.parse('', 'SELECT $1::text'), msg('B', Buffer.from([0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0, 0, 0])), fe.execute(''), fe.sync()]],
      ['Parse with a NUL inside the SQL', [fe.parse('', Buffer.from(`SELECT 1\0${INSERT_HIT}`)), fe.bind('', ''), fe.execute(''), fe.sync()]],
      ['Query with a NUL inside the SQL', [fe.query(Buffer.from(`SELECT 1\0; ${INSERT_HIT}`))]],
      ['Query that is not UTF-8', [fe.query(Buffer.concat([Buffer.from("SELECT '"), Buffer.from([0xc0, 0xaf, 0xff]), Buffer.from("'")]))]],
      ['Describe and Close of names that do not exist', [fe.describe('S', 'nope'), fe.sync(), fe.describe('P', 'nope'), fe.close('S', 'nope'), fe.close('P', 'nope'), fe.sync()]],
    ];
    for (const [what, bytes] of cases) {
      c.send(...bytes);
      const r = await c.ready(bytes.filter((b) => b[0] === 0x53 || b[0] === 0x51).length, 3000);
      assert.ok(!c.closed, `${what}: the session stays open`);
      assert.ok(r.some((m) => m.type === 'E'), `${what}: a clear error (${r.map((m) => m.type).join('')})`);
    }
    c.send(fe.query('SELECT 3 AS three'));
    assert.deepEqual(rowsOf(await c.ready()), [['3']]);
    await invariants(c, 'malformed Parse/Bind');
  });

  test('lengths that lie, message types that do not exist, startup packets mid-session: that session closes', async () => {
    const cases: [string, Buffer][] = [
      ['Query of length 4 (no text at all)', msg('Q', Buffer.alloc(0))],
      ['Query whose length is shorter than its text', msg('Q', Buffer.from(`${INSERT_HIT}\0`), 10)],
      ['Query whose length is 3', msg('Q', Buffer.from('x\0'), 3)],
      ['message type that does not exist', msg('z', Buffer.from('SELECT 1\0'))],
      ['a second StartupMessage', fe.startup({ user: 'postgres', database: 'postgres' })],
      ['SSLRequest', fe.sslRequest()],
      ['GSSENCRequest', fe.gssencRequest()],
      ['CancelRequest in-band', fe.cancel(1, 2)],
      ['Describe of a kind that does not exist', msg('D', Buffer.from('Xname\0'))],
      ['Execute without a portal name terminator', msg('E', Buffer.from('p'))],
      ['FunctionCall shorter than its OID', msg('F', Buffer.from([0, 1]))],
    ];
    for (const [what, bytes] of cases) {
      const c = await open();
      c.send(bytes);
      await closedWithError(c, /^(08P01|54000)$/).catch((e: Error) => assert.fail(`${what}: ${e.message}`));
      await invariants(c, what);
    }
  });

  test('Flush and Sync storms are answered one for one', async () => {
    const c = await open();
    const n = 2000;
    c.send(...Array.from({ length: n }, (_, k) => (k % 2 === 0 ? fe.flush() : fe.sync())));
    const r = await c.ready(n / 2, 10_000);
    assert.equal(r.filter((m) => m.type === 'Z').length, n / 2);
    c.send(fe.query('SELECT 4 AS four'));
    assert.deepEqual(rowsOf(await c.ready()), [['4']]);
    await invariants(c, 'Sync storm');
  });

  test('CancelRequest with a guessed key does not cancel another session', async () => {
    const victim = await open();
    victim.send(fe.query('SELECT pg_sleep(1.5) AS slept'));
    await new Promise((r) => setTimeout(r, 200));
    for (const key of [victim.key + 1, victim.key ^ 0x7fffffff, 0]) {
      const s = await rawSocket(staging);
      s.write(fe.cancel(victim.pid, key));
      await new Promise((r) => setTimeout(r, 100));
      s.destroy();
    }
    const r = await victim.ready(1, 5000);
    assert.deepEqual(errorsOf(r), [], 'not cancelled');
    assert.equal(rowsOf(r).length, 1);
    await invariants(victim, 'guessed cancel keys');
  });

  test('a pipeline that mixes allowed and blocked statements: each Execute runs under its own decision', async () => {
    const c = await open(prod);
    // The unnamed statement re-Parsed between Binds: each portal keeps the text it was bound to.
    c.send(fe.parse('', DERIVED), fe.bind('pa', ''), fe.parse('', BENIGN), fe.bind('pb', ''), fe.execute('pa'), fe.execute('pb'), fe.sync());
    let r = await c.ready();
    const rows = rowsOf(r);
    masked(rows.slice(0, 3));
    assert.deepEqual(rows.slice(3), [['A', 'b']]);
    // The unnamed portal keeps the text it was bound to when the unnamed statement is re-Parsed.
    c.send(fe.parse('', DERIVED), fe.bind('', ''), fe.parse('', BENIGN), fe.execute(''), fe.sync());
    masked(rowsOf(await c.ready()));
    // A blocked Parse mid-pipeline: nothing after it runs until Sync, not even the allowed Execute.
    c.send(fe.parse('', INSERT_HIT), fe.bind('pc', ''), fe.parse('', 'TRUNCATE hits'), fe.bind('', ''), fe.execute(''), fe.execute('pc'), fe.sync());
    r = await c.ready();
    blocked(r);
    assert.equal(r.filter((m) => m.type === 'C').length, 0, 'nothing completed');
    c.send(fe.execute('pc'), fe.sync());
    blocked(await c.ready());
    await invariants(c, 'mixed pipeline');
  });

  test('masked columns through Describe(portal) and Execute with a row limit, suspended and resumed', async () => {
    const c = await open();
    c.send(fe.parse('', DERIVED), fe.bind('', ''), fe.describe('P', ''), fe.execute('', 1), fe.execute('', 1), fe.execute('', 0), fe.sync());
    let r = await c.ready();
    assert.equal(r.filter((m) => m.type === 's').length, 2, 'two PortalSuspended');
    masked(rowsOf(r));
    // Across batches inside a transaction: the portal lives on, and stays masked.
    c.send(fe.query('BEGIN'), fe.parse('', DERIVED), fe.bind('cur', ''), fe.execute('cur', 2), fe.sync());
    r = await c.ready(2);
    c.send(fe.execute('cur', 1), fe.sync());
    r = [...r, ...(await c.ready())];
    masked(rowsOf(r));
    c.send(fe.query('COMMIT'));
    await c.ready();
    await invariants(c, 'portal suspension');
  });
});

/** A raw TCP connection to the tunnel (its startup phase is the client's to send). */
function rawSocket(conn: Connection): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(conn.tunnel.port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends a StartupMessage with extra parameters and returns what came back before the close. */
async function rawStartup(conn: Connection, extra: Record<string, string>): Promise<BackendMessage[]> {
  const s = await rawSocket(conn);
  const out: Buffer[] = [];
  s.on('data', (d: Buffer) => out.push(d));
  s.write(fe.startup({ user: conn.credential.identity.id, database: conn.credential.database, ...extra }));
  await new Promise<void>((resolve) => {
    s.on('close', () => resolve());
    setTimeout(() => {
      s.destroy();
      resolve();
    }, 5000);
  });
  const buf = Buffer.concat(out);
  const ms: BackendMessage[] = [];
  for (let off = 0; off + 5 <= buf.length; ) {
    const len = buf.readInt32BE(off + 1);
    ms.push({ type: String.fromCharCode(buf[off]), body: buf.subarray(off + 5, off + 1 + len) });
    off += len + 1;
  }
  return ms;
}
