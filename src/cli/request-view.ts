/** How an approval request reads in `dbgov requests`: everything an approver needs to decide. */
import type { ApprovalView } from '../broker/api-types.js';
import { plainStyle, relativeTime, type Style } from './render.js';

export function formatRequest(r: ApprovalView, now: number, style: Style = plainStyle): string {
  const approvals = r.votes.filter((v) => v.decision === 'approve').length;
  const expires = Date.parse(r.expiresAt);
  const status = r.status === 'pending' ? style.warn(r.status) : r.status === 'approved' ? style.ok(r.status) : style.bad(r.status);
  const head = `${style.bold(r.id)}  ${r.type}  ${status}  ${style.dim(r.status === 'pending' ? `expires ${relativeTime(expires, now)}` : `asked ${relativeTime(Date.parse(r.createdAt), now)}`)}`;
  const rows: [string, string | undefined][] = [
    ['requester', `${r.requester.id} (${r.requester.kind})${r.requester.onBehalfOf ? ` for ${r.requester.onBehalfOf.id}` : ''}${r.requester.groups.length ? style.dim(` · ${r.requester.groups.join(', ')}`) : ''}`],
    ['target', `${r.target} / ${r.database}`],
    ['reason', r.reason ?? style.dim('none given')],
    ['access', r.access ? `${r.access.level} for ${Math.round(r.access.ttlMs / 60_000)}m` : undefined],
    ['sql', r.sql === undefined ? undefined : `${r.statementKind ? `${style.dim(`[${r.statementKind}]`)} ` : ''}${r.sql}`],
    ['tables', r.tables?.length ? r.tables.join(', ') : undefined],
    ['rows', r.estimatedRows === undefined ? undefined : r.estimatedRows === null ? style.dim('unknown') : `~${r.estimatedRows} (estimated)`],
    ['rule', r.rule],
    ['votes', `${approvals}/${r.approvers.quorum} approvals${r.approvers.groups.length ? style.dim(` from ${r.approvers.groups.join(', ')}`) : ''}`],
  ];
  const lines = [head];
  for (const [label, value] of rows) if (value !== undefined) lines.push(`  ${style.dim(label.padEnd(9))}  ${value}`);
  for (const v of r.votes) {
    lines.push(`  ${' '.repeat(9)}  ${v.decision === 'approve' ? style.ok('✔') : style.bad('✖')} ${v.identity}${v.comment ? `: ${v.comment}` : ''} ${style.dim(relativeTime(Date.parse(v.at), now))}`);
  }
  if (r.status === 'pending') lines.push(`  ${style.accent(`→ dbgov approve ${r.id}`)}   ${style.accent(`dbgov deny ${r.id} --reason "…"`)}`);
  return lines.join('\n');
}

/** The one-line outcome after `approve` or `deny`. */
export function voteOutcome(r: ApprovalView): string {
  const approvals = r.votes.filter((v) => v.decision === 'approve').length;
  switch (r.status) {
    case 'approved':
      return r.type === 'statement' ? `request ${r.id} approved: the held statement is released` : `request ${r.id} approved: the requester's connection proceeds`;
    case 'denied':
      return `request ${r.id} denied`;
    case 'pending':
      return `vote recorded on ${r.id}: ${approvals}/${r.approvers.quorum} approvals, waiting for ${r.approvers.quorum - approvals} more`;
    default:
      return `request ${r.id} is ${r.status}`;
  }
}
