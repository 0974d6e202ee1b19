/**
 * The broker's catalog learns of a function after its CREATE commits and a reload ran. A function
 * that shadows a built-in (or replaces a user one) must not run unread in between: called at
 * once after its CREATE, in the same message, inside the transaction that created it, or from
 * another session. Each probe's body copies its argument into an unclassified column; no seeded
 * PII value may reach the client. (Round 5's probe of the same function waited 0.5 s first, and
 * leaked when the machine was busy and the reload took longer.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { adminQuery } from './harness.js';
import { leaks as leaksOf } from './capture-proxy.js';
import { captureTarget, psqlThrough, type CapturedTarget, type MaskingCorpus } from './masking-fixture.js';

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/postgres-masking.yaml'), 'utf8')) as MaskingCorpus;

const STORE = (name: string, type: string): string =>
  `CREATE OR REPLACE FUNCTION public.${name}(t ${type}) RETURNS text LANGUAGE sql VOLATILE AS $$ INSERT INTO orders (id, status) VALUES (700 + length(t), t) RETURNING 'x' $$`;

describe('functions the catalog has not seen yet (PostgreSQL)', () => {
  let t: CapturedTarget;

  before(async () => {
    t = await captureTarget('postgres', 'zzcatlag', corpus);
    // A harmless user function the catalog knows from the start, replaced by a probe below.
    await adminQuery("CREATE FUNCTION public.tidy(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT btrim(t) $$", [], t.db);
  });
  after(async () => {
    await t?.close();
  });

  const probe = async (name: string, sql: string[], cleanup: string[]): Promise<void> => {
    t.proxy.take();
    const r = await psqlThrough(t, sql);
    // Read what the function stored, through the gateway as the same identity, then tidy up.
    const readBack = await psqlThrough(t, ['SELECT id, status FROM orders WHERE id >= 700', ...cleanup]);
    const found = leaksOf(corpus.pii, t.proxy.take());
    await adminQuery('DELETE FROM orders WHERE id >= 700', [], t.db);
    assert.deepEqual(found, [], `${name}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}\n${readBack.stdout}\n${readBack.stderr}`);
  };

  test('called at once after its CREATE, in the next message', async () => {
    await probe('next message', [STORE('lower', 'varchar'), 'SELECT lower(full_name::varchar) AS x FROM users WHERE id = 1'], ['DROP FUNCTION public.lower(varchar)']);
  });

  test('called in the same message as its CREATE', async () => {
    await probe('same message', [`${STORE('lower', 'varchar')}; SELECT lower(full_name::varchar) AS x FROM users WHERE id = 1`], ['DROP FUNCTION public.lower(varchar)']);
  });

  test('called inside the transaction that created it (the catalog cannot see it before COMMIT)', async () => {
    await probe('in transaction', ['BEGIN', STORE('upper', 'varchar'), 'SELECT upper(address::varchar) AS x FROM users WHERE id = 2', 'COMMIT'], ['DROP FUNCTION IF EXISTS public.upper(varchar)']);
  });

  test('a user function the catalog knows, replaced with a body that stores its argument, then called', async () => {
    await probe('replaced', [STORE('tidy', 'text'), 'SELECT tidy(full_name) AS x FROM users WHERE id = 1'], [`CREATE OR REPLACE FUNCTION public.tidy(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT btrim(t) $$`]);
  });

  test('created by one session, called at once by another', async () => {
    t.proxy.take();
    // The CREATE goes through the gateway on its own connection; the call follows on another.
    const created = await psqlThrough(t, [STORE('lower', 'varchar')]);
    assert.equal(created.code, 0, created.stderr);
    const r = await psqlThrough(t, ['SELECT lower(full_name::varchar) AS x FROM users WHERE id = 1', 'SELECT id, status FROM orders WHERE id >= 700', 'DROP FUNCTION public.lower(varchar)']);
    const found = leaksOf(corpus.pii, t.proxy.take());
    await adminQuery('DELETE FROM orders WHERE id >= 700', [], t.db);
    assert.deepEqual(found, [], `another session: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
  });

  test('an operator created moments ago, over a function that stores its argument, used at once', async () => {
    await probe(
      'operator',
      [
        "CREATE FUNCTION public.zcat(a varchar, b varchar) RETURNS varchar LANGUAGE sql VOLATILE AS $$ INSERT INTO orders (id, status) VALUES (700 + length(a), a) RETURNING a || b $$",
        'CREATE OPERATOR public.|| (leftarg = varchar, rightarg = varchar, function = public.zcat)',
        "SELECT full_name::varchar || 'x'::varchar AS x FROM users WHERE id = 1",
      ],
      ['DROP OPERATOR public.||(varchar, varchar)', 'DROP FUNCTION public.zcat(varchar, varchar)'],
    );
  });

  test('a view the catalog knows, replaced to add a classified column, read at once by another session', async () => {
    await adminQuery('CREATE VIEW public.plans AS SELECT id, plan FROM users', [], t.db);
    try {
      // Let the catalog's periodic or next reload see the first definition.
      await psqlThrough(t, ['CREATE TEMP TABLE zz_nudge (a int)', 'SELECT pg_sleep(0.3)']);
      t.proxy.take();
      const replaced = await psqlThrough(t, ['CREATE OR REPLACE VIEW public.plans AS SELECT id, plan, full_name AS who FROM users']);
      assert.equal(replaced.code, 0, replaced.stderr);
      const r = await psqlThrough(t, ['SELECT * FROM plans ORDER BY id', 'SELECT who FROM plans ORDER BY id']);
      const found = leaksOf(corpus.pii, t.proxy.take());
      assert.deepEqual(found, [], `replaced view: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
    } finally {
      await adminQuery('DROP VIEW IF EXISTS public.plans', [], t.db);
    }
  });

  test('a view the catalog knows, replaced so that a column of the same name and type carries a classified one, read at once by another session', async () => {
    await adminQuery('CREATE VIEW public.plans2 AS SELECT id, plan FROM users', [], t.db);
    try {
      await psqlThrough(t, ['CREATE TEMP TABLE zz_nudge (a int)', 'SELECT pg_sleep(0.3)']);
      t.proxy.take();
      const replaced = await psqlThrough(t, ['CREATE OR REPLACE VIEW public.plans2 AS SELECT id, full_name AS plan FROM users']);
      assert.equal(replaced.code, 0, replaced.stderr);
      const r = await psqlThrough(t, ['SELECT * FROM plans2 ORDER BY id', 'SELECT plan FROM plans2 ORDER BY id']);
      const found = leaksOf(corpus.pii, t.proxy.take());
      assert.deepEqual(found, [], `replaced view: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
    } finally {
      await adminQuery('DROP VIEW IF EXISTS public.plans2', [], t.db);
    }
  });

  test('a table created in a schema first on the path shadows users: the copy into it is judged as one into the new table', async () => {
    t.proxy.take();
    const r = await psqlThrough(t, [
      'CREATE SCHEMA IF NOT EXISTS zzlag',
      'SET search_path = zzlag, public',
      'CREATE TABLE users (LIKE public.users)',
      'INSERT INTO users SELECT * FROM public.users',
      // By now the catalog has the new table: read as it is, its rows hold whatever was copied.
      'SELECT pg_sleep(0.5)',
      'SELECT * FROM users',
      'DROP SCHEMA zzlag CASCADE',
    ]);
    const found = leaksOf(corpus.pii, t.proxy.take());
    assert.deepEqual(found, [], `shadowing table: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /stores classified data/, r.stderr);
  });

  test(
    'the same shadowing table created and filled inside one transaction: refused until COMMIT',
    async () => {
      t.proxy.take();
      const r = await psqlThrough(t, [
        'CREATE SCHEMA IF NOT EXISTS zzlag2',
        'BEGIN',
        'SET LOCAL search_path = zzlag2, public',
        'CREATE TABLE users (LIKE public.users)',
        'INSERT INTO users SELECT * FROM public.users',
        'COMMIT',
        'SELECT pg_sleep(0.5)',
        'SELECT * FROM zzlag2.users',
        'DROP SCHEMA zzlag2 CASCADE',
      ]);
      const found = leaksOf(corpus.pii, t.proxy.take());
      assert.deepEqual(found, [], `shadowing table in a transaction: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /created or renamed in this transaction/, r.stderr);
    },
  );

  test('control: a new table (no older one of its name) created and filled in one transaction still works', async () => {
    const r = await psqlThrough(t, ['BEGIN', 'CREATE TABLE zz_fresh (id int, note text)', "INSERT INTO zz_fresh VALUES (1, 'x')", 'SELECT * FROM zz_fresh', 'COMMIT', 'DROP TABLE zz_fresh']);
    assert.match(r.stdout, /\(1 row\)/, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /blocked/, r.stderr);
  });

  test('control: once the catalog has read it, a function created in the session runs on unclassified data', async () => {
    const r = await psqlThrough(t, [STORE('lower', 'varchar'), 'SELECT pg_sleep(0.2)', 'SELECT lower(status::varchar) AS x FROM orders ORDER BY id LIMIT 1', 'DROP FUNCTION public.lower(varchar)']);
    await adminQuery('DELETE FROM orders WHERE id >= 700', [], t.db);
    assert.match(r.stdout, /\(1 row\)/, `${r.stdout}\n${r.stderr}`);
  });
});
