import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { UpstreamEndpoint } from '../../../src/gateway/engine.js';
import { ADMIN, clientFor, createDatabase, dropDatabase, startGateway, withClient } from './harness.js';

let db: string;
const suffix = randomBytes(4).toString('hex');
const scramUser = `dbgov_t_scram_${suffix}`;
const md5User = `dbgov_t_md5_${suffix}`;

before(async () => {
  db = await createDatabase();
  await withClient(new pg.Client(ADMIN), async (c) => {
    await c.query(`SET password_encryption = 'scram-sha-256'`);
    await c.query(`CREATE ROLE ${scramUser} LOGIN PASSWORD 'scram-pw' IN ROLE dbgov_scram`);
    await c.query(`SET password_encryption = 'md5'`);
    await c.query(`CREATE ROLE ${md5User} LOGIN PASSWORD 'md5-pw' IN ROLE dbgov_md5`);
  });
});
after(async () => {
  await dropDatabase(db);
  await withClient(new pg.Client(ADMIN), async (c) => {
    await c.query(`DROP ROLE IF EXISTS ${scramUser}`);
    await c.query(`DROP ROLE IF EXISTS ${md5User}`);
  });
});

const cases: { name: string; upstream: () => Partial<UpstreamEndpoint>; user?: () => string; sqlstate?: string; message?: RegExp }[] = [
  { name: 'trust', upstream: () => ({}) },
  { name: 'scram-sha-256', upstream: () => ({ user: scramUser, password: 'scram-pw' }), user: () => scramUser },
  { name: 'md5', upstream: () => ({ user: md5User, password: 'md5-pw' }), user: () => md5User },
  { name: 'TLS require', upstream: () => ({ tls: { mode: 'require' } }) },
  { name: 'TLS require with scram', upstream: () => ({ user: scramUser, password: 'scram-pw', tls: { mode: 'require' } }), user: () => scramUser },
  { name: 'scram, wrong password', upstream: () => ({ user: scramUser, password: 'nope' }), sqlstate: '28P01', message: /^dbgov: upstream authentication failed for user "dbgov_t_scram_/ },
  { name: 'md5, wrong password', upstream: () => ({ user: md5User, password: 'nope' }), sqlstate: '28P01', message: /^dbgov: upstream authentication failed/ },
  { name: 'scram, no password configured', upstream: () => ({ user: scramUser }), sqlstate: '28P01', message: /^dbgov: upstream asks for a password/ },
  { name: 'TLS verify-full against an unknown CA', upstream: () => ({ tls: { mode: 'verify-full', servername: 'localhost' } }), sqlstate: '08006', message: /^dbgov: upstream 127\.0\.0\.1:5432 could not be reached/ },
  { name: 'upstream down', upstream: () => ({ port: 1 }), sqlstate: '08006', message: /^dbgov: upstream 127\.0\.0\.1:1 refused the connection/ },
  { name: 'upstream database missing', upstream: () => ({ database: 'dbgov_no_such_db' }), sqlstate: '3D000', message: /^dbgov: upstream refused the session/ },
];

for (const k of cases) {
  test(`upstream ${k.name}`, async () => {
    const gw = await startGateway({ database: db, upstream: k.upstream() });
    try {
      const c = clientFor(gw, db);
      if (k.sqlstate === undefined) {
        await withClient(c, async () => {
          const r = await c.query('SELECT current_user AS u, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl');
          assert.equal(r.rows[0].u, k.user?.() ?? 'postgres');
          assert.equal(r.rows[0].ssl, k.name.includes('TLS'));
        });
      } else {
        const e = await c.connect().then(
          () => assert.fail('expected the connection to fail'),
          (err: unknown) => err as pg.DatabaseError,
        );
        assert.equal(e.code, k.sqlstate);
        assert.match(e.message, k.message!);
        assert.ok((e.hint ?? '').length > 0, 'a hint says what to do');
      }
    } finally {
      await gw.close();
    }
  });
}
