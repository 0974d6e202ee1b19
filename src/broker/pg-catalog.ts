/**
 * The TargetCatalog of a PostgreSQL target: src/sql/catalog.ts's snapshot, read over the
 * broker's own admin connection (never a client's session), plus EXPLAIN-based row estimates
 * for approvers. The connection is opened lazily and reopened after a failure.
 */
import pg from 'pg';
import { PostgresCatalog } from '../sql/catalog.js';
import { analysePostgres } from '../sql/postgres.js';
import { resolveLineage, resolveTestedColumns, resolveWriteFlows } from '../sql/lineage.js';
import type { RelationRef, StatementFacts } from '../sql/facts.js';
import type { Logger } from '../shared/logger.js';
import type { TargetConfig } from './config.js';
import type { TargetCatalog } from './target-runtime.js';
import { pgAdminConfig } from './roles.js';

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/** A LANGUAGE sql body analysed once per function version. */
const bodies = new Map<string, StatementFacts[]>();
function bodyFacts(oid: number, body: string): StatementFacts[] {
  const key = `${oid}:${body}`;
  let facts = bodies.get(key);
  if (!facts) {
    facts = analysePostgres(body).statements;
    if (bodies.size > 10_000) bodies.clear();
    bodies.set(key, facts);
  }
  return facts;
}

interface PlanNode {
  'Node Type': string;
  'Plan Rows': number;
  Plans?: PlanNode[];
}

/** The server's default search_path, used until a session says otherwise. */
const DEFAULT_SEARCH_PATH = ['$user', 'public'];

export function postgresTargetCatalog(t: TargetConfig, log: Logger, connect: () => Promise<pg.Client> = () => openAdmin(t)): TargetCatalog {
  let client: pg.Client | undefined;
  let catalog: PostgresCatalog | undefined;

  const ensure = async (): Promise<{ client: pg.Client; catalog: PostgresCatalog }> => {
    if (client && catalog) return { client, catalog };
    const c = await connect();
    c.on('error', (e) => {
      log.warn({ err: e }, 'catalog connection lost; it will be reopened');
      client = undefined;
      catalog = undefined;
    });
    client = c;
    catalog = await PostgresCatalog.load(c);
    return { client: c, catalog };
  };
  const opts = (searchPath: string[] | null) => ({ searchPath: searchPath ?? DEFAULT_SEARCH_PATH, user: t.user });

  return {
    async refresh() {
      if (!catalog) {
        await ensure();
        return;
      }
      await catalog.refresh();
    },
    loaded: () => catalog !== undefined,
    resolveRelation(ref: RelationRef, searchPath) {
      const r = catalog?.resolveRelation(ref, opts(searchPath));
      return r ? { schema: r.schema, name: r.name, oid: r.oid } : undefined;
    },
    viewBaseRelations(ref: RelationRef, searchPath) {
      const oid = ref.resolved?.oid ?? catalog?.resolveRelation(ref, opts(searchPath))?.oid;
      if (oid === undefined) return [];
      return (catalog?.viewBaseRelations(oid) ?? []).map((r) => ({ schema: r.schema, name: r.name, oid: r.oid }));
    },
    columnOf: (oid, attnum) => catalog?.columnOf(oid, attnum),
    knowsName: (name) => catalog?.knowsName(name) === true,
    keyColumn: (ref, column) => ref.resolved?.oid !== undefined && catalog?.keyColumn(ref.resolved.oid, column) === true,
    knowsRelation: (ref) => ref.resolved?.oid !== undefined,
    columnsOf: (oid) => catalog?.columns(oid).map((c) => ({ attnum: c.attnum, name: c.name })) ?? [],
    columnType: (oid, column) => catalog?.columns(oid).find((c) => c.name === column)?.pgType,
    callTarget(fn, searchPath) {
      if (!catalog) return undefined;
      const found = catalog.findFunctions(fn.schema, fn.name, opts(searchPath));
      // Unknown to the catalog (a function created moments ago, before the reload): fail closed.
      if (found.length === 0) return 'opaque';
      if (found.every((f) => SYSTEM_SCHEMAS.has(f.schema))) return undefined;
      // A built-in overload of the name is judged by its own risks, as any built-in call is.
      const mayWrite = found.filter((f) => f.volatile && !SYSTEM_SCHEMAS.has(f.schema));
      if (mayWrite.length === 0) return undefined;
      // Overloads cannot be told apart here: every one that may write is judged.
      if (!mayWrite.every((f) => f.sqlBody !== undefined)) return 'opaque';
      return mayWrite.flatMap((f) => bodyFacts(f.oid, f.sqlBody!));
    },
    implicitCallFunctions(call, searchPath) {
      if (!catalog) return 'unknown';
      const fns = catalog.implicitCallFunctions(call, opts(searchPath));
      return fns === 'unknown' ? fns : fns.map((f) => ({ schema: f.schema, name: f.name, risks: f.risks }));
    },
    functionBodies(fn, searchPath) {
      const found = catalog?.findFunctions(fn.schema, fn.name, opts(searchPath)) ?? [];
      const user = found.filter((f) => !SYSTEM_SCHEMAS.has(f.schema));
      if (user.length === 0) return undefined;
      return { stores: user.some((f) => f.stores), reads: user.flatMap((f) => f.reads.map((r) => ({ ...r, access: 'read' as const }))), tests: user.flatMap((f) => f.tests) };
    },
    viewTests: (oid) => catalog?.viewTests(oid) ?? [],
    triggerTests: (oid) => catalog?.triggerTests(oid) ?? [],
    isBaseTable: (oid) => {
      const kind = catalog?.relation(oid)?.relkind;
      return kind === 'r' || kind === 'p';
    },
    *relations() {
      for (const r of catalog?.allRelations() ?? []) yield { oid: r.oid, schema: r.schema, name: r.name };
    },
    resolveLineage(facts: StatementFacts, searchPath) {
      if (!catalog || !facts.lineage) return undefined;
      return resolveLineage(facts, catalog, opts(searchPath));
    },
    resolveTestedColumns(facts: StatementFacts, searchPath, typeShadowed) {
      if (!catalog) return undefined;
      const cat = catalog;
      const o = opts(searchPath);
      return resolveTestedColumns(facts, (c) => {
        if (c.kind === 'function') return !cat.callsSystemFunction(c.schema, c.name, o);
        // A cast to a type of that name which is not pg_catalog's (a temp domain with a CHECK) can reject a value.
        if (c.kind === 'cast' && typeShadowed(c.schema, c.name)) return true;
        const fns = cat.implicitCallFunctions(c, o);
        return fns === 'unknown' || fns.length > 0;
      });
    },
    resolveWriteFlows(facts: StatementFacts, searchPath) {
      if (!catalog) return undefined;
      return resolveWriteFlows(facts, catalog, opts(searchPath));
    },
    async estimateRows(sql: string) {
      const { client: c } = await ensure();
      // EXPLAIN plans without executing; a statement with parameters cannot be planned here.
      const res = await c.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${sql}`);
      const top = res.rows[0]?.['QUERY PLAN']?.[0]?.Plan;
      if (!top) return null;
      // INSERT/UPDATE/DELETE plan as ModifyTable, which reports 0 rows: the rows it will touch
      // are those of the scan beneath it.
      return top['Node Type'] === 'ModifyTable' ? (top.Plans?.[0]?.['Plan Rows'] ?? null) : top['Plan Rows'];
    },
    async close() {
      await client?.end().catch(() => undefined);
      client = undefined;
      catalog = undefined;
    },
  };
}

function openAdmin(t: TargetConfig): Promise<pg.Client> {
  const c = new pg.Client(pgAdminConfig(t, 'dbgov-broker-catalog'));
  return c.connect().then(() => c);
}
