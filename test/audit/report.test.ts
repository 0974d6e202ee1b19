import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEventInput, AuditIdentity } from '../../src/audit/event.js';
import { auditReport, type AccessReport } from '../../src/audit/report.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded.js';

const DAY = Date.parse('2025-03-03T00:00:00.000Z');
const dev: AuditIdentity = { id: 'dana@corp.example', kind: 'human', groups: ['dev'] };
const dba: AuditIdentity = { id: 'omar@corp.example', kind: 'human', groups: ['dba', 'approvers'] };
const ci: AuditIdentity = { id: 'ci-deploy', kind: 'workload', groups: ['ci'] };
const agent: AuditIdentity = { id: 'support-agent', kind: 'agent', groups: ['agents'], onBehalfOf: { id: dev.id, kind: 'human', groups: ['dev'] } };

/** A working day: CI migrations at night, developers and an agent by day, a DBA approving. */
function day(): { inputs: AuditEventInput[]; expect: { statements: number; blocked: number; emailMasked: number; emailClear: number; approvals: number } } {
  const inputs: AuditEventInput[] = [];
  const expect = { statements: 0, blocked: 0, emailMasked: 0, emailClear: 0, approvals: 0 };
  const stmt = (at: number, who: AuditIdentity, target: string, sessionId: string, text: string, kind: string, tables: string[], decision: 'allow' | 'block' | 'review', masked: string[] = [], clear: string[] = []) => {
    expect.statements += 1;
    if (decision === 'block') expect.blocked += 1;
    if (masked.includes('public.users.email')) expect.emailMasked += 1;
    if (clear.includes('public.users.email')) expect.emailClear += 1;
    inputs.push({
      kind: 'statement', identity: who, target, database: 'app', sessionId, at,
      statement: { fingerprint: text.slice(0, 12), text, kind, tables, decision, rule: decision === 'allow' ? null : decision === 'block' ? 'no-unbounded-delete' : 'prod-writes-need-approval', rows: null, durationMs: null, maskedColumns: [] },
    });
    // As the gateway writes it: what came back (rows, masked and clear columns) once the result went out.
    if (decision === 'allow') {
      inputs.push({
        kind: 'statement.result', identity: who, target, database: 'app', sessionId, at: at + 5,
        statement: { fingerprint: text.slice(0, 12), text, kind, tables, decision, rule: null, rows: 3, durationMs: 1.2, maskedColumns: masked, ...(clear.length ? { unmaskedColumns: clear } : {}) },
      });
    }
  };
  for (let h = 0; h < 24; h++) {
    const t = DAY + h * 3_600_000;
    if (h === 2) {
      inputs.push({ kind: 'session.start', identity: ci, target: 'prod', database: 'app', sessionId: 'ses_ci', at: t });
      for (let i = 0; i < 20; i++) stmt(t + i * 1000, ci, 'prod', 'ses_ci', 'ALTER TABLE public.orders ADD COLUMN note text', 'alter', ['public.orders'], 'allow');
    }
    if (h >= 9 && h < 18) {
      const sid = `ses_dev_${h}`;
      inputs.push({ kind: 'login', identity: dev, target: null, database: null, sessionId: null, at: t });
      for (let i = 0; i < 30; i++) stmt(t + 60_000 + i * 1000, dev, 'prod', sid, 'SELECT id, email FROM public.users WHERE id = ?', 'select', ['public.users'], 'allow', ['public.users.email']);
      stmt(t + 120_000, dev, 'prod', sid, 'DELETE FROM public.orders', 'delete', ['public.orders'], 'block');
      stmt(t + 180_000, agent, 'staging', `ses_agent_${h}`, 'SELECT * FROM public.model_weights', 'select', ['public.model_weights'], 'allow');
      stmt(t + 240_000, dba, 'prod', `ses_dba_${h}`, 'SELECT email FROM public.users', 'select', ['public.users'], 'allow', [], ['public.users.email']);
      if (h % 3 === 0) {
        stmt(t + 300_000, dev, 'prod', sid, 'UPDATE public.orders SET status = ? WHERE id = ?', 'update', ['public.orders'], 'review');
        inputs.push({ kind: 'approval.requested', identity: dev, target: 'prod', database: 'app', sessionId: sid, at: t + 300_001, detail: { requestId: `req_${h}`, type: 'statement', rule: 'prod-writes-need-approval' } });
        inputs.push({ kind: 'approval.vote', identity: dev, target: 'prod', database: 'app', sessionId: null, at: t + 330_000, detail: { requestId: `req_${h}`, decision: 'approve', refused: 'you cannot approve your own request' } });
        inputs.push({ kind: 'approval.vote', identity: dba, target: 'prod', database: 'app', sessionId: null, at: t + 360_000, detail: { requestId: `req_${h}`, decision: 'approve', comment: 'ticket OPS-1', votes: 1, quorum: 1 } });
        inputs.push({ kind: 'approval.decided', identity: dev, target: 'prod', database: 'app', sessionId: sid, at: t + 360_001, detail: { requestId: `req_${h}`, status: 'approved', by: [dba.id] } });
        expect.approvals += 1;
      }
    }
  }
  return { inputs, expect };
}

describe('auditReport', () => {
  let dir: string;
  let store: EmbeddedStore;
  const { inputs, expect } = day();
  const range = { since: DAY, until: DAY + 86_400_000 };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dbgov-report-'));
    store = await openEmbeddedStore({ dir, brokerId: 'b1', fsync: 'interval', log: silentLogger });
    // An event the day before must not count.
    store.audit.appendSync({ ...inputs[1], at: DAY - 1000 });
    store.audit.appendManySync(inputs);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('json summarises access, sensitive columns, blocks and approvals for the period', async () => {
    const r = JSON.parse(await auditReport(store, range, 'json')) as AccessReport;
    const email = r.sensitiveColumns.find((c) => c.column === 'public.users.email');
    const rows: [string, unknown, unknown][] = [
      ['statements', r.totals.statements, expect.statements],
      ['blocked', r.totals.blocked, expect.blocked],
      ['identities', r.identities.map((i) => i.id).sort(), [ci.id, dev.id, dba.id, agent.id].sort()],
      ['busiest identity', r.identities[0].id, dev.id],
      ['targets', r.targets.map((t) => t.name).sort(), ['prod', 'staging']],
      ['email masked', email?.masked, expect.emailMasked],
      ['email in the clear', email?.clear, expect.emailClear],
      ['who read email in the clear', email?.clearBy, [dba.id]],
      ['blocked by rule', r.blockedByRule, [{ rule: 'no-unbounded-delete', count: expect.blocked }]],
      ['approvals', r.approvals.length, expect.approvals],
      ['approver', [...new Set(r.approvals.map((a) => a.approver))], [dba.id]],
      ['requester', [...new Set(r.approvals.map((a) => a.requester))], [dev.id]],
      ['rows read by the developer', r.identities.find((i) => i.id === dev.id)?.rows, 9 * 30 * 3],
      ['hours with activity', r.perHour.length, 10],
    ];
    for (const [name, got, want] of rows) assert.deepEqual(got, want, name);
  });

  it('markdown has every section an access review needs', async () => {
    const md = await auditReport(store, range, 'md');
    for (const s of ['## Access per identity', '## Access per target', '## Sensitive columns', '## Blocked statements', '## Approvals', 'ticket OPS-1', 'no-unbounded-delete']) {
      assert.ok(md.includes(s), s);
    }
  });

  it('html is self-contained with inline SVG charts and escaped text', async () => {
    const html = await auditReport(store, range, 'html');
    assert.ok((html.match(/<svg /g) ?? []).length >= 3);
    assert.doesNotMatch(html, /<script|src=|href=|url\(/i);
    assert.ok(html.includes('DELETE FROM public.orders'));
    assert.ok(!html.includes('<dana'));
  });
});
