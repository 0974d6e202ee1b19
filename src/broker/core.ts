/**
 * The broker's services in one place, shared by the HTTP API and the gateway listener.
 * Built by startBroker (broker.ts); nothing in here listens on a socket.
 */
import { decodeJwt } from 'jose';
import type { Duplex } from 'node:stream';
import { createAuthenticator, type Authenticator } from '../auth/authenticator.js';
import type { BrokerKey } from '../auth/broker-tokens.js';
import { verifyCredential, type TunnelHello } from '../auth/credentials.js';
import type { OidcVerifier } from '../auth/oidc-verify.js';
import type { WorkloadVerifier } from '../auth/workload.js';
import type { Engine, SessionContext } from '../gateway/engine.js';
import type { Policy } from '../policy/types.js';
import type { EmbeddedStore } from '../store/embedded.js';
import type { ServiceAccountRecord } from '../store/store.js';
import { AuthError, DbgovError, ExitCodes, NotFoundError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { EngineName, Identity } from '../shared/types.js';
import { targetInfo, type AccessDeps } from './access.js';
import type { ExchangeRequest, ExchangeResponse, InfoResponse, RevokeResponse } from './api-types.js';
import { Approvals } from './approvals.js';
import { AuditBatcher } from './audit-batcher.js';
import { auditIdentity } from './audit-identity.js';
import { targetNamed, type DbgovConfig } from './config.js';
import type { AuthorizedSession } from './gateway-listener.js';
import type { GatewayTls } from './gateway-tls.js';
import { SessionRegistry } from './sessions.js';
import { createStatementHooks } from './statement-hooks.js';
import type { TargetRuntime } from './target-runtime.js';
import type { RoleManager } from './roles.js';

export const VERSION = '0.1.0';

export interface CoreDeps {
  config: DbgovConfig;
  store: EmbeddedStore;
  brokerKey: BrokerKey;
  tls: GatewayTls;
  policy: Policy;
  engines: Record<EngineName, Engine>;
  targets: Map<string, TargetRuntime>;
  oidc: { issuer: string; clientId: string; scopes: string[]; verifier: OidcVerifier } | null;
  workload: WorkloadVerifier | null;
  configServiceAccounts: ServiceAccountRecord[];
  roles: RoleManager;
  log: Logger;
  /** Where time comes from for credential checks (tests move it). */
  clock?: Clock;
}

export class BrokerCore {
  readonly config: DbgovConfig;
  readonly store: EmbeddedStore;
  readonly approvals: Approvals;
  readonly sessions = new SessionRegistry();
  readonly configServiceAccounts: ServiceAccountRecord[];
  /** Filled in once the gateway is listening (its port may be 0 in config). */
  gatewayAddress: { host: string; port: number } = { host: '127.0.0.1', port: 0 };
  private readonly log: Logger;
  private currentPolicy: Policy;
  private readonly auth: Authenticator;
  /** One group-commit batcher for every session on this broker. */
  private readonly batcher: AuditBatcher;
  private unwatch: () => void = () => undefined;

  constructor(private readonly d: CoreDeps) {
    this.config = d.config;
    this.store = d.store;
    this.log = d.log;
    this.currentPolicy = d.policy;
    this.configServiceAccounts = d.configServiceAccounts;
    this.auth = createAuthenticator({
      brokerKey: d.brokerKey,
      ...(d.oidc ? { oidc: d.oidc.verifier } : {}),
      ...(d.workload ? { workload: d.workload } : {}),
      serviceAccounts: d.configServiceAccounts,
      store: d.store,
    });
    this.approvals = new Approvals(d.store, d.store.audit, d.log);
    this.batcher = new AuditBatcher(d.store.audit, d.log);
    // API-created accounts record the admin who made them: they own it as much as a yaml owner.
    this.approvals.owners = async (id) => this.configServiceAccounts.find((a) => a.id === id)?.owner ?? (await d.store.listServiceAccounts()).find((a) => a.id === id)?.owner;
    // Revocations made on another broker sharing the store reach live sessions here.
    this.unwatch = d.store.watch((c) => {
      if (c.type !== 'credential') return;
      void d.store.getCredential(c.id).then((cred) => {
        if (cred?.revokedAt !== undefined) this.sessions.revoke({ credentialIds: [cred.id] }, revokedError(cred.target));
      });
    });
  }

  policy(): Policy {
    return this.currentPolicy;
  }

  info(): InfoResponse {
    return {
      version: VERSION,
      brokerId: this.config.broker.id,
      oidc: this.d.oidc ? { issuer: this.d.oidc.issuer, clientId: this.d.oidc.clientId, scopes: this.d.oidc.scopes } : null,
      gateway: this.gatewayView(),
      auditPublicKeyPem: this.store.publicKeyPem(),
    };
  }

  gatewayView(): InfoResponse['gateway'] {
    const pub = this.config.broker.gatewayPublic;
    const port = pub.port === 0 || pub.port === this.config.broker.gateway.port ? this.gatewayAddress.port : pub.port;
    return { host: pub.host, port, certFingerprint256: this.d.tls.fingerprint256 };
  }

  /** The id checkpoints name their signing key by (not the broker token key's kid). */
  auditKeyId(): string {
    return this.store.audit.publicKeyId;
  }

  accessDeps(): AccessDeps {
    return {
      targets: this.config.targets,
      policy: () => this.currentPolicy,
      store: this.store,
      audit: this.store.audit,
      approvals: this.approvals,
      brokerKey: this.d.brokerKey,
      gateway: () => this.gatewayView(),
      ttl: this.config.broker.credentialTtl,
      now: () => (this.d.clock ?? systemClock).now(),
    };
  }

  /** Bearer token → identity: a service-account token, or a broker access token. */
  async authenticate(token: string): Promise<Identity> {
    return (await this.auth.authenticate(`Bearer ${token}`)).identity;
  }

  /** Login: an ID token (SSO or workload) for a broker access token. Audited either way. */
  async exchange(body: ExchangeRequest, ip: string): Promise<ExchangeResponse> {
    try {
      const out = await this.auth.exchange(body);
      this.store.audit.appendSync({ kind: 'login', identity: auditIdentity(out.identity), target: null, database: null, sessionId: null, detail: { grant: body.grant, source: out.identity.source, issuer: out.identity.issuer ?? null, ip } });
      return out;
    } catch (e) {
      const err = e instanceof DbgovError ? e : new AuthError('login-failed', 'dbgov: login failed', { cause: e });
      // Nobody is authenticated here: what the caller sent is recorded only in bounded form.
      const grant = body.grant === 'oidc' || body.grant === 'workload' ? body.grant : 'unknown';
      this.store.audit.appendSync({ kind: 'login.failed', identity: null, target: null, database: null, sessionId: null, detail: { grant, code: err.code, message: clip(err.message), ip } });
      throw err;
    }
  }

  async revoke(caller: Identity, by: { credentialId?: string; identity?: string; sessionId?: string }): Promise<RevokeResponse> {
    const privileged = caller.kind !== 'agent' && caller.groups.some((g) => ['admins', 'dbgov-admins', ...this.currentPolicy.approvers.groups].includes(g));
    const owns = (holder: Identity): boolean => privileged || holder.id === caller.id || holder.onBehalfOf?.id === caller.id;
    // Everything is checked before anything is revoked. A session or credential the caller may
    // not revoke is answered as not found: ids are guessable, and must not end other people's work.
    const session = by.sessionId !== undefined ? this.sessions.get(by.sessionId) : undefined;
    if (by.sessionId !== undefined && (!session || !owns(session.identity))) {
      throw refusedAsNotFound('session-not-found', `dbgov: no live session ${by.sessionId} of yours on this broker`, 'list your sessions with `dbgov sessions`');
    }
    const credential = by.credentialId !== undefined ? await this.store.getCredential(by.credentialId) : undefined;
    if (by.credentialId !== undefined && (!credential || !owns(credential.identity))) {
      throw refusedAsNotFound('credential-not-found', `dbgov: no credential ${by.credentialId} of yours`, 'list your sessions and their credentials with `dbgov sessions`');
    }
    if (by.identity !== undefined && !privileged && by.identity !== caller.id) {
      throw new AuthError('forbidden', 'dbgov: only admins and approvers may revoke another identity', { exitCode: ExitCodes.denied, actions: ['ask an admin'] });
    }
    const now = Date.now();
    const credentialIds: string[] = [];
    if (session) credentialIds.push(...(await this.store.revokeCredentials({ credentialId: session.credentialId }, caller.id, now)).map((c) => c.id));
    if (credential) credentialIds.push(...(await this.store.revokeCredentials({ credentialId: credential.id }, caller.id, now)).map((c) => c.id));
    if (by.identity !== undefined) {
      credentialIds.push(...(await this.store.revokeCredentials({ identity: by.identity }, caller.id, now)).map((x) => x.id));
      // The identity's broker logins go too, or a stolen one mints a new credential at once.
      await this.store.revokeTokens(by.identity, now, caller.id);
    }
    const sessionIds = this.sessions.revoke({ credentialIds, ...(by.identity ? { identity: by.identity } : {}), ...(session ? { sessionId: session.id } : {}) }, revokedError());
    this.store.audit.appendSync({ kind: 'credential.revoked', identity: auditIdentity(caller), target: null, database: null, sessionId: null, detail: { by, credentials: credentialIds, sessions: sessionIds, ...(by.identity !== undefined ? { tokensRevokedBefore: new Date(now).toISOString() } : {}) } });
    // After the revocation record: the cancellations it causes follow it in the log.
    if (by.identity !== undefined) await this.approvals.cancelFor(by.identity, caller);
    return { credentials: [...new Set(credentialIds)], sessions: sessionIds };
  }

  /** Gateway: verify the tunnel's credential and proof, then open a governed session. */
  async authorize(hello: TunnelHello, binding: Buffer, remote: string): Promise<AuthorizedSession> {
    let record;
    try {
      record = await verifyCredential(hello.credential, hello, binding, { brokerPublicKey: this.d.brokerKey.publicKey, now: (this.d.clock ?? systemClock).now(), lookup: (id) => this.store.getCredential(id) });
    } catch (e) {
      // Only to pick the protocol the refusal is spoken in; nothing here is trusted.
      const engine = this.targetEngineHint(hello.credential);
      if (e instanceof DbgovError) throw new DbgovError(e.code, e.message, { exitCode: e.exitCode, actions: e.actions, detail: { ...(e.detail ?? {}), ...(engine ? { engine } : {}) } });
      throw e;
    }
    const t = targetNamed(this.config.targets, record.target);
    const runtime = this.d.targets.get(record.target);
    if (!t || !runtime) throw new AuthError('target-gone', `dbgov: target ${record.target} is no longer configured`, { actions: ['run `dbgov targets`'] });
    const sessionId = newId('ses');
    const live = this.sessions.add({
      id: sessionId,
      identity: record.identity,
      credentialId: record.id,
      target: record.target,
      database: record.database,
      access: record.access,
      ...(record.reason ? { reason: record.reason } : {}),
      client: remote,
      startedAt: Date.now(),
      expiresAt: record.expiresAt,
    });
    const log = this.log.child({ session: sessionId, identity: record.identity.id, target: record.target });
    const ident = auditIdentity(record.identity);
    const engine = this.d.engines[t.engine];
    return {
      engine: t.engine,
      serve: async (client: Duplex) => {
        let upstream;
        try {
          upstream = await this.d.roles.upstreamFor(record.target, t, live);
        } catch (e) {
          this.sessions.remove(sessionId);
          const err = e instanceof DbgovError ? e : new DbgovError('upstream-role', 'dbgov: could not prepare the database role for this session', { cause: e, actions: ['try again; if it persists, tell your platform team'] });
          await engine.refuse(client, err, log);
          return;
        }
        const hooks = createStatementHooks({
          session: live,
          policy: () => this.currentPolicy,
          target: targetInfo(record.target, t),
          services: runtime,
          audit: this.store.audit,
          batcher: this.batcher,
          approvals: this.approvals,
          registry: this.sessions,
          holdMs: this.config.broker.approvalHoldMs,
          protocol: t.engine,
          log,
        });
        // A MySQL session starts in its credential's database: unqualified names resolve there.
        if (t.engine === 'mysql') hooks.state.params.set('database', record.database);
        this.store.audit.appendSync({ kind: 'session.start', identity: ident, target: record.target, database: record.database, sessionId, access: record.access, detail: { credentialId: record.id, client: remote, upstreamUser: upstream.user, reason: record.reason ?? null } });
        this.sessions.emitActivity(record.id, { time: new Date().toISOString(), sessionId, type: 'session.start' });
        const ctx: SessionContext = {
          sessionId,
          identity: record.identity,
          target: targetInfo(record.target, t),
          database: record.database,
          access: record.access,
          upstream,
          hooks,
          limits: { maxMessageBytes: this.config.broker.maxMessageBytes },
          signal: live.controller.signal,
          log,
        };
        const started = Date.now();
        try {
          await engine.serve(client, ctx);
        } finally {
          this.sessions.remove(sessionId);
          await this.d.roles.release(record.target, live).catch((e: unknown) => log.warn({ err: e }, 'role cleanup failed'));
          const reason = live.controller.signal.aborted ? String((live.controller.signal.reason as Error | undefined)?.message ?? 'aborted') : 'client closed';
          try {
            this.store.audit.appendSync({ kind: 'session.end', identity: ident, target: record.target, database: record.database, sessionId, detail: { statements: live.statements, durationMs: Date.now() - started, reason } });
          } catch (e) {
            log.error({ err: e }, 'audit session.end failed');
          }
          this.sessions.emitActivity(record.id, { time: new Date().toISOString(), sessionId, type: 'session.end', message: reason });
        }
      },
    };
  }

  refused(err: DbgovError, remote: string, engine: EngineName | undefined): void {
    // verifyCredential names the identity only once the key proof passed: a thief replaying a
    // copied credential is recorded as a claim on that credential, never as its owner.
    const { identity, credentialId, claimedIdentity } = (err.detail ?? {}) as { identity?: Identity; credentialId?: string; claimedIdentity?: string | null };
    try {
      this.store.audit.appendSync({
        kind: 'session.refused',
        identity: identity ? auditIdentity(identity) : null,
        target: null,
        database: null,
        sessionId: null,
        detail: { code: err.code, message: err.message, client: remote, engine: engine ?? null, ...(credentialId ? { credentialId, claimedIdentity: claimedIdentity ?? null } : {}) },
      });
    } catch (e) {
      this.log.error({ err: e }, 'audit session.refused failed');
    }
  }

  close(): void {
    this.batcher.flush();
    this.unwatch();
    this.sessions.abortAll(new DbgovError('broker-stopping', 'dbgov: the broker is shutting down', { actions: ['reconnect in a moment'] }));
  }

  private targetEngineHint(token: string): EngineName | undefined {
    try {
      const tgt = decodeJwt(token).tgt;
      return typeof tgt === 'string' ? targetNamed(this.config.targets, tgt)?.engine : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Caller-influenced text (claims, ids) in an audit record, cut to a size a log can carry. */
export function clip(text: string, max = 512): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** A refusal that must not confirm the thing exists; the API audits it as refused all the same. */
export function refusedAsNotFound(code: string, message: string, action: string): NotFoundError {
  return new NotFoundError(code, message, { actions: [action], detail: { refused: true } });
}

function revokedError(target?: string): AuthError {
  return new AuthError('credential-revoked', 'dbgov: session ended: the credential was revoked', { actions: [`ask why, then run \`dbgov connect ${target ?? '<target>'}\` if you still need access`] });
}
