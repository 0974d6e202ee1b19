/**
 * The compiled CLI as a user and CI run it: `node bin/run.js …` in a child process with no TTY.
 * Needs `npm run build` first (npm test does it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deadBrokerUrl, repoRoot, startFakeBroker, tempHome, type FakeBroker } from './helpers.js';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function dbgov(args: string[], env: Record<string, string>): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'run.js'), ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: env.DBGOV_HOME ?? '', DBGOV_LOG_LEVEL: 'silent', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('compiled CLI in a subprocess (fake broker)', () => {
  let broker: FakeBroker;
  let home: Awaited<ReturnType<typeof tempHome>>;
  before(async () => {
    home = await tempHome();
    broker = await startFakeBroker({
      'GET /v1/audit/export': () => ({ raw: '', contentType: 'application/x-ndjson' }),
      'GET /v1/whoami': (req) =>
        req.headers.authorization === 'Bearer sa'
          ? { body: { identity: { id: 'ci-bot', kind: 'workload', groups: ['ci'], source: 'service-account' }, expiresAt: null } }
          : req.headers.authorization === 'Bearer garbage'
            ? { raw: 'not json', contentType: 'application/json' }
            : { status: 401, body: { error: { code: 'invalid_token', message: 'the broker does not accept this token', actions: [] } } },
    });
  });
  after(async () => {
    await broker.close();
    await home.cleanup();
  });

  it('whoami --json with DBGOV_TOKEN: exit 0 and exactly one envelope on stdout', async () => {
    const r = await dbgov(['whoami', '--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'sa', DBGOV_HOME: home.dir });
    assert.equal(r.code, 0, r.stderr);
    const env = JSON.parse(r.stdout);
    assert.equal(env.status, 0);
    assert.equal(env.result.identity.id, 'ci-bot');
    assert.deepEqual(env.warnings, []);
  });

  it('broker down: exit 5, error envelope on stdout, nothing else', async () => {
    const r = await dbgov(['whoami', '--json'], { DBGOV_BROKER: await deadBrokerUrl(), DBGOV_TOKEN: 'sa', DBGOV_HOME: home.dir });
    assert.equal(r.code, 5);
    const env = JSON.parse(r.stdout);
    assert.equal(env.status, 5);
    assert.match(env.message, /^dbgov: cannot reach the broker at http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(r.stderr, '');
  });

  it('a rejected token without --json: exit 3, the message and the next step on stderr', async () => {
    const r = await dbgov(['whoami'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'nope', DBGOV_HOME: home.dir });
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /✖ the broker does not accept this token/);
    assert.match(r.stderr, /→ check DBGOV_TOKEN/);
    assert.doesNotMatch(r.stderr, /\x1b\[/, 'no colour codes without a TTY');
  });

  it('deny without --reason and without a TTY exits 2 at once instead of waiting for input', async () => {
    const r = await dbgov(['deny', 'ABC123'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'sa', DBGOV_HOME: home.dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pass --reason/);
  });

  it('a parse error with --json is still one envelope with status 2', async () => {
    const r = await dbgov(['audit', 'search', '--since', 'yesterday', '--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'sa', DBGOV_HOME: home.dir });
    assert.equal(r.code, 2);
    const env = JSON.parse(r.stdout);
    assert.equal(env.status, 2);
    assert.equal(env.message, '--since: "yesterday" is not a time dbgov understands');
    assert.match(env.actions[0], /30d/);
  });

  // What oclif handles before (or instead of) a command's own parse: each must still be exactly
  // one envelope on stdout with --json, exit 2, and say what was wrong and what to type instead.
  const usageCases: { name: string; args: string[]; message: RegExp; action?: RegExp }[] = [
    { name: 'an unknown command', args: ['nosuch', '--json'], message: /no command "nosuch"/, action: /dbgov --help/ },
    { name: 'a mistyped command, with the closest one', args: ['whoam', '--json'], message: /no command "whoam"/, action: /dbgov whoami/ },
    { name: 'flags and no command', args: ['--json'], message: /needs a command/ },
    { name: 'a topic instead of a command', args: ['audit', '--json'], message: /group of commands/, action: /dbgov audit verify --json/ },
    { name: 'a missing argument names it', args: ['approve', '--json'], message: /missing required argument ID/ },
    { name: 'exclusive flags say which', args: ['exec', 'prod', '--sql', 'select 1', '--file', 'x.sql', '--json'], message: /--file=x\.sql cannot also be provided when using --sql/ },
  ];
  for (const c of usageCases) {
    it(`--json usage error, ${c.name}: one envelope, exit 2`, async () => {
      const r = await dbgov(c.args, { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'sa', DBGOV_HOME: home.dir });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(r.stderr, '');
      const env = JSON.parse(r.stdout);
      assert.deepEqual(Object.keys(env), ['status', 'name', 'message', 'actions']);
      assert.equal(env.status, 2);
      assert.match(env.message, c.message);
      if (c.action) assert.ok(env.actions.some((a: string) => c.action!.test(a)), JSON.stringify(env.actions));
    });
  }

  it('an internal fault at the default log level: the generic message, no stack trace; DBGOV_LOG_LEVEL=debug shows it', async () => {
    const env = { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'garbage', DBGOV_HOME: home.dir };
    const r = await dbgov(['whoami'], { ...env, DBGOV_LOG_LEVEL: 'warn' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /✖ dbgov hit an unexpected internal error\n {2}→ run the command again with DBGOV_LOG_LEVEL=debug/);
    assert.doesNotMatch(r.stderr, /SyntaxError|stack|\bat .*\.js:\d+/);
    const debug = await dbgov(['whoami'], { ...env, DBGOV_LOG_LEVEL: 'debug' });
    assert.match(debug.stderr, /SyntaxError/);
  });

  it('broker start with a store folder it cannot create: exit 6 naming the file, the line of broker.store and the fix', async () => {
    const file = join(home.dir, 'not-a-folder');
    await writeFile(file, 'x');
    const config = join(home.dir, 'store-under-a-file.yaml');
    await writeFile(config, `broker:\n  api: 127.0.0.1:0\n  gateway: 127.0.0.1:0\n  store: ${file}/data\ntargets:\n  t: { engine: postgres, host: 127.0.0.1, database: x, user: x }\n`);
    const r = await dbgov(['broker', 'start', '--config', config, '--json'], { DBGOV_HOME: home.dir });
    assert.equal(r.code, 6, r.stdout + r.stderr);
    const env = JSON.parse(r.stdout);
    assert.equal(env.name, 'ConfigError');
    assert.equal(env.message, `${config}:4: cannot use ${file}/data as the store folder (ENOTDIR)`);
    assert.match(env.actions[0], /set broker\.store/);
  });

  it('broker start with a store folder the kernel refuses (under /proc): a clear error at once, not a hang', { timeout: 30_000 }, async () => {
    const config = join(home.dir, 'store-under-proc.yaml');
    await writeFile(config, `broker:\n  api: 127.0.0.1:0\n  gateway: 127.0.0.1:0\n  store: /proc/dbgov-test-store/data\ntargets:\n  t: { engine: postgres, host: 127.0.0.1, database: x, user: x }\n`);
    const r = await dbgov(['broker', 'start', '--config', config, '--json'], { DBGOV_HOME: home.dir });
    assert.equal(r.code, 6, r.stdout + r.stderr);
    const env = JSON.parse(r.stdout);
    assert.equal(env.message, `${config}:4: cannot use /proc/dbgov-test-store/data as the store folder (ENOENT)`);
  });

  it('an --out path that cannot be written: exit 2 naming the path and why, not an internal error', async () => {
    const r = await dbgov(['audit', 'export', '--out', join(home.dir, 'no-such-folder', 'audit.jsonl'), '--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'sa', DBGOV_HOME: home.dir });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const env = JSON.parse(r.stdout);
    assert.equal(env.message, `cannot use ${join(home.dir, 'no-such-folder', 'audit.jsonl')}: no such file or folder (ENOENT)`);
  });

  it('policy lint and explain are offline: the example config checks without its secrets, which are named in warnings', async () => {
    const lint = await dbgov(['policy', 'lint', '--config', join(repoRoot, 'examples', 'dbgov.yaml'), '--json'], { DBGOV_HOME: home.dir });
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
    const env = JSON.parse(lint.stdout);
    assert.equal(env.status, 0);
    assert.match(env.warnings.join('\n'), /placeholders.*CI_BOT_TOKEN.*PROD_DB_PASSWORD/);
    const explain = await dbgov(['policy', 'explain', 'prod', '--config', join(repoRoot, 'examples', 'dbgov.yaml'), '--sql', 'DELETE FROM users', '--json'], { DBGOV_HOME: home.dir });
    assert.equal(explain.code, 0, explain.stdout + explain.stderr);
    assert.equal(JSON.parse(explain.stdout).result.decision.rule, 'block-unbounded-write');
  });

  it('`dbgov help audit search` shows that command\'s help, as `--help` does; help for a typo suggests the command', async () => {
    const r = await dbgov(['help', 'audit', 'search'], { DBGOV_HOME: home.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Search the audit log/);
    const typo = await dbgov(['help', 'audit', 'serch'], { DBGOV_HOME: home.dir });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /no command "audit serch"\n {2}→ did you mean `dbgov audit search`/);
  });

  it('an unknown command without --json: the message and the next step on stderr, exit 2', async () => {
    const r = await dbgov(['audit', 'serch'], { DBGOV_HOME: home.dir });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /✖ dbgov has no command "audit serch"\n {2}→ did you mean `dbgov audit search`\?/);
  });
});
