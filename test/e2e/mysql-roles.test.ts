/**
 * MysqlRoleManager against the real MariaDB: a per-session user holding the access level's
 * role, usable with its random password, limited to that role's privileges, dropped (with its
 * connections) at release and at expiry, and swept after a crash.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { MysqlRoleManager, mysqlUserFor } from '../../src/broker/mysql-roles.js';
import type { TargetConfig } from '../../src/broker/config.js';
import type { LiveSession } from '../../src/broker/sessions.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded.js';
import { silentLogger } from '../../src/shared/logger.js';
import { MYSQL, createMysqlDatabase, mysqlAdmin, type MysqlTestDatabase } from './mysql-harness.js';

const suffix = randomBytes(3).toString('hex');
const READ_ROLE = `dbgov_t_read_${suffix}`;

function session(id: string, expiresInMs = 60_000): LiveSession {
  return { id, identity: { id: 'alice@example.com', kind: 'human', groups: [], source: 'builtin' }, credentialId: 'cr_1', target: 'my', database: '', access: 'read', client: 'test', startedAt: Date.now(), expiresAt: Date.now() + expiresInMs, statements: 0, controller: new AbortController() } as LiveSession;
}

async function userExists(user: string): Promise<boolean> {
  const rows = await mysqlAdmin<{ n: number }[]>(`SELECT COUNT(*) AS n FROM mysql.user WHERE User = '${user}'`);
  return rows[0].n > 0;
}

describe('per-identity MySQL users', () => {
  let db: MysqlTestDatabase;
  let store: EmbeddedStore;
  let dir: string;
  let target: TargetConfig;
  let roles: MysqlRoleManager;

  before(async () => {
    db = await createMysqlDatabase('roles', "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);");
    await mysqlAdmin(`CREATE ROLE ${READ_ROLE}; GRANT SELECT ON \`${db.name}\`.* TO ${READ_ROLE}`);
    dir = mkdtempSync(join(tmpdir(), 'dbgov-roles-'));
    store = await openEmbeddedStore({ dir, brokerId: 'test', fsync: 'interval', log: silentLogger });
    target = { engine: 'mysql', host: MYSQL.host, port: MYSQL.port, database: db.name, user: MYSQL.user, tls: { mode: 'disable' }, connectTimeoutMs: 3000, roles: { mode: 'per-identity', prefix: `dbgov_${suffix}_`, grants: { read: READ_ROLE } } } as unknown as TargetConfig;
    roles = new MysqlRoleManager({ my: target }, store, silentLogger);
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
    await mysqlAdmin(`DROP ROLE IF EXISTS ${READ_ROLE}`);
    await db?.drop();
  });

  test('user names are short, safe and name the identity', () => {
    const u = mysqlUserFor('dbgov_', "Alice O'Brien@example.com", 'ses_abcdef123456');
    assert.ok(u.length <= 32);
    assert.match(u, /^dbgov_alice_o_brien_\w*_123456$/);
  });

  test('a session gets its own user with the role, usable at once, dropped at release', async () => {
    const s = { ...session(`ses_${randomBytes(6).toString('hex')}`), database: db.name } as LiveSession;
    const up = await roles.upstreamFor('my', target, s);
    assert.notEqual(up.user, MYSQL.user);
    assert.ok(up.password && up.password.length >= 24);
    assert.ok(await userExists(up.user));
    const c = await mysql.createConnection({ host: up.host, port: up.port, user: up.user, password: up.password!, database: up.database });
    try {
      const [rows] = await c.query('SELECT id FROM t');
      assert.deepEqual(rows, [{ id: 1 }]);
      const [who] = await c.query('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r');
      assert.equal((who as { r: string }[])[0].r, READ_ROLE);
      // The role grants SELECT only: the database itself refuses a write.
      await assert.rejects(c.query('INSERT INTO t VALUES (2)'), /INSERT command denied/);
      await assert.rejects(c.query('SELECT * FROM mysql.user'), /denied/);
    } finally {
      await c.end().catch(() => undefined);
    }
    const live = await mysql.createConnection({ host: up.host, port: up.port, user: up.user, password: up.password!, database: up.database });
    live.on('error', () => undefined);
    await roles.release('my', s);
    assert.equal(await userExists(up.user), false, 'the user is dropped');
    await assert.rejects(live.query('SELECT 1'), 'its open connection was killed');
    await live.destroy();
    const recs = await store.listDbRoles({ target: 'my' });
    assert.ok(recs.some((r) => r.role === up.user && r.droppedAt));
  });

  test('the user goes at the credential expiry even if the session never releases it', async () => {
    const s = { ...session(`ses_${randomBytes(6).toString('hex')}`, 300), database: db.name } as LiveSession;
    const up = await roles.upstreamFor('my', target, s);
    assert.ok(await userExists(up.user));
    for (let k = 0; k < 40 && (await userExists(up.user)); k++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await userExists(up.user), false);
  });

  test('sweep drops users left by a crashed broker', async () => {
    const s = { ...session(`ses_${randomBytes(6).toString('hex')}`), database: db.name } as LiveSession;
    const up = await roles.upstreamFor('my', target, s);
    // A new manager has no memory of it: what the store recorded is all there is.
    const afterCrash = new MysqlRoleManager({ my: target }, store, silentLogger);
    assert.ok((await afterCrash.sweep()) >= 1);
    assert.equal(await userExists(up.user), false);
    await roles.release('my', s).catch(() => undefined);
  });

  test('an access level with no role is refused with the config to add', async () => {
    const s = { ...session('ses_nowrite'), access: 'write', database: db.name } as LiveSession;
    await assert.rejects(roles.upstreamFor('my', target, s), /has no role for access level write/);
  });
});
