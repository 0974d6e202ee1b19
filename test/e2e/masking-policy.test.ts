/**
 * Masking behaviours beyond the corpus, through the real gateway: the content safety net on
 * unclassified columns, `onUnprovable: block`, and blocking predicates on classified columns for
 * identities that may not see them (inference through WHERE).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, createTestDatabase, pgTarget, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';

describe('masking policies through the gateway', () => {
  let db: TestDatabase;
  const brokers: TestBroker[] = [];
  before(async () => {
    db = await createTestDatabase(
      'maskpol',
      `CREATE TABLE users (id int PRIMARY KEY, email text, ssn text);
       INSERT INTO users VALUES (1, 'ann@corp.example', '123-45-6789'), (2, 'ben@corp.example', '987-65-4320');
       CREATE TABLE tickets (id int, body text); INSERT INTO tickets VALUES (1, 'customer wrote from zed@mail.example about card 4111 1111 1111 1111');
       CREATE FUNCTION blackbox(t text) RETURNS text LANGUAGE sql AS $$ SELECT t $$;`,
    );
  });
  after(async () => {
    for (const b of brokers) await b.close();
    await db?.drop();
  });
  const start = async (masking: Record<string, unknown>): Promise<TestBroker> => {
    const tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'prod' }) }, masking: { key: '${env:T_MASK_KEY}', ...masking }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    brokers.push(tb);
    return tb;
  };

  test('the content safety net masks PII found in unclassified text columns', async () => {
    const tb = await start({ columns: { 'public.users.ssn': 'ssn' }, contentScan: { targets: ['prod'] } });
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod' });
    const c = await tunnelClient(conn);
    try {
      const body = (await c.query('select body from tickets')).rows[0].body as string;
      assert.doesNotMatch(body, /zed@mail\.example/);
      assert.doesNotMatch(body, /4111 1111 1111 1111/);
      assert.match(body, /customer wrote from/, 'the rest of the text is kept');
    } finally {
      await c.end();
      await conn.close();
    }
  });

  test('onUnprovable: block refuses a derived column whose lineage cannot be proven', async () => {
    const tb = await start({ columns: { 'public.users.email': 'email' }, onUnprovable: 'block' });
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod' });
    const c = await tunnelClient(conn);
    try {
      // A user-defined function hides lineage: the gateway cannot prove its output is safe.
      const r = await c.query('select blackbox(email) as x from users').then(
        (res) => res.rows.map((row) => row.x as string),
        (e: { message?: string }) => e.message,
      );
      assert.equal(typeof r, 'string', `refused, not returned: ${JSON.stringify(r)}`);
      assert.match(r as string, /^dbgov: blocked/);
      assert.equal((await c.query('select id from users order by id')).rows.length, 2, 'session still usable');
    } finally {
      await c.end();
      await conn.close();
    }
  });

  test('a predicate on a classified column is blocked for identities that may not see it', async () => {
    const tb = await start({ columns: { 'public.users.ssn': 'ssn' }, unmask: [{ groups: ['auditors'] }] });
    const dev = await tb.connect(SA_TOKENS.ci, { target: 'prod' });
    const auditor = await tb.connect(SA_TOKENS.auditor, { target: 'prod' });
    const c = await tunnelClient(dev);
    const a = await tunnelClient(auditor);
    try {
      await assert.rejects(c.query("select id from users where ssn like '1%'"), (e: { code?: string; message?: string; detail?: string }) => e.code === '42501' && /^dbgov: blocked/.test(e.message ?? '') && /masked-predicate/.test(e.detail ?? ''));
      const ok = await a.query("select id from users where ssn like '1%'");
      assert.deepEqual(ok.rows.map((r) => r.id), [1], 'an identity that may see ssn may filter on it');
    } finally {
      await c.end();
      await a.end();
      await dev.close();
      await auditor.close();
    }
  });
});

describe('who read classified columns in clear', () => {
  test('the audit records unmasked columns for an identity allowed to see them, and masked ones for the rest', async () => {
    const db = await createTestDatabase('unmask', "CREATE TABLE users (id int, email text); INSERT INTO users VALUES (1, 'ann@corp.example');");
    const tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'prod' }) }, masking: { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email' }, unmask: [{ groups: ['auditors'] }] }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    try {
      for (const token of [SA_TOKENS.auditor, SA_TOKENS.ci]) {
        const conn = await tb.connect(token, { target: 'prod' });
        const c = await tunnelClient(conn);
        await c.query('select id, email from users');
        await c.end();
        await conn.close();
      }
      const results = await tb.events((e) => e.kind === 'statement.result' && e.statement?.text.includes('email') === true);
      const auditor = results.find((e) => e.identity?.id === 'auditor-bot');
      const ci = results.find((e) => e.identity?.id === 'ci-bot');
      assert.deepEqual(auditor?.statement?.unmaskedColumns, ['public.users.email']);
      assert.deepEqual(auditor?.statement?.maskedColumns, []);
      assert.equal(ci?.statement?.unmaskedColumns, undefined);
      assert.equal(ci?.statement?.maskedColumns.length, 1);
    } finally {
      await tb.close();
      await db.drop();
    }
  });
});

describe('functions that read classified data', () => {
  test('a user-defined function returning a classified value does not unmask it', async () => {
    const db = await createTestDatabase(
      'udf',
      `CREATE TABLE users (id int, email text); INSERT INTO users VALUES (1, 'ann@corp.example');
       CREATE FUNCTION get_email(i int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT email FROM users WHERE id = i $$;
       CREATE FUNCTION all_users() RETURNS SETOF users LANGUAGE sql STABLE AS $$ SELECT * FROM users $$;
       CREATE VIEW v_emails AS SELECT get_email(id) AS e FROM users;`,
    );
    const tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'staging' }) }, masking: { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email' } }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    try {
      const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod' });
      const c = await tunnelClient(conn);
      for (const sql of ['select get_email(1) as x', 'select public.get_email(1) || \'\' as x', 'select (all_users()).email as x', 'select email as x from all_users()', 'select e as x from v_emails', "select x from (select get_email(1) as x) s"]) {
        const rows = (await c.query(sql)).rows as { x: string }[];
        for (const r of rows) assert.doesNotMatch(String(r.x), /ann@corp\.example/, sql);
      }
      await c.end();
      await conn.close();
    } finally {
      await tb.close();
      await db.drop();
    }
  });
});

describe('notices from statements dbgov cannot see into', () => {
  test('a DO block is refused for a masked identity; a read-only function cannot echo a value in a NOTICE', async () => {
    const db = await createTestDatabase(
      'donotice',
      "CREATE TABLE users (id int, email text); INSERT INTO users VALUES (1, 'ann@corp.example'); CREATE FUNCTION public.shout(t text) RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'found %', t; RETURN 1; END $$;",
    );
    const tb = await startTestBroker({ targets: { dev: pgTarget(db.name, { env: 'staging' }) }, masking: { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email' } }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'dev', access: 'write' });
    const c = await tunnelClient(conn);
    try {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(`${n.message ?? ''} ${(n as { detail?: string }).detail ?? ''}`));
      // Its data access cannot be followed (dynamic SQL inside): refused before it runs.
      await assert.rejects(
        c.query(`DO $$ DECLARE v text; BEGIN EXECUTE 'SELECT email FROM ' || 'users LIMIT 1' INTO v; RAISE NOTICE 'found %', v; END $$`),
        /dbgov: blocked: this statement runs code whose data access dbgov cannot follow/,
      );
      // A user function given a classified value may test it (raise, or not, by what it is): a
      // filter on the column, refused before it runs (src/sql/postgres/conditions.ts).
      await assert.rejects(c.query('SELECT shout(email) FROM users'), /dbgov: blocked: this statement filters on a column that is masked for you/);
      // A STABLE function cannot write, so given an unclassified value it runs.
      await c.query('SELECT shout(id::text) FROM users');
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(notices.length > 0, 'the notice arrived');
      for (const n of notices) assert.doesNotMatch(n, /ann@corp\.example/);
    } finally {
      await c.end().catch(() => undefined);
      await conn.close();
      await tb.close();
      await db.drop();
    }
  });
});

describe('values the planner keeps', () => {
  test('pg_stats and pg_statistic do not hand back sampled values of classified columns', async () => {
    const db = await createTestDatabase('stats', "CREATE TABLE users (id int, email text); INSERT INTO users SELECT g, 'user' || (g % 5) || '@corp.example' FROM generate_series(1, 500) g; ANALYZE users;");
    const tb = await startTestBroker({ targets: { dev: pgTarget(db.name, { env: 'staging' }) }, masking: { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': 'email' } }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    try {
      const conn = await tb.connect(SA_TOKENS.ci, { target: 'dev' });
      const c = await tunnelClient(conn);
      for (const sql of [
        "select most_common_vals::text as v from pg_stats where tablename = 'users' and attname = 'email'",
        "select * from pg_stats where tablename = 'users'",
        "select s.* from pg_statistic s join pg_class c on c.oid = s.starelid where c.relname = 'users'",
        "select stavalues1::text || '' as v from pg_statistic s join pg_class c on c.oid = s.starelid where c.relname = 'users'",
      ]) {
        const rows = JSON.stringify((await c.query(sql)).rows);
        assert.doesNotMatch(rows, /user\d@corp/, sql);
      }
      await c.end();
      await conn.close();
    } finally {
      await tb.close();
      await db.drop();
    }
  });
});
