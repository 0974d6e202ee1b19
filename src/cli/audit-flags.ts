/** Filter flags shared by `audit search`, `audit export` and `audit report`, and their query string. */
import { Flags } from '@oclif/core';
import type { AuditQuery } from '../broker/api-types.js';
import { AUDIT_KINDS } from '../audit/event.js';
import { IDENTITY_KINDS, type IdentityKind } from '../shared/types.js';
import { checkRange, timeFlag } from './time-flags.js';

const DECISIONS = ['allow', 'block', 'review', 'approved', 'denied', 'timeout', 'error'] as const;

export const auditFilterFlags = {
  identity: Flags.string({ aliases: ['user'], summary: 'Only events of this identity (id or email).', helpGroup: 'FILTER' }),
  kind: Flags.string({ options: [...IDENTITY_KINDS], summary: 'Only events of this identity kind.', helpGroup: 'FILTER' }),
  event: Flags.string({ options: [...AUDIT_KINDS], multiple: true, delimiter: ',', summary: 'Only events of these kinds (statement, session.start, approval.decided, …); comma-separated or repeated.', helpGroup: 'FILTER' }),
  target: Flags.string({ summary: 'Only this target.', helpGroup: 'FILTER' }),
  database: Flags.string({ summary: 'Only this database.', helpGroup: 'FILTER' }),
  table: Flags.string({ summary: 'Only statements touching this table (schema.table or table).', helpGroup: 'FILTER' }),
  column: Flags.string({ summary: 'Only statements touching this column.', helpGroup: 'FILTER' }),
  decision: Flags.string({ options: [...DECISIONS], summary: 'Only statements with this decision.', helpGroup: 'FILTER' }),
  since: timeFlag({ summary: 'From this time: a duration back from now (1h, 30d) or ISO 8601.', helpGroup: 'FILTER' }),
  until: timeFlag({ summary: 'Up to this time (default: now).', helpGroup: 'FILTER' }),
  text: Flags.string({ summary: 'Substring of the statement text or details.', helpGroup: 'FILTER' }),
  session: Flags.string({ summary: 'Only this session id.', helpGroup: 'FILTER' }),
};

export interface AuditFilterFlagValues {
  identity?: string;
  kind?: string;
  event?: string[];
  target?: string;
  database?: string;
  table?: string;
  column?: string;
  decision?: string;
  since?: number;
  until?: number;
  text?: string;
  session?: string;
}

export function toAuditQuery(flags: AuditFilterFlagValues): AuditQuery {
  checkRange(flags.since, flags.until);
  const query: AuditQuery = {
    identity: flags.identity,
    identityKind: flags.kind as IdentityKind | undefined,
    kind: flags.event !== undefined && flags.event.length > 0 ? flags.event : undefined,
    target: flags.target,
    database: flags.database,
    table: flags.table,
    column: flags.column,
    decision: flags.decision,
    session: flags.session,
    since: flags.since,
    until: flags.until,
    text: flags.text,
  };
  for (const key of Object.keys(query) as (keyof AuditQuery)[]) if (query[key] === undefined) delete query[key];
  return query;
}
