/**
 * A snapshot of the PostgreSQL catalog, enough to resolve names the way the server does
 * (search_path, temp-table shadowing), map RowDescription's (table OID, attnum) to columns,
 * follow views to their base columns, and know which functions run dynamic SQL.
 * Loaded through a `pg` client; `refresh()` reloads it after DDL.
 */
import { parsePlPgSQLSync } from 'libpg-query';
import type { ClientBase } from 'pg';
import type { ColumnLineage, FunctionRef, FunctionRisk, ImplicitCall, StatementFacts } from './facts.js';
import { analysePostgres } from './postgres.js';
import { Walker } from './postgres/collect.js';
import { STORING_FUNCTIONS, functionRisks } from './postgres/functions.js';
import type { ColumnType } from './postgres/retype.js';

export interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, v view, m materialized view, p partitioned, f foreign, S sequence, … */
  relkind: string;
  owner: string;
  /** View and materialized view definitions, with every name schema-qualified. */
  definition?: string;
}

export interface CatalogColumn {
  attnum: number;
  name: string;
  /** format_type's text, e.g. `character varying(10)`. */
  type: string;
  /** The type itself (pg_type's schema and name) and atttypmod: what a type change converts from. */
  pgType: ColumnType;
}

export interface CatalogFunction {
  oid: number;
  schema: string;
  name: string;
  language: string;
  /** The body runs SQL built at run time (PL/pgSQL EXECUTE). */
  dynamicSql: boolean;
  risks: FunctionRisk[];
  /**
   * May change data: VOLATILE functions and procedures. PostgreSQL itself refuses writes inside
   * STABLE and IMMUTABLE functions, so only these can hide a write.
   */
  volatile: boolean;
  /** LANGUAGE sql bodies (prosrc): the statements a call runs, which policy can judge. */
  sqlBody?: string;
  /**
   * May keep what it reads or is given outside any table result masking covers: its body calls a
   * storing function (set_config, pg_notify, lo_from_bytea, …), runs dynamic SQL, calls a user
   * function that may, or is written in a language dbgov does not read (PL/Perl, PL/Python, …).
   * Independent of volatility: a STABLE function may call set_config. Built-in and C functions
   * (extension code an admin installed) count as not storing.
   */
  stores: boolean;
  /** Relations a sql or plpgsql body reads (as written there): what a call's result may carry. */
  reads: { schema?: string; name: string }[];
  /**
   * Columns the body tests (as written there), and those of the functions it calls: a call is a
   * filter on them. `find_user(e) … WHERE email = e` answers, by its rows, count or error, whether
   * a guess is a value. A PL/pgSQL body may branch on anything it reads (a variable holding a
   * value), so every column of what it reads counts (`*`).
   */
  tests: { schema?: string; table: string; column: string }[];
}

export interface ResolveOptions {
  /** Entries as the server reports them (`"$user", public`), already split. */
  searchPath: string[];
  /** This session's temporary schema (pg_temp_N), when it has one. */
  tempSchema?: string;
  /** The session user, for `$user`. */
  user?: string;
}

/** Schemas whose functions ship with the server: their outputs derive only from their inputs. */
const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

const RELATIONS_SQL = `
  SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
         pg_get_userbyid(c.relowner) AS owner,
         CASE WHEN c.relkind IN ('v','m') THEN pg_get_viewdef(c.oid) END AS definition
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r','v','m','p','f','S')
     AND (n.nspname NOT LIKE 'pg_temp_%' OR n.oid = pg_my_temp_schema())`;

const COLUMNS_SQL = `
  SELECT a.attrelid::int8 AS attrelid, a.attnum AS attnum, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
         tn.nspname AS type_schema, t.typname AS type_name, a.atttypmod AS typmod
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
   WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f')
   ORDER BY a.attrelid, a.attnum`;

const FUNCTIONS_SQL = `
  SELECT p.oid::int8 AS oid, n.nspname AS schema, p.proname AS name, l.lanname AS language,
         CASE WHEN l.lanname = 'plpgsql' THEN pg_get_functiondef(p.oid) END AS source,
         (p.provolatile = 'v' OR p.prokind = 'p') AS volatile,
         CASE WHEN l.lanname = 'sql' AND n.nspname NOT IN ('pg_catalog', 'information_schema') THEN p.prosrc END AS sql_body,
         CASE WHEN l.lanname IN ('c', 'internal') AND n.nspname NOT IN ('pg_catalog', 'information_schema') THEN
           (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
             WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' LIMIT 1)
         END AS extension
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang`;

/** Every operator, and the function it calls (pg_catalog's too: an unknown name is then a new one). */
const OPERATORS_SQL = `
  SELECT n.nspname AS schema, o.oprname AS name, o.oprcode::oid::int8 AS fn
    FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace`;

/**
 * Casts created after initdb (an OID from FirstNormalObjectId on) that call a function, by target
 * type: a user's `CREATE CAST … WITH FUNCTION` may bind any function, a built-in one included.
 */
const CASTS_SQL = `
  SELECT tn.nspname AS schema, t.typname AS name, c.castfunc::int8 AS fn
    FROM pg_cast c JOIN pg_type t ON t.oid = c.casttarget JOIN pg_namespace tn ON tn.oid = t.typnamespace
   WHERE c.oid >= 16384 AND c.castfunc <> 0`;

/** Names error messages quote besides relations, columns and functions. */
const OTHER_NAMES_SQL = `
  SELECT conname AS name FROM pg_constraint
  UNION SELECT relname FROM pg_class WHERE relkind IN ('i', 'I')
  UNION SELECT nspname FROM pg_namespace
  UNION SELECT rolname FROM pg_roles
  UNION SELECT typname FROM pg_type
  UNION SELECT name FROM pg_settings`;

interface Snapshot {
  relations: Map<number, CatalogRelation>;
  /** schema → name → oid */
  bySchema: Map<string, Map<string, number>>;
  columns: Map<number, CatalogColumn[]>;
  functions: CatalogFunction[];
  functionsByName: Map<string, CatalogFunction[]>;
  functionsByOid: Map<number, CatalogFunction>;
  /** Operator name → where each operator of that name lives and the function it calls. */
  operators: Map<string, { schema: string; fn: number }[]>;
  /** Target type name → casts to it that call a user function. */
  casts: Map<string, { schema: string; fn: number }[]>;
  tempSchema: string | undefined;
  /** Every object name above, and those of constraints, indexes, roles, types and settings. */
  names: Set<string>;
  /** Table oid → attribute numbers of its primary key. */
  primaryKeys: Map<number, Set<number>>;
  /** Table oid → the functions of its user triggers. */
  triggers: Map<number, number[]>;
}

export class PostgresCatalog {
  private snap: Snapshot;
  private readonly views = new Map<number, ColumnLineage[] | undefined>();
  private readonly viewBases = new Map<number, CatalogRelation[]>();
  private readonly viewTestsCache = new Map<number, CatalogFunction['tests']>();

  private constructor(
    private readonly client: ClientBase,
    snap: Snapshot,
  ) {
    this.snap = snap;
  }

  static async load(client: ClientBase): Promise<PostgresCatalog> {
    return new PostgresCatalog(client, await readSnapshot(client));
  }

  /** Reloads everything (one round trip per catalog table); call after DDL. */
  async refresh(): Promise<void> {
    this.snap = await readSnapshot(this.client);
    this.views.clear();
    this.viewBases.clear();
    this.viewTestsCache.clear();
  }

  /** The temp schema of the session that loaded the snapshot, if it has created one. */
  get tempSchema(): string | undefined {
    return this.snap.tempSchema;
  }

  /** Every relation in the snapshot. */
  allRelations(): IterableIterator<CatalogRelation> {
    return this.snap.relations.values();
  }

  /** Whether `column` is part of the primary key of the relation `oid`. */
  keyColumn(oid: number, column: string): boolean {
    const key = this.snap.primaryKeys.get(oid);
    const c = this.columns(oid).find((x) => x.name === column);
    return key !== undefined && c !== undefined && key.has(c.attnum);
  }

  /** A name of some object in the snapshot (exact, as the server spells it). */
  knowsName(name: string): boolean {
    return this.snap.names.has(name);
  }

  relation(oid: number): CatalogRelation | undefined {
    return this.snap.relations.get(oid);
  }

  columns(oid: number): CatalogColumn[] {
    return this.snap.columns.get(oid) ?? [];
  }

  functions(): readonly CatalogFunction[] {
    return this.snap.functions;
  }

  columnOf(tableOid: number, attnum: number): { schema: string; table: string; column: string } | undefined {
    const rel = this.snap.relations.get(tableOid);
    const c = this.columns(tableOid).find((k) => k.attnum === attnum);
    return rel && c ? { schema: rel.schema, table: rel.name, column: c.name } : undefined;
  }

  /**
   * Resolves a relation name like the server: an explicit schema is taken as is (`pg_temp` means
   * this session's temp schema); otherwise the temp schema first (temp tables shadow real ones),
   * then pg_catalog, then the search_path, each unless the path places them explicitly.
   */
  resolveRelation(ref: { schema?: string; name: string }, opts: ResolveOptions): (CatalogRelation & { oid: number }) | undefined {
    const temp = opts.tempSchema ?? this.snap.tempSchema;
    const find = (schema: string | undefined): CatalogRelation | undefined => {
      if (schema === undefined) return undefined;
      const oid = this.snap.bySchema.get(schema)?.get(ref.name);
      return oid === undefined ? undefined : this.snap.relations.get(oid);
    };
    if (ref.schema !== undefined) return find(ref.schema === 'pg_temp' ? temp : ref.schema);
    for (const schema of effectivePath(opts, temp)) {
      const r = find(schema);
      if (r) return r;
    }
    return undefined;
  }

  /**
   * Whether a call resolves to a built-in function (pg_catalog, information_schema). A function
   * the catalog does not know (a temp function, or one created since the last refresh) is not:
   * its body could read any table, so lineage treats its output as unknown.
   */
  callsSystemFunction(schema: string | undefined, name: string, opts: ResolveOptions): boolean {
    const found = this.findFunctions(schema, name, opts);
    return found.length > 0 && found.every((f) => SYSTEM_SCHEMAS.has(f.schema));
  }

  /**
   * The functions a call may reach, as the server picks them: an explicit schema, else every
   * function of the name in any schema on the path. The server chooses among all of them by
   * argument types, and the path order only breaks ties between equal signatures, so a
   * `public.md5(varchar)` is what `md5(x::varchar)` calls although pg_catalog comes first (the
   * call's argument types are not known here). Empty when the catalog knows no such function.
   */
  findFunctions(schema: string | undefined, name: string, opts: ResolveOptions): CatalogFunction[] {
    const candidates = this.snap.functionsByName.get(name) ?? [];
    if (schema !== undefined) return candidates.filter((f) => f.schema === (schema === 'pg_temp' ? (opts.tempSchema ?? this.snap.tempSchema) : schema));
    const path = new Set(effectivePath(opts, opts.tempSchema ?? this.snap.tempSchema));
    return candidates.filter((f) => path.has(f.schema));
  }

  /**
   * The functions an operator or a cast may run, as far as they are not built in: empty when
   * only built-in operators (of pg_catalog) or no user-defined cast can be meant. A user-defined
   * operator's function is listed even when it is a built-in one (`function = lo_import`): what
   * it does still counts. 'unknown' when the catalog has no operator of that name where the
   * name reaches (one created since the last reload, or in another session's temp schema).
   */
  implicitCallFunctions(call: ImplicitCall, opts: ResolveOptions): CatalogFunction[] | 'unknown' {
    const temp = opts.tempSchema ?? this.snap.tempSchema;
    const fns = (hits: { fn: number }[]): CatalogFunction[] | 'unknown' => {
      const out: CatalogFunction[] = [];
      for (const h of hits) {
        const f = this.snap.functionsByOid.get(h.fn);
        if (f === undefined) return 'unknown';
        out.push(f);
      }
      return out;
    };
    if (call.kind === 'cast') {
      // Casts are found by the type they produce; a type name in another schema is another type.
      const hits = (this.snap.casts.get(call.name) ?? []).filter((c) => call.schema === undefined || c.schema === (call.schema === 'pg_temp' ? temp : call.schema));
      return fns(hits);
    }
    const all = this.snap.operators.get(call.name) ?? [];
    // The server considers every operator of the name on the path (then picks by argument types).
    const schemas = call.schema !== undefined ? [call.schema === 'pg_temp' ? temp : call.schema] : effectivePath(opts, temp);
    const reachable = all.filter((o) => schemas.includes(o.schema));
    if (reachable.length === 0) return 'unknown';
    return fns(reachable.filter((o) => !SYSTEM_SCHEMAS.has(o.schema)));
  }

  /** Functions whose bodies run dynamic SQL: calling one is as opaque as a DO block. */
  dynamicSqlFunctions(): CatalogFunction[] {
    return this.snap.functions.filter((f) => f.dynamicSql);
  }

  /**
   * The tables a view reads, through views of views: what a write through an updatable view
   * changes. Empty for anything that is not a view, or a definition that cannot be read.
   */
  viewBaseRelations(oid: number, depth = 0): CatalogRelation[] {
    const cached = this.viewBases.get(oid);
    if (cached !== undefined) return cached;
    const rel = this.snap.relations.get(oid);
    if (rel?.relkind !== 'v' || rel.definition === undefined || depth > 16) return [];
    this.viewBases.set(oid, []);
    const out: CatalogRelation[] = [];
    for (const f of analysePostgres(rel.definition).statements) {
      for (const r of f.relations) {
        // Definitions name every schema (they are read with only pg_catalog on the path).
        const base = this.resolveRelation(r, { searchPath: [] });
        if (!base) continue;
        if (base.relkind === 'v') out.push(...this.viewBaseRelations(base.oid, depth + 1));
        else out.push(base);
      }
    }
    this.viewBases.set(oid, out);
    return out;
  }

  /**
   * Columns a user's view (or materialized view: REFRESH runs it again) tests, through the views
   * and functions it reads: a read of the view runs its conditions. A view over one table that
   * tests one column against constants (`WHERE email NOT LIKE '%@test.example'`) filters the same
   * rows for everyone and answers nothing the client chose: its tests do not count. One that
   * compares a value with another column (of a table the client may fill with guesses, or of the
   * same one), a function's result (`current_setting('app.ssn')`) or the session does.
   */
  viewTests(oid: number, depth = 0): CatalogFunction['tests'] {
    const cached = this.viewTestsCache.get(oid);
    if (cached !== undefined) return cached;
    const rel = this.snap.relations.get(oid);
    if ((rel?.relkind !== 'v' && rel?.relkind !== 'm') || rel.definition === undefined || SYSTEM_SCHEMAS.has(rel.schema) || depth > 16) return [];
    this.viewTestsCache.set(oid, []);
    const out: CatalogFunction['tests'] = [];
    const facts = analysePostgres(rel.definition).statements;
    const tables = new Set(facts.flatMap((f) => f.relations.map((r) => `${r.schema ?? ''}.${r.name}`)));
    const sessionBound = /\b(current_schema|current_schemas|current_user|session_user|current_role|user)\b/i.test(rel.definition) || rel.definition.includes('$');
    const userOperator = facts.some((f) => (f.implicitCalls ?? []).some((c) => c.schema !== undefined && c.schema !== 'pg_catalog'));
    // Two columns tested together may be compared with each other (`WHERE ssn = plan`, plan a
    // column the client writes guesses into): only one tested column is a filter by constants.
    const tested = new Set(facts.flatMap((f) => (f.predicateColumns ?? []).map((c) => `${c.schema ?? ''}.${c.table}.${c.column}`)));
    const fixed = tables.size <= 1 && tested.size <= 1 && facts.every((f) => f.functions.length === 0) && !sessionBound && !userOperator;
    for (const f of facts) {
      if (!fixed) out.push(...(f.predicateColumns ?? []));
      for (const r of f.relations) {
        const inner = this.resolveRelation(r, { searchPath: [] });
        if (inner) out.push(...this.viewTests(inner.oid, depth + 1));
      }
      for (const fn of f.functions) for (const g of this.findFunctions(fn.schema, fn.name, { searchPath: [] })) if (!SYSTEM_SCHEMAS.has(g.schema)) out.push(...g.tests);
    }
    this.viewTestsCache.set(oid, out);
    return out;
  }

  /**
   * Columns the triggers of a table test: a write to it runs them with the values it writes
   * (a validation trigger's `IF EXISTS (SELECT 1 FROM users WHERE email = NEW.email) THEN RAISE`
   * answers, by its error, whether a guess written into an unclassified table is a value).
   */
  triggerTests(oid: number): CatalogFunction['tests'] {
    return (this.snap.triggers.get(oid) ?? []).flatMap((fn) => this.snap.functionsByOid.get(fn)?.tests ?? []);
  }

  /** A view's output lineage, computed once per snapshot by `compute` from its definition. */
  viewLineage(oid: number, compute: (facts: StatementFacts) => ColumnLineage[]): ColumnLineage[] | undefined {
    if (this.views.has(oid)) return this.views.get(oid);
    const def = this.snap.relations.get(oid)?.definition;
    // Mark as in progress: a view cycle (impossible in PostgreSQL, but cheap to guard) stays opaque.
    this.views.set(oid, undefined);
    if (def === undefined) return undefined;
    const facts = analysePostgres(def).statements[0];
    const lineage = facts && facts.kind === 'select' ? compute(facts) : undefined;
    this.views.set(oid, lineage);
    return lineage;
  }
}

/** Splits a search_path setting as the server reports it: `"$user", public, "My Schema"`. */
export function parseSearchPath(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (quoted) {
      if (ch === '"' && value[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') {
      out.push(wasQuoted ? cur : cur.trim().toLowerCase());
      cur = '';
      wasQuoted = false;
    } else if (ch !== ' ' || cur.length > 0) cur += ch;
  }
  if (cur.length > 0 || wasQuoted) out.push(wasQuoted ? cur : cur.trim().toLowerCase());
  return out;
}

function effectivePath(opts: ResolveOptions, temp: string | undefined): string[] {
  const path: string[] = [];
  for (const entry of opts.searchPath) {
    if (entry === '$user') {
      if (opts.user !== undefined) path.push(opts.user);
    } else if (entry === 'pg_temp') {
      if (temp !== undefined) path.push(temp);
    } else path.push(entry);
  }
  const head: string[] = [];
  if (temp !== undefined && !path.includes(temp)) head.push(temp);
  if (!path.includes('pg_catalog')) head.push('pg_catalog');
  return [...head, ...path];
}

async function readSnapshot(client: ClientBase): Promise<Snapshot> {
  // Views are read with only pg_catalog on the path, so their definitions name every schema.
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`SET LOCAL search_path = pg_catalog`);
    const [rels, cols, fns, ops, casts, temp, other, keys, trigs] = [
      await client.query(RELATIONS_SQL),
      await client.query(COLUMNS_SQL),
      await client.query(FUNCTIONS_SQL),
      await client.query(OPERATORS_SQL),
      await client.query(CASTS_SQL),
      await client.query(`SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()`),
      await client.query(OTHER_NAMES_SQL),
      await client.query(`SELECT conrelid::int8 AS oid, conkey FROM pg_constraint WHERE contype = 'p'`),
      // User triggers (not those behind foreign keys), enabled in any mode: what a write to their table runs.
      await client.query(`SELECT tgrelid::int8 AS rel, tgfoid::int8 AS fn FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'`),
    ];
    await client.query('COMMIT');
    const relations = new Map<number, CatalogRelation>();
    const bySchema = new Map<string, Map<string, number>>();
    for (const r of rels.rows as Record<string, string | null>[]) {
      const rel: CatalogRelation = {
        oid: Number(r.oid),
        schema: String(r.schema),
        name: String(r.name),
        relkind: String(r.relkind),
        owner: String(r.owner),
        ...(r.definition ? { definition: r.definition } : {}),
      };
      relations.set(rel.oid, rel);
      let m = bySchema.get(rel.schema);
      if (!m) bySchema.set(rel.schema, (m = new Map()));
      m.set(rel.name, rel.oid);
    }
    const columns = new Map<number, CatalogColumn[]>();
    for (const c of cols.rows as Record<string, string>[]) {
      const oid = Number(c.attrelid);
      let list = columns.get(oid);
      if (!list) columns.set(oid, (list = []));
      list.push({ attnum: Number(c.attnum), name: String(c.name), type: String(c.type), pgType: { schema: String(c.type_schema), name: String(c.type_name), typmod: Number(c.typmod) } });
    }
    const functions: CatalogFunction[] = [];
    const functionsByName = new Map<string, CatalogFunction[]>();
    const bodyCalls = new Map<CatalogFunction, FunctionRef[]>();
    for (const f of fns.rows as Record<string, string | boolean | null>[]) {
      const dynamicSql = typeof f.source === 'string' ? bodyRunsDynamicSql(f.source) : false;
      const risks = functionRisks(String(f.name), f.name === 'set_config' ? undefined : null);
      const body = userBody(String(f.schema), String(f.language), f.sql_body, f.source, typeof f.extension === 'string' ? f.extension : undefined);
      const fn: CatalogFunction = {
        stores: body === 'unread' || dynamicSql || (body?.functions.some((c) => STORING_FUNCTIONS.has(c.name)) ?? false),
        reads: body === 'unread' || body === undefined ? [] : body.relations.map((r) => ({ ...(r.schema !== undefined ? { schema: r.schema } : {}), name: r.name })),
        tests: body === 'unread' || body === undefined ? [] : body.tests,
        oid: Number(f.oid),
        schema: String(f.schema),
        name: String(f.name),
        language: String(f.language),
        dynamicSql,
        risks: dynamicSql && !risks.includes('dynamic-sql') ? [...risks, 'dynamic-sql'] : risks,
        volatile: f.volatile === true,
        ...(typeof f.sql_body === 'string' && f.sql_body.trim() !== '' ? { sqlBody: f.sql_body } : {}),
      };
      functions.push(fn);
      if (body !== undefined && body !== 'unread') bodyCalls.set(fn, body.functions);
      let l = functionsByName.get(fn.name);
      if (!l) functionsByName.set(fn.name, (l = []));
      l.push(fn);
    }
    // A body calling a user function that stores stores too; so does one calling a function the
    // catalog does not have. What a callee tests, its caller tests. Followed until nothing changes
    // (a call cycle settles as well).
    const testKey = (t: CatalogFunction['tests'][number]): string => `${t.schema ?? ''}\u0000${t.table}\u0000${t.column}`;
    for (let changed = true; changed; ) {
      changed = false;
      for (const [fn, calls] of bodyCalls) {
        const callee = (c: FunctionRef): CatalogFunction[] => (functionsByName.get(c.name) ?? []).filter((g) => c.schema === undefined || g.schema === c.schema);
        if (!fn.stores && calls.some((c) => callee(c).length === 0 || callee(c).some((g) => g.stores && !SYSTEM_SCHEMAS.has(g.schema)))) {
          fn.stores = true;
          changed = true;
        }
        const own = new Set(fn.tests.map(testKey));
        for (const c of calls) {
          for (const g of callee(c)) {
            if (SYSTEM_SCHEMAS.has(g.schema)) continue;
            for (const t of g.tests) {
              if (own.has(testKey(t))) continue;
              own.add(testKey(t));
              fn.tests.push(t);
              changed = true;
            }
          }
        }
      }
    }
    const functionsByOid = new Map(functions.map((f) => [f.oid, f]));
    const byName = (rows: Record<string, string>[]): Map<string, { schema: string; fn: number }[]> => {
      const out = new Map<string, { schema: string; fn: number }[]>();
      for (const r of rows) {
        let l = out.get(String(r.name));
        if (!l) out.set(String(r.name), (l = []));
        l.push({ schema: String(r.schema), fn: Number(r.fn) });
      }
      return out;
    };
    const operators = byName(ops.rows as Record<string, string>[]);
    const castsByType = byName(casts.rows as Record<string, string>[]);
    const tempSchema = (temp.rows[0] as { nspname?: string } | undefined)?.nspname;
    const names = new Set<string>();
    for (const r of relations.values()) names.add(r.name).add(r.schema);
    for (const list of columns.values()) for (const c of list) names.add(c.name);
    for (const f of functions) names.add(f.name);
    for (const r of other.rows as { name: string }[]) names.add(String(r.name));
    const primaryKeys = new Map<number, Set<number>>();
    for (const r of keys.rows as { oid: string; conkey: number[] | string }[]) {
      const attnums = Array.isArray(r.conkey) ? r.conkey.map(Number) : String(r.conkey).replace(/[{}]/g, '').split(',').map(Number);
      primaryKeys.set(Number(r.oid), new Set(attnums));
    }
    const triggers = new Map<number, number[]>();
    for (const t of trigs.rows as Record<string, string>[]) {
      const rel = Number(t.rel);
      triggers.set(rel, [...(triggers.get(rel) ?? []), Number(t.fn)]);
    }
    return { relations, bySchema, columns, functions, functionsByName, functionsByOid, operators, casts: castsByType, tempSchema, names, primaryKeys, triggers };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** Languages whose code is the server's or an installed extension's: its source is not there to read. */
const COMPILED_LANGUAGES = new Set(['internal', 'c']);

/**
 * Extensions whose compiled functions compute only from their arguments: they read no table and
 * run no query, so a call is judged as a built-in's is. The C code of any other extension (or of
 * none) may run SQL it is given as text (tablefunc's crosstab and connectby, xml2's xpath_table,
 * pg_stat_statements' texts of other sessions): `count(*) FROM crosstab('… WHERE ssn = ''…''')`
 * answers a guess about a masked value without naming the column in the statement. Such a call is
 * read like a body in a language dbgov does not read.
 */
const PURE_EXTENSIONS: ReadonlySet<string> = new Set([
  'btree_gin', 'btree_gist', 'citext', 'cube', 'dict_int', 'dict_xsyn', 'earthdistance', 'fuzzystrmatch', 'hstore',
  'intagg', 'intarray', 'isn', 'ltree', 'pg_trgm', 'pgcrypto', 'seg', 'unaccent', 'uuid-ossp', 'vector',
]);

/**
 * What a user function's body calls and reads: analysed for sql (prosrc) and plpgsql (the full
 * definition); 'unread' for any other language of a user function, and for compiled code outside
 * a pure extension; undefined for built-ins.
 */
function userBody(schema: string, language: string, sqlBody: unknown, definition: unknown, extension: string | undefined): { functions: FunctionRef[]; relations: StatementFacts['relations']; tests: CatalogFunction['tests'] } | 'unread' | undefined {
  if (SYSTEM_SCHEMAS.has(schema)) return undefined;
  if (COMPILED_LANGUAGES.has(language)) return extension !== undefined && PURE_EXTENSIONS.has(extension) ? undefined : 'unread';
  if (language === 'plpgsql') {
    const w = new Walker();
    if (typeof definition !== 'string' || !w.functionDefinition(definition)) return 'unread';
    const read = w.out.relations.filter((r) => r.access === 'read').map((r) => ({ ...(r.schema !== undefined ? { schema: r.schema } : {}), table: r.name, column: '*' }));
    return { functions: w.out.functions, relations: w.out.relations, tests: [...w.out.predicateColumns, ...read] };
  }
  // An empty prosrc is a SQL-standard body (BEGIN ATOMIC), which is not read here.
  if (language !== 'sql' || typeof sqlBody !== 'string' || sqlBody.trim() === '') return 'unread';
  const facts = analysePostgres(sqlBody).statements;
  if (facts.some((f) => f.kind === 'unknown')) return 'unread';
  return { functions: facts.flatMap((f) => f.functions), relations: facts.flatMap((f) => f.relations), tests: facts.flatMap((f) => f.predicateColumns ?? []) };
}

/**
 * A PL/pgSQL function's full definition (pg_get_functiondef, so RETURN checks match its real
 * return type) → does it EXECUTE a run-time string (EXECUTE, FOR … IN EXECUTE, OPEN … FOR EXECUTE)?
 */
function bodyRunsDynamicSql(definition: string): boolean {
  let tree: unknown;
  try {
    tree = parsePlPgSQLSync(definition);
  } catch {
    // A body we cannot read is treated as able to do anything.
    return true;
  }
  const seen = (x: unknown): boolean => {
    if (Array.isArray(x)) return x.some(seen);
    if (typeof x !== 'object' || x === null) return false;
    for (const [k, v] of Object.entries(x)) {
      if (k === 'PLpgSQL_stmt_dynexecute' || k === 'PLpgSQL_stmt_dynfors') return true;
      if (k === 'PLpgSQL_stmt_open' && typeof v === 'object' && v !== null && 'dynquery' in v) return true;
      if (seen(v)) return true;
    }
    return false;
  };
  return seen(tree);
}
