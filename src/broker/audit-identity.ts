import type { AuditIdentity } from '../audit/event.js';
import type { Identity } from '../shared/types.js';

/** The identity as audit records carry it: id, kind, groups, and the human behind an agent. */
export function auditIdentity(i: Identity): AuditIdentity {
  // Keys in sorted order, and frozen all the way down: the audit log then writes a session's
  // identity once and reuses the text for every record (see fastJson in src/audit/canonical.ts).
  const behalf = i.onBehalfOf;
  return Object.freeze({
    groups: Object.freeze([...i.groups]),
    id: i.id,
    kind: i.kind,
    ...(behalf ? { onBehalfOf: Object.freeze({ groups: Object.freeze([...behalf.groups]), id: behalf.id, kind: behalf.kind }) } : {}),
  }) as AuditIdentity;
}
