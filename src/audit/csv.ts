/** CSV export: one flat row per event, RFC 4180 quoting, a header first. */
import type { AuditEvent } from './event.js';

export const CSV_COLUMNS = [
  'seq', 'id', 'time', 'kind', 'broker', 'identity_id', 'identity_kind', 'identity_groups', 'on_behalf_of', 'target', 'database',
  'session_id', 'access', 'statement_fingerprint', 'statement_text', 'statement_kind', 'statement_tables', 'statement_decision',
  'statement_rule', 'statement_rows', 'statement_duration_ms', 'statement_masked_columns', 'statement_unmasked_columns', 'statement_error', 'request_id', 'detail',
  'prev_hash', 'hash',
] as const;

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Lists join with `;`, which never occurs in identifiers, groups or table names we write. */
export function csvRow(e: AuditEvent): string {
  const st = e.statement;
  const values: (string | number | null | undefined)[] = [
    e.seq, e.id, e.time, e.kind, e.broker, e.identity?.id, e.identity?.kind, e.identity?.groups.join(';'), e.identity?.onBehalfOf?.id,
    e.target, e.database, e.sessionId, e.access, st?.fingerprint, st?.text, st?.kind, st?.tables.join(';'), st?.decision, st?.rule,
    st?.rows, st?.durationMs, st?.maskedColumns.join(';'), st?.unmaskedColumns?.join(';'), st?.error ? `${st.error.sqlstate} ${st.error.message}` : undefined,
    st?.requestId, e.detail === undefined ? undefined : JSON.stringify(e.detail), e.prevHash, e.hash,
  ];
  return values.map(cell).join(',') + '\r\n';
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',') + '\r\n';
}
