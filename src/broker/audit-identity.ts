import type { AuditIdentity } from '../audit/event.js';
import type { Identity } from '../shared/types.js';

/** The identity as audit records carry it: id, kind, groups, and the human behind an agent. */
export function auditIdentity(i: Identity): AuditIdentity {
  // Keys in sorted order: the audit log then serialises records natively (see sealEvent).
  return {
    groups: i.groups,
    id: i.id,
    kind: i.kind,
    ...(i.onBehalfOf ? { onBehalfOf: { groups: i.onBehalfOf.groups, id: i.onBehalfOf.id, kind: i.onBehalfOf.kind } } : {}),
  };
}
