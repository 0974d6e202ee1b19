/**
 * Per-identity database users for MySQL/MariaDB targets, the counterpart of PostgresRoleManager.
 * With `roles: {mode: per-identity}` each session gets its own user (random password that never
 * leaves the broker) holding the access level's database role, so SHOW PROCESSLIST and the
 * server's own logs name the person or pipeline. The user is dropped when the session ends.
 *
 * Expiry: PostgreSQL's VALID UNTIL has no MySQL/MariaDB equivalent (PASSWORD EXPIRE INTERVAL
 * counts whole days, and an expired password still lets an open connection run). So the
 * broker enforces it: a timer drops the user and kills its connections at the credential's
 * expiry, and every start sweeps users recorded in the store that outlived their session.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { UpstreamEndpoint } from '../gateway/engine.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../shared/logger.js';
import type { TargetConfig } from './config.js';
import { baseEndpoint, grantFor, sweepLeftovers, type RoleManager } from './roles.js';
import type { LiveSession } from './sessions.js';

/** MySQL 5.7/8 allow 32 characters in a user name (MariaDB 80): stay within both. */
const MAX_USER = 32;

/** [a-z0-9_], prefix + who + session suffix, at most 32 characters. */
export function mysqlUserFor(prefix: string, identityId: string, sessionId: string): string {
  const who = identityId.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  const suffix = sessionId.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, '');
  return `${prefix}${who}`.slice(0, MAX_USER - suffix.length - 1) + `_${suffix}`;
}

/** `'name'@'%'`: names are generated from [a-z0-9_], the escaping is belt and braces. */
function account(user: string): string {
  return `'${user.replace(/\\/g, '\\\\').replace(/'/g, "''")}'@'%'`;
}

function quoteIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

export class MysqlRoleManager implements RoleManager {
  private readonly live = new Map<string, { user: string; timer: NodeJS.Timeout }>();

  constructor(
    private readonly targets: Record<string, TargetConfig>,
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  async upstreamFor(targetName: string, t: TargetConfig, session: LiveSession): Promise<UpstreamEndpoint> {
    const base = baseEndpoint(t, session.database);
    if (!t.roles || t.engine !== 'mysql') return base;
    const grant = grantFor(targetName, t.roles.grants, session.access);
    const user = mysqlUserFor(t.roles.prefix, session.identity.id, session.id);
    const password = randomBytes(24).toString('base64url');
    // Recorded before it exists, so a crash between the two still leaves a record to sweep.
    await this.store.putDbRole({ target: targetName, role: user, identity: session.identity.id, sessionId: session.id, createdAt: Date.now(), expiresAt: session.expiresAt });
    await this.admin(t, async (c) => {
      await c.query(`CREATE USER ${account(user)} IDENTIFIED BY ${c.escape(password)}`);
      await c.query(`GRANT ${quoteIdent(grant)} TO ${account(user)}`);
      // Roles are inactive at login unless made the default: without this the user holds no privilege.
      await c.query(`SET DEFAULT ROLE ${quoteIdent(grant)} FOR ${account(user)}`);
    });
    // Expiry enforced by the broker (see the header): the user and its connections go at expiresAt.
    const timer = setTimeout(() => void this.release(targetName, session).catch((e: unknown) => this.log.warn({ err: e, user }, 'expired database user could not be dropped')), Math.max(0, session.expiresAt - Date.now()));
    timer.unref();
    this.live.set(session.id, { user, timer });
    return { ...base, user, password };
  }

  async release(targetName: string, session: LiveSession): Promise<void> {
    const entry = this.live.get(session.id);
    if (!entry) return;
    this.live.delete(session.id);
    clearTimeout(entry.timer);
    const t = this.targets[targetName];
    if (!t) return;
    await this.drop(t, entry.user);
    await this.store.putDbRole({ target: targetName, role: entry.user, identity: session.identity.id, sessionId: session.id, createdAt: 0, expiresAt: session.expiresAt, droppedAt: Date.now() });
  }

  sweep(): Promise<number> {
    return sweepLeftovers(this.store, this.targets, 'mysql', (t, user) => this.drop(t, user), this.log);
  }

  private async drop(t: TargetConfig, user: string): Promise<void> {
    await this.admin(t, async (c) => {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [user]);
      for (const r of rows) await c.query(`KILL CONNECTION ${Number(r.id)}`).catch(() => undefined);
      await c.query(`DROP USER IF EXISTS ${account(user)}`);
    });
  }

  private async admin(t: TargetConfig, fn: (c: mysql.Connection) => Promise<void>): Promise<void> {
    const c = await mysql.createConnection({
      host: t.host,
      port: t.port,
      user: t.user,
      ...(t.password !== undefined ? { password: t.password } : {}),
      ...(t.tls.mode !== 'disable' ? { ssl: t.tls.mode === 'verify-full' ? { ca: t.tls.ca } : { rejectUnauthorized: false } } : {}),
      connectTimeout: t.connectTimeoutMs,
    });
    try {
      await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}
