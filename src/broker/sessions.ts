/**
 * Live gateway sessions on this broker: who, where, since when, and the switch that ends them.
 * Revocation and credential expiry abort a session's signal; the engine then tells the client
 * why and closes both sides.
 */
import { EventEmitter } from 'node:events';
import type { ActivityEvent, SessionView } from './api-types.js';
import { AuthError, type DbgovError } from '../shared/errors.js';
import type { AccessLevel, Identity } from '../shared/types.js';

export interface LiveSession {
  id: string;
  identity: Identity;
  credentialId: string;
  target: string;
  database: string;
  access: AccessLevel;
  reason?: string;
  client: string;
  startedAt: number;
  expiresAt: number;
  statements: number;
  readonly controller: AbortController;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, LiveSession>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  /** Activity per credential, for the tunnel's live view. */
  readonly activity = new EventEmitter();

  constructor() {
    this.activity.setMaxListeners(0);
  }

  add(s: Omit<LiveSession, 'controller' | 'statements'>): LiveSession {
    const live: LiveSession = { ...s, statements: 0, controller: new AbortController() };
    this.sessions.set(s.id, live);
    const ms = Math.max(0, s.expiresAt - Date.now());
    // A credential's expiry ends the sessions it opened: short-lived means short-lived.
    const timer = setTimeout(
      () => this.abort(live, new AuthError('credential-expired', 'dbgov: session ended: the credential expired', { actions: [`run \`dbgov connect ${s.target}\` to get a new one`] })),
      Math.min(ms, 2 ** 31 - 1),
    );
    timer.unref();
    this.expiryTimers.set(s.id, timer);
    return live;
  }

  remove(id: string): void {
    this.sessions.delete(id);
    const t = this.expiryTimers.get(id);
    if (t) clearTimeout(t);
    this.expiryTimers.delete(id);
  }

  get(id: string): LiveSession | undefined {
    return this.sessions.get(id);
  }

  list(): LiveSession[] {
    return [...this.sessions.values()];
  }

  /** Ends matching sessions now. Returns their ids. */
  revoke(by: { sessionId?: string; credentialIds?: string[]; identity?: string }, reason: DbgovError): string[] {
    const ended: string[] = [];
    for (const s of this.sessions.values()) {
      const match =
        (by.sessionId !== undefined && s.id === by.sessionId) ||
        (by.credentialIds !== undefined && by.credentialIds.includes(s.credentialId)) ||
        (by.identity !== undefined && (s.identity.id === by.identity || s.identity.onBehalfOf?.id === by.identity));
      if (match) {
        this.abort(s, reason);
        ended.push(s.id);
      }
    }
    return ended;
  }

  /** Someone follows this credential's live view. */
  watching(credentialId: string): boolean {
    return this.activity.listenerCount(credentialId) > 0;
  }

  emitActivity(credentialId: string, ev: ActivityEvent): void {
    if (this.activity.listenerCount(credentialId) > 0) this.activity.emit(credentialId, ev);
  }

  view(s: LiveSession): SessionView {
    return {
      id: s.id,
      identity: { id: s.identity.id, kind: s.identity.kind },
      target: s.target,
      database: s.database,
      credentialId: s.credentialId,
      startedAt: new Date(s.startedAt).toISOString(),
      statements: s.statements,
      client: s.client,
    };
  }

  abortAll(reason: DbgovError): void {
    for (const s of this.sessions.values()) this.abort(s, reason);
  }

  private abort(s: LiveSession, reason: DbgovError): void {
    if (!s.controller.signal.aborted) s.controller.abort(reason);
  }
}
