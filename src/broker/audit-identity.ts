import type { AuditIdentity } from '../audit/event.js';
import type { Identity } from '../shared/types.js';

/** The identity as audit records carry it: id, kind, groups, and the human behind an agent. */
export function auditIdentity(i: Identity): AuditIdentity {
  return {
    id: i.id,
    kind: i.kind,
    groups: i.groups,
    ...(i.onBehalfOf ? { onBehalfOf: { id: i.onBehalfOf.id, kind: i.onBehalfOf.kind, groups: i.onBehalfOf.groups } } : {}),
  };
}
