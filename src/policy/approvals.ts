/**
 * Who may vote on an approval request, and what the votes add up to. Shared by statement reviews
 * and just-in-time access elevation.
 */
import type { ApprovalRequest } from '../store/store.js';
import type { Identity } from '../shared/types.js';

export type ApproveCheck = { ok: true } | { ok: false; reason: string };

export interface ApproveOptions {
  /** Owner (a person's id) of each service identity, by service identity id: the requester's and the approver's. */
  owners?: ReadonlyMap<string, string>;
  /** Votes on an expired request are refused. */
  now?: number;
}

export function canApprove(request: ApprovalRequest, approver: Identity, options: ApproveOptions = {}): ApproveCheck {
  if (request.status !== 'pending') return { ok: false, reason: `request ${request.id} is ${request.status}, not pending` };
  if (options.now !== undefined && options.now >= request.expiresAt) return { ok: false, reason: `request ${request.id} has expired` };
  // An agent voting would let a person approve through software they steer.
  if (approver.kind === 'agent' || approver.onBehalfOf) return { ok: false, reason: 'agents never approve requests' };
  const requester = request.requester;
  const owners = options.owners;
  // Every identity the request was made by or for: the requester, the person an agent acts
  // for, and the owners of either when they are service identities.
  const principals = new Set([requester.id]);
  if (requester.onBehalfOf) principals.add(requester.onBehalfOf.id);
  for (const id of [...principals]) {
    const owner = owners?.get(id);
    if (owner) principals.add(owner);
  }
  // Self-approval, directly or through an agent or service identity one owns, is no review; nor
  // is voting on one's own request with a service account one owns.
  const person = owners?.get(approver.id) ?? approver.id;
  if (principals.has(approver.id) || principals.has(person)) return { ok: false, reason: 'you cannot approve your own request (including one made by your agent or your service account, or voted with a service account you own)' };
  const groups = request.approvers.groups;
  if (!approver.groups.some((g) => groups.includes(g))) return { ok: false, reason: `only members of ${groups.join(', ')} may approve this request` };
  // One person, one vote: a quorum of 2 means two people, not a person and their service account.
  if (request.votes.some((v) => v.identity === approver.id || voterOf(v) === person)) return { ok: false, reason: 'you have already voted on this request (yourself or through a service account you own)' };
  return { ok: true };
}

/** Any deny denies; otherwise approved once `quorum` distinct identities approved. */
export function tally(request: ApprovalRequest): 'pending' | 'approved' | 'denied' {
  if (request.votes.some((v) => v.decision === 'deny')) return 'denied';
  const approvers = new Set(request.votes.filter((v) => v.decision === 'approve').map(voterOf));
  return approvers.size >= Math.max(1, request.approvers.quorum) ? 'approved' : 'pending';
}

/** The person a vote counts for: the owner of the service identity that cast it, or the voter. */
export function voterOf(vote: ApprovalRequest['votes'][number]): string {
  return vote.person ?? vote.identity;
}
