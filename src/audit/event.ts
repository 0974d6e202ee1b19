/**
 * The audit event model. Export (jsonl) writes these objects as they are; field names are a
 * contract (see DESIGN.md "Audit export"). Events never hold clear values of classified data:
 * statement text is stored with literals redacted and bind parameters are not stored.
 */
import type { AccessLevel, IdentityKind, IdentityRef } from '../shared/types.js';

export const AUDIT_KINDS = [
  'login', // a human or workload authenticated to the broker
  'login.failed',
  'credential.issued',
  'credential.denied',
  'credential.revoked',
  'access.requested', // just-in-time elevation asked for
  'session.start',
  'session.end',
  'session.refused', // a gateway connection without a valid credential
  'api.refused', // a broker API call the caller is not allowed to make (who tried, which route, why)
  'statement', // decision taken, before the statement is forwarded (or instead of it)
  'statement.result', // outcome: rows, duration, error
  'approval.requested',
  'approval.vote',
  'approval.decided', // approved, denied or expired
  'approval.released', // a held statement was released to run
  'policy.loaded',
  'service-account.created',
  'service-account.revoked',
  'retention.pruned',
  'checkpoint', // a signed checkpoint over the chain so far
] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export type Decision = 'allow' | 'block' | 'review' | 'approved' | 'denied' | 'timeout' | 'error';

export interface AuditIdentity extends IdentityRef {
  /** The human an agent acted for. */
  onBehalfOf?: { id: string; kind: IdentityKind; groups: string[] };
}

export interface StatementRecord {
  fingerprint: string;
  /** Literals redacted. */
  text: string;
  kind: string;
  tables: string[];
  decision: Decision;
  rule: string | null;
  rows: number | null;
  durationMs: number | null;
  maskedColumns: string[];
  /**
   * Classified columns returned in clear because an unmask rule or an approval let this identity
   * see them (`statement.result` only; absent when none). Who saw what in clear is what an access
   * review asks first.
   */
  unmaskedColumns?: string[];
  /** Id of the `statement` event this `statement.result` completes. */
  ref?: string;
  /** Upstream error, SQLSTATE and message scrubbed of data. */
  error?: { sqlstate: string; message: string };
  /** `simple`, `extended`, `mysql-text`, `mysql-prepared`. */
  protocol?: string;
  /** Approval request that held it, if any. */
  requestId?: string;
}

/** What callers hand to the log. id, time, seq, hash and prevHash are assigned on append. */
export interface AuditEventInput {
  kind: AuditKind;
  identity: AuditIdentity | null;
  target: string | null;
  database: string | null;
  sessionId: string | null;
  access?: AccessLevel;
  statement?: StatementRecord;
  /** Kind-specific details (credential id, request id, reason, client address, …). No PII. */
  detail?: Record<string, unknown>;
  /** Overrides the time (ms since epoch); defaults to now. */
  at?: number;
}

export interface AuditEvent extends Omit<AuditEventInput, 'at'> {
  id: string;
  /** ISO 8601 with milliseconds, UTC. */
  time: string;
  /** Position in the chain, from 1. */
  seq: number;
  /** Broker that wrote it (scale-out). */
  broker: string;
  prevHash: string;
  hash: string;
}

/** Filters for `dbgov audit search` and export. All optional; combined with AND. */
export interface AuditFilter {
  identity?: string;
  identityKind?: IdentityKind;
  target?: string;
  database?: string;
  table?: string;
  column?: string;
  decision?: Decision;
  kind?: AuditKind | AuditKind[];
  sessionId?: string;
  since?: number;
  until?: number;
  /** Substring match over statement text and details. */
  text?: string;
}
