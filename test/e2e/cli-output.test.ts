/**
 * What `dbgov exec` and `dbgov connect --exec` print, as CI reads it: the real CLI in a
 * subprocess, a real broker and PostgreSQL. Byte-exact, because scripts parse these outputs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, createTestDatabase, pgTarget, run, type TestDatabase } from './harness.js';
import { cli, cliHome, envelope, startIdentityBroker, type IdentityBroker } from './identity-harness.js';

describe('dbgov exec / connect --exec output (subprocess, real broker)', () => {
  let db: TestDatabase;
  let tb: IdentityBroker;
  let home: ReturnType<typeof cliHome>;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    db = await createTestDatabase('cliout', `create table t (id int primary key, note text, at timestamptz, raw bytea);
      insert into t values (1, 'a,b "q"' || chr(10) || 'next', '2026-01-02T03:04:05Z', '\\x0102'), (2, null, null, null), (3, 'héllo ✓ 日本', null, null);`);
    tb = await startIdentityBroker({ targets: { prod: pgTarget(db.name, { env: 'staging' }) } });
    home = cliHome();
    env = { DBGOV_HOME: home.home, DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: SA_TOKENS.ci };
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
    home?.remove();
  });

  test('--csv is RFC 4180: CRLF records (no blank lines), quoted commas/quotes/newlines, empty NULL, ISO time, \\x bytes; result sets split by one empty line', async () => {
    const r = await cli(['exec', 'prod', '--sql', 'select id, note, at, raw from t order by id; select 42 as n', '--csv'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      ['id,note,at,raw', '1,"a,b ""q""\nnext",2026-01-02T03:04:05.000Z,\\x0102', '2,,,', '3,héllo ✓ 日本,,', '', 'n', '42', ''].join('\r\n'),
    );
  });

  test('--json: bytes are \\x hex text, NULL is null; --csv with --json is refused', async () => {
    const r = await cli(['exec', 'prod', '--sql', 'select raw, note from t where id = 1 or id = 2 order by id', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(envelope<{ statements: { rows: unknown[] }[] }>(r).result?.statements[0].rows, [
      { raw: '\\x0102', note: 'a,b "q"\nnext' },
      { raw: null, note: null },
    ]);
    const dup = await cli(['exec', 'prod', '--sql', 'select 1 as a, 2 as a', '--json'], env);
    assert.deepEqual(envelope<{ statements: { fields: string[]; rows: unknown[] }[] }>(dup).result?.statements[0], { command: 'SELECT', rowCount: 1, fields: ['a', 'a_2'], rows: [{ a: 1, a_2: 2 }] });
    const dbErr = await cli(['exec', 'prod', '--sql', 'select * from nosuch', '--json'], env);
    assert.equal(dbErr.code, 8);
    assert.deepEqual({ ...envelope(dbErr), actions: [] }, { status: 8, name: 'UpstreamError', message: 'relation "nosuch" does not exist', actions: [] });
    const both = await cli(['exec', 'prod', '--sql', 'select 1', '--json', '--csv'], env);
    assert.equal(both.code, 2);
    assert.equal(envelope(both).status, 2);
  });

  test('--file - reads the SQL from stdin; an empty file says so, with the three ways to give SQL', async () => {
    const piped = await run(process.execPath, ['bin/run.js', 'exec', 'prod', '--file', '-', '--csv'], { env: { DBGOV_LOG_LEVEL: 'silent', ...env }, input: 'select id from t where id = 2' });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'id\r\n2\r\n');
    const empty = await cli(['exec', 'prod', '--file', '/dev/null', '--json'], env);
    assert.equal(empty.code, 2);
    assert.equal(envelope(empty).message, '/dev/null holds no SQL');
    assert.match(envelope(empty).actions?.[0] ?? '', /--file - \(stdin\)/);
  });

  test('the table ends its rows before the row count', async () => {
    const r = await cli(['exec', 'prod', '--sql', 'select id from t where id = 2'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'id\n2\n(1 row)\n');
  });

  test('connect --exec --json: the command output goes to stderr, and its exit code is the envelope status and the exit code', async () => {
    const failed = await cli(['connect', 'prod', '--json', '--exec', '--', 'sh', '-c', 'echo from-the-command; exit 3'], env);
    assert.equal(failed.code, 3, failed.stderr);
    const e = envelope(failed);
    assert.equal(e.status, 3);
    assert.equal(e.name, 'CommandFailedError');
    assert.match(e.message ?? '', /sh exited with code 3/);
    assert.match(failed.stderr, /from-the-command/);

    const ok = await cli(['connect', 'prod', '--json', '--exec', '--', 'psql', '-Atc', 'select count(*) from t'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(envelope<{ exitCode: number }>(ok).result?.exitCode, 0);
    assert.match(ok.stderr, /^3$/m);

    const killed = await cli(['connect', 'prod', '--exec', '--', 'sh', '-c', 'kill -TERM $$'], env);
    assert.equal(killed.code, 143, 'killed by SIGTERM: 128 + 15, as a shell reports it');
  });
});
