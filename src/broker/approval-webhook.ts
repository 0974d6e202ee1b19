/**
 * Tells approvers a request is waiting: a Slack-compatible message (`text` + `blocks`, so a Slack
 * incoming webhook renders it as is) that carries the approve and deny commands, plus a `dbgov`
 * object for machines. Sent after the fact with retries; it never delays the held statement.
 */
import { createHmac } from 'node:crypto';
import type { ApprovalRequest } from '../store/store.js';
import type { Logger } from '../shared/logger.js';

export interface ApprovalWebhook {
  url: string;
  secret?: string;
}

export function approvalMessage(r: ApprovalRequest, brokerUrl: string): Record<string, unknown> {
  const approve = `dbgov approve ${r.id}`;
  const deny = `dbgov deny ${r.id} --reason "…"`;
  const who = r.requester.onBehalfOf ? `${r.requester.id} (${r.requester.kind}, for ${r.requester.onBehalfOf.id})` : `${r.requester.id} (${r.requester.kind})`;
  const what = r.type === 'statement' ? `${r.statement?.kind ?? 'a statement'} on ${r.statement?.tables.join(', ') || r.target}` : `${r.access?.level ?? ''} access to ${r.target}`;
  const text = `dbgov: approval needed (${r.id}): ${who} wants ${what} on ${r.target}/${r.database}. Approve: ${approve}`;
  const fields = [
    `*Requester*\n${who}`,
    `*Target*\n${r.target} / ${r.database}`,
    `*Rule*\n${r.rule}`,
    `*Approvers*\n${r.approvers.groups.join(', ')} (quorum ${r.approvers.quorum})`,
    ...(r.reason ? [`*Reason*\n${r.reason}`] : []),
    ...(r.statement?.estimatedRows !== undefined && r.statement.estimatedRows !== null ? [`*Estimated rows*\n${r.statement.estimatedRows}`] : []),
  ];
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `:lock: *Approval needed* \`${r.id}\` — ${who} wants ${what}` } },
      { type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: f })) },
      ...(r.statement ? [{ type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${r.statement.text}\`\`\`` } }] : []),
      { type: 'context', elements: [{ type: 'mrkdwn', text: `Approve: \`${approve}\` · Deny: \`${deny}\` · expires ${new Date(r.expiresAt).toISOString()} · DBGOV_BROKER=${brokerUrl}` }] },
    ],
    dbgov: {
      requestId: r.id,
      type: r.type,
      approve,
      deny,
      requester: { id: r.requester.id, kind: r.requester.kind, ...(r.requester.onBehalfOf ? { onBehalfOf: r.requester.onBehalfOf.id } : {}) },
      target: r.target,
      database: r.database,
      rule: r.rule,
      ...(r.statement ? { sql: r.statement.text, tables: r.statement.tables, estimatedRows: r.statement.estimatedRows ?? null } : {}),
      ...(r.access ? { access: r.access } : {}),
      expiresAt: new Date(r.expiresAt).toISOString(),
    },
  };
}

export function notifyApprovers(hook: ApprovalWebhook, r: ApprovalRequest, brokerUrl: string, log: Logger, attempts = 4): void {
  const body = JSON.stringify(approvalMessage(r, brokerUrl));
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (hook.secret) headers['x-dbgov-signature'] = `sha256=${createHmac('sha256', hook.secret).update(body).digest('hex')}`;
  const send = async (attempt: number): Promise<void> => {
    try {
      const res = await fetch(hook.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(5000) });
      if (res.ok) return;
      throw new Error(`HTTP ${res.status}`);
    } catch (e) {
      if (attempt + 1 >= attempts) {
        log.warn({ err: e, requestId: r.id }, 'approval webhook failed; approvers still see the request in `dbgov requests`');
        return;
      }
      await new Promise((res) => setTimeout(res, 250 * 2 ** attempt));
      return send(attempt + 1);
    }
  };
  void send(0);
}
