/**
 * Issuing credentials: contextual access is decided before anything is signed.
 *
 *   identity × target labels × database × access level × time × source × reason × TTL
 *     ─► policy.decideAccess ─► allow (signed, key-bound, short-lived credential)
 *                             ├► review (an access request; approved → the same call issues)
 *                             └► deny (names the rule and how to ask)
 */
import { ed25519Thumbprint, issueCredential } from '../auth/credentials.js';
import type { BrokerKey } from '../auth/broker-tokens.js';
import { decideAccess } from '../policy/decide.js';
import type { Policy } from '../policy/types.js';
import type { ApprovalRequest, AuditLog, Store } from '../store/store.js';
import { DeniedError, NotFoundError, UsageError } from '../shared/errors.js';
import type { AccessLevel, Identity, TargetInfo } from '../shared/types.js';
import { ACCESS_LEVELS } from '../shared/types.js';
import type { AccessPending, CredentialRequest, CredentialResponse, InfoResponse } from './api-types.js';
import type { Approvals } from './approvals.js';
import { auditIdentity } from './audit-identity.js';
import { targetNamed, type TargetConfig } from './config.js';

export interface AccessDeps {
  targets: Record<string, TargetConfig>;
  policy: () => Policy;
  store: Store;
  audit: AuditLog;
  approvals: Approvals;
  brokerKey: BrokerKey;
  gateway: () => InfoResponse['gateway'];
  ttl: { defaultMs: number; maxMs: number };
  now?: () => number;
}

export function targetInfo(name: string, t: TargetConfig): TargetInfo & { protected: boolean } {
  return { name, engine: t.engine, labels: t.labels, database: t.database, protected: t.protected };
}

/** An agent session acts for the human who starts it; policy and audit see both. */
export function agentIdentity(human: Identity, agent: string): Identity {
  if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(agent)) throw new UsageError(`--agent must be a short name (letters, digits, . _ -), got "${agent}"`);
  return {
    id: `agent:${agent}@${human.id}`,
    kind: 'agent',
    groups: human.groups,
    source: human.source,
    name: agent,
    onBehalfOf: { id: human.id, kind: human.kind, groups: human.groups },
    ...(human.issuer ? { issuer: human.issuer } : {}),
  };
}

export async function requestCredential(d: AccessDeps, caller: Identity, req: CredentialRequest & { requestId?: string }, sourceIp: string): Promise<CredentialResponse | AccessPending> {
  const now = (d.now ?? Date.now)();
  const t = targetNamed(d.targets, req.target);
  if (!t) {
    throw new NotFoundError('target-not-found', `dbgov: there is no target "${req.target}"`, { actions: ['list the targets you may use with `dbgov targets`'] });
  }
  const database = req.database ?? t.database;
  if (!t.databases.includes(database)) {
    throw new DeniedError('database-not-allowed', `dbgov: target ${req.target} does not serve database "${database}"`, {
      actions: [`use one of: ${t.databases.join(', ')} (\`dbgov connect ${req.target} --database ${t.databases[0]}\`)`],
    });
  }
  const access: AccessLevel = req.access ?? 'read';
  if (!ACCESS_LEVELS.includes(access)) throw new UsageError(`--access must be one of ${ACCESS_LEVELS.join(', ')}`);
  const identity = req.agent ? agentIdentity(caller, req.agent) : caller;
  const requestedTtl = req.ttlSeconds !== undefined ? req.ttlSeconds * 1000 : d.ttl.defaultMs;
  if (!(requestedTtl > 0)) throw new UsageError('--ttl must be positive');
  const ttlMs = Math.min(requestedTtl, d.ttl.maxMs);
  const thumbprint = await ed25519Thumbprint(req.publicKey as Parameters<typeof ed25519Thumbprint>[0]);

  const decision = decideAccess(d.policy(), {
    identity,
    target: targetInfo(req.target, t),
    database,
    access,
    ttlMs,
    ...(req.reason ? { reason: req.reason } : {}),
    sourceIp,
    now,
  });
  const base = { identity: auditIdentity(identity), target: req.target, database, sessionId: null, access } as const;

  const issue = async (cappedTtl: number, viaRequest?: ApprovalRequest): Promise<CredentialResponse> => {
    const { record, token } = await issueCredential(
      { identity, target: req.target, database, access, ttlMs: cappedTtl, keyThumbprint: thumbprint, ...(req.reason ? { reason: req.reason } : {}), now },
      d.brokerKey,
    );
    await d.store.putCredential(record);
    d.audit.appendSync({
      ...base,
      kind: 'credential.issued',
      detail: { credentialId: record.id, expiresAt: new Date(record.expiresAt).toISOString(), ttlMs: cappedTtl, rule: decision.rule, reason: req.reason ?? null, sourceIp, ...(viaRequest ? { requestId: viaRequest.id } : {}) },
    });
    return {
      status: 'issued',
      credential: { id: record.id, token, target: req.target, engine: t.engine, database, access, identity, expiresAt: record.expiresAt },
      gateway: d.gateway(),
    };
  };

  switch (decision.action) {
    case 'allow':
      return issue(decision.maxTtlMs === null ? ttlMs : Math.min(ttlMs, decision.maxTtlMs));
    case 'deny':
      d.audit.appendSync({ ...base, kind: 'credential.denied', detail: { rule: decision.rule, message: decision.message, sourceIp } });
      // Already on the record as credential.denied: the API does not write it twice.
      throw new DeniedError('access-denied', decision.message, { actions: [decision.hint].filter(Boolean), detail: { rule: decision.rule, audited: true } });
    case 'review': {
      // Just-in-time elevation: an approved request for this exact ask is spent here, once.
      if (req.requestId) {
        const r = await d.approvals.get(req.requestId);
        // The approvers saw one identity, target, database and level: any other ask is not what they approved.
        if (r.type !== 'access' || r.requester.id !== identity.id || r.target !== req.target || r.database !== database || r.access?.level !== access) {
          throw new DeniedError('request-mismatch', `dbgov: request ${req.requestId} is not an access request for this identity, target, database and level`, { actions: [`ask again: \`dbgov connect ${req.target} --access ${access} --reason …\``] });
        }
        if (r.status === 'pending') return { status: 'pending', requestId: r.id, rule: r.rule, message: `waiting for approval of request ${r.id}` };
        // An approval buys one credential; spending it twice is a refusal, not another wait.
        if (r.status === 'used') throw new DeniedError('request-used', `dbgov: request ${r.id} was already used`, { actions: [`ask again: \`dbgov connect ${req.target} --access ${access} --reason …\``] });
        if (r.status !== 'approved') return { status: r.status === 'denied' || r.status === 'cancelled' ? 'denied' : 'expired', requestId: r.id, rule: r.rule, message: `request ${r.id} is ${r.status}` };
        let won = false;
        await d.store.updateRequest(r.id, (cur) => {
          if (cur.status !== 'approved') return cur;
          won = true;
          return { ...cur, status: 'used' };
        });
        if (!won) throw new DeniedError('request-used', `dbgov: request ${r.id} was already used`, { actions: [`ask again: \`dbgov connect ${req.target} --access ${access} --reason …\``] });
        // The elevation expires on its own: the credential lives no longer than what was approved.
        return issue(Math.min(ttlMs, r.access?.ttlMs ?? ttlMs, decision.maxTtlMs ?? Infinity), r);
      }
      const r = await d.approvals.createAccessRequest({
        requester: identity,
        target: req.target,
        database,
        ...(req.reason ? { reason: req.reason } : {}),
        level: access,
        ttlMs: decision.maxTtlMs === null ? ttlMs : Math.min(ttlMs, decision.maxTtlMs),
        rule: decision.rule,
        approvers: decision.approvers ?? d.policy().approvers,
        expiresMs: decision.expiresMs ?? 30 * 60_000,
      });
      return { status: 'pending', requestId: r.id, rule: decision.rule, message: decision.message || `access ${access} to ${req.target} needs approval` };
    }
    default: {
      const never: never = decision.action;
      throw new Error(`unhandled access action ${String(never)}`);
    }
  }
}
