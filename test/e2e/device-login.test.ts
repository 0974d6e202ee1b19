/**
 * The device login as a user does it: the real CLI process (`dbgov login --no-browser`) against
 * the broker and its built-in OIDC provider, the approval driven as a browser would (HTTP with
 * cookies), then whoami, a governed statement tied to that person, and logout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { approveDeviceLogin } from '../../src/demo/form-browser.js';
import { HUMANS, createTestDatabase, pgTarget, run, startTestBroker, type TestBroker, type TestDatabase } from './harness.js';

describe('device login through the CLI', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  const home = mkdtempSync(join(tmpdir(), 'dbgov-cli-home-'));
  let env: NodeJS.ProcessEnv;

  before(async () => {
    db = await createTestDatabase('login', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3);');
    tb = await startTestBroker({ targets: { staging: pgTarget(db.name, { env: 'staging' }) }, builtinIdp: true });
    env = { DBGOV_HOME: home, DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: '' };
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  test('dbgov login --no-browser: prints the URL and code, completes when the user approves', async () => {
    const alice = HUMANS[0];
    const child = spawn(process.execPath, ['bin/run.js', 'login', '--no-browser', '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${stderr}`)), 20_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /open (http\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    assert.match(stderr, /confirm the code/);
    const page = await approveDeviceLogin(url, alice.email, alice.password);
    assert.ok(page.status < 400, `approval page: ${page.status}`);
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    assert.equal(code, 0, stdout + stderr);
    const out = JSON.parse(stdout) as { status: number; result: { identity: { id: string; kind: string; groups: string[] } } };
    assert.equal(out.status, 0);
    assert.equal(out.result.identity.id, alice.email);
    assert.deepEqual(out.result.identity.groups, alice.groups);
    // Tokens are kept where only the user can read them.
    for (const f of readdirSync(home)) {
      const mode = statSync(join(home, f)).mode & 0o777;
      if (f.endsWith('.json')) assert.equal(mode, 0o600, `${f} is ${mode.toString(8)}`);
    }
  });

  test('whoami, targets and a governed statement act as the logged-in person', async () => {
    const who = await run(process.execPath, ['bin/run.js', 'whoami', '--json'], { env });
    assert.equal(who.code, 0, who.stderr);
    assert.equal((JSON.parse(who.stdout) as { result: { identity: { id: string } } }).result.identity.id, 'alice@example.com');
    const targets = await run(process.execPath, ['bin/run.js', 'targets', '--json'], { env });
    assert.equal(targets.code, 0, targets.stderr);
    assert.match(targets.stdout, /"staging"/);
    const exec = await run(process.execPath, ['bin/run.js', 'exec', 'staging', '--sql', 'select count(*) as n from t', '--json'], { env });
    assert.equal(exec.code, 0, exec.stderr);
    const res = JSON.parse(exec.stdout) as { result: { statements: { rows: { n: string }[] }[] } };
    assert.equal(res.result.statements[0].rows[0].n, '3');
    const events = await tb.events((e) => e.kind === 'statement' && e.identity?.id === 'alice@example.com');
    assert.ok(events.some((e) => e.statement?.text.includes('count(*)')));
    assert.ok(events.every((e) => e.identity?.kind === 'human'));
  });

  test('connect --exec runs a client through the tunnel and returns its exit code', async () => {
    const ok = await run(process.execPath, ['bin/run.js', 'connect', 'staging', '--exec', '--', 'psql', '-X', '-t', '-c', 'select sum(id) from t'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /\b6\b/);
    const fail = await run(process.execPath, ['bin/run.js', 'connect', 'staging', '--exec', '--', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'select * from missing_table'], { env });
    assert.equal(fail.code, 1, 'psql exit code passed through');
  });

  test('logout forgets the login; the next command says to log in (exit 3)', async () => {
    const out = await run(process.execPath, ['bin/run.js', 'logout', '--json'], { env });
    assert.equal(out.code, 0, out.stderr);
    const who = await run(process.execPath, ['bin/run.js', 'whoami', '--json'], { env });
    assert.equal(who.code, 3);
    assert.match(who.stdout, /dbgov login/);
  });
});
