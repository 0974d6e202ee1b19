/**
 * The README's first command: `dbgov demo` works with no outside service, from a cold cache,
 * and shows masking, a guardrail and an approval.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './harness.js';

test('dbgov demo --exec: masked PII, a blocked DROP, and a held UPDATE released by the approver', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbgov-demo-test-'));
  try {
    const script = join(dir, 'walkthrough.sh');
    writeFileSync(
      script,
      `set -u
psql -X -A -t -c "select email, ssn, card_number from users where id = 1"
psql -X -c "drop table users" 2>&1
( sleep 1.5
  id=$(DBGOV_TOKEN=$DBGOV_DEMO_APPROVER_TOKEN node bin/run.js requests --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).result.requests[0].id))')
  DBGOV_TOKEN=$DBGOV_DEMO_APPROVER_TOKEN node bin/run.js approve "$id" >/dev/null ) &
psql -X -c "update model_weights set weights = '{1,1,1,1}' where id = 2" 2>&1
wait
psql -X -A -t -c "select weights from model_weights where id = 2"
`,
    );
    const r = await run(process.execPath, ['bin/run.js', 'demo', '--exec', '--', 'bash', script], {
      env: { XDG_CACHE_HOME: join(dir, 'cache'), DBGOV_HOME: join(dir, 'home') },
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^\*\*\*\*@example\.com\|\*\*\*\*\|tok_[0-9a-f]+$/, 'email partially masked, ssn redacted, card hashed');
    assert.doesNotMatch(r.stdout, /@example\.com\|\d{3}-/);
    assert.match(r.stdout, /ERROR:\s+dbgov: blocked: DROP/);
    assert.match(r.stdout, /NOTICE:\s+dbgov: waiting for approval [0-9A-Z]+/);
    assert.match(r.stdout, /UPDATE 1/);
    assert.match(r.stdout, /\{1,1,1,1\}/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dbgov demo --json --port P --exec: the tunnel on P with an 8h credential; a failing command is the envelope status and the exit code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbgov-demo-test-'));
  try {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const script = join(dir, 'check.sh');
    writeFileSync(
      script,
      `echo "port=$PGPORT"
DBGOV_TOKEN=$DBGOV_DEMO_AUDITOR_TOKEN node bin/run.js audit search --identity dev@example.com --json
exit 3
`,
    );
    const r = await run(process.execPath, ['bin/run.js', 'demo', '--json', '--port', String(port), '--exec', '--', 'bash', script], {
      env: { XDG_CACHE_HOME: join(dir, 'cache'), DBGOV_HOME: join(dir, 'home') },
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const envelope = JSON.parse(r.stdout) as { status: number; name: string };
    assert.equal(envelope.status, 3);
    assert.equal(envelope.name, 'CommandFailedError');
    // With --json the command's own output went to stderr.
    assert.match(r.stderr, new RegExp(`port=${port}\\n`));
    const search = JSON.parse(r.stderr.slice(r.stderr.indexOf('{'))) as { result: { events: { kind: string; detail?: { ttlMs?: number } }[] } };
    const issued = search.result.events.find((e) => e.kind === 'credential.issued');
    assert.equal(issued?.detail?.ttlMs, 8 * 3_600_000, 'a demo left running keeps its tunnel: no 30m credential');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
