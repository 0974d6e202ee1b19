/**
 * OCSF mapping: every event becomes a Datastore Activity (class_uid 6005, category 6 Application
 * Activity), https://schema.ocsf.io/classes/datastore_activity. Statements map to Read / Query /
 * Write / Update / Create / Delete by kind, sessions to Connect; broker-level events (logins,
 * approvals, checkpoints) are Other (99) with the dbgov kind in `unmapped`, so a SIEM keeps one
 * class per source. The outcome goes to status_id (1 Success, 2 Failure, 99 Other for a
 * statement held for approval).
 */
import type { AuditEvent, Decision } from './event.js';

export const OCSF_VERSION = '1.3.0';
const CLASS_UID = 6005;
const CATEGORY_UID = 6;

const ACTIVITY = { unknown: 0, read: 1, update: 2, connect: 3, query: 4, write: 5, create: 6, delete: 7, other: 99 } as const;
const ACTIVITY_NAME: Record<number, string> = { 0: 'Unknown', 1: 'Read', 2: 'Update', 3: 'Connect', 4: 'Query', 5: 'Write', 6: 'Create', 7: 'Delete', 99: 'Other' };

function activityOf(e: AuditEvent): number {
  if (e.kind === 'session.start' || e.kind === 'session.refused') return ACTIVITY.connect;
  if (e.kind !== 'statement' && e.kind !== 'statement.result') return ACTIVITY.other;
  switch (e.statement?.kind) {
    case 'select':
      return ACTIVITY.query;
    case 'copy':
      return ACTIVITY.read;
    case 'insert':
      return ACTIVITY.write;
    case 'update':
    case 'merge':
    case 'alter':
      return ACTIVITY.update;
    case 'create':
      return ACTIVITY.create;
    case 'delete':
    case 'drop':
    case 'truncate':
      return ACTIVITY.delete;
    case undefined:
      return ACTIVITY.unknown;
    default:
      return ACTIVITY.other;
  }
}

function statusOf(e: AuditEvent): { status_id: number; status: string; status_detail?: string } {
  const d: Decision | undefined = e.statement?.decision;
  if (e.statement?.error) return { status_id: 2, status: 'Failure', status_detail: `${e.statement.error.sqlstate} ${e.statement.error.message}` };
  if (e.kind === 'login.failed' || e.kind === 'credential.denied' || e.kind === 'session.refused' || e.kind === 'api.refused') return { status_id: 2, status: 'Failure', status_detail: e.kind };
  switch (d) {
    case undefined:
      return { status_id: 1, status: 'Success' };
    case 'allow':
    case 'approved':
      return { status_id: 1, status: 'Success', status_detail: d };
    case 'block':
    case 'denied':
    case 'timeout':
    case 'error':
      return { status_id: 2, status: 'Failure', status_detail: d };
    case 'review':
      return { status_id: 99, status: 'Held for approval', status_detail: d };
    default: {
      const never: never = d;
      return { status_id: 0, status: String(never) };
    }
  }
}

const USER_TYPE = { human: { type_id: 1, type: 'User' }, workload: { type_id: 99, type: 'Workload' }, agent: { type_id: 99, type: 'Agent' } } as const;

export function toOcsf(e: AuditEvent, productVersion: string): Record<string, unknown> {
  const activityId = activityOf(e);
  const timeMs = Date.parse(e.time);
  const st = e.statement;
  const out: Record<string, unknown> = {
    class_uid: CLASS_UID,
    class_name: 'Datastore Activity',
    category_uid: CATEGORY_UID,
    category_name: 'Application Activity',
    activity_id: activityId,
    activity_name: ACTIVITY_NAME[activityId],
    type_uid: CLASS_UID * 100 + activityId,
    type_name: `Datastore Activity: ${ACTIVITY_NAME[activityId]}`,
    severity_id: st?.decision === 'block' || st?.decision === 'denied' ? 3 : 1,
    severity: st?.decision === 'block' || st?.decision === 'denied' ? 'Medium' : 'Informational',
    time: timeMs,
    message: st ? `${st.kind} ${st.decision}${st.rule ? ` by ${st.rule}` : ''}` : e.kind,
    ...statusOf(e),
    metadata: {
      version: OCSF_VERSION,
      product: { name: 'dbgov', vendor_name: 'dbgov', version: productVersion },
      uid: e.id,
      original_time: e.time,
      log_name: 'audit',
      sequence: e.seq,
      ...(e.sessionId ? { correlation_uid: e.sessionId } : {}),
    },
    actor: {
      user: e.identity
        ? {
            uid: e.identity.id,
            name: e.identity.id,
            ...USER_TYPE[e.identity.kind],
            groups: e.identity.groups.map((name) => ({ name })),
          }
        : { uid: 'dbgov', name: 'dbgov', type_id: 3, type: 'System', groups: [] },
      ...(e.sessionId ? { session: { uid: e.sessionId } } : {}),
    },
    src_endpoint: { name: e.broker, ...(typeof e.detail?.client === 'string' ? { ip: e.detail.client } : {}) },
    type_id: st && st.tables.length > 0 ? 3 : 1,
    type: st && st.tables.length > 0 ? 'Table' : 'Database',
    database: { name: e.database ?? e.target ?? 'dbgov', type_id: 1, type: 'Relational', ...(e.target ? { uid: e.target } : {}) },
    ...(st && st.tables.length > 0 ? { table: { name: st.tables[0] } } : {}),
    ...(st ? { query_info: { query_string: st.text, uid: st.fingerprint, ...(st.protocol ? { name: st.protocol } : {}) } } : {}),
    ...(st?.durationMs != null ? { duration: Math.round(st.durationMs) } : {}),
    unmapped: {
      dbgov_kind: e.kind,
      hash: e.hash,
      prev_hash: e.prevHash,
      ...(e.identity?.onBehalfOf ? { on_behalf_of: e.identity.onBehalfOf.id } : {}),
      ...(e.access ? { access: e.access } : {}),
      ...(st
        ? { decision: st.decision, rule: st.rule, rows: st.rows, tables: st.tables, masked_columns: st.maskedColumns, ...(st.unmaskedColumns ? { unmasked_columns: st.unmaskedColumns } : {}), ...(st.requestId ? { request_id: st.requestId } : {}) }
        : {}),
      ...(e.detail !== undefined ? { detail: e.detail } : {}),
    },
  };
  return out;
}
