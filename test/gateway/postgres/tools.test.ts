import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createDatabase, directClient, dropDatabase, startGateway, withClient, type Gateway } from './harness.js';

let db: string;
let gw: Gateway;
before(async () => {
  db = await createDatabase();
  await withClient(directClient(db), async (c) => {
    await c.query(`CREATE TABLE people (id int primary key, email text, note text)`);
    await c.query(`INSERT INTO people SELECT g, 'user' || g || '@example.com', 'n' || g FROM generate_series(1, 5) g`);
  });
  gw = await startGateway({ database: db, maskColumn: 'email' });
});
after(async () => {
  await gw.close();
  await dropDatabase(db);
});

function run(cmd: string, args: string[], input?: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, PGSSLMODE: 'prefer', PGGSSENCMODE: 'prefer', PGCONNECT_TIMEOUT: '5' }, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}

const psql = (args: string[], input?: string) => run('psql', ['-h', '127.0.0.1', '-p', String(gw.port), '-U', 'dev', '-d', db, '-X', '-v', 'ON_ERROR_STOP=1', ...args], input);
const pgbench = (args: string[]) => run('pgbench', ['-h', '127.0.0.1', '-p', String(gw.port), '-U', 'dev', ...args, db], undefined, 120_000);

describe('psql', () => {
  const cases: { args: string[]; input?: string; stdout: RegExp }[] = [
    { args: ['-Atc', 'SELECT 40 + 2'], stdout: /^42\n$/ },
    { args: ['-c', '\\d people'], stdout: /Table "public\.people"[\s\S]*email/ },
    { args: ['-c', '\\dt+'], stdout: /people \| table/ },
    { args: ['-Atc', 'SELECT id, email FROM people WHERE id = 1'], stdout: /^1\|MASKED\n$/ },
    { args: ['-c', 'COPY people TO STDOUT'], stdout: /^1\tMASKED\tn1\n[\s\S]*5\tMASKED\tn5\n-- end\n$/ },
    { args: ['-c', 'COPY (SELECT 1 AS a, 2 AS b) TO STDOUT (FORMAT csv)'], stdout: /^1,2\n-- end\n$/ },
    { args: ['-c', 'COPY people (id, note) FROM STDIN'], input: '6\tsix\n7\tseven\n\\.\n', stdout: /^COPY 2\n$/ },
    { args: ['-Atc', 'SELECT note FROM people WHERE id = 7'], stdout: /^seven\n$/ },
  ];
  for (const k of cases) {
    test(`psql ${k.args.join(' ')}`, async () => {
      const r = await psql(k.args, k.input);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, k.stdout);
    });
  }

  test('COPY TO reports the format to describeCopy', () => {
    assert.deepEqual(
      gw.calls.describeCopy.map((c) => [c.format, c.columnCount]),
      [
        ['text', 3],
        ['csv', 2],
      ],
    );
  });
});

describe('pgbench', () => {
  test('init, then select-only and TPC-B with 8 clients, simple and extended', async () => {
    const init = await pgbench(['-i', '-s', '1', '-q']);
    assert.equal(init.code, 0, init.stderr);
    const runs = [
      ['-S', '-M', 'simple'],
      ['-S', '-M', 'extended'],
      ['-S', '-M', 'prepared'],
      ['-M', 'extended'],
    ];
    for (const mode of runs) {
      const executingBefore = gw.calls.executing.length;
      const completedBefore = gw.calls.completed.length;
      const r = await pgbench([...mode, '-c', '8', '-j', '2', '-t', mode[0] === '-S' ? '100' : '20', '-n']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /number of failed transactions: 0/);
      const count = (ids: string[]) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());
      const executing = count(gw.calls.executing.slice(executingBefore));
      const completed = gw.calls.completed.slice(completedBefore);
      assert.deepEqual(count(completed.map((c) => c.id)), executing, `${mode.join(' ')}: one completed per executing`);
      assert.ok(completed.every((c) => c.outcome.error === undefined), 'no statement failed');
      const statements = [...executing.values()].reduce((a, b) => a + b, 0);
      assert.ok(statements >= (mode[0] === '-S' ? 800 : 160 * 7), `${mode.join(' ')}: ${statements} statements`);
    }
  });
});
