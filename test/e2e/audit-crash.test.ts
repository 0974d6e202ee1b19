/**
 * The crash test: a real broker in a child process (`dbgov broker start --json`), eight clients
 * inserting rows with unique ids through a real tunnel, `kill -9` mid-load, a restart on the same
 * store folder. The database is the judge: each committed INSERT had its `statement` record
 * written before it was forwarded, so the log must hold at least as many records for that INSERT
 * as the table holds rows (and at most one more per client: the ones in flight at the kill).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { AuditEvent } from '../../src/audit/event.js';
import { ApiClient } from '../../src/cli/api-client.js';
import { connectTunnel } from '../../src/cli/connect.js';
import { SA_TOKENS, adminQuery, createTestDatabase, testClientKey } from './harness.js';
import { SA_ENV, cli, startChildBroker, type ChildBroker } from './audit-helpers.js';

const WORKERS = 8;
const KILL_AFTER = 400;

function stopChild(b: ChildBroker, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (b.child.exitCode !== null || b.child.signalCode !== null) return resolve();
    b.child.once('exit', () => resolve());
    b.child.kill(signal);
  });
}

test('kill -9 under load: every row the database committed has its statement record, and the restarted log verifies', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbgov-crash-e2e-'));
  const db = await createTestDatabase('auditcrash', 'CREATE TABLE crash_rows (id int PRIMARY KEY, worker int NOT NULL)');
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'audit-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(
    join(dir, 'dbgov.yaml'),
    [
      'broker:',
      '  id: crash',
      '  api: 127.0.0.1:0',
      '  gateway: 127.0.0.1:0',
      `  store: ${join(dir, 'store')}`,
      'identity:',
      '  serviceAccounts:',
      '    - { id: ci-bot, token: "${env:T_CI}", groups: [ci], kind: workload }',
      '    - { id: auditor-bot, token: "${env:T_AUDITOR}", groups: [auditors], kind: workload }',
      'targets:',
      `  prod: { engine: postgres, env: prod, host: 127.0.0.1, port: 5432, database: ${db.name}, user: postgres }`,
      'policy:',
      '  access: [{ name: everyone-may-write, action: allow }]',
      'audit:',
      '  signingKey: "${file:audit-key.pem}"',
      '  checkpointEvery: 500',
      '',
    ].join('\n'),
  );
  let broker: ChildBroker | undefined;
  try {
    broker = await startChildBroker(join(dir, 'dbgov.yaml'), SA_ENV);
    const conn = await connectTunnel(new ApiClient({ broker: broker.apiUrl, token: SA_TOKENS.ci }), { target: 'prod', access: 'write', reason: 'crash test' }, await testClientKey(), { pollMs: 100 });

    let nextId = 1;
    let acked = 0;
    let killed = false;
    const victim = broker;
    const worker = async (w: number) => {
      const c = new pg.Client({ host: '127.0.0.1', port: conn.tunnel.port, user: 'ci-bot', database: db.name });
      c.on('error', () => undefined);
      await c.connect();
      try {
        for (;;) {
          const id = nextId++;
          await c.query('INSERT INTO crash_rows (id, worker) VALUES ($1, $2)', [id, w]);
          acked += 1;
          if (acked >= KILL_AFTER && !killed) {
            killed = true;
            // Mid-load: the other workers have statements in flight right now.
            victim.child.kill('SIGKILL');
          }
        }
      } catch {
        // The broker died under this client: expected.
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    await stopChild(broker, 'SIGKILL');
    await conn.close();
    assert.ok(killed, 'the broker was killed under load');

    const rows = Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM crash_rows', [], db.name)).rows[0].n);
    assert.ok(rows >= acked, `every acknowledged insert is in the table (${acked} acked, ${rows} rows)`);

    broker = await startChildBroker(join(dir, 'dbgov.yaml'), SA_ENV);
    const out = join(dir, 'crash.jsonl');
    const exp = await cli(broker.apiUrl, ['audit', 'export', '--table', 'crash_rows', '--format', 'jsonl', '--out', out, '--json']);
    assert.equal(exp.code, 0, exp.stdout + exp.stderr);
    const events = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    const decided = events.filter((e) => e.kind === 'statement' && e.statement?.kind === 'insert' && e.statement.decision === 'allow');
    t.diagnostic(`${acked} inserts acknowledged, ${rows} rows committed, ${decided.length} statement records`);
    assert.equal(new Set(decided.map((e) => e.statement!.fingerprint)).size, 1, 'one INSERT shape');
    assert.ok(decided.length >= rows, `each of the ${rows} committed rows has its statement record (found ${decided.length})`);
    assert.ok(decided.length <= rows + WORKERS, `at most one in-flight statement per client was recorded but not committed (${decided.length} records, ${rows} rows)`);

    // The whole restarted log, online with the key the broker publishes…
    const online = await cli(broker.apiUrl, ['audit', 'verify', '--json']);
    assert.equal(online.code, 0, online.stdout + online.stderr);
    // …and offline with the configured key's public half and the checkpoints file, so a cut tail would show.
    const full = join(dir, 'full.jsonl');
    assert.equal((await cli(broker.apiUrl, ['audit', 'export', '--format', 'jsonl', '--out', full, '--json'])).code, 0);
    writeFileSync(join(dir, 'public.pem'), publicPem);
    const offline = await cli(broker.apiUrl, ['audit', 'verify', '--file', full, '--public-key', join(dir, 'public.pem'), '--checkpoints', join(dir, 'store', 'checkpoints.jsonl'), '--json']);
    assert.equal(offline.code, 0, offline.stdout + offline.stderr);
    assert.ok((offline.json!.result as { checkpoints: number }).checkpoints >= 1);
  } finally {
    if (broker) await stopChild(broker, 'SIGTERM');
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});
