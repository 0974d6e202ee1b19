/**
 * Upstream identities. By default a session connects upstream as the target's configured user.
 * With `roles: {mode: per-identity}` the broker creates a short-lived PostgreSQL role for each
 * identity and session (LOGIN, VALID UNTIL the credential's expiry, member of the access
 * level's role), connects as it, and drops it when the session ends, so `pg_stat_activity` and
 * the server's own logs name the person or pipeline. Roles left by a crashed broker are
 * removed at the next start.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { UpstreamEndpoint } from '../gateway/engine.js';
import type { Store } from '../store/store.js';
import { UpstreamError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { TargetConfig } from './config.js';
import type { LiveSession } from './sessions.js';

export interface RoleManager {
  upstreamFor(targetName: string, t: TargetConfig, session: LiveSession): Promise<UpstreamEndpoint>;
  release(targetName: string, session: LiveSession): Promise<void>;
  /** Drops roles that outlived their sessions (after a crash). */
  sweep(): Promise<number>;
}

export function baseEndpoint(t: TargetConfig, database: string): UpstreamEndpoint {
  return {
    host: t.host,
    port: t.port,
    database,
    user: t.user,
    ...(t.password !== undefined ? { password: t.password } : {}),
    tls: t.tls,
    connectTimeoutMs: t.connectTimeoutMs,
  };
}

/** PostgreSQL identifiers: lower-case, [a-z0-9_], at most 63 bytes. */
/** The role a per-identity user is granted for this access level; a clear error when none is set. */
export function grantFor(targetName: string, grants: Partial<Record<LiveSession['access'], string>>, access: LiveSession['access']): string {
  const grant = grants[access];
  if (!grant) throw new UpstreamError('role-not-configured', `dbgov: target ${targetName} has no role for access level ${access}`, { actions: [`add roles.grants.${access} to targets.${targetName} in dbgov.yaml`] });
  return grant;
}

/** How the broker itself connects to a PostgreSQL target (catalog reads, role management). */
export function pgAdminConfig(t: TargetConfig, applicationName: string): pg.ClientConfig {
  return {
    host: t.host,
    port: t.port,
    database: t.database,
    user: t.user,
    ...(t.password !== undefined ? { password: t.password } : {}),
    ...(t.tls.mode !== 'disable' ? { ssl: t.tls.mode === 'verify-full' ? { ca: t.tls.ca, servername: t.tls.servername } : { rejectUnauthorized: false } } : {}),
    connectionTimeoutMillis: t.connectTimeoutMs,
    application_name: applicationName,
  };
}

/** Drops the database users or roles that outlived their sessions (a crashed broker's), per engine. */
export async function sweepLeftovers(store: Store, targets: Record<string, TargetConfig>, engine: TargetConfig['engine'], drop: (t: TargetConfig, name: string) => Promise<void>, log: Logger): Promise<number> {
  let dropped = 0;
  for (const r of await store.listDbRoles({ live: true })) {
    const t = targets[r.target];
    if (!t || t.engine !== engine) continue;
    try {
      await drop(t, r.role);
      await store.putDbRole({ ...r, droppedAt: Date.now() });
      dropped++;
    } catch (e) {
      log.warn({ err: e, role: r.role, target: r.target }, 'could not drop a leftover database role; will retry at next start');
    }
  }
  return dropped;
}

export function roleNameFor(prefix: string, identityId: string, sessionId: string): string {
  const who = identityId.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  const suffix = sessionId.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, '');
  return `${prefix}${who}`.slice(0, 63 - suffix.length - 1) + `_${suffix}`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export class PostgresRoleManager implements RoleManager {
  private readonly live = new Map<string, string>();

  constructor(
    private readonly targets: Record<string, TargetConfig>,
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  async upstreamFor(targetName: string, t: TargetConfig, session: LiveSession): Promise<UpstreamEndpoint> {
    const base = baseEndpoint(t, session.database);
    if (!t.roles || t.engine !== 'postgres') return base;
    const grant = grantFor(targetName, t.roles.grants, session.access);
    const role = roleNameFor(t.roles.prefix, session.identity.id, session.id);
    const password = randomBytes(24).toString('base64url');
    const validUntil = new Date(session.expiresAt).toISOString();
    await this.store.putDbRole({ target: targetName, role, identity: session.identity.id, sessionId: session.id, createdAt: Date.now(), expiresAt: session.expiresAt });
    await this.admin(t, async (c) => {
      // The password is random and never leaves the broker; VALID UNTIL bounds it even if the
      // broker dies before dropping the role.
      await c.query(`CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD '${password}' VALID UNTIL '${validUntil}' IN ROLE ${quoteIdent(grant)}`);
      await c.query(`COMMENT ON ROLE ${quoteIdent(role)} IS ${pgLiteral(`dbgov session ${session.id} for ${session.identity.id}`)}`);
    });
    this.live.set(session.id, role);
    return { ...base, user: role, password };
  }

  async release(targetName: string, session: LiveSession): Promise<void> {
    const role = this.live.get(session.id);
    if (!role) return;
    this.live.delete(session.id);
    const t = this.targets[targetName];
    if (!t) return;
    await this.drop(t, role);
    await this.store.putDbRole({ target: targetName, role, identity: session.identity.id, sessionId: session.id, createdAt: 0, expiresAt: session.expiresAt, droppedAt: Date.now() });
  }

  sweep(): Promise<number> {
    return sweepLeftovers(this.store, this.targets, 'postgres', (t, role) => this.drop(t, role), this.log);
  }

  private async drop(t: TargetConfig, role: string): Promise<void> {
    await this.admin(t, async (c) => {
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
      await c.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
    });
  }

  private async admin(t: TargetConfig, fn: (c: pg.Client) => Promise<void>): Promise<void> {
    const c = new pg.Client(pgAdminConfig(t, 'dbgov-broker'));
    await c.connect();
    try {
      await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

}

function pgLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Per-identity roles for every engine: each target's engine picks its manager. */
export function engineRoleManager(targets: Record<string, TargetConfig>, byEngine: Record<TargetConfig['engine'], RoleManager>): RoleManager {
  const pick = (name: string): RoleManager | undefined => {
    const t = targets[name];
    return t ? byEngine[t.engine] : undefined;
  };
  return {
    upstreamFor: (name, t, session) => byEngine[t.engine].upstreamFor(name, t, session),
    release: async (name, session) => pick(name)?.release(name, session),
    sweep: async () => {
      let n = 0;
      for (const m of new Set(Object.values(byEngine))) n += await m.sweep();
      return n;
    },
  };
}
