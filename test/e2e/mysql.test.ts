/**
 * The MySQL path end to end: a real broker in-process, real tunnels, the real MariaDB, and the
 * clients people use (mysql2 text and binary protocol, the mariadb CLI, `dbgov exec`). Also bad
 * input through the broker and the audit trail of every statement.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { SA_TOKENS, run, startTestBroker, type TestBroker } from './harness.js';
import { createMysqlDatabase, mariadbCli, mysqlAdmin, mysqlTarget, mysqlTunnelClient, type MysqlTestDatabase } from './mysql-harness.js';
import type { Connection } from '../../src/cli/connect.js';

const SETUP = `
  CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100), name VARCHAR(50));
  CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100));
  INSERT INTO users VALUES (1, 'ada@example.com', 'Ada'), (2, 'bob@example.com', 'Bob');
`;

/** A raw TCP client speaking just enough of the protocol to misbehave on purpose. */
class RawClient {
  private buf = Buffer.alloc(0);
  private closed = false;
  private waiters: (() => void)[] = [];
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }
  static async open(port: number): Promise<RawClient> {
    const s = netConnect(port, '127.0.0.1');
    await new Promise<void>((r, j) => s.once('connect', () => r()).once('error', j));
    return new RawClient(s);
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  /** The next packet's payload, or null when the connection closed first. */
  async packet(): Promise<{ seq: number; payload: Buffer } | null> {
    for (;;) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUIntLE(0, 3);
        if (this.buf.length >= 4 + len) {
          const p = { seq: this.buf[3], payload: this.buf.subarray(4, 4 + len) };
          this.buf = this.buf.subarray(4 + len);
          return p;
        }
      }
      if (this.closed) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  async closedWithin(ms: number): Promise<boolean> {
    const t = Date.now();
    while (!this.closed && Date.now() - t < ms) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }
  send(seq: number, payload: Buffer): void {
    const h = Buffer.alloc(4);
    h.writeUIntLE(payload.length, 0, 3);
    h[3] = seq;
    this.socket.write(Buffer.concat([h, payload]));
  }
  /** A HandshakeResponse41 with no password, for the user and database given. */
  login(user: string, database: string, seq = 1): void {
    const caps = 0x00000200 | 0x00008000 | 0x00000008 | 0x00080000 | 0x00010000; // PROTOCOL_41, SECURE_CONNECTION, CONNECT_WITH_DB, PLUGIN_AUTH, MULTI_STATEMENTS
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps, 0);
    head.writeUInt32LE(1 << 24, 4);
    head[8] = 45;
    this.send(seq, Buffer.concat([head, Buffer.from(`${user}\0`), Buffer.from([0]), Buffer.from(`${database}\0`), Buffer.from('mysql_native_password\0')]));
  }
  close(): void {
    this.socket.destroy();
  }
}

function errOf(payload: Buffer | undefined): { code: number; message: string } | null {
  if (!payload || payload[0] !== 0xff) return null;
  const code = payload.readUInt16LE(1);
  const message = payload.subarray(payload[3] === 0x23 ? 9 : 3).toString('utf8');
  return { code, message };
}

describe('the MySQL path through the broker', () => {
  let db: MysqlTestDatabase;
  let tb: TestBroker;
  let conn: Connection;

  before(async () => {
    db = await createMysqlDatabase('path', SETUP);
    tb = await startTestBroker({
      targets: { prod: mysqlTarget(db.name, { env: 'prod' }) },
      policy: { access: [{ name: 'any', action: 'allow' }] },
      broker: { maxMessageBytes: 1024 * 1024 },
    });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await db?.drop();
  });

  test('mysql2: text protocol, no password, the credential names user and database', async () => {
    const c = await mysqlTunnelClient(conn);
    try {
      const [rows] = await c.query('SELECT id, email FROM users ORDER BY id');
      assert.deepEqual(rows, [
        { id: 1, email: 'ada@example.com' },
        { id: 2, email: 'bob@example.com' },
      ]);
      const [who] = await c.query('SELECT DATABASE() AS db');
      assert.equal((who as { db: string }[])[0].db, db.name);
    } finally {
      await c.end();
    }
  });

  test('mysql2: prepared statements (binary protocol) run, and are judged at prepare', async () => {
    const c = await mysqlTunnelClient(conn);
    try {
      const [rows] = await c.execute('SELECT name FROM users WHERE id = ?', [2]);
      assert.deepEqual(rows, [{ name: 'Bob' }]);
      const [again] = await c.execute('SELECT name FROM users WHERE id = ?', [1]);
      assert.deepEqual(again, [{ name: 'Ada' }]);
      await assert.rejects(c.execute('DELETE FROM users'), (e: { errno?: number; sqlState?: string; message?: string }) => {
        assert.equal(e.errno, 1227);
        assert.equal(e.sqlState, '42000');
        assert.match(e.message ?? '', /^dbgov: blocked/);
        return true;
      });
      const [count] = await c.query('SELECT COUNT(*) AS n FROM users');
      assert.equal((count as { n: number }[])[0].n, 2, 'the refused DELETE did nothing and the session still works');
    } finally {
      await c.end();
    }
  });

  test('mysql2: multi-statements return every result; one bad statement refuses the whole message', async () => {
    const c = await mysqlTunnelClient(conn, { multipleStatements: true });
    try {
      const [results] = await c.query('SELECT 1 AS a; SELECT name FROM users WHERE id = 1; INSERT INTO notes (note) VALUES (\'m\')');
      const list = results as unknown[];
      assert.equal(list.length, 3);
      assert.deepEqual(list[1], [{ name: 'Ada' }]);
      assert.equal((list[2] as { affectedRows: number }).affectedRows, 1);
      await assert.rejects(c.query("INSERT INTO notes (note) VALUES ('never'); DROP TABLE users"), /^Error: dbgov: blocked|dbgov: blocked/);
      const [n] = await mysqlAdmin<{ n: number }[]>("SELECT COUNT(*) AS n FROM notes WHERE note = 'never'", db.name);
      assert.equal(n.n, 0, 'no part of a refused multi-statement message ran');
    } finally {
      await c.end();
    }
  });

  test('the mariadb CLI with -e: rows on stdout; a refusal on stderr with the contract error', async () => {
    const ok = await mariadbCli(conn, 'SELECT name FROM users ORDER BY id');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'name\nAda\nBob\n');
    const bad = await mariadbCli(conn, 'UPDATE users SET name = NULL');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /ERROR 1227 \(42000\).*dbgov: blocked/);
    const [n] = await mysqlAdmin<{ n: number }[]>('SELECT COUNT(*) AS n FROM users WHERE name IS NULL', db.name);
    assert.equal(n.n, 0);
  });

  test('a client asking for another database is refused at login', async () => {
    await assert.rejects(mysqlTunnelClient(conn, { database: 'mysql' }), (e: { errno?: number; message?: string }) => {
      assert.equal(e.errno, 1044);
      assert.match(e.message ?? '', /credential is for/);
      return true;
    });
  });

  test('dbgov exec TARGET --sql through the compiled CLI (run `npm run build` first)', async () => {
    const env = { DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: SA_TOKENS.ci, DBGOV_HOME: join(tb.dir, 'cli-home'), DBGOV_LOG_LEVEL: 'silent' };
    const ok = await run(process.execPath, ['bin/run.js', 'exec', 'prod', '--sql', 'SELECT name FROM users WHERE id = 2', '--json'], { env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /"name":\s*"Bob"/);
    const bad = await run(process.execPath, ['bin/run.js', 'exec', 'prod', '--sql', 'DELETE FROM users', '--json'], { env });
    assert.notEqual(bad.code, 0);
    const envelope = JSON.parse(bad.stdout) as { status: number; message: string };
    assert.notEqual(envelope.status, 0);
    assert.match(envelope.message, /dbgov: blocked/);

    // Several statements, the first not a SELECT: one result per statement (was an internal
    // error), and a repeated column name keeps both values.
    const multi = await run(process.execPath, ['bin/run.js', 'exec', 'prod', '--access', 'write', '--sql', "UPDATE users SET name = name WHERE id = 2; SELECT 1 AS a, 2 AS a", '--json'], { env });
    assert.equal(multi.code, 0, multi.stdout + multi.stderr);
    const statements = (JSON.parse(multi.stdout) as { result: { statements: unknown[] } }).result.statements;
    assert.deepEqual(statements, [
      { command: 'OK', rowCount: 1, fields: [], rows: [] },
      { command: 'SELECT', rowCount: 1, fields: ['a', 'a_2'], rows: [{ a: 1, a_2: 2 }] },
    ]);
  });

  test('a wrong sequence id in the handshake: ERR, that session closes, others keep working', async () => {
    const raw = await RawClient.open(conn.tunnel.port);
    try {
      const greeting = await raw.packet();
      assert.equal(greeting?.payload[0], 10, 'protocol 10 greeting');
      raw.login('ci-bot', db.name, 5);
      const err = errOf((await raw.packet())?.payload);
      assert.ok(err, 'an ERR packet');
      assert.match(err.message, /protocol error/);
      assert.ok(await raw.closedWithin(3000), 'the session closed');
    } finally {
      raw.close();
    }
    const c = await mysqlTunnelClient(conn);
    assert.deepEqual((await c.query('SELECT 1 AS ok'))[0], [{ ok: 1 }]);
    await c.end();
  });

  test('a command with a wrong sequence id, a malformed command and an oversized packet each close only their session', async () => {
    const bystander = await mysqlTunnelClient(conn);
    try {
      const attacks: [string, (raw: RawClient) => void][] = [
        ['wrong sequence id', (raw) => raw.send(3, Buffer.from("\x03SELECT 1"))],
        ['empty command', (raw) => raw.send(0, Buffer.alloc(0))],
        ['malformed COM_STMT_EXECUTE', (raw) => raw.send(0, Buffer.from([0x17, 1]))],
        [
          'oversized packet',
          (raw) => {
            // Announce a 2 MB payload against a 1 MB limit; the gateway must not wait for or buffer it.
            const h = Buffer.alloc(4);
            h.writeUIntLE(2 * 1024 * 1024, 0, 3);
            raw.socket.write(Buffer.concat([h, Buffer.from([0x03]), Buffer.alloc(64 * 1024, 0x20)]));
          },
        ],
      ];
      for (const [name, attack] of attacks) {
        const raw = await RawClient.open(conn.tunnel.port);
        try {
          await raw.packet();
          raw.login('ci-bot', db.name);
          const ok = await raw.packet();
          assert.equal(ok?.payload[0], 0x00, `${name}: login OK`);
          attack(raw);
          let last: Buffer | undefined;
          for (let p = await raw.packet(); p; p = await raw.packet()) last = p.payload;
          assert.ok(await raw.closedWithin(3000), `${name}: the session closed`);
          if (name !== 'malformed COM_STMT_EXECUTE') assert.ok(errOf(last), `${name}: ended with an ERR packet`);
        } finally {
          raw.close();
        }
        const [rows] = await bystander.query('SELECT COUNT(*) AS n FROM users');
        assert.equal((rows as { n: number }[])[0].n, 2, `${name}: another session keeps working`);
      }
    } finally {
      await bystander.end();
    }
  });

  test('audit: every statement has its decision and result events, with the identity', async () => {
    const c = await mysqlTunnelClient(conn);
    const marker = `audit_${Date.now()}`;
    let threadId = 0;
    try {
      await c.query(`SELECT '${marker}' AS m`);
      await c.execute('SELECT name FROM users WHERE id = ?', [1]);
      await c.query("INSERT INTO notes (note) VALUES ('audited')");
      await c.query('DELETE FROM notes').catch(() => undefined);
      threadId = c.threadId ?? 0;
      await c.query(`KILL QUERY ${threadId + 100000}`).catch(() => undefined);
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 100));
    const events = await tb.events((e) => e.target === 'prod');
    const stmts = events.filter((e) => e.kind === 'statement' || e.kind === 'statement.result');
    for (const e of stmts) {
      assert.equal(e.identity?.id, 'ci-bot');
      assert.equal(e.database, db.name);
      assert.ok(e.sessionId);
    }
    // Literals are redacted: the marker never reaches the log.
    assert.ok(!JSON.stringify(events).includes(marker), 'literal values are not stored');
    const decided = stmts.filter((e) => e.kind === 'statement' && e.statement?.decision === 'allow');
    const results = new Set(stmts.filter((e) => e.kind === 'statement.result').map((e) => (e.statement as { ref?: string } | undefined)?.ref));
    for (const e of decided) assert.ok(results.has(e.id), `statement ${e.statement?.text} has a result event`);
    const texts = stmts.map((e) => e.statement?.text ?? '');
    assert.ok(texts.some((t) => /SELECT name FROM users WHERE id = \?/.test(t)), 'the prepared statement is audited');
    assert.ok(texts.some((t) => /INSERT INTO notes/.test(t)));
    assert.ok(stmts.some((e) => e.kind === 'statement' && e.statement?.decision === 'block' && /DELETE FROM notes/.test(e.statement.text)), 'the refusal is audited');
    assert.ok(texts.some((t) => /^KILL QUERY/.test(t)), 'KILL goes through the statement path too');
    assert.ok(stmts.every((e) => (e.statement as { protocol?: string } | undefined)?.protocol === 'mysql'));
    assert.ok(events.some((e) => e.kind === 'session.start' && e.identity?.id === 'ci-bot'));
  });
});
