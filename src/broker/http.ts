/**
 * The broker's HTTP API (routes and bodies in api-types.ts). Fastify: schema-light JSON routes,
 * one error handler that turns DbgovError into `{error:{code,message,actions}}` with a status
 * from its class, and streaming responses for export and live activity.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AuditFilter, AuditKind, Decision } from '../audit/event.js';
import { AUDIT_KINDS } from '../audit/event.js';
import { exportAudit } from '../audit/export.js';
import { auditReport } from '../audit/report.js';
import { generateServiceAccountToken, hashServiceAccountToken } from '../auth/service-accounts.js';
import { AuthError, DbgovError, DeniedError, ExitCodes, NotFoundError, UsageError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { IDENTITY_KINDS, type Identity, type IdentityKind } from '../shared/types.js';
import { parseDuration } from '../shared/clock.js';
import type { ActivityEvent, CredentialRequest, ExchangeRequest, ServiceAccountView } from './api-types.js';
import type { ApprovalRequest, ServiceAccountRecord } from '../store/store.js';
import { auditIdentity } from './audit-identity.js';
import { clip, refusedAsNotFound, type BrokerCore } from './core.js';
import { requestCredential, targetInfo } from './access.js';
import { decideAccess } from '../policy/decide.js';
import { ACCESS_LEVELS } from '../shared/types.js';
import { BrokerMetrics } from './metrics.js';

const STATUS_BY_EXIT: Record<number, number> = {
  [ExitCodes.usage]: 400,
  [ExitCodes.auth]: 401,
  [ExitCodes.denied]: 403,
  [ExitCodes.notFound]: 404,
  [ExitCodes.conflict]: 409,
  [ExitCodes.unreachable]: 503,
  [ExitCodes.upstream]: 502,
  [ExitCodes.timeout]: 504,
};

/** Groups that may read everyone's audit trail and manage service accounts. */
const AUDITOR_GROUPS = ['auditors', 'admins', 'dbgov-admins'];
const ADMIN_GROUPS = ['admins', 'dbgov-admins'];
/** Groups that may scrape GET /metrics: a scraper's own group, and those who may read more. */
const METRICS_GROUPS = ['metrics', ...AUDITOR_GROUPS];

declare module 'fastify' {
  interface FastifyRequest {
    identity?: Identity;
  }
}

export function buildApi(core: BrokerCore, log: Logger): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    if (err instanceof DbgovError) {
      const status = STATUS_BY_EXIT[err.exitCode] ?? 500;
      auditRefusal(req, err, status);
      void reply.status(status).send({ error: { code: err.code, message: err.message, actions: err.actions } });
      return;
    }
    if (err.statusCode && err.statusCode < 500) {
      void reply.status(err.statusCode).send({ error: { code: 'bad-request', message: err.message, actions: [] } });
      return;
    }
    log.error({ err }, 'api handler failed');
    void reply.status(500).send({ error: { code: 'internal', message: 'dbgov: the broker hit an internal error', actions: ['try again; if it persists, check the broker log'] } });
  });

  /**
   * An authenticated caller refused (403, or a 404 that hides a refusal) leaves a record under
   * their identity: probing other people's sessions, requests or audit trail is itself evidence.
   * Refusals a module already audited in its own terms (a refused vote) are not written twice.
   */
  const auditRefusal = (req: FastifyRequest, err: DbgovError, status: number): void => {
    if (!req.identity || err.detail?.audited === true || (status !== 403 && err.detail?.refused !== true)) return;
    try {
      core.store.audit.appendSync({
        kind: 'api.refused',
        identity: auditIdentity(req.identity),
        target: null,
        database: null,
        sessionId: null,
        detail: { route: `${req.method} ${req.routeOptions.url ?? '?'}`, code: err.code, message: clip(err.message), ip: req.ip },
      });
    } catch (e) {
      log.error({ err: e }, 'audit api.refused failed');
    }
  };

  const authed = async (req: FastifyRequest): Promise<Identity> => {
    const h = req.headers.authorization;
    if (!h?.startsWith('Bearer ')) {
      throw new AuthError('not-logged-in', 'dbgov: not logged in', { actions: ['run `dbgov login`, or set DBGOV_TOKEN to a service-account token'] });
    }
    const identity = await core.authenticate(h.slice(7).trim());
    req.identity = identity;
    return identity;
  };

  app.get('/healthz', async () => ({ ok: true }));

  /**
   * Prometheus metrics (see metrics.ts), for the `metrics` group (a scrape job's service account
   * needs nothing else: not the audit trail, not a database) and for auditors and admins. The
   * job sends the token as a bearer (`authorization: { credentials_file: … }`).
   */
  const metrics = new BrokerMetrics({ log: core.store.audit, sessions: () => core.sessions.list(), pendingRequests: () => core.approvals.list('pending') });
  app.get('/metrics', async (req, reply) => {
    const identity = await authed(req);
    requireGroup(identity, METRICS_GROUPS, 'read the broker metrics');
    const text = await metrics.render();
    return reply.type(metrics.contentType).send(text);
  });

  app.get('/v1/info', async () => core.info());

  app.post('/v1/auth/exchange', async (req) => {
    const body = req.body as ExchangeRequest;
    if (!isPlainObject(body) || typeof body.idToken !== 'string') throw new UsageError('idToken is required');
    return core.exchange(body, req.ip);
  });

  app.get('/v1/whoami', async (req) => {
    const identity = await authed(req);
    return { identity, expiresAt: null };
  });

  app.get('/v1/targets', async (req) => {
    const identity = await authed(req);
    const targets = Object.entries(core.config.targets).map(([name, t]) => ({
      name,
      engine: t.engine,
      labels: t.labels,
      database: t.database,
      access: ACCESS_LEVELS.map((level) => {
        const d = decideAccess(core.policy(), { identity, target: targetInfo(name, t), database: t.database, access: level, ttlMs: core.config.broker.credentialTtl.defaultMs, sourceIp: req.ip, now: Date.now() });
        return { level, allowed: d.action !== 'deny', requiresApproval: d.action === 'review', rule: d.rule };
      }),
    }));
    return { targets };
  });

  app.post('/v1/credentials', async (req, reply) => {
    const identity = await authed(req);
    const body = req.body as CredentialRequest;
    if (!isPlainObject(body) || typeof body.target !== 'string' || !isPlainObject(body.publicKey)) throw new UsageError('target and publicKey are required');
    // Every optional field has one type: a string where a number belongs (or an object where a
    // name belongs) would otherwise be coerced somewhere downstream, differently in each place.
    for (const name of ['database', 'access', 'reason', 'agent', 'requestId'] as const) {
      if (body[name] !== undefined && typeof body[name] !== 'string') throw new UsageError(`${name} must be a string`);
    }
    if (body.ttlSeconds !== undefined && (typeof body.ttlSeconds !== 'number' || !Number.isFinite(body.ttlSeconds))) throw new UsageError('ttlSeconds must be a number of seconds');
    const out = await requestCredential(core.accessDeps(), identity, body, req.ip);
    return reply.status(out.status === 'issued' ? 201 : 202).send(out);
  });

  app.get('/v1/access-requests/:id', async (req) => {
    const identity = await authed(req);
    const r = await core.approvals.get((req.params as { id: string }).id);
    if (r.requester.id !== identity.id && r.requester.onBehalfOf?.id !== identity.id) throw refusedAsNotFound('request-not-found', 'dbgov: no such access request', 'list your requests with `dbgov requests`');
    // A request cancelled (its identity was revoked) is over for the waiting CLI, as a denied one is.
    return { status: r.status === 'used' ? 'approved' : r.status === 'cancelled' ? 'denied' : r.status, requestId: r.id, rule: r.rule, message: `request ${r.id} is ${r.status}` };
  });

  app.post('/v1/revoke', async (req) => {
    const identity = await authed(req);
    const body = (req.body ?? {}) as { credentialId?: string; identity?: string; sessionId?: string };
    if (!body.credentialId && !body.identity && !body.sessionId) throw new UsageError('say what to revoke: --credential, --identity or --session');
    return core.revoke(identity, body);
  });

  app.get('/v1/activity', async (req, reply) => {
    const identity = await authed(req);
    const credentialId = queryOf(req).credential;
    if (!credentialId) throw new UsageError('credential is required');
    const cred = await core.store.getCredential(credentialId);
    // Live activity shows statement shapes: only the credential's owner may watch it.
    if (!cred || (cred.identity.id !== identity.id && cred.identity.onBehalfOf?.id !== identity.id)) throw refusedAsNotFound('credential-not-found', 'dbgov: no such credential', 'run `dbgov connect <target>` to follow your own session');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': dbgov activity\n\n');
    const send = (ev: ActivityEvent): void => {
      res.write(`data: ${JSON.stringify(ev)}\n\n`);
    };
    core.sessions.activity.on(credentialId, send);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.raw.on('close', () => {
      clearInterval(ping);
      core.sessions.activity.off(credentialId, send);
    });
  });

  /**
   * A request shows who wants what, on which tables, and why: its requester, the people who may
   * vote on it, auditors and admins see it; other developers do not.
   */
  const maySee = (identity: Identity, r: ApprovalRequest): boolean =>
    r.requester.id === identity.id || r.requester.onBehalfOf?.id === identity.id || isIn(identity, AUDITOR_GROUPS) || isIn(identity, r.approvers.groups) || isIn(identity, core.policy().approvers.groups);

  app.get('/v1/requests', async (req) => {
    const identity = await authed(req);
    const status = queryOf(req).status;
    const list = await core.approvals.list(status === 'all' ? undefined : ((status ?? 'pending') as 'pending'));
    return { requests: list.filter((r) => maySee(identity, r)).map((r) => core.approvals.view(r)) };
  });

  app.get('/v1/requests/:id', async (req) => {
    const identity = await authed(req);
    const id = (req.params as { id: string }).id;
    const r = await core.approvals.get(id);
    if (!maySee(identity, r)) throw refusedAsNotFound('request-not-found', `dbgov: no request ${id}`, 'list open requests with `dbgov requests`');
    return core.approvals.view(r);
  });

  app.post('/v1/requests/:id/approve', async (req) => {
    const identity = await authed(req);
    const body = (req.body ?? {}) as { comment?: string };
    return core.approvals.view(await core.approvals.vote((req.params as { id: string }).id, identity, 'approve', body.comment));
  });

  app.post('/v1/requests/:id/deny', async (req) => {
    const identity = await authed(req);
    const body = (req.body ?? {}) as { reason?: string };
    if (!body.reason) throw new UsageError('a reason is required to deny: --reason "…"');
    return core.approvals.view(await core.approvals.vote((req.params as { id: string }).id, identity, 'deny', body.reason));
  });

  app.get('/v1/audit/events', async (req) => {
    const identity = await authed(req);
    const q = queryOf(req);
    const filter = auditFilterFrom(q, identity);
    const limit = Math.min(Math.max(Number(q.limit ?? 50) || 50, 1), 1000);
    return core.store.audit.search(filter, { limit, ...(q.cursor ? { cursor: q.cursor } : {}) });
  });

  app.get('/v1/audit/export', async (req, reply) => {
    const identity = await authed(req);
    const q = queryOf(req);
    const format = (q.format ?? 'jsonl') as 'jsonl' | 'csv' | 'ocsf';
    if (!['jsonl', 'csv', 'ocsf'].includes(format)) throw new UsageError('--format must be jsonl, csv or ocsf');
    const filter = auditFilterFrom(q, identity);
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': format === 'csv' ? 'text/csv' : 'application/x-ndjson' });
    try {
      await exportAudit(core.store, filter, format, reply.raw);
    } catch (e) {
      log.error({ err: e }, 'audit export failed mid-stream');
    }
    reply.raw.end();
  });

  app.get('/v1/audit/report', async (req, reply) => {
    const identity = await authed(req);
    requireGroup(identity, AUDITOR_GROUPS, 'read the audit report');
    const q = queryOf(req);
    const format = (q.format ?? 'md') as 'md' | 'html' | 'json';
    const since = parseTime(q.since ?? '30d', 'since');
    const until = q.until ? parseTime(q.until, 'until') : Date.now();
    const body = await auditReport(core.store, { since, until }, format);
    return reply.type(format === 'html' ? 'text/html' : format === 'json' ? 'application/json' : 'text/markdown').send(body);
  });

  app.get('/v1/audit/public-key', async () => ({ publicKeyPem: core.store.publicKeyPem(), keyId: core.auditKeyId() }));

  // Online verify needs the checkpoints file: the chain alone cannot show a tail cut after the
  // last checkpoint event it still holds. The same people who may read the whole log may read it.
  app.get('/v1/audit/checkpoints', async (req) => {
    const identity = await authed(req);
    if (!isIn(identity, AUDITOR_GROUPS)) throw wholeLogDenied();
    return { checkpoints: await core.store.audit.checkpoints() };
  });

  app.get('/v1/sessions', async (req) => {
    const identity = await authed(req);
    const all = core.sessions.list();
    const mine = isIn(identity, AUDITOR_GROUPS) || isIn(identity, core.policy().approvers.groups) ? all : all.filter((s) => s.identity.id === identity.id || s.identity.onBehalfOf?.id === identity.id);
    return { sessions: mine.map((s) => core.sessions.view(s)) };
  });

  app.post('/v1/service-accounts', async (req, reply) => {
    const identity = await authed(req);
    requireGroup(identity, ADMIN_GROUPS, 'create service accounts');
    const body = (req.body ?? {}) as { name?: string; groups?: string[]; kind?: 'workload' | 'agent' };
    if (typeof body.name !== 'string' || !/^[a-zA-Z0-9_.@-]{1,64}$/.test(body.name)) throw new UsageError('a service account needs a NAME of letters, digits, . _ -');
    // Its name is its identity in every record, request and vote: a name that is already another
    // principal's (a person's email, a workload identity from dbgov.yaml) would put the account's
    // actions under that principal, and hand that principal the account's trail and live view.
    const taken = body.name.includes('@') ? 'a person (people are their email address)' : core.config.identity.workload.some((w) => w.rules.some((r) => r.identity === body.name)) ? 'a workload identity in dbgov.yaml' : undefined;
    if (taken !== undefined) {
      throw new UsageError(`dbgov: ${body.name} names ${taken}: a service account needs a name of its own`, { actions: ['pick a name without @, such as deploy-bot'] });
    }
    // Groups and kind decide what policy grants: anything but a list of names, or a kind other
    // than workload or agent (a service account posing as a human), is refused, not stored.
    if (body.groups !== undefined && (!Array.isArray(body.groups) || !body.groups.every((g) => typeof g === 'string' && /^[\w.@:/-]{1,128}$/.test(g)))) {
      throw new UsageError('--groups must be a comma-separated list of group names');
    }
    if (body.kind !== undefined && body.kind !== 'workload' && body.kind !== 'agent') throw new UsageError('--kind must be workload or agent');
    if ((await core.store.listServiceAccounts()).some((a) => a.id === body.name && a.revokedAt === undefined) || core.configServiceAccounts.some((a) => a.id === body.name)) {
      throw new DbgovError('conflict', `dbgov: service account ${body.name} already exists`, { exitCode: ExitCodes.conflict, actions: ['pick another name, or revoke the old one first'] });
    }
    const token = generateServiceAccountToken();
    const account = { id: body.name, tokenHash: hashServiceAccountToken(token), groups: body.groups ?? [], kind: body.kind ?? 'workload', owner: identity.id, createdAt: Date.now(), origin: 'api' as const };
    await core.store.putServiceAccount(account);
    core.store.audit.appendSync({ kind: 'service-account.created', identity: auditIdentity(identity), target: null, database: null, sessionId: null, detail: { account: account.id, groups: account.groups, kind: account.kind } });
    return reply.status(201).send({ account: accountView(account), token });
  });

  app.get('/v1/service-accounts', async (req) => {
    const identity = await authed(req);
    requireGroup(identity, ADMIN_GROUPS, 'list service accounts');
    const stored = await core.store.listServiceAccounts();
    return { accounts: [...core.configServiceAccounts, ...stored].map(accountView) };
  });

  app.delete('/v1/service-accounts/:id', async (req) => {
    const identity = await authed(req);
    requireGroup(identity, ADMIN_GROUPS, 'revoke service accounts');
    const id = (req.params as { id: string }).id;
    if (core.configServiceAccounts.some((a) => a.id === id)) throw new DbgovError('config-account', `dbgov: ${id} is defined in dbgov.yaml`, { exitCode: ExitCodes.conflict, actions: ['remove it from identity.serviceAccounts and restart the broker'] });
    const account = (await core.store.listServiceAccounts()).find((a) => a.id === id && a.revokedAt === undefined);
    if (!account) throw new NotFoundError('service-account-not-found', `dbgov: no active service account ${id}`, { actions: ['list them with `dbgov admin service-account list`'] });
    const revoked = { ...account, revokedAt: Date.now() };
    await core.store.putServiceAccount(revoked);
    await core.revoke(identity, { identity: id });
    core.store.audit.appendSync({ kind: 'service-account.revoked', identity: auditIdentity(identity), target: null, database: null, sessionId: null, detail: { account: id } });
    return { account: accountView(revoked) };
  });

  return app;
}

/** What the API shows of a service account: never its token hash. */
function accountView(a: ServiceAccountRecord): ServiceAccountView {
  return { id: a.id, name: a.id, groups: a.groups, kind: a.kind, createdAt: new Date(a.createdAt).toISOString(), revokedAt: a.revokedAt === undefined ? null : new Date(a.revokedAt).toISOString() };
}

/**
 * Query parameters, each at most once: `?kind=a&kind=b` arrives as an array, which code written
 * for strings would crash on (a 500) or read in some other way than the check before it did.
 */
function queryOf(req: FastifyRequest): Record<string, string | undefined> {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(q)) {
    if (typeof v !== 'string') throw new UsageError(`give --${k} once`);
    out[k] = v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIn(identity: Identity, groups: readonly string[]): boolean {
  return identity.kind !== 'agent' && identity.groups.some((g) => groups.includes(g));
}

function requireGroup(identity: Identity, groups: readonly string[], what: string): void {
  if (!isIn(identity, groups)) throw new DeniedError('forbidden', `dbgov: you may not ${what}`, { actions: [`ask a member of ${groups.join(' or ')}`] });
}

function parseTime(text: string, name: string): number {
  const d = parseDuration(text);
  if (d !== undefined) return Date.now() - d;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`--${name} must be a duration (30m, 1h, 7d) or a date (2026-11-01T00:00:00Z), got "${text}"`);
  return t;
}

function wholeLogDenied(): DeniedError {
  return new DeniedError('forbidden', 'dbgov: only auditors may read the whole audit log, and verifying it needs all of it', {
    actions: [`ask someone in ${AUDITOR_GROUPS.join(' or ')} to run \`dbgov audit verify\``, 'or check an export offline: dbgov audit verify --file audit.jsonl --public-key audit-public.pem'],
  });
}

/** Anyone may search their own trail; auditors may search everyone's. */
function auditFilterFrom(q: Record<string, string | undefined>, identity: Identity): AuditFilter {
  const f: AuditFilter = {};
  if (q.identity) f.identity = q.identity;
  if (q.identityKind) {
    if (!IDENTITY_KINDS.includes(q.identityKind as IdentityKind)) throw new UsageError(`identity kind must be one of ${IDENTITY_KINDS.join(', ')}`);
    f.identityKind = q.identityKind as IdentityKind;
  }
  if (q.target) f.target = q.target;
  if (q.database) f.database = q.database;
  if (q.table) f.table = q.table;
  if (q.column) f.column = q.column;
  if (q.decision) f.decision = q.decision as Decision;
  if (q.kind) {
    const kinds = q.kind.split(',') as AuditKind[];
    for (const k of kinds) if (!AUDIT_KINDS.includes(k)) throw new UsageError(`unknown event kind ${k}`);
    f.kind = kinds;
  }
  if (q.session) f.sessionId = q.session;
  if (q.since) f.since = parseTime(q.since, 'since');
  if (q.until) f.until = parseTime(q.until, 'until');
  if (q.text) f.text = q.text;
  if (!isIn(identity, AUDITOR_GROUPS)) {
    // Narrowed to their own events, the log would fail verification as if events were cut out.
    if (q.whole === '1') throw wholeLogDenied();
    if (f.identity && f.identity !== identity.id) throw new DeniedError('forbidden', 'dbgov: only auditors may search other identities', { actions: ['ask someone in the auditors group'] });
    f.identity = identity.id;
  }
  return f;
}

