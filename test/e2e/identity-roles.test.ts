/**
 * Per-identity database roles against the real PostgreSQL: the upstream session runs as a
 * short-lived role named after the identity (LOGIN, VALID UNTIL the credential's expiry, member
 * of the access level's role), which is dropped when the session ends; a role left by a crashed
 * broker is removed at the next start on the same store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SA_TOKENS, adminQuery, createTestDatabase, pgTarget, tunnelClient, type TestDatabase } from './harness.js';
import { eventually, startIdentityBroker, type IdentityBroker } from './identity-harness.js';

describe('per-identity database roles', () => {
  const tag = randomBytes(3).toString('hex');
  const READ = `dbgov_idt_read_${tag}`;
  const WRITE = `dbgov_idt_write_${tag}`;
  const PREFIX = `dbgov_u${tag}_`;
  let db: TestDatabase;
  let tb: IdentityBroker;
  const dir = mkdtempSync(join(tmpdir(), 'dbgov-roles-'));
  const target = () => pgTarget(db.name, { env: 'staging', roles: { mode: 'per-identity', prefix: PREFIX, grants: { read: READ, write: WRITE } } });
  const leftover = async () => (await adminQuery<{ rolname: string }>('select rolname from pg_roles where rolname like $1', [`${PREFIX}%`])).rows.map((r) => r.rolname);

  before(async () => {
    await adminQuery(`CREATE ROLE ${READ} NOLOGIN; CREATE ROLE ${WRITE} NOLOGIN IN ROLE ${READ}`);
    db = await createTestDatabase('roles', `create table t (id int primary key, v int); insert into t values (1, 1); grant select on t to ${READ}; grant update on t to ${WRITE};`);
    await adminQuery(`GRANT CONNECT ON DATABASE ${db.name} TO ${READ}`);
    tb = await startIdentityBroker({ targets: { staging: target() }, dir });
  });
  after(async () => {
    await tb?.close();
    for (const r of await leftover()) await adminQuery(`DROP ROLE IF EXISTS "${r}"`).catch(() => undefined);
    await db?.drop();
    await adminQuery(`DROP ROLE IF EXISTS ${WRITE}`);
    await adminQuery(`DROP ROLE IF EXISTS ${READ}`);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the session runs upstream as a short-lived role named after the identity, dropped when it ends', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'read', ttlSeconds: 600 });
    try {
      const c = await tunnelClient(conn);
      const me = (await c.query<{ cu: string; su: string }>('select current_user as cu, session_user as su')).rows[0];
      assert.match(me.su, new RegExp(`^${PREFIX}ci_bot_[a-z0-9]+$`), 'named after the identity');
      assert.equal(me.cu, me.su);
      const role = me.su;
      const pgRole = (await adminQuery<{ rolcanlogin: boolean; rolvaliduntil: Date; member_of: string[] }>(
        `select r.rolcanlogin, r.rolvaliduntil, array(select b.rolname from pg_auth_members m join pg_roles b on b.oid = m.roleid where m.member = r.oid)::text[] as member_of from pg_roles r where r.rolname = $1`,
        [role],
      )).rows[0];
      assert.equal(pgRole.rolcanlogin, true);
      assert.deepEqual(pgRole.member_of, [READ], 'granted the read role only');
      const until = pgRole.rolvaliduntil.getTime();
      assert.ok(Math.abs(until - conn.credential.expiresAt) < 2000, `VALID UNTIL ${pgRole.rolvaliduntil.toISOString()} is the credential's expiry`);
      // PostgreSQL itself names the pipeline.
      const act = await adminQuery<{ usename: string }>('select usename from pg_stat_activity where datname = $1 and usename = $2', [db.name, role]);
      assert.equal(act.rows.length, 1);
      // The read role reads, and cannot write, even if a guardrail were missed.
      assert.equal((await c.query('select v from t where id = 1')).rows[0].v, 1);
      const start = await tb.events((e) => e.kind === 'session.start' && e.identity?.id === 'ci-bot');
      assert.equal((start.at(-1)?.detail as { upstreamUser?: string }).upstreamUser, role);
      await c.end();
      await eventually(async () => !(await leftover()).includes(role), 5000, 'the role to be dropped');
      // The drop is recorded right after the role is gone: wait for that write too.
      const dropped = async (): Promise<boolean> => (await tb.broker.core.store.listDbRoles({ target: 'staging' })).find((r) => r.role === role)?.droppedAt !== undefined;
      await eventually(dropped, 5000, 'the store to record the drop');
      assert.ok(await dropped(), 'the store records the drop');
    } finally {
      await conn.close();
    }
  });

  test('the write level gets the write role', async () => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'write' });
    try {
      const c = await tunnelClient(conn);
      await c.query('update t set v = 2 where id = 1');
      const role = (await c.query<{ u: string }>('select current_user as u')).rows[0].u;
      const member = await adminQuery<{ ok: boolean }>(`select pg_has_role($1, $2, 'member') as ok`, [role, WRITE]);
      assert.equal(member.rows[0].ok, true);
      await c.end();
    } finally {
      await conn.close();
    }
  });

  test('after a crash, the leftover role is removed at the next start on the same store', async () => {
    const role = `${PREFIX}crashed_${tag}`;
    // What a broker killed mid-session leaves: the store record and the live role.
    await tb.broker.core.store.putDbRole({ target: 'staging', role, identity: 'crashed@example.com', sessionId: `ses_crash${tag}`, createdAt: Date.now(), expiresAt: Date.now() + 600_000 });
    await adminQuery(`CREATE ROLE "${role}" LOGIN VALID UNTIL '${new Date(Date.now() + 600_000).toISOString()}' IN ROLE ${READ}`);
    await tb.close();
    assert.ok((await leftover()).includes(role), 'still there while no broker runs');
    tb = await startIdentityBroker({ targets: { staging: target() }, dir });
    assert.ok(!(await leftover()).includes(role), 'dropped at start');
    const rec = (await tb.broker.core.store.listDbRoles({ target: 'staging' })).find((r) => r.role === role);
    assert.ok(rec?.droppedAt !== undefined);
  });
});
