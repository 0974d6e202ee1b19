import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import mysql from 'mysql2/promise';
import type { MaskPlan, Verdict } from '../../../src/gateway/engine.js';
import { allow, MYSQL, startHarness, type Harness } from './harness.js';

const run = promisify(execFile);
const DB = `dbgov_mysql_${process.pid}_${Date.now().toString(36)}`;
const blocked = (): Verdict => ({ action: 'block', stmt: { id: 'b' }, error: { message: 'dbgov: blocked by rule no-drop', hint: 'ask for approval', sqlstate: '42501' } });

let admin: mysql.Connection;
let h: Harness;
const connectVia = (port: number, extra: mysql.ConnectionOptions = {}): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port, user: 'dev', database: DB, multipleStatements: true, ...extra });

before(async () => {
  admin = await mysql.createConnection({ host: MYSQL.host, port: MYSQL.port, user: MYSQL.user });
  await admin.query(`CREATE DATABASE \`${DB}\``);
  await admin.query(`CREATE TABLE \`${DB}\`.users (id INT PRIMARY KEY, email VARCHAR(100), salary INT)`);
  await admin.query(`INSERT INTO \`${DB}\`.users VALUES (1,'a@x.io',100),(2,'b@x.io',200)`);
  h = await startHarness({
    database: DB,
    hooks: {
      check: (req) => (/DROP|forbidden/i.test(req.sql) ? blocked() : allow()),
      describe: (_s, cols): MaskPlan | null => {
        const masked = cols.filter((c) => c.orgTable === 'users' && (c.orgName === 'email' || c.orgName === 'salary'));
        if (masked.length === 0) return null;
        return {
          maskedColumns: masked.map((c) => c.name),
          columns: masked.map((c) => ({
            index: c.index,
            // Masks get types in the mask functions' vocabulary: text 25, text-protocol ints int8 20, binary ints 0.
            mask: (v, format, typeId) => (v === null ? null : c.orgName === 'salary' && format === 1 ? (typeId === 0 ? Buffer.alloc(4) : null) : Buffer.from(c.orgName === 'salary' ? (typeId === 20 ? '0' : 'x') : typeId === 25 ? '***' : 'x')),
          })),
        };
      },
    },
  });
});

after(async () => {
  await h.close();
  await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
  await admin.end();
});

describe('mysql engine against MariaDB', () => {
  it('relays text queries, multi-statements and prepared statements, masking both row formats', async () => {
    const c = await connectVia(h.port);
    const [multi] = (await c.query('SELECT 1 AS a; SELECT id, email, salary FROM users ORDER BY id')) as unknown as [unknown[][]];
    assert.deepEqual(multi[0], [{ a: 1 }]);
    assert.deepEqual(multi[1], [
      { id: 1, email: '***', salary: 0 },
      { id: 2, email: '***', salary: 0 },
    ]);
    const [bin] = await c.execute('SELECT id, email, salary FROM users WHERE id = ?', [2]);
    assert.deepEqual(bin, [{ id: 2, email: '***', salary: 0 }]);
    await c.beginTransaction();
    await c.query("INSERT INTO users VALUES (3, 'c@x.io', 300)");
    await c.rollback();
    const [cnt] = await c.query('SELECT COUNT(*) AS n FROM users');
    assert.deepEqual(cnt, [{ n: 2 }]);
    await c.end();
  });

  it('blocks with ERR 1227 / 42000 and keeps the session usable', async () => {
    const c = await connectVia(h.port);
    await assert.rejects(c.query('DROP TABLE users'), (e: { errno: number; sqlState: string; message: string }) => {
      assert.equal(e.errno, 1227);
      assert.equal(e.sqlState, '42000');
      assert.match(e.message, /^dbgov: blocked/);
      return true;
    });
    const [r] = await c.query('SELECT 7 AS v');
    assert.deepEqual(r, [{ v: 7 }]);
    await c.end();
  });

  it('blocks COM_CHANGE_USER and keeps the session', async () => {
    const c = await connectVia(h.port);
    await assert.rejects(c.changeUser({ user: 'root' }), /dbgov: blocked/);
    await c.end().catch(() => undefined);
  });

  it('relays a packet over 16 MB in both directions', async () => {
    await admin.query('SET GLOBAL max_allowed_packet = 67108864');
    const c = await connectVia(h.port);
    const big = 'x'.repeat(17 * 1024 * 1024);
    const [r] = (await c.query('SELECT LENGTH(?) AS n, ? AS s', [big, big])) as unknown as [{ n: number; s: string }[]];
    assert.equal(r[0].n, big.length);
    assert.equal(r[0].s.length, big.length);
    await c.end();
  });

  it('works with the mariadb CLI', async () => {
    const { stdout } = await run('mariadb', ['-h127.0.0.1', `-P${h.port}`, '-udev', DB, '-N', '-e', 'SELECT 40+2; SELECT email FROM users WHERE id=1']);
    assert.equal(stdout.trim(), '42\n***');
  });

  it('cancels SELECT SLEEP(30) with KILL QUERY on the gateway id, and refuses foreign ids', async () => {
    const c = await connectVia(h.port);
    const other = await connectVia(h.port);
    const started = Date.now();
    // The outcome handler is attached at once: the interruption may arrive before KILL's reply.
    // MariaDB reports the interrupted SLEEP as ER_QUERY_INTERRUPTED; MySQL returns 1.
    const sleeping = c.query('SELECT SLEEP(30) AS s').then(
      ([rows]) => (rows as { s: number }[])[0].s,
      (e: { errno: number }) => e.errno,
    );
    await new Promise((r) => setTimeout(r, 300));
    await other.query(`KILL QUERY ${c.threadId}`);
    const outcome = await sleeping;
    assert.ok(outcome === 1 || outcome === 1317, `unexpected outcome ${outcome}`);
    assert.ok(Date.now() - started < 10_000);
    await assert.rejects(other.query('KILL QUERY 999999'), /dbgov: blocked/);
    await c.end();
    await other.end();
  });

  it('holds a statement until approved or denied', async () => {
    let release: (v: Exclude<Verdict, { action: 'hold' }>) => void = () => undefined;
    const held = await startHarness({
      database: DB,
      hooks: {
        check: () => ({ action: 'hold', stmt: { id: 'h' }, notice: 'dbgov: waiting for approval R1', decided: new Promise((res) => (release = res)) }),
      },
    });
    const c = await connectVia(held.port);
    const q = c.query('SELECT 5 AS v');
    await new Promise((r) => setTimeout(r, 100));
    release({ action: 'allow', stmt: { id: 'h' } });
    assert.deepEqual((await q)[0], [{ v: 5 }]);
    const q2 = c.query('SELECT 6 AS v');
    await new Promise((r) => setTimeout(r, 100));
    release({ action: 'block', stmt: { id: 'h' }, error: { message: 'dbgov: approval denied', sqlstate: '42501' } });
    await assert.rejects(q2, /dbgov: approval denied/);
    await c.end();
    await held.close();
  });

  it('waits for the batched audit write before forwarding, and refuses when it fails', async () => {
    const written: string[] = [];
    let fail = false;
    const batched = await startHarness({
      database: DB,
      hooks: {
        check: (req) => ({ action: 'allow', stmt: { id: req.sql } }),
        executing: () => assert.fail('the batched hook is used when present'),
        executingBatched: (stmt) =>
          new Promise((resolve, reject) =>
            setImmediate(() => {
              if (!fail) {
                written.push(stmt.id);
                return resolve();
              }
              const e = Object.assign(new Error('disk full'), { clientError: { sqlstate: '58030', message: 'dbgov: blocked: the audit log is unavailable, so the statement was not run' } });
              reject(e);
            }),
          ),
      },
    });
    const c = await connectVia(batched.port);
    assert.deepEqual((await c.query('SELECT 8 AS v'))[0], [{ v: 8 }]);
    assert.deepEqual(written, ['SELECT 8 AS v']);
    fail = true;
    await assert.rejects(c.query(`INSERT INTO users VALUES (9, 'z@x.io', 900)`), /audit log is unavailable/);
    fail = false;
    // Not forwarded: the row is not there, and the session still works.
    assert.deepEqual((await c.query('SELECT COUNT(*) AS n FROM users WHERE id = 9'))[0], [{ n: 0 }]);
    await c.end();
    await batched.close();
  });

  it('reports an unreachable database with an ERR, not a hang', async () => {
    const down = await startHarness({ database: DB, upstreamPort: 1 });
    await assert.rejects(connectVia(down.port), /dbgov: cannot reach the database/);
    await down.close();
  });

  it('closes only the session that sends garbage', async () => {
    const good = await connectVia(h.port);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (bytes) => {
        const s = connect(h.port, '127.0.0.1');
        await new Promise<void>((resolve) => {
          s.once('data', () => {
            s.write(Buffer.from(bytes));
            s.write(Buffer.from([5, 0, 0, 7, 3, 1, 2, 3, 4]));
          });
          s.on('close', () => resolve());
          s.on('error', () => resolve());
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 300).unref();
        });
      }),
      { numRuns: 10 },
    );
    const [r] = await good.query('SELECT 1 AS ok');
    assert.deepEqual(r, [{ ok: 1 }]);
    await good.end();
  });

  it('refuses a wrong sequence id after login with an ERR and closes', async () => {
    const c = await connectVia(h.port);
    const stream = (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;
    const got = new Promise<Buffer>((resolve) => stream.once('data', resolve));
    stream.write(Buffer.from([9, 0, 0, 4, 3, ...Buffer.from('SELECT 1')]));
    const reply = await got;
    assert.equal(reply[4], 0xff);
    assert.equal(reply.readUInt16LE(5), 1156);
    c.destroy();
  });
});
