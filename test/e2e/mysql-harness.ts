/**
 * The MariaDB side of the end-to-end harness: unique test databases on the local server, a
 * target for the broker, mysql2 clients through a tunnel, and the mariadb CLI.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { Connection } from '../../src/cli/connect.js';
import { run, type RunResult } from './harness.js';

export const MYSQL = { host: '127.0.0.1', port: 3306, user: 'root' };

/** Runs SQL as root on the local MariaDB (multi-statements allowed). */
export async function mysqlAdmin<T = mysql.RowDataPacket[]>(sql: string, database?: string): Promise<T> {
  const c = await mysql.createConnection({ ...MYSQL, multipleStatements: true, ...(database ? { database } : {}) });
  try {
    const [rows] = await c.query(sql);
    return rows as T;
  } finally {
    await c.end();
  }
}

export interface MysqlTestDatabase {
  name: string;
  drop(): Promise<void>;
}

export async function createMysqlDatabase(prefix: string, setup?: string): Promise<MysqlTestDatabase> {
  const name = `dbgov_${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await mysqlAdmin(`CREATE DATABASE \`${name}\``);
  if (setup) await mysqlAdmin(setup, name);
  return { name, drop: async () => void (await mysqlAdmin(`DROP DATABASE IF EXISTS \`${name}\``)) };
}

export function mysqlTarget(database: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'mysql', env: 'prod', host: MYSQL.host, port: MYSQL.port, database, user: MYSQL.user, ...extra };
}

/** A mysql2 client through a tunnel: no password, the user and database the credential names. */
export async function mysqlTunnelClient(conn: Connection, opts: Partial<mysql.ConnectionOptions> = {}, port = conn.tunnel.port): Promise<mysql.Connection> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: conn.credential.identity.id, database: conn.credential.database, ...opts });
  c.on('error', () => undefined);
  return c;
}

/** The mariadb CLI through a tunnel, batch mode, one -e script. */
export function mariadbCli(conn: Connection, sql: string, port = conn.tunnel.port): Promise<RunResult> {
  return run('mariadb', ['--no-defaults', '--batch', '--skip-ssl', '-h', '127.0.0.1', '-P', String(port), '-u', conn.credential.identity.id, conn.credential.database, '-e', sql]);
}
