/**
 * The TargetCatalog of a MySQL/MariaDB target. The catalog learns the server's version and
 * flavour (executable comments run by version), the columns of the target database's tables and
 * views, and each view's lineage, and estimates rows with EXPLAIN.
 *
 * Lineage: the analyser leaves `SELECT *` as one placeholder and names views as sources. Here
 * `*` is expanded to the real column list (so lineage lines up with the result, position by
 * position) and a view's columns are followed to the base columns they read, so neither a star
 * nor a view hides a classified column. Unqualified sources keep no schema: a session may have
 * switched database, and a source without a schema is classified under any schema (fail closed).
 */
import mysql from 'mysql2/promise';
import type { ColumnLineage, RelationRef, StatementFacts } from '../sql/facts.js';
import type { WriteFlow } from '../sql/lineage.js';
import { analyseMysql } from '../sql/mysql/analyse.js';
import { runsStoredCode, type KnownFunctions } from '../sql/mysql/functions.js';
import type { Logger } from '../shared/logger.js';
import type { TargetConfig } from './config.js';
import type { TargetCatalog } from './target-runtime.js';

export interface MysqlTargetCatalog extends TargetCatalog {
  /** Version, flavour and the server's default sql_mode (a new session starts with it). */
  serverInfo(): { version: number; mariadb: boolean; sqlMode: string };
}

/** `10.11.19-MariaDB-0+deb12u1` → 101119; `8.0.36` → 80036. */
export function parseServerVersion(v: string): { version: number; mariadb: boolean } {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  const version = m ? Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]) : 0;
  return { version, mariadb: /mariadb/i.test(v) };
}

type Source = ColumnLineage['sources'][number];

interface Snapshot {
  /** Lower-cased relation name → its columns in order (tables and views of the target database). */
  columns: Map<string, string[]>;
  /** Lower-cased view name → its definition as the server stores it. */
  views: Map<string, string>;
  /** `table.column` (lower case) of primary-key columns. */
  keys: Set<string>;
  /** `table.column` (lower case) → DATA_TYPE (lower case: `decimal`, `int`, `varchar`, …). */
  types: Map<string, string>;
  /** Stored functions of the target database and UDFs, and the built-in names if listed. */
  functions: KnownFunctions;
}

/** Views of views are followed this deep; deeper (or cyclic) definitions are treated as opaque. */
const MAX_VIEW_DEPTH = 8;

export function mysqlTargetCatalog(t: TargetConfig, log: Logger): MysqlTargetCatalog {
  let info = { version: 0, mariadb: true, sqlMode: '' };
  let snap: Snapshot = { columns: new Map(), views: new Map(), keys: new Set(), types: new Map(), functions: { stored: new Set() } };
  const viewLineage = new Map<string, ColumnLineage[] | null>();
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

  const inTarget = (s: { schema?: string }): boolean => s.schema === undefined || s.schema.toLowerCase() === t.database.toLowerCase();

  /** A view definition as the server stores it (fully qualified, default sql_mode). */
  const analyseDefinition = (def: string) => analyseMysql(def, { serverVersion: info.version, mariadb: info.mariadb, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: t.database });

  /** A view's output lineage, base columns resolved; null when it cannot be followed. */
  const lineageOfView = (name: string, depth: number): ColumnLineage[] | null => {
    const cached = viewLineage.get(name);
    if (cached !== undefined) return cached;
    const def = snap.views.get(name);
    if (def === undefined || depth > MAX_VIEW_DEPTH) return null;
    const a = analyseDefinition(def);
    const f = a.statements.length === 1 ? a.statements[0] : undefined;
    const out = f?.lineage ? resolve(f.lineage, depth + 1) : null;
    viewLineage.set(name, out ?? null);
    return out ?? null;
  };

  /** One source, followed through views; `*` of a view stands for every source of the view. */
  const followSource = (s: Source, depth: number): { sources: Source[]; direct: boolean; opaque: boolean } => {
    const name = s.table.toLowerCase();
    if (!inTarget(s) || !snap.views.has(name)) return { sources: [s], direct: true, opaque: false };
    const view = lineageOfView(name, depth);
    // A view we cannot follow: keep the view itself as the source and mark the column opaque.
    if (!view) return { sources: [s], direct: false, opaque: true };
    const cols = s.column === '*' ? view : view.filter((c) => c.name.toLowerCase() === s.column.toLowerCase());
    if (cols.length === 0) return { sources: [s], direct: false, opaque: true };
    return { sources: cols.flatMap((c) => c.sources), direct: cols.length === 1 && cols[0].direct, opaque: cols.some((c) => c.opaque) };
  };

  const resolve = (lineage: readonly ColumnLineage[], depth: number): ColumnLineage[] | undefined => {
    const out: ColumnLineage[] = [];
    for (const col of lineage) {
      const star = col.name === '*' && col.sources.length === 1 && col.sources[0].column === '*';
      if (star) {
        const src = col.sources[0];
        const names = inTarget(src) ? snap.columns.get(src.table.toLowerCase()) : undefined;
        // An unknown relation: the result cannot be lined up with lineage; the caller falls back.
        if (!names) return undefined;
        for (const c of names) {
          const f = followSource({ ...src, column: c }, depth);
          out.push({ index: out.length, name: c, sources: f.sources, opaque: f.opaque, direct: f.direct });
        }
        continue;
      }
      const followed = col.sources.map((s) => followSource(s, depth));
      out.push({
        index: out.length,
        name: col.name,
        sources: followed.flatMap((f) => f.sources),
        opaque: col.opaque || followed.some((f) => f.opaque),
        direct: col.direct && followed.every((f) => f.direct),
      });
    }
    return out;
  };

  return {
    serverInfo: () => info,
    async refresh() {
      const c = await ensure();
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v, @@GLOBAL.sql_mode AS m');
      // Published with the snapshot below: `loaded()` must not say yes before the tables are in.
      const nextInfo = { ...parseServerVersion(String(rows[0]?.v ?? '')), sqlMode: String(rows[0]?.m ?? '') };
      const [cols] = await c.query<mysql.RowDataPacket[]>('SELECT TABLE_NAME AS t, COLUMN_NAME AS c, COLUMN_KEY AS k, DATA_TYPE AS d FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION', [t.database]);
      const [views] = await c.query<mysql.RowDataPacket[]>('SELECT TABLE_NAME AS t, VIEW_DEFINITION AS d FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?', [t.database]);
      const names = (rows: mysql.RowDataPacket[]): Set<string> => new Set(rows.map((r) => String(r.n).toUpperCase()));
      const [routines] = await c.query<mysql.RowDataPacket[]>("SELECT ROUTINE_NAME AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'", [t.database]);
      // UDFs (CREATE FUNCTION … SONAME) are listed in mysql.func, which the catalog's user may not read.
      const udfs = await c.query<mysql.RowDataPacket[]>('SELECT name AS n FROM mysql.func').then(([r]) => names(r), () => new Set<string>());
      // MariaDB 10.6+ lists its built-in functions; MySQL does not, and then only known names count.
      const builtins = await c.query<mysql.RowDataPacket[]>('SELECT FUNCTION AS n FROM information_schema.SQL_FUNCTIONS UNION SELECT WORD FROM information_schema.KEYWORDS').then(([r]) => names(r), () => undefined);
      const functions: KnownFunctions = { stored: new Set([...names(routines), ...udfs]), ...(builtins && builtins.size > 0 ? { builtins } : {}) };
      const next: Snapshot = { columns: new Map(), views: new Map(), keys: new Set(), types: new Map(), functions };
      for (const r of cols) {
        const key = String(r.t).toLowerCase();
        const list = next.columns.get(key) ?? [];
        list.push(String(r.c));
        next.columns.set(key, list);
        if (r.k === 'PRI') next.keys.add(`${key}.${String(r.c).toLowerCase()}`);
        next.types.set(`${key}.${String(r.c).toLowerCase()}`, String(r.d).toLowerCase());
      }
      for (const r of views) next.views.set(String(r.t).toLowerCase(), String(r.d));
      snap = next;
      info = nextInfo;
      viewLineage.clear();
    },
    loaded: () => info.version > 0,
    resolveRelation: () => undefined,
    columnOf: () => undefined,
    knowsName(name: string) {
      const lower = name.toLowerCase();
      if (lower === t.database.toLowerCase() || snap.columns.has(lower)) return true;
      for (const list of snap.columns.values()) if (list.some((c) => c.toLowerCase() === lower)) return true;
      return false;
    },
    isBaseTable: () => false,
    // A stored function's body (or a UDF's code) is not analysed: the call is opaque.
    callTarget: (fn) => (runsStoredCode(fn, snap.functions) ? 'opaque' : undefined),
    keyColumn: (ref, column) => inTarget(ref) && snap.keys.has(`${ref.name.toLowerCase()}.${column.toLowerCase()}`),
    dataTypeOf: (ref, column) => (inTarget(ref) ? snap.types.get(`${ref.name.toLowerCase()}.${column.toLowerCase()}`) : undefined),
    knowsRelation: (ref) => inTarget(ref) && snap.columns.has(ref.name.toLowerCase()),
    relations: () => [],
    resolveLineage(facts: StatementFacts) {
      return facts.lineage ? resolve(facts.lineage, 0) : undefined;
    },
    // A column of a view compared with something compares the base columns it reads: `SELECT id
    // FROM user_contacts WHERE email LIKE 'a%'` filters on users.email as surely as the table does.
    // A view column that cannot be followed stands for every column of the view's tables.
    resolveTestedColumns(facts: StatementFacts) {
      const out: Source[] = [];
      for (const p of facts.predicateColumns ?? []) {
        if (!inTarget(p) || !snap.views.has(p.table.toLowerCase())) continue;
        const f = followSource(p, 0);
        if (!f.opaque) {
          out.push(...f.sources);
          continue;
        }
        const bases = this.viewBaseRelations!({ ...(p.schema !== undefined ? { schema: p.schema } : {}), name: p.table, access: 'read' }, null);
        for (const b of bases) out.push({ schema: b.schema, table: b.name, column: '*' });
        // Nested too deep to follow: any classified column at all.
        if (bases.length === 0) out.push({ table: '*', column: '*' });
      }
      return out.length > 0 ? out : undefined;
    },
    viewBaseRelations(ref: RelationRef) {
      const bases = (schema: string | undefined, name: string, depth: number): { schema: string; name: string }[] => {
        const key = name.toLowerCase();
        const def = inTarget({ schema }) ? snap.views.get(key) : undefined;
        if (def === undefined) return depth === 0 ? [] : [{ schema: schema ?? t.database, name }];
        if (depth > MAX_VIEW_DEPTH) return [];
        const a = analyseDefinition(def);
        return a.statements.flatMap((f) => f.relations.flatMap((r) => bases(r.schema, r.name, depth + 1)));
      };
      return bases(ref.schema, ref.name, 0);
    },
    resolveWriteFlows(facts: StatementFacts): WriteFlow[] {
      // The analyser found what is stored where (facts.stores); here `*` sources expand to the
      // table's columns and views are followed to their base columns.
      return (facts.stores ?? []).map((st, index): WriteFlow => {
        const sources: Source[] = [];
        let opaque = st.opaque;
        let direct = st.direct === true && st.sources.length === 1;
        let caseMapped = st.caseMapped === true && st.sources.length === 1;
        for (const src of st.sources) {
          const columns = src.column === '*' ? (inTarget(src) ? snap.columns.get(src.table.toLowerCase()) : undefined) : [src.column];
          if (!columns) {
            opaque = true;
            continue;
          }
          for (const c of columns) {
            const f = followSource({ ...src, column: c }, 0);
            sources.push(...f.sources);
            opaque ||= f.opaque;
            direct &&= f.direct && columns.length === 1;
            caseMapped &&= f.direct && columns.length === 1;
          }
        }
        const value = { index, name: st.into === 'variable' ? '@' : st.into === 'file' ? 'file' : (st.into.column ?? '*'), sources, opaque, direct: direct && !opaque, ...(caseMapped && !opaque ? { caseMapped: true as const } : {}) };
        if (st.into === 'variable') return { dest: { table: '' }, column: '*', created: false, place: 'a user variable or setting', value };
        if (st.into === 'file') return { dest: { table: '' }, column: '*', created: false, place: 'a file on the database server', value };
        return { dest: { ...(st.into.schema !== undefined ? { schema: st.into.schema } : {}), table: st.into.table }, column: st.into.column ?? '*', created: false, value };
      });
    },
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
