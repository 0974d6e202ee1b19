/**
 * Writes hidden in function bodies are judged like the writes they are. LANGUAGE sql bodies are
 * analysed with the call; other functions that may write (VOLATILE, procedures) are opaque and
 * fail closed on protected targets; STABLE/IMMUTABLE functions cannot write and pass.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, adminQuery, createTestDatabase, pgTarget, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import type { Connection } from '../../src/cli/connect.js';

describe('function bodies', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let write: Connection;
  let read: Connection;
  before(async () => {
    db = await createTestDatabase(
      'fn',
      `CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 5) g;
       CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS $$ DELETE FROM t $$;
       CREATE FUNCTION wipe_one(i int) RETURNS void LANGUAGE sql AS $$ DELETE FROM t WHERE id = i $$;
       CREATE FUNCTION outer_wipe() RETURNS void LANGUAGE sql AS $$ SELECT wipe() $$;
       CREATE PROCEDURE proc_wipe() LANGUAGE sql AS $$ DELETE FROM t $$;
       CREATE FUNCTION pl_wipe() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; END $$;
       CREATE FUNCTION pl_count() RETURNS bigint LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN (SELECT count(*) FROM t); END $$;
       CREATE FUNCTION add_row(i int) RETURNS void LANGUAGE sql AS $$ INSERT INTO t VALUES (i, i) $$;`,
    );
    tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'prod' }) }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    write = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
    read = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'read' });
  });
  after(async () => {
    await write?.close();
    await read?.close();
    await tb?.close();
    await db?.drop();
  });

  const rows = async (): Promise<number> => (await adminQuery<{ n: number }>('select count(*)::int as n from t', [], db.name)).rows[0].n;

  const cases: { name: string; conn: () => Connection; sql: string; rule?: RegExp; allowed?: boolean }[] = [
    { name: 'a SQL function hiding DELETE without WHERE', conn: () => write, sql: 'select wipe()', rule: /block-unbounded-write/ },
    { name: 'the same, called from another SQL function', conn: () => write, sql: 'select outer_wipe()', rule: /block-unbounded-write/ },
    { name: 'a SQL procedure hiding DELETE without WHERE', conn: () => write, sql: 'call proc_wipe()', rule: /block-unbounded-write/ },
    { name: 'a PL/pgSQL function that may write (opaque on prod)', conn: () => write, sql: 'select pl_wipe()', rule: /fail-closed-opaque/ },
    { name: 'a write through a function with a read credential', conn: () => read, sql: 'select add_row(99)', rule: /read-only-credential/ },
    { name: 'a function created moments ago, in the same message', conn: () => write, sql: 'create function fresh() returns void language sql as $$ delete from t $$; select fresh()', rule: /code-needs-admin-access|fail-closed-opaque|block-unbounded-write/ },
    { name: 'a bounded delete through a SQL function is allowed', conn: () => write, sql: 'select wipe_one(5)', allowed: true },
    { name: 'a STABLE function cannot write and is allowed, also for a read credential', conn: () => read, sql: 'select pl_count()', allowed: true },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const before = await rows();
      const client = await tunnelClient(c.conn());
      try {
        const outcome = await client.query(c.sql).then(
          () => 'ran',
          (e: { code?: string; message?: string; detail?: string }) => `${e.code} ${e.message} ${e.detail ?? ''}`,
        );
        if (c.allowed) assert.equal(outcome, 'ran');
        else {
          assert.match(outcome, /^42501 dbgov: blocked/);
          if (c.rule) assert.match(outcome, c.rule);
          assert.equal(await rows(), before, 'nothing changed');
        }
      } finally {
        await client.end();
      }
    });
  }

  test('the audit names the tables the function body touched', async () => {
    const ev = (await tb.events((e) => e.kind === 'statement' && e.statement?.text === 'select wipe()')).at(-1);
    assert.ok(ev?.statement?.tables.includes('public.t'), JSON.stringify(ev?.statement));
    assert.doesNotMatch(ev?.statement?.text ?? '', /DELETE/i, 'the text is what the client sent');
  });
});
