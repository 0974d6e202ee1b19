/**
 * `dbgov scan` through the governed path: finds unclassified PII by name and content, reports
 * counts only, and prints masking config to paste.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, createTestDatabase, pgTarget, run, startTestBroker, type TestBroker, type TestDatabase } from './harness.js';

describe('dbgov scan', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  before(async () => {
    db = await createTestDatabase(
      'scan',
      `CREATE TABLE customers (id int, contact text, notes text, cc text, amount int);
       INSERT INTO customers SELECT g, 'person' || g || '@example.com', 'likes tea', '4111111111111111', g FROM generate_series(1, 50) g;
       CREATE TABLE plain (id int, label text); INSERT INTO plain SELECT g, 'label ' || g FROM generate_series(1, 50) g;`,
    );
    tb = await startTestBroker({ targets: { staging: pgTarget(db.name, { env: 'staging' }) }, masking: { key: '${env:T_MASK_KEY}', columns: { 'public.customers.cc': 'card' } } });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  test('finds emails by content, reports counts only, and skips clean tables', async () => {
    const r = await run(process.execPath, ['bin/run.js', 'scan', 'staging', '--json'], { env: { DBGOV_BROKER: tb.apiUrl, DBGOV_TOKEN: SA_TOKENS.ci, DBGOV_HOME: tb.dir } });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as { result: { candidates: { table: string; column: string; class: string; evidence: { hits: Record<string, number> } }[]; yaml: string } };
    const found = out.result.candidates.map((c) => `${c.table}.${c.column}:${c.class}`);
    assert.ok(found.includes('customers.contact:email'), found.join(', '));
    assert.ok(!found.some((f) => f.startsWith('plain.')), 'nothing in the clean table');
    // The card column is already classified: through the gateway its sampled values arrive
    // masked, so only its name can flag it, never its content.
    const cc = out.result.candidates.find((c) => c.column === 'cc');
    assert.equal(cc?.evidence.hits.card ?? 0, 0);
    assert.doesNotMatch(r.stdout, /person\d+@example\.com/, 'no sampled value in the output');
    assert.match(out.result.yaml, /public\.customers\.contact: email/);
    const events = await tb.events((e) => e.kind === 'statement' && e.identity?.id === 'ci-bot');
    assert.ok(events.length > 0, 'the scan is audited');
  });
});
