/**
 * Approvals: statements held for review and just-in-time access elevation share one request
 * model, one set of approver rules (groups, quorum, no self-approval) and one audit trail.
 *
 * Requests live in the store, so an approval given on one broker releases a statement held on
 * another: waiters listen to `store.watch` and re-read the request on every change.
 */
import { createHash } from 'node:crypto';
import type { AuditLog, ApprovalRequest, Store } from '../store/store.js';
import type { ApprovalView } from './api-types.js';
import { canApprove, tally, voterOf } from '../policy/approvals.js';
import type { Approvers } from '../policy/types.js';
import { DbgovError, DeniedError, ExitCodes, NotFoundError } from '../shared/errors.js';
import { shortId } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { AccessLevel, Identity } from '../shared/types.js';
import { auditIdentity } from './audit-identity.js';

export type WaitOutcome = 'approved' | 'denied' | 'timeout';

export interface NewStatementRequest {
  id?: string;
  requester: Identity;
  target: string;
  database: string;
  sessionId: string;
  reason?: string;
  sql: string;
  redacted: string;
  fingerprint: string;
  kind: string;
  tables: string[];
  estimatedRows: number | null;
  rule: string;
  approvers: Approvers;
  expiresMs: number;
  windowMs: number;
}

export interface NewAccessRequest {
  requester: Identity;
  target: string;
  database: string;
  reason?: string;
  level: AccessLevel;
  ttlMs: number;
  rule: string;
  approvers: Approvers;
  expiresMs: number;
}

/** Statement approvals match a re-run by the exact text, never by fingerprint alone. */
export function sqlHash(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

export class Approvals {
  /** Service accounts' owners (dbgov.yaml and API-created), so nobody approves through an identity they own. */
  owners: (identityId: string) => Promise<string | undefined> = async () => undefined;
  onRequest: (r: ApprovalRequest) => void = () => undefined;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async createStatementRequest(n: NewStatementRequest): Promise<ApprovalRequest> {
    const at = this.now();
    const r: ApprovalRequest = {
      id: n.id ?? shortId(8),
      type: 'statement',
      status: 'pending',
      requester: n.requester,
      target: n.target,
      database: n.database,
      sessionId: n.sessionId,
      ...(n.reason ? { reason: n.reason } : {}),
      statement: { text: n.redacted, fingerprint: n.fingerprint, sqlHash: sqlHash(n.sql), kind: n.kind, tables: n.tables, estimatedRows: n.estimatedRows },
      rule: n.rule,
      approvers: n.approvers,
      votes: [],
      createdAt: at,
      expiresAt: at + n.expiresMs,
      windowEndsAt: at + n.expiresMs + n.windowMs,
    };
    await this.store.putRequest(r);
    this.audit.appendSync({
      kind: 'approval.requested',
      identity: auditIdentity(n.requester),
      target: n.target,
      database: n.database,
      sessionId: n.sessionId,
      detail: { requestId: r.id, type: 'statement', rule: n.rule, fingerprint: n.fingerprint, approvers: n.approvers },
    });
    this.onRequest(r);
    return r;
  }

  async createAccessRequest(n: NewAccessRequest): Promise<ApprovalRequest> {
    const at = this.now();
    const r: ApprovalRequest = {
      id: shortId(8),
      type: 'access',
      status: 'pending',
      requester: n.requester,
      target: n.target,
      database: n.database,
      ...(n.reason ? { reason: n.reason } : {}),
      access: { level: n.level, ttlMs: n.ttlMs },
      rule: n.rule,
      approvers: n.approvers,
      votes: [],
      createdAt: at,
      expiresAt: at + n.expiresMs,
    };
    await this.store.putRequest(r);
    this.audit.appendSync({
      kind: 'access.requested',
      identity: auditIdentity(n.requester),
      target: n.target,
      database: n.database,
      sessionId: null,
      access: n.level,
      detail: { requestId: r.id, rule: n.rule, ttlMs: n.ttlMs, reason: n.reason ?? null },
    });
    this.onRequest(r);
    return r;
  }

  async get(id: string): Promise<ApprovalRequest> {
    const r = await this.store.getRequest(id);
    if (!r) throw new NotFoundError('request-not-found', `dbgov: no request ${id}`, { actions: ['list open requests with `dbgov requests`'] });
    return this.expire(r);
  }

  async list(status?: ApprovalRequest['status']): Promise<ApprovalRequest[]> {
    const all = await this.store.listRequests(status === 'pending' ? { status: 'pending' } : {});
    const out: ApprovalRequest[] = [];
    for (const r of all) {
      const cur = await this.expire(r);
      if (!status || cur.status === status) out.push(cur);
    }
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  /** One vote. Enforces approver groups, no self-approval, one vote each, quorum. */
  async vote(id: string, voter: Identity, decision: 'approve' | 'deny', comment?: string): Promise<ApprovalRequest> {
    // Every refused vote is on the record under the voter: a vote on a closed or unknown request
    // is how someone probes for ids or tries to revive a denied one.
    const refuse = (r: ApprovalRequest | undefined, reason: string, err: DbgovError): never => {
      this.audit.appendSync({
        kind: 'approval.vote',
        identity: auditIdentity(voter),
        target: r?.target ?? null,
        database: r?.database ?? null,
        sessionId: null,
        detail: { requestId: id, decision, refused: reason },
      });
      throw new DbgovError(err.code, err.message, { exitCode: err.exitCode, actions: err.actions, detail: { ...(err.detail ?? {}), audited: true } });
    };
    let current: ApprovalRequest;
    try {
      current = await this.get(id);
    } catch (e) {
      if (e instanceof NotFoundError) return refuse(undefined, 'no such request', e);
      throw e;
    }
    if (current.status !== 'pending') {
      return refuse(current, `request is ${current.status}`, new DbgovError('request-closed', `dbgov: request ${id} is already ${current.status}`, { exitCode: ExitCodes.conflict, actions: ['list open requests with `dbgov requests`'] }));
    }
    // Owners of the requester and of whoever it acts for: an agent run for one's own service
    // account is still one's own request.
    const owners = new Map<string, string>();
    for (const principal of [current.requester.id, current.requester.onBehalfOf?.id]) {
      const owner = principal === undefined ? undefined : await this.owners(principal);
      if (principal !== undefined && owner) owners.set(principal, owner);
    }
    // …and the voter's owner: a service account votes for the person who owns it.
    const person = await this.owners(voter.id);
    if (person) owners.set(voter.id, person);
    const check = canApprove(current, voter, { owners, now: this.now() });
    if (!check.ok) {
      return refuse(
        current,
        check.reason,
        new DeniedError('approval-not-allowed', `dbgov: you cannot ${decision} request ${id}: ${check.reason}`, {
          actions: [`ask someone in ${current.approvers.groups.join(' or ') || 'the approver groups'} to run \`dbgov approve ${id}\``],
        }),
      );
    }
    const updated = await this.store.updateRequest(id, (r) => {
      if (r.status !== 'pending' || r.votes.some((v) => v.identity === voter.id || voterOf(v) === (person ?? voter.id))) return r;
      const votes = [...r.votes, { identity: voter.id, ...(person ? { person } : {}), decision, ...(comment ? { comment } : {}), at: this.now() }];
      const next = { ...r, votes };
      const outcome = tally(next);
      return outcome === 'pending' ? next : { ...next, status: outcome, decidedAt: this.now() };
    });
    this.audit.appendSync({
      kind: 'approval.vote',
      identity: auditIdentity(voter),
      target: updated.target,
      database: updated.database,
      sessionId: null,
      detail: { requestId: id, decision, comment: comment ?? null, votes: updated.votes.length, quorum: updated.approvers.quorum },
    });
    if (updated.status !== 'pending') {
      this.recordDecided(updated, { requestId: id, status: updated.status, by: updated.votes.map((v) => v.identity) });
    }
    return updated;
  }

  /** The `approval.decided` record of a request, under its requester. */
  private recordDecided(r: ApprovalRequest, detail: Record<string, unknown>): void {
    this.audit.appendSync({ kind: 'approval.decided', identity: auditIdentity(r.requester), target: r.target, database: r.database, sessionId: r.sessionId ?? null, detail });
  }

  /** Waits for a decision on a held statement, at most `holdMs`. */
  wait(id: string, holdMs: number): Promise<WaitOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (o: WaitOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unwatch();
        resolve(o);
      };
      const check = async (): Promise<void> => {
        try {
          const r = await this.store.getRequest(id);
          if (r?.status === 'approved') finish('approved');
          else if (r && r.status !== 'pending') finish(r.status === 'denied' ? 'denied' : 'timeout');
        } catch (e) {
          this.log.warn({ err: e, id }, 'approval wait: store read failed');
        }
      };
      const unwatch = this.store.watch((c) => {
        if (c.type === 'request' && c.id === id) void check();
      });
      const timer = setTimeout(() => finish('timeout'), holdMs);
      void check();
    });
  }

  /**
   * An approved statement runs once: either released on the session that waited, or re-run by
   * the same identity within the window. Returns the request it consumed, if any.
   */
  async consume(requester: Identity, target: string, database: string, sql: string, requestId?: string, sessionId?: string): Promise<ApprovalRequest | undefined> {
    const hash = sqlHash(sql);
    const candidates = requestId ? [await this.store.getRequest(requestId)] : await this.store.listRequests({ status: 'approved', type: 'statement' });
    const now = this.now();
    for (const r of candidates) {
      if (!r || r.status !== 'approved' || r.type !== 'statement') continue;
      // The approver saw one statement for one database: the same text elsewhere is another ask.
      if (r.requester.id !== requester.id || r.target !== target || r.database !== database || r.statement?.sqlHash !== hash) continue;
      if ((r.windowEndsAt ?? r.expiresAt) < now) continue;
      let won = false;
      await this.store.updateRequest(r.id, (cur) => {
        if (cur.status !== 'approved') return cur;
        won = true;
        return { ...cur, status: 'used' };
      });
      if (won) {
        this.audit.appendSync({
          kind: 'approval.released',
          identity: auditIdentity(requester),
          target,
          database: r.database,
          // The session it runs on: a re-run is usually not the one that asked.
          sessionId: sessionId ?? r.sessionId ?? null,
          detail: { requestId: r.id },
        });
        return r;
      }
    }
    return undefined;
  }

  /**
   * Revoking an identity closes what it still has open: a pending request, or an approval not yet
   * spent. Whoever holds that id next (a namesake service account, the same person logging in
   * again) asks again instead of spending what was approved for the revoked one.
   */
  async cancelFor(identityId: string, by: Identity): Promise<string[]> {
    const open = [...(await this.store.listRequests({ status: 'pending' })), ...(await this.store.listRequests({ status: 'approved' }))];
    const cancelled: string[] = [];
    for (const r of open) {
      if (r.requester.id !== identityId && r.requester.onBehalfOf?.id !== identityId) continue;
      let changed = false;
      await this.store.updateRequest(r.id, (cur) => {
        if (cur.status !== 'pending' && cur.status !== 'approved') return cur;
        changed = true;
        return { ...cur, status: 'cancelled', decidedAt: this.now() };
      });
      if (!changed) continue;
      cancelled.push(r.id);
      this.recordDecided(r, { requestId: r.id, status: 'cancelled', by: [by.id], reason: `identity ${identityId} was revoked` });
    }
    return cancelled;
  }

  view(r: ApprovalRequest): ApprovalView {
    return {
      id: r.id,
      type: r.type,
      status: r.status,
      requester: { id: r.requester.id, kind: r.requester.kind, groups: r.requester.groups, ...(r.requester.onBehalfOf ? { onBehalfOf: { id: r.requester.onBehalfOf.id } } : {}) },
      target: r.target,
      database: r.database,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.statement ? { sql: r.statement.text, tables: r.statement.tables, statementKind: r.statement.kind, estimatedRows: r.statement.estimatedRows ?? null } : {}),
      ...(r.access ? { access: r.access } : {}),
      rule: r.rule,
      approvers: r.approvers,
      votes: r.votes.map((v) => ({ identity: v.identity, decision: v.decision, ...(v.comment ? { comment: v.comment } : {}), at: new Date(v.at).toISOString() })),
      createdAt: new Date(r.createdAt).toISOString(),
      expiresAt: new Date(r.expiresAt).toISOString(),
    };
  }

  /** Pending past its expiry becomes expired (lazily, on read), and is audited once. */
  private async expire(r: ApprovalRequest): Promise<ApprovalRequest> {
    if (r.status !== 'pending' || r.expiresAt > this.now()) return r;
    let changed = false;
    const updated = await this.store.updateRequest(r.id, (cur) => {
      if (cur.status !== 'pending') return cur;
      changed = true;
      return { ...cur, status: 'expired', decidedAt: this.now() };
    });
    if (changed) {
      this.recordDecided(r, { requestId: r.id, status: 'expired' });
    }
    return updated;
  }
}
