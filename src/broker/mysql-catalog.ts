/**
 * The TargetCatalog of a MySQL/MariaDB target. MySQL column definitions carry org_schema,
 * org_table and org_name, so masking needs no OID map; the catalog learns the server's version
 * and flavour (executable comments run by version) and estimates rows with EXPLAIN.
 */
import mysql from 'mysql2/promise';
import type { Logger } from '../shared/logger.js';
import type { TargetConfig } from './config.js';
import type { TargetCatalog } from './target-runtime.js';

export interface MysqlTargetCatalog extends TargetCatalog {
  serverInfo(): { version: number; mariadb: boolean };
}

/** `10.11.19-MariaDB-0+deb12u1` → 101119; `8.0.36` → 80036. */
export function parseServerVersion(v: string): { version: number; mariadb: boolean } {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  const version = m ? Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]) : 0;
  return { version, mariadb: /mariadb/i.test(v) };
}

export function mysqlTargetCatalog(t: TargetConfig, log: Logger): MysqlTargetCatalog {
  let info = { version: 0, mariadb: true };
  let conn: mysql.Connection | undefined;
  const ensure = async (): Promise<mysql.Connection> => {
    if (conn) return conn;
    conn = await mysql.createConnection({
      host: t.host,
      port: t.port,
      user: t.user,
      database: t.database,
      ...(t.password !== undefined ? { password: t.password } : {}),
      ...(t.tls.mode !== 'disable' ? { ssl: t.tls.mode === 'verify-full' ? { ca: t.tls.ca } : { rejectUnauthorized: false } } : {}),
      connectTimeout: t.connectTimeoutMs,
    });
    conn.on('error', (e) => {
      log.warn({ err: e }, 'mysql catalog connection lost');
      conn = undefined;
    });
    return conn;
  };
  return {
    serverInfo: () => info,
    async refresh() {
      const c = await ensure();
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
      info = parseServerVersion(String(rows[0]?.v ?? ''));
    },
    loaded: () => info.version > 0,
    resolveRelation: () => undefined,
    columnOf: () => undefined,
    relations: () => [],
    resolveLineage: () => undefined,
    async estimateRows(sql: string) {
      const c = await ensure();
      const [rows] = await c.query<mysql.RowDataPacket[]>(`EXPLAIN ${sql}`);
      return rows.reduce((n, r) => Math.max(n, Number(r.rows ?? 0)), 0) || null;
    },
    async close() {
      await conn?.end().catch(() => undefined);
      conn = undefined;
    },
  };
}
