import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEvent } from '../../src/audit/event.js';
import { GENESIS_HASH, eventHash } from '../../src/audit/canonical.js';
import AuditReportCmd from '../../src/commands/audit/report.js';
import AuditVerify from '../../src/commands/audit/verify.js';
import { runCommand, startFakeBroker, tempHome, type FakeBroker } from './helpers.js';

function chain(n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const blocked = seq === 3;
    const base: Omit<AuditEvent, 'hash'> = {
      id: `evt_${seq}`, time: new Date(Date.UTC(2026, 2, 10, 12, 0, seq)).toISOString(), seq, broker: 'b1', prevHash,
      kind: seq === 5 ? 'approval.vote' : seq % 2 === 0 ? 'statement.result' : 'statement',
      identity: { id: seq === 5 ? 'bob' : 'alice', kind: 'human', groups: ['dev'] },
      target: 'prod', database: 'app', sessionId: 'ses_1',
      ...(seq === 5
        ? { detail: { requestId: 'ABC123', decision: 'approve', comment: 'ok' } }
        : { statement: { fingerprint: 'f', text: blocked ? 'DROP TABLE users' : 'SELECT email FROM users', kind: blocked ? 'drop' : 'select', tables: ['public.users'], decision: blocked ? 'block' : 'allow', rule: blocked ? 'prod-no-ddl' : null, rows: 1, durationMs: 1, maskedColumns: seq % 2 === 0 ? ['public.users.email'] : [] } }),
    };
    const hash = eventHash(base);
    out.push({ ...base, hash });
    prevHash = hash;
  }
  return out;
}

describe('audit report and verify', () => {
  let broker: FakeBroker;
  let home: Awaited<ReturnType<typeof tempHome>>;
  let env: Record<string, string>;
  const events = chain(6);
  const { publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  before(async () => {
    home = await tempHome();
    broker = await startFakeBroker({
      'GET /v1/audit/export': () => ({ raw: events.map((e) => JSON.stringify(e)).join('\n') + '\n', contentType: 'application/x-ndjson' }),
      'GET /v1/audit/report': (req) =>
        req.url.searchParams.get('format') === 'json' ? { body: { events: 6 } } : { raw: '<html><svg></svg></html>', contentType: 'text/html' },
      'GET /v1/audit/public-key': () => ({ body: { publicKeyPem: pem, keyId: 'k1' } }),
      // The chain above has no checkpoint yet, so the broker has none to publish.
      'GET /v1/audit/checkpoints': () => ({ body: { checkpoints: [] } }),
    });
    env = { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'sa', DBGOV_HOME: home.dir };
  });
  after(async () => {
    await broker.close();
    await home.cleanup();
  });

  it('report: asks the broker for the period and format, and writes the file', async () => {
    const r = await runCommand(AuditReportCmd, ['--since', '30d', '--format', 'json', '--json'], env);
    const q = broker.seen.at(-1)!.url.searchParams;
    assert.equal(q.get('format'), 'json');
    assert.ok(Math.abs(Date.parse(q.get('since') ?? '') - (Date.now() - 30 * 86_400_000)) < 60_000, 'since goes as ISO 8601');
    assert.deepEqual(r.json.result.report, { events: 6 });
    const html = join(home.dir, 'r.html');
    const w = await runCommand(AuditReportCmd, ['--format', 'html', '--out', html], env);
    assert.equal(w.error, undefined);
    assert.match(await readFile(html, 'utf8'), /<svg/);
  });

  it('verify --file: an intact export passes offline; an edited one fails naming the event', async () => {
    const file = join(home.dir, 'audit.jsonl');
    const pemFile = join(home.dir, 'audit.pem');
    await writeFile(pemFile, pem);
    await writeFile(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const ok = await runCommand(AuditVerify, ['--file', file, '--public-key', pemFile, '--json'], { DBGOV_HOME: home.dir });
    assert.equal(ok.json.status, 0, JSON.stringify(ok.json));
    assert.equal(ok.json.result.events, 6);

    const edited = events.map((e) => (e.seq === 3 ? { ...e, statement: { ...e.statement!, text: 'SELECT 1' } } : e));
    await writeFile(file, edited.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const bad = await runCommand(AuditVerify, ['--file', file, '--public-key', pemFile, '--json'], { DBGOV_HOME: home.dir });
    assert.notEqual(bad.json.status, 0);
    assert.match(bad.json.message, /does not verify/);
    assert.match(bad.json.message, /evt_3/);
  });

  it('verify online streams the broker log and uses its published key', async () => {
    const r = await runCommand(AuditVerify, ['--json'], env);
    assert.equal(r.json.status, 0, JSON.stringify(r.json));
    assert.equal(r.json.result.source, broker.url);
    assert.ok(broker.seen.some((s) => s.url.pathname === '/v1/audit/public-key'));
  });
});
