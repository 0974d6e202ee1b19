/**
 * Hostile MySQL protocol, mid-session: a real governed session through the tunnel to the local
 * MariaDB, then commands no well-behaved client sends (statement ids never prepared, cursors,
 * long data, capability and option tricks, legacy and replication commands, lying lengths and
 * sequence ids, client character sets). Every probe then checks what matters: no classified
 * value left in clear, nothing ran upstream without an audit record (the `hits` table counts
 * the inserts the server really ran), and the broker still serves a new session.
 *
 * Commands that would stop or harm the shared server (COM_SHUTDOWN, COM_DEBUG, replication)
 * fall to the engine's default branch, which never relays a command (src/gateway/mysql/engine.ts);
 * the probes send them and then check the server still answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, startTestBroker, type TestBroker } from './harness.js';
import { createMysqlDatabase, mysqlAdmin, mysqlTarget, mysqlTunnelClient, type MysqlTestDatabase } from './mysql-harness.js';
import { leaks } from './capture-proxy.js';
import { Cap, Command, RawMy, com, errOf, frame, textRows, type Result } from './mysql-raw.js';
import type { Connection } from '../../src/cli/connect.js';

const SCHEMA = `
  CREATE TABLE users (id int PRIMARY KEY, email varchar(100), ssn varchar(20), plan varchar(10));
  INSERT INTO users VALUES (1, 'erin.hostile@example.com', '321-54-9876', 'pro'), (2, 'frank.hostile@example.org', '432-65-0987', 'free'), (3, 'gina.hostile@example.net', '543-76-1098', 'pro');
  CREATE TABLE notes (id int, body text);
  CREATE TABLE hits (n int);
`;
/**
 * Values of their own, not the masking corpus's: statement texts of other sessions show in the
 * server's process list (a known gap, see the adversarial probes), and this file's seeding must
 * not show up there as a corpus value while those probes run alongside.
 */
export const PII = ['erin.hostile@example.com', 'frank.hostile@example.org', 'gina.hostile@example.net', '321-54-9876', '432-65-0987', '543-76-1098'];
/** Derived columns: masked only through the statement's lineage (the column definitions name no table). */
const DERIVED = "SELECT upper(email) AS e, concat(ssn, '') AS s FROM users ORDER BY id";
const INSERT_HIT = 'INSERT INTO hits VALUES (1)';
/** What a CLIENT_QUERY_ATTRIBUTES capability would switch on; the gateway never offers it. */
const QUERY_ATTRIBUTES = 1 << 27;

describe('hostile MySQL protocol, mid-session', () => {
  let db: MysqlTestDatabase;
  let tb: TestBroker;
  let staging: Connection;
  let prod: Connection;

  before(async () => {
    db = await createMysqlDatabase('hmy', SCHEMA);
    tb = await startTestBroker({
      targets: { staging: mysqlTarget(db.name, { env: 'staging' }), prod: mysqlTarget(db.name, { env: 'prod' }) },
      masking: { key: '${env:T_MASK_KEY}', columns: { '*.users.email': 'email', '*.users.ssn': 'ssn' } },
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

  const open = async (conn: Connection = staging, opts: { capabilities?: number; charset?: number } = {}): Promise<RawMy> => {
    const { c, login } = await RawMy.open(conn.tunnel.port, conn.credential.identity.id, conn.credential.database, opts);
    assert.equal(login?.payload[0], 0x00, `logged in: ${login ? JSON.stringify(errOf(login.payload)) : 'closed'}`);
    return c;
  };

  /** What every probe must leave true: nothing in clear, nothing unaudited, server and broker serving. */
  const invariants = async (c: RawMy, what: string): Promise<void> => {
    c.end();
    assert.deepEqual(leaks(PII, c.allBytes()), [], `${what}: a classified value left in clear`);
    const [{ n }] = await mysqlAdmin<{ n: number }[]>('SELECT count(*) AS n FROM hits', db.name);
    const audited = (await tb.events((e) => e.kind === 'statement' && e.statement?.decision === 'allow' && /insert into hits/i.test(e.statement.text))).length;
    assert.ok(Number(n) <= audited, `${what}: ${n} inserts ran upstream but only ${audited} were audited`);
    const fresh = await mysqlTunnelClient(staging);
    try {
      const [rows] = await fresh.query('SELECT 41 + 1 AS n');
      assert.equal((rows as { n: number }[])[0].n, 42, `${what}: a new session works`);
    } finally {
      await fresh.end();
    }
  };

  const masked = (r: Result, binary = false): void => {
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.rows.length, 3, `three rows, got ${r.rows.length}`);
    for (const row of r.rows) {
      const text = binary ? row.toString('latin1') : textRows([row])[0].join('|');
      assert.ok(!PII.some((p) => text.toLowerCase().includes(p)), `masked: ${text}`);
    }
  };

  const refused = (r: Result, code = 1227): void => {
    assert.ok(r.error, 'an ERR packet');
    assert.equal(r.error.code, code, r.error.message);
    if (code === 1227) assert.match(r.error.message, /^dbgov: blocked/);
  };

  const closedWithErr = async (c: RawMy, what: string): Promise<void> => {
    assert.ok(await c.waitClosed(), `${what}: the session is closed`);
  };

  // ---- defects found by these probes (each failed before its fix) ----

  test('character sets that fold a backslash into a character are refused (handshake and SET)', async () => {
    // In GBK 0xbf 0x5c is one character: the server sees the string end where the analyser sees \' .
    const hidden = com.query(Buffer.concat([Buffer.from("SELECT '"), Buffer.from([0xbf]), Buffer.from("\\' AS a, upper(email) AS e FROM users -- '")]));
    for (const charset of [28, 87, 1, 13, 95, 248]) {
      const { c, login } = await RawMy.open(staging.tunnel.port, staging.credential.identity.id, staging.credential.database, { charset });
      assert.equal(login?.payload[0], 0xff, `collation ${charset}: refused at login`);
      assert.equal(errOf(login.payload).code, 1115);
      c.send(hidden);
      await closedWithErr(c, `collation ${charset}`);
      await invariants(c, `collation ${charset}`);
    }
    for (const set of ['SET NAMES gbk', "SET CHARACTER SET 'big5'", 'SET character_set_client = sjis', 'SET @@session.character_set_client = 28', 'SET character_set_client = @cs']) {
      const c = await open();
      c.send(com.query(set));
      const r0 = await c.result();
      assert.equal(r0.error?.code, 1227, `${set}: ${r0.error?.message}`);
      c.send(hidden);
      const r = await c.result();
      assert.ok(r.error !== undefined || textRows(r.rows).every((row) => row.length === 1), `${set}: the server still reads utf8: one string column`);
      await invariants(c, set);
    }
  });

  test('COM_PROCESS_INFO is checked and audited as SHOW PROCESSLIST', async () => {
    const c = await open();
    c.send(com.bare(Command.PROCESS_INFO));
    const r = await c.result();
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.ok(r.rows.length >= 1);
    const audited = await tb.events((e) => e.kind === 'statement' && e.statement?.text === 'SHOW PROCESSLIST');
    assert.ok(audited.length >= 1, 'an audit record');
    await invariants(c, 'COM_PROCESS_INFO');
  });

  test('COM_FIELD_LIST is checked and audited as SHOW COLUMNS, and a hostile table name stays one name', async () => {
    const c = await open(prod);
    c.send(com.bare(Command.FIELD_LIST, Buffer.from('users\0')));
    const all = await c.result({ fetch: true });
    assert.equal(all.error, undefined, JSON.stringify(all.error));
    assert.equal(all.rows.length, 4, 'one column definition per column of users');
    c.send(com.bare(Command.FIELD_LIST, Buffer.from('users\0em%')));
    const some = await c.result({ fetch: true });
    assert.equal(some.error, undefined, JSON.stringify(some.error));
    assert.equal(some.rows.length, 1, 'the wildcard narrows the list to email');
    // A wildcard with a quote and a backslash is still one literal to the analyser (not refused as unparsable).
    c.send(com.bare(Command.FIELD_LIST, Buffer.from("users\0x\\' OR 1 -- ")));
    const quoted = await c.result({ fetch: true });
    assert.equal(quoted.error, undefined, JSON.stringify(quoted.error));
    assert.equal(quoted.rows.length, 0);
    // A name that tries to close the quoting is still one (missing) table: the server says so.
    c.send(com.bare(Command.FIELD_LIST, Buffer.from('users` ; DROP TABLE hits; -- \0')));
    const hostile = await c.result({ fetch: true });
    assert.ok(hostile.error, 'an ERR packet for a table that does not exist');
    const texts = (await tb.events((e) => e.kind === 'statement' && /^SHOW COLUMNS FROM/.test(e.statement?.text ?? ''))).map((e) => e.statement!.text);
    assert.ok(texts.includes('SHOW COLUMNS FROM `users`'), `audited: ${JSON.stringify(texts)}`);
    assert.ok(texts.some((t) => /^SHOW COLUMNS FROM `users` LIKE /.test(t)), `audited with its wildcard: ${JSON.stringify(texts)}`);
    assert.ok(texts.some((t) => t.startsWith('SHOW COLUMNS FROM `users`` ; DROP TABLE hits; -- `')), `the hostile name audited as one name: ${JSON.stringify(texts)}`);
    const outcomes = await tb.events((e) => e.kind === 'statement.result' && e.statement?.text === 'SHOW COLUMNS FROM `users`');
    assert.ok(outcomes.some((e) => e.statement?.rows === 4), 'the outcome counts the column definitions');
    const [{ n }] = await mysqlAdmin<{ n: number }[]>("SELECT count(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'hits'", db.name);
    assert.equal(Number(n), 1, 'hits is still there');
    await invariants(c, 'COM_FIELD_LIST');
  });

  test('sql_mode ANSI_QUOTES: a text another session ran under the default mode is masked by its own reading', async () => {
    // Found by the fuzzer: lineage and mask plans were cached by text alone, and "email" is a
    // string under the default sql_mode but a column under ANSI_QUOTES.
    for (const text of ['SELECT "email" AS x FROM users ORDER BY id', 'SELECT concat("email", \'\') AS x, concat("ssn") AS y FROM users ORDER BY id']) {
      const plain = await open();
      plain.send(com.query(text));
      assert.equal((await plain.result()).error, undefined);
      await invariants(plain, `${text}, default sql_mode`);
      // The catalog loads in the background; resolved lineage is cached only once it has.
      for (let k = 0; k < 6; k++) {
        const c = await open();
        c.send(com.query("SET sql_mode = 'ANSI_QUOTES'"));
        await c.result();
        c.send(com.query(text));
        masked(await c.result());
        await invariants(c, `${text}, ANSI_QUOTES`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  });

  test('COM_RESET_CONNECTION puts the session back on the server default sql_mode for the analyser too', async () => {
    const c = await open();
    c.send(com.query("SET sql_mode = 'ANSI_QUOTES'"));
    await c.result();
    c.send(com.bare(Command.RESET_CONNECTION));
    assert.equal((await c.result()).error, undefined);
    // The server reads "email" as a string again; so must the analyser (its redacted text shows how it read it).
    c.send(com.query('SELECT "email" AS reset_probe FROM users'));
    assert.deepEqual(textRows((await c.result()).rows), [['email'], ['email'], ['email']]);
    const [e] = (await tb.events((x) => x.kind === 'statement' && (x.statement?.text ?? '').includes('reset_probe'))).slice(-1);
    assert.equal(e?.statement?.text, 'SELECT ? AS reset_probe FROM users');
    await invariants(c, 'reset connection');
  });

  // ---- sequences that held ----

  test('COM_STMT_EXECUTE of an id never prepared, closed, another session’s, or -1: refused on a protected target', async () => {
    // Statement ids count per connection: the other session's third is one this session never had.
    const other = await open(prod);
    let theirs = 0;
    for (let k = 0; k < 3; k++) {
      other.send(com.prepare(DERIVED));
      theirs = (await other.result({ prepare: true })).stmtId!;
    }
    const c = await open(prod);
    c.send(com.prepare(DERIVED));
    const mine = (await c.result({ prepare: true })).stmtId!;
    for (const id of [999_999, theirs, 0xffffffff]) {
      c.send(com.execute(id));
      refused(await c.result());
    }
    c.send(com.reset(mine));
    assert.equal((await c.result()).error, undefined);
    c.send(com.execute(mine));
    masked(await c.result(), true);
    c.send(com.close(mine));
    c.send(com.execute(mine));
    refused(await c.result());
    other.end();
    await invariants(c, 'unknown statement ids');
  });

  test('COM_STMT_EXECUTE of -1 (MariaDB: the last prepared) on a staging target is masked', async () => {
    const c = await open();
    c.send(com.prepare(DERIVED));
    await c.result({ prepare: true });
    c.send(com.execute(0xffffffff));
    masked(await c.result(), true);
    await invariants(c, 'execute -1');
  });

  test('cursors: COM_STMT_EXECUTE with a read-only cursor, then COM_STMT_FETCH row by row', async () => {
    const c = await open();
    c.send(com.prepare(DERIVED));
    const id = (await c.result({ prepare: true })).stmtId!;
    c.send(com.execute(id, [], 1));
    const opened = await c.result();
    assert.ok((opened.status ?? 0) & 0x40, 'a cursor is open');
    const rows: Buffer[] = [];
    for (let k = 0; k < 4; k++) {
      c.send(com.fetch(id, 1));
      rows.push(...(await c.result({ fetch: true })).rows);
    }
    masked({ packets: [], rows }, true);
    c.send(com.fetch(999_999, 1));
    assert.equal((await c.result({ fetch: true })).error?.code, 1243);
    c.send(com.close(id));
    c.send(com.fetch(id, 1));
    assert.equal((await c.result({ fetch: true })).error?.code, 1243);
    await invariants(c, 'cursor fetch');
  });

  test('COM_STMT_SEND_LONG_DATA carries data, never SQL; oversized data closes only that session', async () => {
    const c = await open();
    c.send(com.prepare('SELECT ? AS v'));
    const id = (await c.result({ prepare: true })).stmtId!;
    c.send(com.longData(id, 0, `x'); ${INSERT_HIT}; -- `));
    c.send(com.execute(id, ['ignored']));
    const r = await c.result();
    assert.equal(r.error, undefined);
    c.send(com.longData(id, 7, 'param that does not exist'));
    c.send(com.execute(id, ['v']));
    await c.result();
    c.send(com.longData(id, 0, Buffer.alloc(2 * 1048576, 0x41)));
    await closedWithErr(c, 'oversized long data');
    await invariants(c, 'long data');
  });

  test('parameter count mismatches, new-params-bound tricks and bogus types get an error, not a crash', async () => {
    const c = await open();
    c.send(com.prepare('SELECT ? AS a, ? AS b'));
    const id = (await c.result({ prepare: true })).stmtId!;
    const cases: [string, Buffer][] = [
      ['one parameter of two', com.execute(id, ['x'])],
      ['no types ever bound', com.execute(id, ['x', 'y'], 0, { bound: 0 })],
      ['types that do not exist', com.execute(id, ['x', 'y'], 0, { types: Buffer.from([0x77, 0, 0x78, 0]) })],
      ['truncated after the statement id', Buffer.from([Command.STMT_EXECUTE, 1, 0])],
      ['three parameters of two', com.execute(id, ['x', 'y', 'z'])],
    ];
    for (const [what, payload] of cases) {
      c.send(payload);
      const r = await c.result().catch((e: Error) => ({ packets: [], rows: [], error: { code: -1, message: e.message } }) as Result);
      if (c.closed) break;
      assert.ok(r.error !== undefined || r.rows.length <= 1, `${what}: ${JSON.stringify(r.error)}`);
    }
    await invariants(c, 'parameter tricks');
  });

  test('capabilities the gateway does not offer (compress, local files, query attributes) are not passed on', async () => {
    const caps = Cap.LONG_PASSWORD | Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | Cap.CONNECT_WITH_DB | Cap.MULTI_RESULTS;
    const c = await open(staging, { capabilities: caps | Cap.COMPRESS | Cap.LOCAL_FILES | QUERY_ATTRIBUTES | Cap.DEPRECATE_EOF });
    c.send(com.query(DERIVED));
    masked(await c.result());
    // Query attributes: a parameter count and set before the text; the server reads them as SQL text.
    c.send(com.query(Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.from(DERIVED)])));
    const r = await c.result();
    assert.ok(r.error, 'the prefixed text is not valid SQL');
    c.send(com.query(`LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE notes (body)`));
    await c.result();
    assert.ok(!c.allBytes().includes(Buffer.from([0xfb, 0x2f])), 'the client is never asked for a file');
    const [{ n }] = await mysqlAdmin<{ n: number }[]>("SELECT count(*) AS n FROM notes WHERE body LIKE 'root:%'", db.name);
    assert.equal(Number(n), 0, 'no file content reached the table');
    await invariants(c, 'capabilities');
  });

  test('COM_SET_OPTION toggles multi-statements; every statement in a message is still audited', async () => {
    const c = await open();
    // COM_SET_OPTION is answered with a single EOF (or ERR).
    c.send(com.setOption(true));
    assert.equal((await c.next())?.payload[0], 0xfe);
    c.send(com.query(`SELECT 1; ${INSERT_HIT}; ${DERIVED}`));
    const r = await c.result();
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    masked({ packets: [], rows: r.rows.slice(1) });
    c.send(com.setOption(false));
    assert.equal((await c.next())?.payload[0], 0xfe);
    c.send(com.query(`SELECT 1; ${INSERT_HIT}`));
    assert.ok((await c.result()).error, 'multi-statements off again');
    await invariants(c, 'set option');
  });

  test('COM_CHANGE_USER is refused; COM_RESET_CONNECTION forgets prepared statements', async () => {
    const c = await open(prod);
    c.send(com.bare(Command.CHANGE_USER, Buffer.from('root\0\0')));
    refused(await c.result());
    c.send(com.prepare(DERIVED));
    const id = (await c.result({ prepare: true })).stmtId!;
    c.send(com.bare(Command.RESET_CONNECTION));
    assert.equal((await c.result()).error, undefined);
    c.send(com.execute(id));
    refused(await c.result());
    c.send(com.query(DERIVED));
    masked(await c.result());
    await invariants(c, 'change user / reset connection');
  });

  test('legacy, replication and unknown commands are refused and never reach the server', async () => {
    const c = await open();
    const connId = Number((await mysqlAdmin<{ id: number }[]>('SELECT CONNECTION_ID() AS id'))[0].id);
    const commands = [0x00, 0x07, 0x08, 0x0b, 0x0d, 0x0f, 0x10, 0x12, 0x13, 0x14, 0x15, 0x1d, 0x1e, 0x20, 0x40, 0xfa, 0xfe, 0xff];
    for (const cmd of commands) {
      c.send(com.bare(cmd, Buffer.from([1, 0, 0, 0, 0, 0])));
      const r = await c.result();
      assert.ok(r.error, `command 0x${cmd.toString(16)}: an ERR packet`);
    }
    // KILL of a connection that is not one of this identity's dbgov connections (a real thread id).
    const kill = Buffer.alloc(4);
    kill.writeUInt32LE(connId);
    c.send(com.bare(Command.PROCESS_KILL, kill));
    refused(await c.result());
    c.send(com.query(`KILL ${connId}`));
    refused(await c.result());
    const [{ up }] = await mysqlAdmin<{ up: number }[]>('SELECT 1 AS up');
    assert.equal(Number(up), 1, 'the server is still up');
    await invariants(c, 'refused commands');
  });

  test('framing: wrong sequence ids, a zero-length packet, lying lengths, oversized packets close only that session', async () => {
    const cases: [string, Buffer][] = [
      ['sequence id 1 for a command', frame(com.query('SELECT 1'), 1)],
      ['sequence id 255 for a command', frame(com.query(INSERT_HIT), 255)],
      ['a zero-length packet', frame(Buffer.alloc(0))],
      ['a length shorter than the command (the rest reads as a packet)', frame(com.query(`SELECT 1 /* ${'x'.repeat(40)} */`), 0, 9)],
      ['a 16 MB frame (continuation) over the message limit', frame(Buffer.alloc(64), 0, 0xffffff)],
      ['a packet over the message limit', frame(Buffer.alloc(64), 0, 2 * 1048576)],
    ];
    for (const [what, bytes] of cases) {
      const c = await open();
      c.write(bytes);
      // Some leave the gateway waiting for the bytes announced; the session then ends on the next ones.
      await new Promise((r) => setTimeout(r, 200));
      if (!c.closed) c.write(frame(com.query('SELECT 1'), 7));
      await closedWithErr(c, what);
      await invariants(c, what);
    }
  });

  test('a blocked prepare between allowed ones: each execute runs under its own decision', async () => {
    const c = await open(prod);
    c.send(com.prepare(DERIVED));
    const a = (await c.result({ prepare: true })).stmtId!;
    c.send(com.prepare('TRUNCATE TABLE hits'));
    refused(await c.result({ prepare: true }));
    c.send(com.prepare("SELECT 'x' AS e, 'y' AS s"));
    const b = (await c.result({ prepare: true })).stmtId!;
    c.send(com.execute(a));
    masked(await c.result(), true);
    c.send(com.execute(b));
    assert.equal((await c.result()).rows.length, 1);
    await invariants(c, 'mixed prepares');
  });
});
