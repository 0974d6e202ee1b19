/**
 * What one target gives its sessions: cached analysis in its SQL dialect, name resolution
 * against its catalog, masking plans and error scrubbing, and row estimates for approvers.
 * The catalog is read through the broker's own admin connection, never the client's session.
 */
import type { ClientError, CopyMaskPlan, MaskPlan, ResultColumn } from '../gateway/engine.js';
import { classifyColumn, classifyTable, contentScanOn, mayUnmask, type ColumnRule, type MaskingConfig } from '../masking/config.js';
import { buildMaskPlan, isMaskBlock, type ColumnName } from '../masking/plan.js';
import { planCopy } from '../masking/copy.js';
import { scrubMessage } from '../masking/scrub.js';
import { planRelations, rowSource, unknownRows } from '../masking/row-source.js';
import type { ColumnLineage, FunctionRef, ImplicitCall, MessageAnalysis, RelationRef, StatementFacts } from '../sql/facts.js';
import type { WriteFlow } from '../sql/lineage.js';
import { STORING_FUNCTIONS } from '../sql/postgres/functions.js';
import { keepsEveryValue, type ColumnType, type TypeRef } from '../sql/postgres/retype.js';
import type { Logger } from '../shared/logger.js';
import type { IdentityRef } from '../shared/types.js';
import type { TargetConfig } from './config.js';
import type { LiveSession } from './sessions.js';
import { createdView, createdViewRun, settingsIn, type FunctionHold, type SessionState, type TargetServices } from './statement-hooks.js';

/** Catalog operations the broker needs; implemented per engine (src/sql/catalog.ts for PostgreSQL). */
export interface TargetCatalog {
  /** Loads or reloads the snapshot. */
  refresh(): Promise<void>;
  loaded(): boolean;
  resolveRelation(ref: RelationRef, searchPath: string[] | null): { schema: string; name: string; oid?: number } | undefined;
  columnOf(tableOid: number, attnum: number): ColumnName | undefined;
  /** True when the OID is a table holding its own rows (not a view, whose columns need lineage). */
  isBaseTable(tableOid: number): boolean;
  /** The tables a view reads (through views of views): what writing through it changes. Empty when `ref` is not a view. */
  viewBaseRelations?(ref: RelationRef, searchPath: string[] | null): { schema: string; name: string; oid?: number }[];
  /** Output lineage with every source qualified and `*` expanded. */
  resolveLineage(facts: StatementFacts, searchPath: string[] | null): ColumnLineage[] | undefined;
  /**
   * Columns the statement tests once the catalog says which calls of a built-in's name may reach a
   * user function (src/sql/lineage.ts, resolveTestedColumns); undefined when none may.
   * `typeShadowed`: a type name as written may not be pg_catalog's in this session.
   */
  resolveTestedColumns?(facts: StatementFacts, searchPath: string[] | null, typeShadowed: (schema: string | undefined, name: string) => boolean): { schema?: string; table: string; column: string }[] | undefined;
  /** Values the statement stores, and what they carry (src/sql/lineage.ts, resolveWriteFlows). */
  resolveWriteFlows?(facts: StatementFacts, searchPath: string[] | null): WriteFlow[] | undefined;
  /**
   * What calling this function runs, as far as policy needs to know: not a user function (or
   * one that cannot write: STABLE/IMMUTABLE) → undefined; a VOLATILE LANGUAGE sql function or
   * procedure → its body's statements; anything else that may write, or a function the catalog
   * does not know (created a moment ago, say) → 'opaque'.
   */
  callTarget?(fn: FunctionRef, searchPath: string[] | null): StatementFacts[] | 'opaque' | undefined;
  /**
   * The functions an operator or a cast runs where they are user-defined (src/sql/catalog.ts,
   * implicitCallFunctions): empty for built-ins, 'unknown' for an operator the catalog lacks.
   */
  implicitCallFunctions?(call: ImplicitCall, searchPath: string[] | null): FunctionRef[] | 'unknown';
  /**
   * What calling a user function may do with data, whatever its volatility: keep it somewhere
   * masking does not reach (`stores`), and which relations its body reads. Undefined for
   * built-in functions and ones the catalog does not know (those are judged by callTarget).
   */
  functionBodies?(fn: FunctionRef, searchPath: string[] | null): { stores: boolean; reads: RelationRef[]; tests: { schema?: string; table: string; column: string }[] } | undefined;
  /** Columns a user's view tests that a client may steer (a join with another table, a function): a read of it tests them. */
  viewTests?(oid: number): { schema?: string; table: string; column: string }[];
  /** Columns the triggers of a table test: a write to it tests them. */
  triggerTests?(oid: number): { schema?: string; table: string; column: string }[];
  /** A name of the catalog (relation, column, schema, constraint, index, role, type, function): shown in error messages. */
  knowsName?(name: string): boolean;
  /** Whether `column` is (part of) the primary key of `ref` (MySQL: `WHERE id` holds for every row). */
  keyColumn?(ref: RelationRef, column: string): boolean;
  /** MySQL: the column's DATA_TYPE (lower case), when the catalog has it. */
  dataTypeOf?(ref: RelationRef, column: string): string | undefined;
  /** Whether the catalog has the relation `ref` (resolved, for PostgreSQL) and so can answer keyColumn for it. */
  knowsRelation?(ref: RelationRef): boolean;
  /** A relation's columns by attribute number (for following column renames); PostgreSQL only. */
  columnsOf?(oid: number): { attnum: number; name: string }[];
  /** A column's type as the catalog has it (what an ALTER COLUMN TYPE converts from); PostgreSQL only. */
  columnType?(oid: number, column: string): ColumnType | undefined;
  /** Every relation's oid and current name (for following renames). */
  relations(): Iterable<{ oid: number; schema: string; name: string }>;
  /** Row estimate for approvers (EXPLAIN, never executing). */
  estimateRows(sql: string): Promise<number | null>;
  close(): Promise<void>;
}

const CATALOG_REFRESH_MS = 15_000;
/** Statements that run the transaction's deferred constraint checks. */
const RUNS_DEFERRED_CHECKS: ReadonlySet<string> = new Set(['COMMIT', 'PREPARE TRANSACTION', 'COMMIT PREPARED', 'SET CONSTRAINTS']);
/** Masks that give each value one keyed token: equal values, equal tokens. */
const TOKEN_MASKS: ReadonlySet<string> = new Set(['hash', 'fake']);
/** The refusal of a write of chosen values into a column masked as tokens (see hiddenFlow). */
const TOKEN_WRITE = (into: string): ClientError => ({
  sqlstate: '42501',
  message: `dbgov: blocked: this statement writes values of your choosing into ${into}, which is masked for you as tokens: each would read back as the token of your value, to compare with the real ones`,
  detail: 'rule: masking (a column masked by hash or fake takes only values read from such a column, as they are)',
  hint: 'leave that column out (or copy it from another row as it is), or ask an identity that may see the data in clear',
});
/** StatementFacts.actions of a type change that may not keep every value (see judgeRetypes). */
const OVERWRITE_COLUMN = 'ALTER TABLE OVERWRITE COLUMN';
/** Function bodies calling functions: deeper than this is judged opaque rather than followed. */
const MAX_CALL_DEPTH = 3;

export interface TargetRuntimeDeps {
  name: string;
  config: TargetConfig;
  /** `runsLater`: a protocol-level prepare, which runs under whatever the session's settings are then. */
  analyse: (sql: string, params: ReadonlyMap<string, string>, runsLater?: boolean) => MessageAnalysis;
  catalog: TargetCatalog | null;
  masking: MaskingConfig;
  log: Logger;
}

export class TargetRuntime implements TargetServices {
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  /** A reload was asked for while one ran (see reload). */
  private reloadAgain = false;
  /**
   * The name each relation had when this broker first saw it. Protection follows the table, not
   * its name: after `ALTER TABLE model_weights RENAME TO w2`, statements on w2 are also judged
   * as statements on model_weights.
   */
  private readonly firstNames = new Map<number, { schema: string; name: string }>();
  private refreshInterval: NodeJS.Timeout | undefined;
  /** True when the masking config names any column: otherwise masking costs nothing. */
  private readonly maskingActive: boolean;
  /**
   * Bumped on every catalog reload. Everything cached below is keyed by it, so DDL (a rename, a
   * new view, a temp table) can never leave a stale resolution or mask plan in use.
   */
  private generation = 0;
  /**
   * Views created or replaced through the gateway, by any session, that the catalog may not have
   * yet: lower-case name → what the new definition reads, and the generation from which a reload
   * has it. Until then the catalog's definition of the name is the old one (`CREATE OR REPLACE
   * VIEW user_contacts AS SELECT ssn AS plan …` read as plan in another session's next statement).
   */
  private readonly changedViews = new Map<string, { reads: RelationRef[]; until: number }>();
  /** Bumped whenever changedViews changes: resolutions cached before are stale. */
  private changedViewsVersion = 0;
  /** The last store check per (cached) facts array, for the session that asked (see storesHidden). */
  private readonly recentStores = new WeakMap<StatementFacts[], SessionMemo & { result: ClientError | null }>();
  /** The last plan per (cached) facts array, for the session that asked (see maskPlan). */
  private readonly recentPlans = new WeakMap<StatementFacts[], SessionMemo & { columns: ResultColumn[]; plan: MaskPlan | ClientError | null }>();
  /** Resolution of one analysis (a cached, shared facts array) for one search_path. */
  private readonly resolved = new WeakMap<StatementFacts[], { key: string; out: StatementFacts[] }>();
  /** Lineage and mask plans for statement texts seen before (the extended protocol repeats them). */
  private readonly lineageCache = new BoundedCache<ColumnLineage[] | undefined>(5000);
  private readonly planCache = new BoundedCache<MaskPlan | ClientError | null>(5000);
  private classifiedFor = new WeakMap<LiveSession, ReadonlySet<string>>();
  /**
   * The masking config in effect: the configured one, plus an exact rule for every column that a
   * rename (of the column, its table or its schema) moved away from the names that classified it.
   * Protection follows the column (table OID and attribute number), as policy follows the table.
   */
  private masking: MaskingConfig;
  /**
   * Function names some session defined or changed that the catalog may not have read yet (see
   * functionsChanging): name (lower case, `*` for any) → the holds on it.
   */
  private readonly unsettledFunctions = new Map<string, Set<FunctionHold>>();
  /** oid:attnum → the names a classified column had when the broker first saw it. */
  private readonly firstColumns = new Map<string, { schema: string; table: string; column: string }>();

  constructor(private readonly d: TargetRuntimeDeps) {
    this.masking = d.masking;
    this.maskingActive = d.masking.columns.length > 0 || contentScanOn(d.masking, d.name);
  }

  get name(): string {
    return this.d.name;
  }

  async start(): Promise<void> {
    if (!this.d.catalog) return;
    // Changes made outside the gateway (a DBA's migration) are picked up within this interval;
    // changes made through it trigger a reload at once (schemaChanged).
    this.refreshInterval = setInterval(() => this.scheduleReload(), CATALOG_REFRESH_MS);
    this.refreshInterval.unref();
    try {
      await this.d.catalog.refresh();
      this.rememberNames();
    } catch (e) {
      // The target may be down at broker start; sessions will fail with their own clear error,
      // and until the catalog loads, unqualified names resolve conservatively.
      this.d.log.warn({ err: e, target: this.d.name }, 'catalog load failed; will retry');
      this.scheduleReload();
    }
  }

  analyse(sql: string, state: SessionState, runsLater = false): MessageAnalysis {
    return this.d.analyse(sql, state.params, runsLater);
  }

  resolve(facts: StatementFacts[], state: SessionState): StatementFacts[] {
    return afterPreparedModes(withHandlerTables(this.resolveFacts(facts, state), state), state);
  }

  private resolveFacts(facts: StatementFacts[], state: SessionState): StatementFacts[] {
    const cat = this.d.catalog;
    if (!cat?.loaded() && state.tempTables.size === 0) return facts.some(onlyTestsOneColumn) ? facts.map((f) => (onlyTestsOneColumn(f) ? { ...f, hasWhere: false } : f)) : facts;
    // Temp tables are per session, so those sessions resolve afresh; everyone else shares.
    const key = state.tempTables.size === 0 && state.createdViews.size === 0 && state.renamed.size === 0 && state.typesChanged.size === 0 && this.unsettledFunctions.size === 0 ? `${this.generation}|${this.changedViewsVersion}|${state.pathKey}` : undefined;
    if (key !== undefined) {
      const hit = this.resolved.get(facts);
      if (hit?.key === key) return hit.out;
    }
    // Facts are cached and shared between sessions: resolution goes on a copy.
    const out = this.resolveAll(facts, state, 0, new Set(state.typesChanged), new Set());
    if (key !== undefined) this.resolved.set(facts, { key, out });
    return out;
  }

  /**
   * `typesChanged`: the session's, plus those of the statements before in this message (added to
   * as it goes). `functionsChanged`: the functions the statements before in this message define
   * or change (those of earlier messages are in unsettledFunctions).
   */
  private resolveAll(facts: StatementFacts[], state: SessionState, depth: number, typesChanged: Set<string>, functionsChanged: Set<string>): StatementFacts[] {
    const cat = this.d.catalog;
    const out: StatementFacts[] = [];
    // Views created by this session, changed by any session and not yet in the catalog (held by
    // the session that changed them, or noted when it ran), and by earlier statements of this message.
    const views = new Map(this.unsettledViews(state));
    // Names renamed by this session, and by earlier statements of this message.
    const renamed = new Set(state.renamed);
    for (const g of facts) {
      const f = this.withImplicitCalls(g, state, functionsChanged);
      out.push(this.throughViews(this.judgeIntegerRetypes(this.judgeRetypes(this.retested(this.resolveOne(f, state, views, renamed), state, typesChanged), state, renamed, typesChanged)), views));
      for (const name of f.typesChanged ?? []) typesChanged.add(name);
      const view = createdViewRun(f, state);
      if (view) views.set(view.name, view.reads);
      for (const name of f.renamed ?? []) renamed.add(name);
      if (!cat?.loaded() || !cat.callTarget) {
        for (const name of f.functionsChanged ?? []) functionsChanged.add(name);
        continue;
      }
      // What the statement's function calls run is judged with it: a write hidden in a
      // function body is still a write (and still needs its WHERE).
      for (const fn of f.functions) {
        // Functions with a policy risk class (file, program, remote, dynamic SQL, admin,
        // identity) are judged by that class; COPY's pseudo-functions are among them.
        if (fn.risks.some((r) => r !== 'side-effect')) continue;
        const name = `${fn.schema ? `${fn.schema}.` : ''}${fn.name}`;
        // A name defined or changed moments ago (in this message, or by a session since the
        // catalog's last reload): what the catalog says it is (a built-in, an old body) may no
        // longer be what runs.
        if (this.changedSinceReload(fn, functionsChanged)) {
          const i = out.length - 1;
          out[i] = out[i].opaque ? out[i] : { ...out[i], opaque: { reason: 'opaque-function', detail: `calls ${name}, defined or changed moments ago: dbgov has not read what it runs yet (try again in a moment)` } };
          continue;
        }
        // Under every search_path the session may have (see SessionState): any body a call may run.
        const targets = this.candidatePaths(state, fn.schema === undefined ? [fn.name] : []).map((p) => cat.callTarget!(fn, p));
        const target = targets.includes('opaque') ? 'opaque' : targets.some((t) => t !== undefined) ? targets.flatMap((t) => (t === undefined || t === 'opaque' ? [] : t)) : undefined;
        if (target === undefined) continue;
        if (target === 'opaque' || depth >= MAX_CALL_DEPTH) {
          const i = out.length - 1;
          out[i] = out[i].opaque ? out[i] : { ...out[i], opaque: { reason: 'opaque-function', detail: `calls ${name}, which may change data in ways dbgov cannot see (mark read-only functions STABLE)` } };
          continue;
        }
        for (const b of this.resolveAll(target, state, depth + 1, typesChanged, functionsChanged)) out.push({ ...b, multiStatement: true, calledFrom: b.calledFrom ?? name });
      }
      for (const name of f.functionsChanged ?? []) functionsChanged.add(name);
    }
    return out;
  }

  /** Whether a call's name was defined or changed after the catalog last read it (pg_catalog.x cannot be shadowed). */
  private changedSinceReload(fn: Pick<FunctionRef, 'name' | 'schema'>, inMessage: ReadonlySet<string>): boolean {
    if (this.unsettledFunctions.size === 0 && inMessage.size === 0) return false;
    if (fn.schema === 'pg_catalog') return false;
    const name = fn.name.toLowerCase();
    return inMessage.has(name) || inMessage.has('*') || this.unsettledFunctions.has(name) || this.unsettledFunctions.has('*');
  }

  functionsChanging(names: string[]): FunctionHold {
    const hold: FunctionHold = { names: [...new Set(names)] };
    for (const n of hold.names) {
      let holds = this.unsettledFunctions.get(n);
      if (!holds) this.unsettledFunctions.set(n, (holds = new Set()));
      holds.add(hold);
    }
    return hold;
  }

  functionsSettled(hold: FunctionHold): void {
    for (const n of hold.names) {
      const holds = this.unsettledFunctions.get(n);
      holds?.delete(hold);
      if (holds?.size === 0) this.unsettledFunctions.delete(n);
    }
  }


  /**
   * Views the catalog does not have as they are now (created in this session, or created or
   * replaced through the gateway by any session before the catalog reloaded): what the statement
   * reads through one, it reads from the relations the new definition reads, and a column of one
   * compared with something may be any of their columns. So masking, the stored-value check and
   * the masked-predicate rule judge those relations (`SELECT id FROM v WHERE s LIKE '1%'` right
   * after `CREATE VIEW v AS SELECT ssn AS s FROM users` filters on users.ssn).
   */
  private throughViews(f: StatementFacts, views: ReadonlyMap<string, RelationRef[]>): StatementFacts {
    if (views.size === 0) return f;
    const via = f.relations.filter((r) => r.access === 'read' && views.has(r.name.toLowerCase()));
    if (via.length === 0) return f;
    const cat = this.d.catalog;
    const reads: RelationRef[] = [];
    for (const v of via) {
      for (const b of views.get(v.name.toLowerCase()) ?? []) {
        // A view read by the new definition is followed to its tables as the catalog has them.
        const bases = cat?.viewBaseRelations?.(b, null) ?? [];
        for (const x of bases.length > 0 ? bases : [b]) if (!reads.some((r) => r.name === x.name && r.schema === x.schema)) reads.push({ ...(x.schema !== undefined ? { schema: x.schema } : {}), name: x.name, access: 'read', via: 'unsettled-view' });
      }
    }
    const inView = new Set(via.map((r) => r.name.toLowerCase()));
    const tested = (f.predicateColumns ?? []).some((p) => inView.has(p.table.toLowerCase()));
    const predicateColumns = tested ? [...(f.predicateColumns ?? []), ...reads.map((r) => ({ ...(r.schema !== undefined ? { schema: r.schema } : {}), table: r.name, column: '*' }))] : f.predicateColumns;
    return { ...f, relations: [...f.relations, ...reads], ...(predicateColumns ? { predicateColumns } : {}) };
  }

  /** state.createdViews, plus the views any session changed that the catalog may not have yet. */
  private unsettledViews(state: SessionState): ReadonlyMap<string, RelationRef[]> {
    if (this.changedViews.size === 0) return state.createdViews;
    const out = new Map<string, RelationRef[]>();
    for (const [name, v] of this.changedViews) out.set(name, v.reads);
    for (const [name, reads] of state.createdViews) out.set(name, [...(out.get(name) ?? []), ...reads]);
    return out;
  }

  /**
   * The statement with the functions its operators and casts run added to its calls, so that
   * policy judges them like any call (an operator over lo_import reads a server file); an
   * operator the catalog does not know makes it opaque, as an unknown function does.
   */
  private withImplicitCalls(f: StatementFacts, state: SessionState, changedInMessage: ReadonlySet<string>): StatementFacts {
    const cat = this.d.catalog;
    if (!f.implicitCalls || !cat?.loaded() || !cat.implicitCallFunctions) return f;
    const functions = [...f.functions];
    for (const call of f.implicitCalls) {
      // An operator or cast defined moments ago: the catalog's answer may be the one it shadows.
      if (call.schema !== 'pg_catalog' && this.changedSinceReload({ name: `${call.kind}:${call.name}` }, changedInMessage)) {
        return { ...f, opaque: f.opaque ?? { reason: 'opaque-function', detail: `uses the ${call.kind} ${call.name}, defined moments ago: dbgov has not read what it runs yet (try again in a moment)` } };
      }
      for (const p of this.candidatePaths(state, [])) {
        const fns = cat.implicitCallFunctions(call, p);
        if (fns === 'unknown') {
          const what = `${call.kind} ${call.schema ? `${call.schema}.` : ''}${call.name}`;
          return { ...f, opaque: f.opaque ?? { reason: 'opaque-function', detail: `uses the ${what}, which dbgov does not know (yet)` } };
        }
        for (const fn of fns) if (!functions.some((x) => x.schema === fn.schema && x.name === fn.name)) functions.push(fn);
      }
    }
    return functions.length === f.functions.length ? f : { ...f, functions };
  }

  private resolveOne(f: StatementFacts, state: SessionState, views: ReadonlyMap<string, RelationRef[]> = state.createdViews, renamed: ReadonlySet<string> = state.renamed): StatementFacts {
    const cat = this.d.catalog;
    if (f.relations.length === 0 && !f.prepare) return f;
    const relations = f.relations.map((r) => {
      if ((r.schema === undefined && state.tempTables.has(r.name)) || r.schema === 'pg_temp') return { ...r, resolved: { schema: 'pg_temp', name: r.name } };
      const resolved = cat?.loaded() ? cat.resolveRelation(r, state.searchPath) : undefined;
      return resolved ? { ...r, resolved } : r;
    });
    // A name the session's other search_paths resolve elsewhere may be that relation instead:
    // policy judges every one (a ROLLBACK can undo a SET search_path without a word on the wire).
    if (cat?.loaded()) {
      for (const r of [...relations]) {
        if (r.schema !== undefined || r.resolved?.schema === 'pg_temp') continue;
        for (const p of this.candidatePaths(state, [r.name]).slice(1)) {
          const alt = cat.resolveRelation(r, p);
          if (alt && !relations.some((x) => x.resolved?.schema === alt.schema && x.resolved?.name === alt.name)) relations.push({ ...r, resolved: alt, via: 'search-path' });
        }
      }
    }
    // A write through an updatable view writes its base table: policy on that table applies.
    for (const r of [...relations]) {
      if (r.access !== 'write' || (r.resolved?.oid !== undefined && cat?.isBaseTable(r.resolved.oid))) continue;
      for (const b of cat?.viewBaseRelations?.(r, r.via === 'search-path' ? null : state.searchPath) ?? []) relations.push({ schema: b.schema, name: b.name, access: 'write', resolved: b, via: 'view' });
      // A view the catalog does not have yet: this session (or this message) created it.
      if (r.resolved?.oid === undefined) {
        for (const b of views.get(r.name.toLowerCase()) ?? []) {
          const resolved = cat?.loaded() ? cat.resolveRelation(b, state.searchPath) : undefined;
          relations.push({ ...(b.schema !== undefined ? { schema: b.schema } : {}), name: b.name, access: 'write', ...(resolved ? { resolved } : {}), via: 'view' });
        }
      }
    }
    // `WHERE id` on MySQL: true for every row whose key is not 0, so no bound at all. Likewise
    // `WHERE id IS NOT NULL` on a key, and `WHERE o IS NOT NULL` where `o` is no column of the
    // table but the whole row (PostgreSQL).
    const truth = f.whereTruthOf;
    const notAColumn = (r: RelationRef): boolean => {
      const columns = r.resolved?.oid !== undefined ? cat?.columnsOf?.(r.resolved.oid) : undefined;
      return columns !== undefined && columns.length > 0 && !columns.some((c) => c.name === truth);
    };
    // A relation the catalog does not have (created a moment ago, or caught mid-migration) may
    // have that column as its key: fail closed.
    const truthUnbounded = truth !== undefined && relations.some((r) => r.access === 'write' && (!cat?.loaded() || cat.knowsRelation?.(r) === false || cat.keyColumn?.(r, truth) === true || notAColumn(r)));
    // A condition naming the target's rows only by bare names, none of them a column of the
    // written table: they are the joined table's, the same for every target row.
    const bare = f.whereBareNames;
    const targetColumns = (r: RelationRef) => (r.resolved?.oid !== undefined ? cat?.columnsOf?.(r.resolved.oid) : undefined);
    const bareUnbounded = bare !== undefined && relations.some((r) => r.access === 'write' && r.via === undefined && (!cat?.loaded() || cat.knowsRelation?.(r) === false || !(targetColumns(r) ?? []).some((c) => bare.includes(c.name))));
    const unbounded = onlyTestsOneColumn(f) && (truthUnbounded || bareUnbounded);
    for (const r of [...relations]) {
      const first = r.resolved?.oid !== undefined ? this.firstNames.get(r.resolved.oid) : undefined;
      if (first && (first.name !== r.resolved!.name || first.schema !== r.resolved!.schema)) {
        relations.push({ schema: first.schema, name: first.name, access: r.access, resolved: { ...first, oid: r.resolved!.oid! }, via: 'renamed-from' });
      }
    }
    // A name this session renamed (or one in a schema it renamed): the catalog may say what it
    // was, not what it is. A write there cannot be judged (a table swapped in by two renames).
    const stale = renamedIn(renamed, f.relations.filter((r) => r.access !== 'read'));
    const opaque = stale && !f.opaque ? { opaque: { reason: 'unresolved-relation' as const, detail: 'it writes a relation renamed in this session, which dbgov cannot resolve until you reconnect' } } : {};
    return { ...f, relations, ...(unbounded ? { hasWhere: false } : {}), ...opaque };
  }

  /**
   * The analyser took every call of a value transform's name (and `||`, `->>`, a cast to text) for
   * the built-in, which passes what it is given on. The server picks among all functions of the
   * name by argument types: `md5(x::varchar)` calls a `public.md5(varchar)` if there is one, and
   * that can answer whether x is a guess (by coming back NULL). So can a cast to `text` where the
   * name is a type this session made (a temp domain with a CHECK, a temp table's row type), or
   * one of a schema the path puts before pg_catalog: it errs by the value. Such calls test their
   * arguments. A call of a user function also tests what its body tests (`SELECT find_user('…')`
   * is the WHERE inside it).
   */
  private retested(f: StatementFacts, state: SessionState, typesChanged: ReadonlySet<string>): StatementFacts {
    const cat = this.d.catalog;
    if (!cat?.loaded()) return f;
    const extra: { schema?: string; table: string; column: string }[] = [];
    if (cat.functionBodies) for (const fn of f.functions) for (const p of this.candidatePaths(state, fn.schema === undefined ? [fn.name] : [])) extra.push(...(cat.functionBodies(fn, p)?.tests ?? []));
    if (cat.viewTests) for (const r of f.relations) if (r.resolved?.oid !== undefined) extra.push(...cat.viewTests(r.resolved.oid));
    if (cat.triggerTests) for (const r of f.relations) if (r.access === 'write' && r.resolved?.oid !== undefined) extra.push(...cat.triggerTests(r.resolved.oid));
    if (cat.resolveTestedColumns && f.relations.length > 0) {
      const shadowed = (schema: string | undefined, name: string): boolean => !this.namesCatalogType({ ...(schema !== undefined ? { schema } : {}), name, typmods: [] }, state, typesChanged);
      extra.push(...this.candidatePaths(state, []).flatMap((p) => cat.resolveTestedColumns!(f, p, shadowed) ?? []));
    }
    if (extra.length === 0) return f;
    const out = [...(f.predicateColumns ?? [])];
    for (const c of extra) if (!out.some((x) => x.schema === c.schema && x.table === c.table && x.column === c.column)) out.push(c);
    return { ...f, predicateColumns: out };
  }

  /**
   * The analyser reports every ALTER COLUMN TYPE as overwriting its column. That stands unless the
   * catalog proves each conversion keeps every value (src/sql/postgres/retype.ts): the table is
   * one the catalog has, under every name it may resolve to, and this session has not renamed
   * it or changed its column types (the catalog may not know the type the column has now); the
   * new type is certainly pg_catalog's (an unqualified `text` can be a temp domain over "char");
   * and no USING computes other values.
   */
  private judgeRetypes(f: StatementFacts, state: SessionState, renamed: ReadonlySet<string>, typesChanged: ReadonlySet<string>): StatementFacts {
    const cat = this.d.catalog;
    if (!f.retypes || !f.actions?.includes(OVERWRITE_COLUMN) || !cat?.loaded() || !cat.columnType || typesChanged.has('*')) return f;
    const tables = f.relations.filter((r) => r.access === 'ddl');
    const stale = (r: RelationRef): boolean => r.resolved?.oid === undefined || typesChanged.has(r.name.toLowerCase()) || typesChanged.has(r.resolved.name.toLowerCase());
    if (tables.length === 0 || renamedIn(renamed, tables) || tables.some(stale)) return f;
    const kept = f.retypes.every(
      (t) =>
        !t.rewrites &&
        t.type !== undefined &&
        this.namesCatalogType(t.type, state, typesChanged) &&
        tables.every((r) => {
          const from = cat.columnType!(r.resolved!.oid!, t.column);
          return from !== undefined && keepsEveryValue(from, t.type!);
        }),
    );
    if (!kept) return f;
    const out: StatementFacts = { ...f, actions: f.actions.filter((a) => a !== OVERWRITE_COLUMN) };
    if (out.actions!.length === 0) delete out.actions;
    return out;
  }

  /**
   * MySQL: a DECIMAL, FLOAT or DOUBLE column retyped to an integer type loses its fractions even
   * in strict mode, silently (19.99 becomes 20): the retype overwrites data. Which type a column
   * has is the catalog's; a column it does not know (yet) may be one of those.
   */
  private judgeIntegerRetypes(f: StatementFacts): StatementFacts {
    const cat = this.d.catalog;
    if (!f.retypes || !cat?.dataTypeOf || f.actions?.includes(OVERWRITE_COLUMN)) return f;
    const tables = f.relations.filter((r) => r.access === 'ddl');
    const cuts = f.retypes.some((t) => t.type !== undefined && INTEGER_TYPES.has(t.type.name.toUpperCase()) && tables.some((r) => {
      const from = cat.dataTypeOf!(r, t.column);
      return from === undefined || FRACTIONAL_TYPES.has(from);
    }));
    return cuts ? { ...f, actions: [...(f.actions ?? []), OVERWRITE_COLUMN] } : f;
  }

  /**
   * Whether a type name as written names pg_catalog's type in this session. Unqualified, the
   * server looks in the session's temp schema first, then pg_catalog (unless the search_path
   * places it later): a temp type this session made, or a schema put before pg_catalog, may
   * shadow it.
   */
  private namesCatalogType(t: TypeRef, state: SessionState, typesChanged: ReadonlySet<string>): boolean {
    if (t.schema !== undefined) return t.schema === 'pg_catalog';
    if (state.searchPathComputed || typesChanged.has(t.name.toLowerCase())) return false;
    return this.candidatePaths(state, []).every((p) => p === null || p.indexOf('pg_catalog') === -1 || p.slice(0, p.indexOf('pg_catalog')).every((s) => s === 'pg_temp'));
  }

  classifiedColumnsFor(session: LiveSession): ReadonlySet<string> {
    const cached = this.classifiedFor.get(session);
    if (cached) return cached;
    const out = new Set<string>();
    this.classifiedFor.set(session, out);
    if (!this.maskingActive) return out;
    for (const c of this.masking.columns) {
      if (c.targets && !c.targets.has(this.d.name)) continue;
      if (!mayUnmask(this.masking, identityRef(session), this.d.name, c.className)) out.add(c.pattern);
    }
    return out;
  }

  maskPlan(session: LiveSession, facts: StatementFacts[], columns: ResultColumn[], state: SessionState): MaskPlan | ClientError | null {
    if (!this.maskingActive) return null;
    // A prepared statement run again in the same session: the same (cached) facts array, the
    // same columns, nothing changed since. Skips building the shared cache's key.
    const recent = this.recentPlans.get(facts);
    if (recent !== undefined && this.stillValid(recent, session, state) && sameColumns(recent.columns, columns)) return recent.plan;
    const plan = this.buildPlan(session, facts, columns, state);
    if (plan.cacheable) this.recentPlans.set(facts, { who: whoKey(session), generation: this.generation, pathKey: state.pathKey, columns, plan: plan.plan });
    return plan.plan;
  }

  /**
   * A per-facts memo holds for sessions of the identity that made it (what a plan depends on:
   * id, kind, groups), while the catalog and search_path are unchanged and no temp table
   * shadows names. A session's search_path array changes only when it is SET, so sessions that
   * never set it share the memo.
   */
  private stillValid(memo: SessionMemo, session: LiveSession, state: SessionState): boolean {
    return memo.who === whoKey(session) && memo.generation === this.generation && memo.pathKey === state.pathKey && state.tempTables.size === 0 && state.createdViews.size === 0 && state.renamed.size === 0 && this.changedViews.size === 0 && this.unsettledFunctions.size === 0;
  }

  /**
   * Search paths a name may resolve under in this session: the current one first, then every
   * earlier one (a rollback may have put it back), and after a search_path computed at run time,
   * each schema holding a relation of one of `names` (the path could have been any of them).
   */
  private candidatePaths(state: SessionState, names: readonly string[]): (string[] | null)[] {
    if (state.pastSearchPaths.length === 0 && !state.searchPathComputed) return [state.searchPath];
    const out: (string[] | null)[] = [state.searchPath, ...state.pastSearchPaths];
    if (state.searchPathComputed && names.length > 0 && this.d.catalog) {
      const wanted = new Set(names);
      const schemas = new Set<string>();
      for (const r of this.d.catalog.relations()) if (wanted.has(r.name)) schemas.add(r.schema);
      for (const sch of schemas) out.push([sch]);
    }
    return out;
  }

  private buildPlan(session: LiveSession, facts: StatementFacts[], columns: ResultColumn[], state: SessionState): { plan: MaskPlan | ClientError | null; cacheable: boolean } {
    const cat = this.d.catalog;
    facts = rowSource(facts, state);
    // Rows read through a view this session created (or any session changed), before the catalog
    // has it: unknown origin.
    const views = this.unsettledViews(state);
    if (views.size > 0 || state.renamed.size > 0) {
      facts = facts.map((f) => (f.relations.some((r) => views.has(r.name.toLowerCase())) || renamedIn(state.renamed, f.relations) ? unknownRows(f, 'a view created or changed, or a relation renamed, lately') : f));
    }
    // Rows read from outside the database's tables (a server file, another server, a program's
    // output, other sessions' statement texts) may hold anything, an earlier export of
    // classified data included: unknown origin.
    if (facts.some(readsOutside) && this.classifiedColumnsFor(session).size > 0) facts = facts.map((f) => (readsOutside(f) ? unknownRows(f, 'outside the database') : f));
    // Warning and error texts of earlier statements quote what they read: rows of unknown origin.
    if (facts.some((f) => f.diagnostics) && this.classifiedColumnsFor(session).size > 0) facts = facts.map((f) => (f.diagnostics ? unknownRows(f, 'earlier statements') : f));
    // Same statement, same result shape, same identity and path: same plan. Temp tables and
    // unknown row sources are per session and never cached.
    const who = session.identity;
    const rels = planRelations(facts);
    // Every column a plain table column (RowDescription names its table and attribute): its
    // origin decides and lineage adds nothing, so the plan depends on the columns, the relations
    // and the identity, not on the text, and simple-protocol statements with fresh literals hit too.
    // Not for RETURNING of written rows: RowDescription names the target column, but the value
    // returned is the one written, which may come from anywhere (INSERT … SELECT ssn … RETURNING).
    const direct = cat !== null && columns.length > 0 && !facts.some(writesRows) && columns.every((c) => (c.tableOid ?? 0) !== 0 && cat.isBaseTable(c.tableOid!));
    const cacheable = state.tempTables.size === 0 && rels !== undefined;
    // Rows of unknown origin (an opaque statement, a name renamed in this session) are never cached.
    const shape = rels === undefined ? '' : direct ? `d:${rels.map((r) => `${r.resolved?.schema ?? r.schema ?? ''}.${r.resolved?.name ?? r.name}`).join(',')}` : `t:${facts.map((f) => f.text).join('\u0000')}`;
    const key = cacheable ? `${this.generation}|${who.id}|${who.kind}|${who.groups.join(',')}|${state.pathKey}|${readingKey(state)}|${shape}|${columnsKey(columns)}` : undefined;
    if (key !== undefined) {
      const hit = this.planCache.get(key);
      if (hit !== undefined) return { plan: hit, cacheable: true };
    }
    const lineage = direct ? undefined : this.resultLineage(facts, columns.length, state);
    const built = buildMaskPlan({ columns, ...this.planInput(session, facts, lineage) });
    const plan = isMaskBlock(built) ? built.error : built;
    if (key !== undefined) this.planCache.set(key, plan);
    return { plan, cacheable: key !== undefined };
  }

  /**
   * The lineage of the result a RowDescription starts. A message of several statements gets one
   * RowDescription per row-returning statement, and the engine does not say which statement this
   * one is: `SELECT upper(plan) FROM users; SELECT upper(full_name) FROM users` must not mask the
   * second result by the first statement's lineage. Every statement whose (resolved) result has
   * this width may be the one; a column carries what it carries under any of them. None: unknown.
   */
  private resultLineage(facts: StatementFacts[], width: number, state: SessionState): ColumnLineage[] | undefined {
    // Statements that may return rows: those with lineage, and those without whose kind may
    // still return some (CALL with INOUT parameters, SHOW, a FETCH of a cursor never seen, a
    // MariaDB DELETE … RETURNING, whose lineage the MySQL analyser does not give).
    const own = facts.filter(mayReturnRows);
    const unknown = (): ColumnLineage[] => Array.from({ length: width }, (_, index) => ({ index, name: '?column?', sources: [], opaque: true, direct: false }));
    if (own.length <= 1) {
      // A result wider or narrower than the lineage (a `*` expanded by a catalog that has not
      // seen a view's new columns yet) cannot be matched column by column: unknown.
      const one = this.lineageOf(own[0] ?? facts.find((f) => f.lineage), state);
      return one !== undefined && one.length !== width ? unknown() : one;
    }
    const all = own.map((f) => this.lineageOf(f, state));
    if (all.some((l) => l === undefined)) return unknown();
    const fits = all.filter((l): l is ColumnLineage[] => l !== undefined && l.length === width);
    return fits.length === 0 ? unknown() : mergeLineage(fits);
  }

  preflight(session: LiveSession, facts: StatementFacts[], state: SessionState): ClientError | null {
    this.noteChangedViews(facts.some((f) => f.execute) ? facts.flatMap((f) => [f, ...(f.execute && state.prepared.has(f.execute.name) ? [state.prepared.get(f.execute.name)!] : [])]) : facts, false);
    if (!this.maskingActive) return null;
    const code = this.unfollowableCode(session, facts) ?? this.storingCalls(session, facts, state) ?? this.listens(session, facts);
    if (code) return code;
    const stored = this.storesHidden(session, facts, state) ?? this.copiesIntoTokens(session, facts, state) ?? this.renamesIntoTokens(session, facts, state);
    if (stored) return stored;
    if (this.masking.onUnprovable !== 'block') return null;
    for (const f of rowSource(facts, state)) {
      const lineage = this.lineageOf(f, state);
      const relations = relationsFor([f], lineage);
      if (relations !== undefined && !this.touchesHidden(session, relations)) continue;
      const opaque = (lineage ?? []).filter((l) => l.opaque).map((l) => l.name);
      const unprovable = opaque.length > 0 ? opaque : relations === undefined ? ['(rows of unknown origin)'] : [];
      if (unprovable.length > 0) {
        return {
          sqlstate: '42501',
          message: 'dbgov: blocked: a result column may carry classified data that masking cannot follow',
          detail: `rule: masking.onUnprovable = block; columns: ${unprovable.join(', ')}`,
          hint: 'select the classified columns directly (they are masked), or ask for an approval to see them in clear',
        };
      }
    }
    return null;
  }

  /**
   * Code whose data movement dbgov cannot see (a DO block, dynamic SQL, a function whose body
   * may write and cannot be analysed) or code attached to run later on others' statements
   * (triggers, rules): it could copy classified data anywhere, unseen. Refused for an identity
   * that sees any classified column of this target masked; everyone else is judged by policy.
   */
  private unfollowableCode(session: LiveSession, facts: StatementFacts[]): ClientError | null {
    // A CALL whose body was not analysed (MySQL procedures; PostgreSQL SQL procedures bring their
    // body's statements, marked calledFrom) runs unseen too.
    if (this.classifiedColumnsFor(session).size > 0) {
      const diag = facts.find((x) => x.diagnostics && x.tag === 'GET');
      if (diag) {
        return {
          sqlstate: '42501',
          message: 'dbgov: blocked: GET DIAGNOSTICS would store the text of an earlier warning or error, which can quote classified data, in a variable masking does not reach',
          detail: 'rule: masking (warning and error texts are shown scrubbed, never stored)',
          hint: 'read them with SHOW WARNINGS, where classified values are masked',
        };
      }
    }
    // PostgreSQL's analyser is the server's own parser: what it cannot parse, the server refuses too.
    const unread = this.d.config.engine === 'mysql' ? facts.find((x) => x.opaque !== undefined && UNREAD.has(x.opaque.reason)) : undefined;
    if (unread && this.classifiedColumnsFor(session).size > 0) {
      return {
        sqlstate: '42501',
        message: 'dbgov: blocked: dbgov could not analyse this statement, and classified data is masked for you: it may filter on a masked column',
        detail: `rule: masking (${unread.opaque!.detail})`,
        hint: 'check the statement for a syntax error; if it is valid SQL dbgov does not read yet, write it another way or ask an identity that may see the data in clear',
      };
    }
    const unseenCall = (x: StatementFacts): boolean => x.kind === 'call' && !facts.some((b) => b.calledFrom !== undefined);
    const f = facts.find((x) => (x.opaque !== undefined && UNFOLLOWABLE.has(x.opaque.reason)) || ATTACHES_CODE.has(x.tag) || unseenCall(x));
    if (f === undefined || this.classifiedColumnsFor(session).size === 0) return null;
    return {
      sqlstate: '42501',
      message: `dbgov: blocked: ${ATTACHES_CODE.has(f.tag) ? `${f.tag} attaches code` : 'this statement runs code'} whose data access dbgov cannot follow, while classified data is masked for you`,
      detail: `rule: masking (${f.opaque ? f.opaque.detail : ATTACHES_CODE.has(f.tag) ? 'it would run unseen on later statements' : 'the procedure body is not analysed'})`,
      hint: 'write it as plain SQL (or a LANGUAGE sql function), or ask an identity that may see the data in clear',
    };
  }

  /**
   * LISTEN: a notification carries whatever any session or trigger sends (an audit trigger's
   * pg_notify('users_changed', row_to_json(NEW)::text) sends the whole row, on every update by
   * anyone), and its payload reaches the client unmasked. Refused while classified data is
   * masked for the identity.
   */
  private listens(session: LiveSession, facts: StatementFacts[]): ClientError | null {
    if (!facts.some((f) => f.tag === 'LISTEN') || this.classifiedColumnsFor(session).size === 0) return null;
    return {
      sqlstate: '42501',
      message: 'dbgov: blocked: notifications carry whatever other sessions and triggers send (a changed row, say), which masking does not reach, while classified data is masked for you',
      detail: 'rule: masking (notification payloads are not masked)',
      hint: 'listen from an identity that may see the data in clear, or poll a table instead',
    };
  }

  /**
   * A call of a user function that may keep what it reads or is given where masking does not
   * reach (a STABLE PL/pgSQL function calling set_config or pg_notify with its argument): passed a
   * classified value, or reading one itself, it would hand it back in clear later. Refused for an
   * identity that sees any classified column of this target masked.
   */
  private storingCalls(session: LiveSession, facts: StatementFacts[], state: SessionState): ClientError | null {
    const cat = this.d.catalog;
    if (!cat?.loaded() || !cat.functionBodies || this.classifiedColumnsFor(session).size === 0) return null;
    for (const f of facts) {
      for (const fn of f.functions) {
        if (!this.candidatePaths(state, []).some((p) => cat.functionBodies!(fn, p)?.stores === true)) continue;
        const name = `${fn.schema ? `${fn.schema}.` : ''}${fn.name}`;
        return {
          sqlstate: '42501',
          message: `dbgov: blocked: ${name} can keep the values it is given or reads (in a setting, a notification, a large object), where masking does not reach, while classified data is masked for you`,
          detail: 'rule: masking (a function body that stores outside a table, runs dynamic SQL or is in a language dbgov does not read)',
          hint: 'call it from an identity that may see the data in clear, or rewrite it without set_config / pg_notify / large objects',
        };
      }
    }
    return null;
  }

  /**
   * A statement that would store classified data, which this identity sees only masked, where
   * masking does not reach: into a column that is not classified (INSERT … SELECT, UPDATE … SET,
   * MERGE, CREATE TABLE AS, SELECT INTO), or into a notification, a setting or a large object.
   * Read back later, it would come out in clear, so the statement is refused. Storing it in a
   * column that is itself masked for this identity (UPDATE users SET email = lower(email)) is
   * fine. Values whose origin cannot be followed count as classified when the statement reads
   * a table holding classified columns. Checked per (cached) facts array, as plans are.
   * PostgreSQL works the stored values out from the parse tree; MySQL's analyser lists them.
   */
  private storesHidden(session: LiveSession, facts: StatementFacts[], state: SessionState): ClientError | null {
    const recent = this.recentStores.get(facts);
    if (recent !== undefined && this.stillValid(recent, session, state)) return recent.result;
    let result: ClientError | null = null;
    for (const f of facts) {
      if (!mayStore(f) || !this.mayCarryHidden(session, f)) continue;
      const cat = this.d.catalog;
      const perPath = cat?.resolveWriteFlows ? this.candidatePaths(state, unqualifiedNames(f)).map((p) => cat.resolveWriteFlows!(f, p)) : [];
      if (perPath.some((x) => x === undefined)) continue;
      let flows = perPath.flatMap((x) => x!);
      if (flows.length === 0) continue;
      // Read through a view the catalog does not have as it is now (see throughViews): the
      // catalog's lineage of it is the old definition's, so what each value carries is unknown.
      if (f.relations.some((r) => r.via === 'unsettled-view')) flows = flows.map((x) => ({ ...x, value: { ...x.value, opaque: true, direct: false } }));
      // A name this session renamed may now be another table (one created under it since): the
      // catalog's columns for it, by which an INSERT without a column list is matched, are not its.
      if (f.kind === 'insert' && f.relations.some((r) => r.access === 'write' && state.renamed.has(r.name.toLowerCase()))) {
        for (const flow of [...flows]) if (flow.place === undefined && flow.column !== '*') flows.push({ ...flow, column: '*' });
      }
      // A view the catalog does not have yet (created in this transaction or message): what is
      // written into it may land in any column of the tables it reads (resolveOne found them).
      const viaView = f.relations.filter((r) => r.access === 'write' && r.via === 'view');
      if (viaView.length > 0 && cat) {
        for (const flow of [...flows]) {
          if (flow.place !== undefined || flow.created || cat.resolveRelation({ ...(flow.dest.schema !== undefined ? { schema: flow.dest.schema } : {}), name: flow.dest.table, access: 'write' }, state.searchPath) !== undefined) continue;
          for (const b of viaView) flows.push({ ...flow, dest: { ...((b.resolved?.schema ?? b.schema) !== undefined ? { schema: b.resolved?.schema ?? b.schema } : {}), table: b.resolved?.name ?? b.name }, column: '*' });
        }
      }
      // Values of unknown origin count as classified only where the statement reads a table that
      // holds classified columns; a known source is judged by its own class (views followed).
      let touches: boolean | undefined;
      const touchesHidden = (): boolean => (touches ??= this.touchesHidden(session, this.readsWithCalls(f)));
      const leak = flows.map((flow) => this.hiddenFlow(session, flow, touchesHidden)).find((x) => x !== undefined);
      if (leak?.token) {
        result = TOKEN_WRITE(leak.into);
        break;
      }
      if (leak?.reshaped) {
        result = {
          sqlstate: '42501',
          message: `dbgov: blocked: this statement stores classified data (${leak.from}) rearranged in ${leak.into}, whose partial mask would then show other parts of it`,
          detail: 'rule: masking (a partially masked column takes classified values only as they are, or with their case changed)',
          hint: 'store the value as it is, or ask for an approval to work with the data in clear',
        };
        break;
      }
      if (leak) {
        result = {
          sqlstate: '42501',
          message: `dbgov: blocked: this statement stores classified data (${leak.from}) in ${leak.into}, where masking does not reach`,
          detail: 'rule: masking (classified values keep their masks: they cannot be copied to an unclassified column or one masked another way, a notification, a setting, a large object, a sequence or a lock key)',
          hint: 'classify the destination column too (masking.columns), or ask for an approval to work with the data in clear',
        };
        break;
      }
    }
    if (state.tempTables.size === 0) this.recentStores.set(facts, { who: whoKey(session), generation: this.generation, pathKey: state.pathKey, result });
    return result;
  }

  /**
   * Whether anything the statement reads could hold a value hidden from this identity: a table
   * with such a classified column, or a relation that is not a known base table (a view, a temp
   * table, one not in the catalog yet). Writes among unclassified tables (pgbench's) skip the
   * stored-value analysis, which re-parses the statement.
   */
  private mayCarryHidden(session: LiveSession, f: StatementFacts): boolean {
    const cat = this.d.catalog;
    const relations = this.readsWithCalls(f);
    return this.touchesHidden(session, relations) || relations.some((r) => r.resolved?.oid === undefined || !cat?.isBaseTable(r.resolved.oid));
  }

  /**
   * The statement's relations plus those the bodies of the user functions it calls read: a
   * call's result, error or notice may carry what its body read (`SELECT public.f()` where f
   * selects users.full_name).
   */
  private readsWithCalls(f: StatementFacts): RelationRef[] {
    const cat = this.d.catalog;
    if (!cat?.loaded() || !cat.functionBodies || f.functions.length === 0) return f.relations;
    const out = [...f.relations];
    for (const fn of f.functions) {
      for (const r of cat.functionBodies(fn, null)?.reads ?? []) {
        const resolved = cat.resolveRelation(r, null);
        out.push(resolved ? { ...r, resolved, via: 'function-body' } : { ...r, via: 'function-body' });
      }
    }
    return out;
  }

  /** What a stored value carries that this identity may not see, unless its destination masks it the same way. */
  private hiddenFlow(session: LiveSession, flow: WriteFlow, touchesHidden: () => boolean): { from: string; into: string; token?: true; reshaped?: true } | undefined {
    const who = identityRef(session);
    const target = this.d.name;
    /** The column's class when it is masked for this identity. */
    const hiddenClass = (schema: string | undefined, table: string, column: string) => {
      const c = column === '*' ? null : classifyColumn(this.masking, target, schema, table, column);
      return c !== null && !mayUnmask(this.masking, who, target, c.cls.name) ? c : undefined;
    };
    const hidden = (schema: string | undefined, table: string, column: string): boolean => hiddenClass(schema, table, column) !== undefined;
    const from = flow.value.sources.filter((s) => hidden(s.schema, s.table, s.column)).map((s) => `${s.schema ? `${s.schema}.` : ''}${s.table}.${s.column}`);
    const dest = flow.place === undefined ? hiddenClass(flow.dest.schema, flow.dest.table, flow.column) : undefined;
    const into = flow.place ?? `${flow.dest.schema ? `${flow.dest.schema}.` : ''}${flow.dest.table}.${flow.column}`;
    // A column masked by a keyed deterministic function (hash, fake) reads as the token of what it
    // holds: a value the client chose, stored there, reads back as the token of its guess, to be
    // compared with the real tokens (a dictionary attack on every row). Only values that are
    // themselves such a column's, as they are, may go there.
    if (flow.place === undefined && flow.column === '*') {
      // A value not matched to a column may land in any of the table's.
      if (this.tokenClass(who, flow.dest.schema, flow.dest.table) !== undefined) return { from: 'values of your choosing', into, token: true };
    }
    if (dest !== undefined && TOKEN_MASKS.has(dest.function)) {
      const own = flow.value.direct && !flow.value.opaque && flow.value.sources.length > 0 && flow.value.sources.every((s) => {
        const c = hiddenClass(s.schema, s.table, s.column);
        return c !== undefined && c.cls.name === dest.cls.name && c.function === dest.function;
      });
      if (!own) return { from: 'values of your choosing', into, token: true };
    }
    if (from.length === 0 && !(flow.value.opaque && touchesHidden())) return undefined;
    // Into a column masked the same way the value keeps its mask. Another class's mask may show
    // more of it: a phone mask keeps the last digits of an SSN copied into the phone column.
    const sameMask = (s: { schema?: string; table: string; column: string }): boolean => {
      const c = hiddenClass(s.schema, s.table, s.column);
      return c === undefined || (c.cls.name === dest!.cls.name && c.function === dest!.function);
    };
    // A partial mask keeps some positions of whatever the column holds: a value rearranged on the
    // way in (`SET phone = REVERSE(phone)`, `LEFT(phone, 6)` into a new row) reads back with other
    // characters of the classified value in those places. Only the value itself (or its case
    // mapped) may go there. The analysers say which values are case mapped (caseMapped).
    const reshaped = dest?.function === 'partial' && !((flow.value.direct || flow.value.caseMapped === true) && !flow.value.opaque);
    if (dest !== undefined && !reshaped && flow.value.sources.every(sameMask)) return undefined;
    return { from: from.length > 0 ? from.join(', ') : 'values of unknown origin', into, ...(reshaped ? { reshaped: true as const } : {}) };
  }

  /**
   * COPY … FROM writes values the client chose: into a column masked for this identity by a keyed
   * deterministic function (hash, fake), each reads back as the token of its guess (see hiddenFlow).
   */
  private copiesIntoTokens(session: LiveSession, facts: StatementFacts[], state: SessionState): ClientError | null {
    const cat = this.d.catalog;
    if (this.classifiedColumnsFor(session).size === 0) return null;
    const who = identityRef(session);
    for (const f of facts) {
      if (f.kind !== 'copy') continue;
      for (const r of f.relations) {
        if (r.access !== 'write') continue;
        for (const p of this.candidatePaths(state, [r.name])) {
          const rel = r.schema === undefined && state.tempTables.has(r.name) ? undefined : cat?.loaded() ? cat.resolveRelation(r, p) : undefined;
          const schema = rel?.schema ?? r.schema;
          const table = rel?.name ?? r.name;
          // Without the catalog (or the column list) any classified column of the table may be written.
          const columns = r.columns ?? (rel?.oid !== undefined ? cat?.columnsOf?.(rel.oid).map((c) => c.name) : undefined);
          const token = this.tokenClass(who, schema, table, columns);
          if (token) return TOKEN_WRITE(`${schema ? `${schema}.` : ''}${table} (${token.cls.name})`);
        }
      }
    }
    return null;
  }

  /**
   * Masking is configured by name: a column (or a table, or a schema) renamed to the name of one
   * masked as tokens is masked as tokens from then on, with the values it holds, which the client
   * may have chosen (`UPDATE orders SET status = '<guess>'`, then RENAME status TO card): each
   * reads back as the token of a guess. Refused for an identity that sees that class masked.
   */
  private renamesIntoTokens(session: LiveSession, facts: StatementFacts[], state: SessionState): ClientError | null {
    if (this.classifiedColumnsFor(session).size === 0) return null;
    const who = identityRef(session);
    const cat = this.d.catalog;
    const refuse = (into: string, cls: string): ClientError => ({
      sqlstate: '42501',
      message: `dbgov: blocked: this statement renames something to ${into}, which is masked for you as tokens (${cls}): the values it holds, perhaps of your choosing, would read back as tokens to compare with the real ones`,
      detail: 'rule: masking (a column masked by hash or fake takes only values read from such a column, as they are)',
      hint: 'pick another name, or ask an identity that may see the data in clear',
    });
    /**
     * The first token class among `names` (columns of relation `oid`, under the new schema.table)
     * that a column does not already have: a column classified when first seen keeps its class
     * through any rename (rememberNames), so naming it back changes nothing.
     */
    const newlyTokens = (oid: number | undefined, schema: string | undefined, table: string, names: readonly string[] | undefined): string | undefined => {
      const columns = oid !== undefined ? cat?.columnsOf?.(oid) : undefined;
      if (names === undefined && columns === undefined) return this.tokenClass(who, schema, table)?.cls.name;
      for (const name of names ?? columns!.map((c) => c.name)) {
        const token = this.tokenClass(who, schema, table, [name]);
        if (!token) continue;
        const c = columns?.find((x) => x.name === name);
        if (c === undefined || !this.firstColumns.has(`${oid}:${c.attnum}`)) return token.cls.name;
      }
      return undefined;
    };
    for (const f of facts) {
      for (const t of f.renamesInto ?? []) {
        if (t.table === '*') {
          // A schema renamed: each of its relations takes the new schema name.
          const rels = [...(cat?.relations() ?? [])].filter((r) => r.schema === t.from);
          // None the catalog knows (made a moment ago): any token rule for that schema may apply.
          if (rels.length === 0 && this.masking.columns.some((r) => r.parts[0].test(t.schema ?? ''))) return refuse(`${t.schema}.*`, 'a schema with masked columns');
          for (const r of rels) {
            const cls = newlyTokens(r.oid, t.schema, r.name, undefined);
            if (cls) return refuse(`${t.schema}.${r.name}`, cls);
          }
          continue;
        }
        // The schema a name without one is in: the relation the statement renames, or any on the path.
        const schemas = t.schema !== undefined ? [t.schema] : [...new Set([...f.relations.flatMap((r) => (r.resolved?.schema !== undefined ? [r.resolved.schema] : [])), ...(state.searchPath ?? []), undefined])];
        const oid = f.relations.find((r) => r.resolved?.oid !== undefined)?.resolved?.oid;
        for (const schema of schemas) {
          // A column renamed is the column of its old name; a relation renamed brings all of its.
          const names = t.column === undefined ? undefined : [t.column];
          const columns = oid !== undefined ? cat?.columnsOf?.(oid) : undefined;
          const cls = names !== undefined && t.from !== undefined && columns !== undefined ? this.renamedColumnTokens(who, oid!, columns, t.from, schema, t.table, t.column!) : newlyTokens(oid, schema, t.table, names);
          if (cls) return refuse(`${schema ? `${schema}.` : ''}${t.table}${t.column !== undefined ? `.${t.column}` : ''}`, cls);
        }
      }
    }
    return null;
  }

  /** The token class column `from` of relation `oid` takes as `schema.table.column`, unless it had one when first seen. */
  private renamedColumnTokens(who: ReturnType<typeof identityRef>, oid: number, columns: { attnum: number; name: string }[], from: string, schema: string | undefined, table: string, column: string): string | undefined {
    const token = this.tokenClass(who, schema, table, [column]);
    if (!token) return undefined;
    const c = columns.find((x) => x.name === from);
    return c !== undefined && this.firstColumns.has(`${oid}:${c.attnum}`) ? undefined : token.cls.name;
  }

  /** A class of the table masked for `who` as tokens (hash, fake): among `columns`, or else any of the table's. */
  private tokenClass(who: ReturnType<typeof identityRef>, schema: string | undefined, table: string, columns?: readonly string[]) {
    const classes = columns ? columns.flatMap((c) => classifyColumn(this.masking, this.d.name, schema, table, c) ?? []) : classifyTable(this.masking, this.d.name, schema, table);
    return classes.find((c) => TOKEN_MASKS.has(c.function) && !mayUnmask(this.masking, who, this.d.name, c.cls.name));
  }

  copyMaskPlan(session: LiveSession, facts: StatementFacts[], format: 'text' | 'csv' | 'binary', columnCount: number, state: SessionState): CopyMaskPlan | null {
    if (!this.maskingActive) return null;
    facts = rowSource(facts, state);
    const copies = facts.filter((x) => x.kind === 'copy' && x.calledFrom === undefined);
    // Several COPY … TO in one message: which one this output is, and so its columns and its
    // format options, cannot be told apart. No row data goes out (fail closed).
    if (copies.length > 1) return { maskChunk: () => Buffer.alloc(0), end: () => null, maskedColumns: ['*'] };
    const copy = copies[0] ?? facts[0];
    const lineage = this.lineageOf(copy, state);
    // How rows split into fields comes from the statement's own options, not from a guess: a
    // custom DELIMITER or QUOTE would otherwise move every column boundary past the mask.
    const opts = copy?.copy;
    const wireFormat = format === 'binary' ? 'binary' : (opts?.format ?? format);
    const options = opts ? { ...(opts.delimiter !== undefined ? { delimiter: opts.delimiter } : {}), ...(opts.quote !== undefined ? { quote: opts.quote } : {}), ...(opts.escape !== undefined ? { escape: opts.escape } : {}), ...(opts.null !== undefined ? { null: opts.null } : {}), ...(opts.header ? { header: true } : {}) } : undefined;
    const plan = planCopy({ format: wireFormat, columnCount, ...(options ? { options } : {}), ...this.planInput(session, facts, lineage) });
    if (plan !== null && 'blocked' in plan) {
      // A COPY whose columns cannot be followed sends no row data at all (every field masked).
      return { maskChunk: () => Buffer.alloc(0), end: () => null, maskedColumns: plan.columns };
    }
    return plan;
  }

  /** What every mask plan needs besides its columns. */
  private planInput(session: LiveSession, facts: StatementFacts[], lineage: ColumnLineage[] | undefined) {
    const cat = this.d.catalog;
    return {
      ...(lineage ? { lineage } : {}),
      ...withRelations(relationsFor(facts, lineage)),
      resolve: (oid: number, attnum: number) => cat?.columnOf(oid, attnum),
      isBaseTable: (oid: number) => cat?.isBaseTable(oid) ?? true,
      identity: identityRef(session),
      target: this.d.name,
      config: this.masking,
    };
  }

  /** Whether these relations hold a class this session's identity may not see. */
  private touchesHidden(session: LiveSession, relations: readonly RelationRef[]): boolean {
    const who = identityRef(session);
    return relations.some((r) => classifyTable(this.masking, this.d.name, r.resolved?.schema ?? r.schema, r.resolved?.name ?? r.name).some((c) => !mayUnmask(this.masking, who, this.d.name, c.cls.name)));
  }

  /** Output lineage qualified against the catalog when it is loaded, else as parsed. */
  private lineageOf(f: StatementFacts | undefined, state: SessionState): ColumnLineage[] | undefined {
    if (!f?.lineage) return undefined;
    const cat = this.d.catalog;
    if (!cat?.loaded()) return f.lineage;
    // Resolving lineage re-parses the text against the catalog: do it once per text and path.
    const key = state.tempTables.size === 0 ? `${this.generation}|${state.pathKey}|${readingKey(state)}|${f.text}` : undefined;
    if (key !== undefined && this.lineageCache.has(key)) return this.lineageCache.get(key);
    // Under each search_path the session may have: a column masked under any of them is masked.
    const out = mergeLineage(this.candidatePaths(state, unqualifiedNames(f)).map((p) => cat.resolveLineage(f, p) ?? f.lineage!));
    if (key !== undefined) this.lineageCache.set(key, out);
    return out;
  }

  scrub(session: LiveSession, facts: StatementFacts[] | undefined, fields: { message: string; detail?: string; hint?: string; where?: string }) {
    if (!this.maskingActive) return fields;
    // An opaque statement (a DO block, dynamic SQL, a function dbgov cannot see into) may have
    // read anything, and so may one reading a view, a temp table or a relation the catalog does
    // not know yet: their errors and notices are scrubbed as if they touched classified data.
    const mayHide = this.classifiedColumnsFor(session).size > 0;
    // Deferred constraints are checked where the transaction commits (or SET CONSTRAINTS makes
    // them immediate): the violation quotes a key an earlier statement wrote, perhaps a
    // classified one (`Key (full_name)=(…) already exists`), under a statement that reads nothing.
    const touches = facts === undefined || (mayHide && facts.some((f) => f.opaque !== undefined || RUNS_DEFERRED_CHECKS.has(f.tag) || this.mayCarryHidden(session, f)));
    const cat = this.d.catalog;
    // Names the client wrote as identifiers: the redacted text holds no literals or comments, so a
    // value cannot be made "known" by listing guesses in a string or a comment.
    let written: Set<string> | undefined;
    const known = (name: string): boolean => {
      written ??= identifiersOf(facts?.map((f) => f.redacted).join('\n') ?? '');
      return written.has(name.toLowerCase()) || cat?.knowsName?.(name) === true;
    };
    return scrubMessage(fields, { classified: touches, contentScan: contentScanOn(this.masking, this.d.name), known });
  }

  async estimateRows(sql: string, facts: StatementFacts[]): Promise<number | null> {
    // Only one plain DML/SELECT statement is explained; EXPLAIN never runs it, but planning runs
    // code (see plansOnlyBuiltins).
    if (!this.d.catalog || facts.length !== 1 || !this.plansOnlyBuiltins(this.d.catalog, facts[0])) return null;
    try {
      return await this.d.catalog.estimateRows(sql);
    } catch (e) {
      this.d.log.debug({ err: e }, 'row estimate failed');
      return null;
    }
  }

  /**
   * EXPLAIN runs on the broker's own connection, before anyone approved, outside the session and
   * its audit, and planning runs code: it folds IMMUTABLE calls (a user function's body runs, as
   * the broker's user), expands views and column defaults. Only a statement whose plan can run
   * nothing but built-ins, over base tables the broker's connection resolves as the session did
   * (it has the default search_path), is explained; anything else gets no estimate.
   */
  private plansOnlyBuiltins(cat: TargetCatalog, f: StatementFacts): boolean {
    if (!['select', 'update', 'delete'].includes(f.kind) || f.opaque !== undefined || f.modifyingCte) return false;
    for (const r of f.relations) {
      if (r.via === 'view') return false;
      const oid = r.resolved?.oid;
      if (oid === undefined) {
        // No OID (MySQL, or a name the catalog has not seen yet): a relation it knows, not a view.
        if (cat.knowsRelation?.(r) !== true || (cat.viewBaseRelations?.(r, null) ?? []).length > 0) return false;
        continue;
      }
      if (!cat.isBaseTable(oid)) return false;
      if (r.schema === undefined && cat.resolveRelation({ name: r.name, access: r.access }, null)?.oid !== oid) return false;
    }
    for (const fn of f.functions) {
      if (cat.callTarget?.(fn, null) !== undefined || cat.functionBodies?.(fn, null) !== undefined) return false;
    }
    for (const call of f.implicitCalls ?? []) {
      const fns = cat.implicitCallFunctions?.(call, null);
      if (fns === undefined || fns === 'unknown' || fns.length > 0) return false;
    }
    return true;
  }

  /**
   * A view a statement creates or replaces is, for every session, not the catalog's until a
   * reload that started after the statement ran has finished. Noted when the statement is let
   * through (`ran` false: it may run while a reload reads the catalog) and again once it has run.
   */
  private noteChangedViews(facts: readonly StatementFacts[], ran: boolean): void {
    for (const f of facts) {
      const view = createdView(f);
      if (!view) continue;
      // A reload running now may have read the catalog before the change: the one after it then.
      const until = this.generation + (ran && this.refreshing === undefined ? 1 : 2);
      this.changedViews.set(view.name, { reads: view.reads, until });
      this.changedViewsVersion++;
    }
  }

  /** DDL ran through the gateway (`facts`, when the caller has them): reload the catalog soon. */
  schemaChanged(facts?: readonly StatementFacts[]): void {
    // Policy follows writes through views too (a rule on model_weights, through a view of it).
    if (facts) this.noteChangedViews(facts, true);
    this.scheduleReload();
  }

  private scheduleReload(): void {
    if (!this.d.catalog || this.refreshTimer) return;
    // Coalesce bursts of DDL into one reload shortly after.
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.reload().catch((e: unknown) => this.d.log.warn({ err: e, target: this.d.name }, 'catalog refresh failed'));
    }, 50);
    this.refreshTimer.unref();
  }

  /**
   * Reloads the catalog. Asked while a reload runs, it runs once more after that one: the running
   * one read its snapshot before the change that asked may have committed (a function created a
   * moment later would otherwise stay unknown, and be judged built-in, until the next timer).
   */
  private reload(): Promise<void> {
    if (this.refreshing) {
      this.reloadAgain = true;
      return this.refreshing;
    }
    this.refreshing = this.d
      .catalog!.refresh()
      .then(() => this.rememberNames())
      .finally(() => {
        this.refreshing = undefined;
        if (this.reloadAgain) {
          this.reloadAgain = false;
          this.reload().catch((e: unknown) => this.d.log.warn({ err: e, target: this.d.name }, 'catalog refresh failed'));
        }
      });
    return this.refreshing;
  }

  /**
   * Resolves once a reload that starts now has read the catalog. A failed reload is tried again
   * (every CATALOG_REFRESH_MS): what waits on it must not go on with the old catalog.
   */
  reloadNow(): Promise<void> {
    if (!this.d.catalog) return Promise.resolve();
    return new Promise((resolve) => {
      const attempt = (): void => {
        this.schemaChanged();
        this.settled().then(resolve, (e: unknown) => {
          this.d.log.warn({ err: e, target: this.d.name }, 'catalog refresh failed; statements that wait for it keep waiting, and functions changed through the gateway stay unread');
          setTimeout(attempt, CATALOG_REFRESH_MS).unref();
        });
      };
      attempt();
    });
  }

  /** Waits for a pending catalog reload (tests, and statements right after DDL). */
  async settled(): Promise<void> {
    if (this.refreshTimer) {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = undefined;
      if (this.d.catalog) await this.reload();
    }
    while (this.refreshing) await this.refreshing;
  }

  private rememberNames(): void {
    this.generation++;
    for (const [name, v] of this.changedViews) {
      if (this.generation < v.until) continue;
      this.changedViews.delete(name);
      this.changedViewsVersion++;
    }
    const cat = this.d.catalog;
    const moved: ColumnRule[] = [];
    for (const r of cat?.relations() ?? []) {
      if (!this.firstNames.has(r.oid)) this.firstNames.set(r.oid, { schema: r.schema, name: r.name });
      if (this.d.masking.columns.length === 0) continue;
      for (const c of cat?.columnsOf?.(r.oid) ?? []) {
        const key = `${r.oid}:${c.attnum}`;
        const first = this.firstColumns.get(key);
        if (first === undefined) {
          // Only classified columns need their first names: the rest have no class to keep.
          if (classifyColumn(this.d.masking, this.d.name, r.schema, r.name, c.name) !== null) this.firstColumns.set(key, { schema: r.schema, table: r.name, column: c.name });
          continue;
        }
        if (first.schema === r.schema && first.table === r.name && first.column === c.name) continue;
        const was = classifyColumn(this.d.masking, this.d.name, first.schema, first.table, first.column);
        if (was === null) continue;
        const now = classifyColumn(this.d.masking, this.d.name, r.schema, r.name, c.name);
        if (now?.cls.name === was.cls.name) continue;
        // The pattern is the exact new name: the masked-predicate rule compares names with it.
        moved.push({ pattern: `${r.schema}.${r.name}.${c.name}`, parts: [exact(r.schema), exact(r.name), exact(c.name)], className: was.cls.name, function: was.function, targets: new Set([this.d.name]) });
      }
    }
    // Renamed columns first: their class is the one they were configured with.
    const next: MaskingConfig = moved.length === 0 ? this.d.masking : { ...this.d.masking, columns: [...moved, ...this.d.masking.columns] };
    if (next !== this.masking) {
      this.masking = next;
      this.classifiedFor = new WeakMap();
    }
  }

  async close(): Promise<void> {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    if (this.refreshInterval) clearInterval(this.refreshInterval);
    await this.d.catalog?.close();
  }
}

/**
 * A write whose WHERE only tests one column (`WHERE id`, `WHERE id IS NOT NULL`), to be judged against
 * the catalog (TargetRuntime.resolveOne): for a key column the test holds for every row. Before
 * the catalog has loaded, that is not known, so it counts as no bound at all, failing closed.
 */
function onlyTestsOneColumn(f: StatementFacts): boolean {
  return (f.whereTruthOf !== undefined || f.whereBareNames !== undefined) && f.hasWhere === true && f.relations.some((r) => r.access === 'write');
}

/** Whether any of these relations goes by a name the session renamed (StatementFacts.renamed). */
function renamedIn(renamed: ReadonlySet<string>, relations: readonly RelationRef[]): boolean {
  if (renamed.size === 0 || relations.length === 0) return false;
  return renamed.has('*') || relations.some((r) => renamed.has(r.name.toLowerCase()));
}

/** Identifier tokens of SQL text (plain, "quoted" or `backticked`), lower case. */
function identifiersOf(sql: string): Set<string> {
  const out = new Set<string>();
  for (const m of sql.matchAll(/"((?:[^"]|"")*)"|`((?:[^`]|``)*)`|([A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)/g)) {
    const name = m[1]?.replaceAll('""', '"') ?? m[2]?.replaceAll('``', '`') ?? m[3];
    if (name) out.add(name.toLowerCase());
  }
  return out;
}

/** Calls a function that reads a server file, another server or a program's output. */
function readsOutside(f: StatementFacts): boolean {
  return f.functions.some((fn) => fn.risks.includes('file') || fn.risks.includes('remote') || fn.risks.includes('program') || OTHER_SESSIONS_TEXT.has(fn.name));
}

/**
 * Functions that return other sessions' statement texts, literals and all: an application's
 * `INSERT INTO users … VALUES ('123-45-6789', …)` as it runs. (The pg_stat_activity view over
 * them is followed by lineage; called directly they read outside any table.)
 */
const OTHER_SESSIONS_TEXT: ReadonlySet<string> = new Set(['pg_stat_get_activity', 'pg_stat_get_backend_activity']);

/** A pattern part matching exactly this name. */
function exact(name: string): RegExp {
  return new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/** What a per-identity memo was made under (see TargetRuntime.stillValid). */
interface SessionMemo {
  who: string;
  generation: number;
  pathKey: string;
}

/** Relation names a statement writes without a schema: what the search_path decides. */
function unqualifiedNames(f: StatementFacts): string[] {
  return f.relations.filter((r) => r.schema === undefined).map((r) => r.name);
}

/**
 * One lineage from the lineages of the same statement under several search paths: a column
 * carries every source it has under any of them, and is plain (direct) only where all agree.
 * Different widths (a star over different tables) cannot be lined up: every column is opaque.
 */
function mergeLineage(all: ColumnLineage[][]): ColumnLineage[] {
  if (all.length === 1) return all[0];
  const [first, ...rest] = all;
  if (rest.some((l) => l.length !== first.length)) return first.map((c) => ({ ...c, opaque: true, direct: false }));
  return first.map((c, i) => {
    const sources = [...c.sources];
    let opaque = c.opaque;
    let direct = c.direct;
    for (const l of rest) {
      const o = l[i];
      opaque ||= o.opaque;
      for (const src of o.sources) {
        if (!sources.some((x) => x.schema === src.schema && x.table === src.table && x.column === src.column)) {
          sources.push(src);
          direct = false;
        }
      }
      direct &&= o.direct;
    }
    return { ...c, sources, opaque, direct };
  });
}

/** What masking decisions depend on about a session's identity, as one string (made once per session). */
const whoKeys = new WeakMap<LiveSession, string>();
function whoKey(session: LiveSession): string {
  let key = whoKeys.get(session);
  if (key === undefined) {
    const i = session.identity;
    key = JSON.stringify([i.id, i.kind, i.groups]);
    whoKeys.set(session, key);
  }
  return key;
}

/**
 * Opaque reasons that mean code runs whose reads and writes are not known: code dbgov cannot see
 * into, or a text it cannot lex as the server will (a hidden INSERT … SELECT could store anything).
 */
/** MySQL integer types, and the DATA_TYPEs whose values have fractions (see judgeIntegerRetypes). */
const INTEGER_TYPES: ReadonlySet<string> = new Set(['TINYINT', 'SMALLINT', 'MEDIUMINT', 'MIDDLEINT', 'INT', 'INTEGER', 'BIGINT', 'INT1', 'INT2', 'INT3', 'INT4', 'INT8', 'BOOL', 'BOOLEAN', 'BIT', 'YEAR']);
const FRACTIONAL_TYPES: ReadonlySet<string> = new Set(['decimal', 'numeric', 'float', 'double', 'real']);
const UNFOLLOWABLE: ReadonlySet<string> = new Set(['do-block', 'dynamic-sql', 'opaque-function', 'function-call-message', 'nonstandard-strings']);
/**
 * Opaque reasons that mean a MySQL statement's text was not understood: it may filter on a
 * classified column (`WITH RECURSIVE … CYCLE s RESTRICT` counted its rows by comparing a guess
 * with a masked value, while the CYCLE clause did not parse), and its rows come back masked but
 * counted. Refused for an identity that sees classified data masked, as a filter on it would be.
 */
const UNREAD: ReadonlySet<string> = new Set(['parse-error', 'executable-comment', 'unclassified-statement']);
/**
 * Statements that attach code to run on later statements, or bind a function to syntax that calls
 * it unnamed (`a ### b`, `x::text`, an aggregate's state function): until the catalog reloads,
 * nothing knows that the operator or cast runs it.
 */
const ATTACHES_CODE: ReadonlySet<string> = new Set(['CREATE TRIGGER', 'CREATE RULE', 'CREATE EVENT TRIGGER', 'CREATE EVENT', 'ALTER EVENT', 'CREATE OPERATOR', 'CREATE CAST', 'CREATE AGGREGATE', 'CREATE OPERATOR CLASS', 'CREATE OPERATOR FAMILY', 'ALTER OPERATOR', 'ALTER OPERATOR FAMILY']);

/** Statements that may store values somewhere: writes, CREATE TABLE AS / SELECT INTO, storing functions. */
function mayStore(f: StatementFacts): boolean {
  // COPY (INSERT … RETURNING …) TO writes as its query does.
  return f.kind === 'insert' || f.kind === 'update' || f.kind === 'merge' || f.kind === 'create' || f.tag === 'ALTER TABLE' || f.modifyingCte || f.stores !== undefined || f.functions.some((fn) => STORING_FUNCTIONS.has(fn.name)) || (f.kind === 'copy' && f.relations.some((r) => r.access === 'write'));
}

/**
 * A HANDLER READ's filter names the handler, which may be an alias (HANDLER users OPEN AS h):
 * its predicate columns are those of the table the handler was opened on. Per session, so after
 * the shared resolution.
 */
function withHandlerTables(facts: StatementFacts[], state: SessionState): StatementFacts[] {
  if (!facts.some((f) => f.cursor?.op === 'fetch' && f.predicateColumns)) return facts;
  return facts.map((f) => {
    if (f.cursor?.op !== 'fetch' || !f.predicateColumns) return f;
    const opened = state.cursors.get(f.cursor.name)?.relations.find((r) => r.via === 'handler');
    // A name never opened in this session: its table is unknown, so any classified column may be the one compared.
    const table = opened ? { ...(opened.schema !== undefined ? { schema: opened.schema } : {}), table: opened.name } : { table: '*' };
    const name = f.cursor.name;
    return { ...f, predicateColumns: f.predicateColumns.map((p) => (p.table.toLowerCase() === name ? { ...table, column: p.column } : p)) };
  });
}

/**
 * An EXECUTE of a prepared `SET sql_mode = …` changes how the rest of its message lexes, which
 * the analysis (done before, on the text alone) could not know: the statements after it are
 * unknown. Per session (what a name runs is), so after the shared resolution.
 */
function afterPreparedModes(facts: StatementFacts[], state: SessionState): StatementFacts[] {
  if (facts.length < 2 || !facts.some((f) => f.execute)) return facts;
  const settings = settingsIn(state, facts);
  const at = facts.findIndex((f, k) => f.execute !== undefined && settings[k].some((s) => s.name === 'sql_mode'));
  if (at < 0 || at === facts.length - 1) return facts;
  const detail = `sql_mode is set by the prepared statement ${facts[at].execute!.name} earlier in this message`;
  return facts.map((f, k) => (k <= at ? f : { ...f, lineage: undefined, opaque: { reason: 'parse-error' as const, detail } }));
}

/** Kinds of statement that never send rows back. */
const ROWLESS_KINDS: ReadonlySet<StatementFacts['kind']> = new Set(['set', 'transaction', 'create', 'alter', 'drop', 'truncate', 'grant', 'role']);

/** Whether a statement of the message may send a result (the body of a called function does not). */
function mayReturnRows(f: StatementFacts): boolean {
  return f.calledFrom === undefined && (f.lineage !== undefined || !ROWLESS_KINDS.has(f.kind));
}

/** Statements whose rows carry newly written values: INSERT, UPDATE, MERGE, data-modifying CTEs. */
function writesRows(f: StatementFacts): boolean {
  return f.kind === 'insert' || f.kind === 'update' || f.kind === 'merge' || f.modifyingCte;
}

function sameColumns(a: ResultColumn[], b: ResultColumn[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.name !== y.name || x.tableOid !== y.tableOid || x.attnum !== y.attnum || x.typeId !== y.typeId || x.format !== y.format || x.orgSchema !== y.orgSchema || x.orgTable !== y.orgTable || x.orgName !== y.orgName) return false;
  }
  return true;
}

/**
 * The session settings that change what a text means (MySQL: sql_mode, where ANSI_QUOTES makes
 * "x" a column and not a string, and the current database): part of every key that caches by
 * text, or a text read one way in one session is masked as read another way in the next.
 */
function readingKey(state: SessionState): string {
  return `${state.params.get('sql_mode') ?? ''}|${state.params.get('database') ?? ''}`;
}

function columnsKey(columns: ResultColumn[]): string {
  let k = '';
  for (const c of columns) k += `${c.tableOid ?? ''}.${c.attnum ?? ''}.${c.orgSchema ?? ''}.${c.orgTable ?? ''}.${c.orgName ?? ''}.${c.typeId}.${c.format}.${c.name}|`;
  return k;
}

/** A Map that forgets everything when full: hot entries come straight back. */
class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  has(key: string): boolean {
    return this.map.has(key);
  }
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, value);
  }
}

/**
 * The relations a result may draw on. Opaque lineage means data flows through something the
 * analyser cannot follow (a user-defined function, a view built on one): it could read any
 * table, so the answer is "unknown" and the plan assumes the worst.
 */
function relationsFor(facts: StatementFacts[], lineage: readonly ColumnLineage[] | undefined): RelationRef[] | undefined {
  if (lineage?.some((l) => l.opaque)) return undefined;
  return planRelations(facts);
}

function withRelations(relations: RelationRef[] | undefined): { relations?: RelationRef[] } {
  return relations ? { relations } : {};
}

function identityRef(s: LiveSession): IdentityRef {
  return { id: s.identity.id, kind: s.identity.kind, groups: s.identity.groups };
}

