/**
 * Access review report (SOC 2 CC6 / GDPR art. 30 style): who accessed what, which sensitive
 * columns were read masked or in the clear, what was blocked, and who approved what and when.
 * Built in one pass over the store's stream; memory grows with identities, targets and columns,
 * not with events (lists of blocked statements and approvals are capped).
 *
 * Decisions (allowed, blocked, held) come from `statement` events, written before a statement
 * runs. What came back comes from `statement.result` events, written once the result went out:
 * rows, the classified columns masked (`statement.maskedColumns`) and the classified columns an
 * unmask rule or approval let through in clear (`statement.unmaskedColumns`).
 *
 * Approvals are the votes (`approval.vote`: approver, decision, comment, time) and requests that
 * expired without a decision.
 */
import type { Store } from '../store/store.js';
import type { AuditFilter } from './event.js';

export const REPORT_FORMATS = ['md', 'html', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

const LIST_CAP = 500;

export interface AccessReport {
  period: { since: string; until: string };
  totals: { events: number; statements: number; blocked: number; held: number; identities: number; targets: number; sessions: number };
  identities: { id: string; kind: string; statements: number; blocked: number; rows: number; targets: string[]; sessions: number }[];
  targets: { name: string; statements: number; blocked: number; identities: string[] }[];
  sensitiveColumns: { column: string; masked: number; clear: number; clearBy: string[] }[];
  blocked: { time: string; identity: string; target: string; rule: string | null; text: string }[];
  blockedByRule: { rule: string; count: number }[];
  approvals: { time: string; requestId: string; requester: string | null; approver: string | null; decision: string; comment?: string }[];
  perHour: { hour: string; statements: number; blocked: number }[];
  truncated: { blocked: boolean; approvals: boolean };
}

export async function buildAccessReport(store: Pick<Store, 'audit'>, range: { since: number; until: number }): Promise<AccessReport> {
  const filter: AuditFilter = { since: range.since, until: range.until };
  const ids = new Map<string, { kind: string; statements: number; blocked: number; rows: number; targets: Set<string>; sessions: Set<string> }>();
  const targets = new Map<string, { statements: number; blocked: number; identities: Set<string> }>();
  const columns = new Map<string, { masked: number; clear: number; clearBy: Set<string> }>();
  const rules = new Map<string, number>();
  const hours = new Map<string, { statements: number; blocked: number }>();
  const sessions = new Set<string>();
  const r: AccessReport = {
    period: { since: new Date(range.since).toISOString(), until: new Date(range.until).toISOString() },
    totals: { events: 0, statements: 0, blocked: 0, held: 0, identities: 0, targets: 0, sessions: 0 },
    identities: [], targets: [], sensitiveColumns: [], blocked: [], blockedByRule: [], approvals: [], perHour: [],
    truncated: { blocked: false, approvals: false },
  };
  const column = (name: string) => {
    let c = columns.get(name);
    if (!c) columns.set(name, (c = { masked: 0, clear: 0, clearBy: new Set() }));
    return c;
  };

  // Request id → requester, to name both sides of an approval; bounded like the list it serves.
  const requesters = new Map<string, string>();
  const identity = (who: string, kind: string) => {
    let id = ids.get(who);
    if (!id) ids.set(who, (id = { kind, statements: 0, blocked: 0, rows: 0, targets: new Set(), sessions: new Set() }));
    return id;
  };

  for await (const e of store.audit.stream(filter)) {
    r.totals.events += 1;
    if (e.sessionId) sessions.add(e.sessionId);
    const d = e.detail ?? {};
    if (e.kind === 'approval.requested' && e.identity && requesters.size < LIST_CAP * 4) requesters.set(String(d.requestId ?? ''), e.identity.id);
    // A refused vote (self-approval, wrong group) approved nothing; it stays in search, not here.
    const vote = e.kind === 'approval.vote' && e.identity && d.refused === undefined;
    const expired = e.kind === 'approval.decided' && d.status === 'expired';
    if (vote || expired) {
      if (r.approvals.length < LIST_CAP) {
        const requestId = String(d.requestId ?? '');
        r.approvals.push({
          time: e.time,
          requestId,
          requester: requesters.get(requestId) ?? (expired ? (e.identity?.id ?? null) : null),
          approver: vote ? e.identity!.id : null,
          decision: vote ? String(d.decision ?? 'vote') : 'expired',
          ...(typeof d.comment === 'string' ? { comment: d.comment } : {}),
        });
      } else r.truncated.approvals = true;
    }
    const st = e.statement;
    if (e.kind === 'statement.result' && st) {
      const who = e.identity?.id ?? 'unknown';
      identity(who, e.identity?.kind ?? 'unknown').rows += st.rows ?? 0;
      for (const c of st.maskedColumns) column(c).masked += 1;
      for (const c of st.unmaskedColumns ?? []) {
        const entry = column(c);
        entry.clear += 1;
        entry.clearBy.add(who);
      }
      continue;
    }
    if (e.kind !== 'statement' || !st) continue;
    const who = e.identity?.id ?? 'unknown';
    const target = e.target ?? 'unknown';
    const blocked = st.decision === 'block' || st.decision === 'denied' || st.decision === 'timeout';
    r.totals.statements += 1;
    if (blocked) r.totals.blocked += 1;
    if (st.decision === 'review') r.totals.held += 1;

    const id = identity(who, e.identity?.kind ?? 'unknown');
    id.statements += 1;
    if (blocked) id.blocked += 1;
    id.targets.add(target);
    if (e.sessionId) id.sessions.add(e.sessionId);

    let t = targets.get(target);
    if (!t) targets.set(target, (t = { statements: 0, blocked: 0, identities: new Set() }));
    t.statements += 1;
    if (blocked) t.blocked += 1;
    t.identities.add(who);


    const hour = e.time.slice(0, 13) + ':00Z';
    let h = hours.get(hour);
    if (!h) hours.set(hour, (h = { statements: 0, blocked: 0 }));
    h.statements += 1;
    if (blocked) {
      h.blocked += 1;
      rules.set(st.rule ?? '(none)', (rules.get(st.rule ?? '(none)') ?? 0) + 1);
      if (r.blocked.length < LIST_CAP) r.blocked.push({ time: e.time, identity: who, target, rule: st.rule, text: st.text });
      else r.truncated.blocked = true;
    }
  }

  r.identities = [...ids].map(([id, v]) => ({ id, kind: v.kind, statements: v.statements, blocked: v.blocked, rows: v.rows, targets: [...v.targets].sort(), sessions: v.sessions.size })).sort((a, b) => b.statements - a.statements);
  r.targets = [...targets].map(([name, v]) => ({ name, statements: v.statements, blocked: v.blocked, identities: [...v.identities].sort() })).sort((a, b) => b.statements - a.statements);
  r.sensitiveColumns = [...columns].map(([c, v]) => ({ column: c, masked: v.masked, clear: v.clear, clearBy: [...v.clearBy].sort() })).sort((a, b) => b.clear - a.clear || b.masked - a.masked);
  r.blockedByRule = [...rules].map(([rule, count]) => ({ rule, count })).sort((a, b) => b.count - a.count);
  r.perHour = [...hours].map(([hour, v]) => ({ hour, ...v })).sort((a, b) => a.hour.localeCompare(b.hour));
  r.totals.identities = ids.size;
  r.totals.targets = targets.size;
  r.totals.sessions = sessions.size;
  return r;
}

export async function auditReport(store: Pick<Store, 'audit'>, range: { since: number; until: number }, format: ReportFormat): Promise<string> {
  const report = await buildAccessReport(store, range);
  switch (format) {
    case 'json':
      return JSON.stringify(report, null, 2);
    case 'md':
      return renderMarkdown(report);
    case 'html':
      return renderHtml(report);
    default: {
      const never: never = format;
      throw new Error(`unknown report format ${String(never)}`);
    }
  }
}

function mdCell(v: unknown): string {
  return String(v).replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function mdTable(head: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '_None._\n';
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n') + '\n';
}

function renderMarkdown(r: AccessReport): string {
  const t = r.totals;
  return [
    `# Database access review`,
    '',
    `Period: ${r.period.since} to ${r.period.until}`,
    '',
    `${t.statements} statements by ${t.identities} identities on ${t.targets} targets in ${t.sessions} sessions; ${t.blocked} blocked, ${t.held} held for approval.`,
    '',
    '## Access per identity',
    mdTable(['identity', 'kind', 'statements', 'blocked', 'rows', 'sessions', 'targets'], r.identities.map((i) => [i.id, i.kind, i.statements, i.blocked, i.rows, i.sessions, i.targets.join(', ')])),
    '## Access per target',
    mdTable(['target', 'statements', 'blocked', 'identities'], r.targets.map((x) => [x.name, x.statements, x.blocked, x.identities.join(', ')])),
    '## Sensitive columns',
    mdTable(['column', 'masked', 'in the clear', 'read in the clear by'], r.sensitiveColumns.map((c) => [c.column, c.masked, c.clear, c.clearBy.join(', ')])),
    '## Blocked statements',
    mdTable(['rule', 'count'], r.blockedByRule.map((b) => [b.rule, b.count])),
    mdTable(['time', 'identity', 'target', 'rule', 'statement'], r.blocked.map((b) => [b.time, b.identity, b.target, b.rule ?? '', b.text])),
    r.truncated.blocked ? `_Only the first ${LIST_CAP} blocked statements are listed._\n` : '',
    '## Approvals',
    mdTable(['time', 'request', 'requester', 'approver', 'decision', 'comment'], r.approvals.map((a) => [a.time, a.requestId, a.requester ?? '', a.approver ?? '', a.decision, a.comment ?? ''])),
  ].join('\n');
}

function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A horizontal bar chart as inline SVG: no scripts, no external assets. */
function barChart(title: string, bars: { label: string; value: number; alert?: number }[]): string {
  if (bars.length === 0) return '';
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rowH = 22;
  const labelW = 220;
  const barW = 420;
  const h = bars.length * rowH + 30;
  const rows = bars
    .map((b, i) => {
      const y = 24 + i * rowH;
      const w = Math.max(1, Math.round((b.value / max) * barW));
      const a = b.alert ? Math.round((b.alert / max) * barW) : 0;
      return `<text x="0" y="${y + 14}" font-size="12">${esc(b.label)}</text><rect x="${labelW}" y="${y}" width="${w}" height="16" fill="#4a78b5"/>${a ? `<rect x="${labelW}" y="${y}" width="${a}" height="16" fill="#c8443a"/>` : ''}<text x="${labelW + w + 6}" y="${y + 13}" font-size="11">${b.value}</text>`;
    })
    .join('');
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${labelW + barW + 60}" height="${h}"><text x="0" y="14" font-size="13" font-weight="bold">${esc(title)}</text>${rows}</svg></figure>`;
}

function htmlTable(head: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '<p><em>None.</em></p>';
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function renderHtml(r: AccessReport): string {
  const t = r.totals;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Database access review</title><style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f2f2f2}figure{margin:1em 0}</style></head><body>
<h1>Database access review</h1>
<p>Period: ${esc(r.period.since)} to ${esc(r.period.until)}</p>
<p>${t.statements} statements by ${t.identities} identities on ${t.targets} targets in ${t.sessions} sessions; ${t.blocked} blocked, ${t.held} held for approval.</p>
${barChart('Statements per identity (red: blocked)', r.identities.slice(0, 25).map((i) => ({ label: i.id, value: i.statements, alert: i.blocked })))}
${barChart('Statements per hour (red: blocked)', r.perHour.map((h) => ({ label: h.hour.slice(5, 16).replace('T', ' '), value: h.statements, alert: h.blocked })))}
<h2>Access per identity</h2>${htmlTable(['identity', 'kind', 'statements', 'blocked', 'rows', 'sessions', 'targets'], r.identities.map((i) => [i.id, i.kind, i.statements, i.blocked, i.rows, i.sessions, i.targets.join(', ')]))}
<h2>Access per target</h2>${barChart('Statements per target', r.targets.map((x) => ({ label: x.name, value: x.statements, alert: x.blocked })))}${htmlTable(['target', 'statements', 'blocked', 'identities'], r.targets.map((x) => [x.name, x.statements, x.blocked, x.identities.join(', ')]))}
<h2>Sensitive columns</h2>${barChart('Reads in the clear per column', r.sensitiveColumns.filter((c) => c.clear > 0).map((c) => ({ label: c.column, value: c.clear })))}${htmlTable(['column', 'masked', 'in the clear', 'read in the clear by'], r.sensitiveColumns.map((c) => [c.column, c.masked, c.clear, c.clearBy.join(', ')]))}
<h2>Blocked statements</h2>${htmlTable(['rule', 'count'], r.blockedByRule.map((b) => [b.rule, b.count]))}${htmlTable(['time', 'identity', 'target', 'rule', 'statement'], r.blocked.map((b) => [b.time, b.identity, b.target, b.rule ?? '', b.text]))}
<h2>Approvals</h2>${htmlTable(['time', 'request', 'requester', 'approver', 'decision', 'comment'], r.approvals.map((a) => [a.time, a.requestId, a.requester ?? '', a.approver ?? '', a.decision, a.comment ?? '']))}
</body></html>
`;
}
