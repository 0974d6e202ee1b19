/**
 * The facts walker: every relation, function, column and predicate column a statement touches,
 * anywhere in its tree. Statement nodes with targets (INSERT's table, DROP's list, …) get their
 * access from a rule; every other node is walked generically, so a relation inside a node type
 * with no rule is still reported (as the statement's default access) instead of missed.
 */
import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import type { FunctionRef, ImplicitCall, OpaqueReason, RelationAccess, RelationRef } from '../facts.js';
import { as, conjuncts, forEachFromItem, isObject, list, names, qualified, qualifiedBy, str, sval, unwrap, type PgNode } from './ast.js';
import { testedColumns } from '../lineage.js';
import { fold, readsAny, selectsRows, withoutIdentity } from './constant.js';
import { functionRisks } from './functions.js';
import { implicitCallsOf } from './implicit-calls.js';

export interface Setting {
  name: string;
  value: string | null;
  local: boolean;
  /** The value is computed at run time (set_config with an expression): null does not mean RESET. */
  computed?: true;
}

/** Everything the walker found in one statement. */
export class Collected {
  readonly relations: RelationRef[] = [];
  readonly functions: FunctionRef[] = [];
  readonly predicateColumns: { schema?: string; table: string; column: string }[] = [];
  readonly settings: Setting[] = [];
  readonly implicitCalls: ImplicitCall[] = [];
  modifyingCte = false;
  /** One entry per UPDATE/DELETE/MERGE anywhere in the statement: does a real WHERE/ON restrict it? */
  readonly restricted: boolean[] = [];
  /** The column an UPDATE/DELETE's whole WHERE tests for non-NULL (`WHERE id IS NOT NULL`). */
  whereTruthOf: string | undefined;
  /** See StatementFacts.whereBareNames. */
  whereBareNames: string[] | undefined;
  opaque: { reason: OpaqueReason; detail: string } | undefined;
  private readonly relIndex = new Map<string, RelationRef>();
  private readonly fnIndex = new Map<string, FunctionRef>();
  private readonly predIndex = new Set<string>();

  relation(schema: string | undefined, name: string, access: RelationAccess, via: string | undefined): RelationRef {
    const key = `${schema ?? ''}\u0000${name}\u0000${access}\u0000${via ?? ''}`;
    let r = this.relIndex.get(key);
    if (!r) {
      r = { ...(schema === undefined ? {} : { schema }), name, access, ...(via === undefined ? {} : { via }) };
      this.relIndex.set(key, r);
      this.relations.push(r);
    }
    return r;
  }

  fn(schema: string | undefined, name: string, risks: FunctionRef['risks'], inFrom: boolean): void {
    const key = `${schema ?? ''}\u0000${name}\u0000${inFrom}\u0000${risks.join(',')}`;
    if (this.fnIndex.has(key)) return;
    const f: FunctionRef = { ...(schema === undefined ? {} : { schema }), name, risks: [...risks], ...(inFrom ? { inFrom } : {}) };
    this.fnIndex.set(key, f);
    this.functions.push(f);
  }

  predicate(schema: string | undefined, table: string, column: string): void {
    const key = `${schema ?? ''}\u0000${table}\u0000${column}`;
    if (this.predIndex.has(key)) return;
    this.predIndex.add(key);
    this.predicateColumns.push({ ...(schema === undefined ? {} : { schema }), table, column });
  }

  implicitCall(c: ImplicitCall): void {
    if (!this.implicitCalls.some((x) => x.kind === c.kind && x.schema === c.schema && x.name === c.name)) this.implicitCalls.push(c);
  }

  markOpaque(reason: OpaqueReason, detail: string): void {
    this.opaque ??= { reason, detail };
  }
}

export function addColumn(r: RelationRef, column: string): void {
  const cols = (r.columns ??= []);
  if (!cols.includes(column)) cols.push(column);
}

/** Names visible at one query level: CTE names and FROM-item aliases. */
class Scope {
  readonly ctes = new Set<string>();
  /** alias (or table name) → the base relation it reads; null for subqueries, CTEs, functions. */
  readonly ranges = new Map<string, RelationRef | null>();
  constructor(readonly parent: Scope | undefined) {}

  isCte(name: string): boolean {
    for (let s: Scope | undefined = this; s; s = s.parent) if (s.ctes.has(name)) return true;
    return false;
  }

  range(name: string): RelationRef | null | undefined {
    for (let s: Scope | undefined = this; s; s = s.parent) {
      const r = s.ranges.get(name);
      if (r !== undefined) return r;
    }
    return undefined;
  }
}

interface Ctx {
  scope: Scope;
  /** Access given to relations found generically below this point. */
  access: RelationAccess;
  via: string | undefined;
  /** Inside WHERE / JOIN … ON / HAVING. */
  predicate: boolean;
}

const QUERY_NODES = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** Relation kinds DROP / COMMENT name as plain name lists. */
const RELATION_OBJECTS = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_INDEX',
  'OBJECT_SEQUENCE',
  'OBJECT_FOREIGN_TABLE',
]);
/** Objects named `table.object`: the table is the relation. */
const ON_TABLE_OBJECTS = new Set(['OBJECT_RULE', 'OBJECT_TRIGGER', 'OBJECT_POLICY', 'OBJECT_TABCONSTRAINT', 'OBJECT_COLUMN']);

/** LOCK modes above ROW SHARE block writers: they count as writes. */
const ROW_SHARE_LOCK = 2;

export class Walker {
  readonly out = new Collected();

  /** `source`: the statement's own text, when it is a CREATE FUNCTION (its PL/pgSQL is parsed from it). */
  constructor(private readonly source?: string) {}

  /** Walks one top-level statement with the access its kind implies. */
  statement(type: string, node: PgNode, access: RelationAccess): void {
    const ctx: Ctx = { scope: new Scope(undefined), access, via: undefined, predicate: false };
    this.node(type, node, ctx);
    this.tested(type, node);
  }

  /**
   * Columns the statement tests outside WHERE / JOIN ON / HAVING are filters on them too: in a
   * condition or an error anywhere (`SELECT CASE WHEN ssn = '…' THEN 1/0 END`), through
   * subqueries, CTEs and derived tables (src/sql/postgres/conditions.ts).
   */
  private tested(type: string, node: PgNode): void {
    for (const s of testedColumns(type, node)) this.out.predicate(s.schema, s.table, s.column);
  }

  private any(x: unknown, ctx: Ctx): void {
    if (Array.isArray(x)) {
      for (const item of x) this.any(item, ctx);
      return;
    }
    if (!isObject(x)) return;
    const w = unwrap(x);
    if (w) {
      this.node(w[0], w[1], ctx);
      return;
    }
    // Fields typed as a bare RangeVar (InsertStmt.relation, IntoClause.rel, …) are unwrapped.
    if (typeof x.relname === 'string') {
      this.rangeVar(x, ctx);
      return;
    }
    for (const key in x) this.any(x[key], ctx);
  }

  private fields(n: PgNode, ctx: Ctx, skip: ReadonlySet<string>): void {
    for (const key in n) if (!skip.has(key)) this.any(n[key], ctx);
  }

  private node(type: string, n: PgNode, ctx: Ctx): void {
    for (const c of implicitCallsOf(type, n)) this.out.implicitCall(c);
    switch (type) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        this.query(type, n, ctx);
        return;
      case 'RangeVar':
        this.rangeVar(n, ctx);
        return;
      case 'FuncCall':
        this.funcCall(n, ctx, false);
        return;
      case 'ColumnRef':
        this.columnRef(n, ctx);
        return;
      case 'CopyStmt':
        return this.copy(n, ctx);
      case 'TruncateStmt':
        this.any(n.relations, { ...ctx, access: 'write' });
        return;
      case 'LockStmt':
        this.any(n.relations, { ...ctx, access: typeof n.mode === 'number' && n.mode <= ROW_SHARE_LOCK ? 'read' : 'write' });
        return;
      case 'DropStmt':
        return this.nameLists(list(n.objects), str(n.removeType), ctx);
      case 'CommentStmt':
      case 'SecLabelStmt':
        this.nameLists([n.object], str(n.objtype), ctx);
        return;
      case 'RuleStmt':
        this.any(n.relation, { ...ctx, access: 'ddl', via: 'rule' });
        this.any(n.whereClause, { ...ctx, access: 'read', via: 'rule' });
        this.any(n.actions, { ...ctx, via: 'rule' });
        return;
      case 'CreateTrigStmt':
        this.any(n.relation, { ...ctx, access: 'ddl', via: 'trigger' });
        this.fields(n, { ...ctx, via: 'trigger' }, new Set(['relation', 'funcname']));
        this.function(names(n.funcname), [], false);
        return;
      case 'CreateFunctionStmt':
        return this.createFunction(n, ctx);
      case 'CallStmt':
        // `funccall` is a bare FuncCall (a typed field): record the procedure itself, or CALL
        // would run a body nobody judged.
        if (isObject(n.funccall)) this.funcCall(n.funccall, ctx, false);
        return;
      case 'ExplainStmt':
      case 'PrepareStmt':
        // Their inner statement is analysed separately and hoisted (see postgres.ts).
        return;
      case 'WithClause':
        // Only reachable through query(); a stray one is walked for what it touches.
        this.ctes(n, ctx.scope, ctx);
        return;
      case 'RangeFunction':
        this.rangeFunction(n, ctx);
        return;
      default:
        this.fields(n, ctx, NO_KEYS);
    }
  }

  private query(type: string, n: PgNode, outer: Ctx): void {
    const scope = new Scope(outer.scope);
    const ctx: Ctx = { scope, access: 'read', via: outer.via, predicate: false };
    if (isObject(n.withClause)) this.ctes(n.withClause, scope, ctx);
    const handled = new Set(['withClause']);
    const pred = { ...ctx, predicate: true };
    switch (type) {
      case 'SelectStmt': {
        // SELECT … INTO creates a table: a DDL target, not a read.
        if (isObject(n.intoClause)) this.any(n.intoClause, { ...ctx, access: 'ddl' });
        // Set-operation branches are bare SelectStmt bodies: give them their own query level.
        for (const arm of [n.larg, n.rarg]) if (isObject(arm)) this.query('SelectStmt', arm, ctx);
        this.fromList(list(n.fromClause), ctx);
        this.any(n.whereClause, pred);
        this.any(n.havingClause, pred);
        for (const k of ['intoClause', 'fromClause', 'whereClause', 'havingClause', 'larg', 'rarg']) handled.add(k);
        break;
      }
      case 'InsertStmt': {
        const target = this.target(n.relation, ctx);
        for (const c of list(n.cols)) {
          const name = str(as(c, 'ResTarget')?.name);
          if (target && name) addColumn(target, name);
        }
        // An upsert whose rows come from a query updates every existing row that query reaches:
        // an UPDATE whose only bound is its DO UPDATE … WHERE. Rows from VALUES are bounded.
        const conflict = isObject(n.onConflictClause) ? n.onConflictClause : undefined;
        if (conflict?.action === 'ONCONFLICT_UPDATE') {
          this.out.restricted.push(rowsListed(n.selectStmt) || selectsRows(conflict.whereClause, targetNames(n.relation)));
        }
        handled.add('relation').add('cols');
        break;
      }
      case 'UpdateStmt': {
        this.out.whereTruthOf ??= notNullColumn(n.whereClause);
        const target = this.target(n.relation, ctx);
        for (const t of list(n.targetList)) {
          const name = str(as(t, 'ResTarget')?.name);
          if (target && name) addColumn(target, name);
        }
        this.fromList(list(n.fromClause), ctx);
        this.any(n.whereClause, pred);
        const self = selfNames(n);
        this.out.restricted.push(joinRestricted([n.whereClause], n.relation, list(n.fromClause), () => selectsRows(n.whereClause, targetNames(n.relation), self, joinedNames(list(n.fromClause), n.withClause)), self));
        this.out.whereBareNames ??= bareNamesOnly([n.whereClause], n.relation, list(n.fromClause), n.withClause);
        handled.add('relation').add('fromClause').add('whereClause');
        break;
      }
      case 'DeleteStmt': {
        this.out.whereTruthOf ??= notNullColumn(n.whereClause);
        this.target(n.relation, ctx);
        this.fromList(list(n.usingClause), ctx);
        this.any(n.whereClause, pred);
        const self = selfNames(n);
        this.out.restricted.push(joinRestricted([n.whereClause], n.relation, list(n.usingClause), () => selectsRows(n.whereClause, targetNames(n.relation), self, joinedNames(list(n.usingClause), n.withClause)), self));
        this.out.whereBareNames ??= bareNamesOnly([n.whereClause], n.relation, list(n.usingClause), n.withClause);
        handled.add('relation').add('usingClause').add('whereClause');
        break;
      }
      case 'MergeStmt': {
        this.target(n.relation, ctx);
        this.fromList([n.sourceRelation], ctx);
        this.any(n.joinCondition, pred);
        this.out.restricted.push(mergeRestricted(n));
        this.out.whereBareNames ??= bareNamesOnly([n.joinCondition, ...list(n.mergeWhenClauses).map((w) => as(w, 'MergeWhenClause')?.condition)], n.relation, [n.sourceRelation], n.withClause);
        for (const w of list(n.mergeWhenClauses)) this.any(as(w, 'MergeWhenClause')?.condition, pred);
        handled.add('relation').add('sourceRelation').add('joinCondition');
        break;
      }
      default:
        break;
    }
    this.fields(n, ctx, handled);
  }

  /** WITH: a non-recursive CTE sees only the CTEs before it, so `WITH t AS (SELECT * FROM t)` reads the real t. */
  private ctes(w: PgNode, scope: Scope, ctx: Ctx): void {
    const items = list(w.ctes).map((c) => as(c, 'CommonTableExpr')).filter((c): c is PgNode => c !== undefined);
    if (w.recursive === true) for (const c of items) scope.ctes.add(str(c.ctename) ?? '');
    for (const c of items) {
      const inner = unwrap(c.ctequery);
      if (inner && inner[0] !== 'SelectStmt') this.out.modifyingCte = true;
      this.any(c.ctequery, { ...ctx, via: inner && inner[0] !== 'SelectStmt' ? 'cte' : ctx.via });
      scope.ctes.add(str(c.ctename) ?? '');
    }
  }

  private target(rel: unknown, ctx: Ctx): RelationRef | undefined {
    if (!isObject(rel)) return undefined;
    return this.rangeVar(rel, { ...ctx, access: 'write' });
  }

  private fromList(items: unknown[], ctx: Ctx): void {
    for (const item of items) this.fromItem(item, ctx);
  }

  private fromItem(item: unknown, ctx: Ctx): void {
    const w = unwrap(item);
    if (!w) return;
    const [type, n] = w;
    switch (type) {
      case 'JoinExpr':
        this.fromItem(n.larg, ctx);
        this.fromItem(n.rarg, ctx);
        this.any(n.quals, { ...ctx, predicate: true });
        if (isObject(n.alias)) ctx.scope.ranges.set(str(n.alias.aliasname) ?? '', null);
        return;
      case 'RangeSubselect':
        this.any(n.subquery, ctx);
        if (isObject(n.alias)) ctx.scope.ranges.set(str(n.alias.aliasname) ?? '', null);
        return;
      default:
        this.node(type, n, ctx);
    }
  }

  private rangeFunction(n: PgNode, ctx: Ctx): void {
    for (const item of list(n.functions)) {
      const [call, ...rest] = list(item);
      const fc = as(call, 'FuncCall');
      if (fc) this.funcCall(fc, ctx, true);
      else this.any(call, ctx);
      this.any(rest, ctx);
    }
    if (isObject(n.alias)) ctx.scope.ranges.set(str(n.alias.aliasname) ?? '', null);
  }

  private rangeVar(n: PgNode, ctx: Ctx): RelationRef | undefined {
    const name = str(n.relname) ?? '';
    // CREATE TEMP TABLE x: the new relation lives in the session's temp schema and will shadow a
    // real `x` for the rest of the session; naming it pg_temp lets the broker track that.
    const schema = str(n.schemaname) ?? (str(n.relpersistence) === 't' ? 'pg_temp' : undefined);
    const alias = isObject(n.alias) ? str(n.alias.aliasname) : undefined;
    // Only an unqualified name can mean a CTE; `public.t` is the table even inside `WITH t AS …`.
    if (schema === undefined && ctx.scope.isCte(name) && ctx.access === 'read') {
      ctx.scope.ranges.set(alias ?? name, null);
      return undefined;
    }
    const r = this.out.relation(schema, name, ctx.access, ctx.via);
    ctx.scope.ranges.set(alias ?? name, r);
    return r;
  }

  private funcCall(n: PgNode, ctx: Ctx, inFrom: boolean): void {
    const args = list(n.args);
    this.function(names(n.funcname), args, inFrom);
    this.fields(n, ctx, FUNCNAME_KEY);
  }

  private function(parts: string[], args: unknown[], inFrom: boolean): void {
    const { schema, name } = qualified(parts);
    let settingName: string | null | undefined = null;
    if (name === 'set_config') {
      const [k, v, local] = args.map(fold);
      settingName = typeof k === 'string' ? k : undefined;
      if (settingName !== undefined) {
        this.out.settings.push({
          name: settingName.toLowerCase(),
          value: typeof v === 'string' ? v : v === null || v === undefined ? null : String(v),
          local: local === true,
          ...(v === undefined ? { computed: true as const } : {}),
        });
      }
    }
    this.out.fn(schema, name, functionRisks(name, settingName), inFrom);
  }

  private columnRef(n: PgNode, ctx: Ctx): void {
    const fields = list(n.fields);
    const parts = fields.map((f) => sval(f) ?? '*');
    const column = parts[parts.length - 1] ?? '*';
    let rel: RelationRef | null | undefined;
    let tableName: string | undefined;
    if (parts.length === 1) {
      // Unqualified: attributable only when exactly one relation is in this level's FROM.
      const here = [...ctx.scope.ranges.values()];
      rel = here.length === 1 ? here[0] : undefined;
      if (column === '*') for (const r of here) if (r) addColumn(r, '*');
    } else {
      tableName = parts[parts.length - 2];
      rel = tableName === undefined ? undefined : ctx.scope.range(tableName);
    }
    if (rel) addColumn(rel, column);
    if (ctx.predicate && column !== '*') {
      if (rel) this.out.predicate(rel.schema, rel.name, column);
      else if (tableName !== undefined) this.out.predicate(undefined, tableName, column);
      else {
        // Ambiguous without the catalog: every relation in reach may own it.
        for (let s: Scope | undefined = ctx.scope; s; s = s.parent) for (const r of s.ranges.values()) if (r) this.out.predicate(r.schema, r.name, column);
      }
    }
  }

  private copy(n: PgNode, ctx: Ctx): void {
    const target = isObject(n.relation) ? this.rangeVar(n.relation, { ...ctx, access: n.is_from === true ? 'write' : 'read' }) : undefined;
    for (const a of list(n.attlist)) {
      const c = sval(a);
      if (target && c) addColumn(target, c);
    }
    this.any(n.query, { ...ctx, access: 'read' });
    this.any(n.whereClause, { ...ctx, access: 'read', predicate: true });
    // COPY … PROGRAM runs a shell command on the server; COPY to/from a path touches its files.
    if (n.is_program === true) this.out.fn(undefined, 'copy_program', ['program'], false);
    else if (typeof n.filename === 'string') this.out.fn(undefined, 'copy_file', ['file'], false);
  }

  private nameLists(objects: unknown[], objtype: string | undefined, ctx: Ctx): void {
    for (const o of objects) {
      const parts = names(o);
      if (objtype !== undefined && RELATION_OBJECTS.has(objtype) && parts.length > 0) {
        const q = qualified(parts);
        this.out.relation(q.schema, q.name, ctx.access, ctx.via);
      } else if (objtype !== undefined && ON_TABLE_OBJECTS.has(objtype) && parts.length > 1) {
        const q = qualified(parts.slice(0, -1));
        this.out.relation(q.schema, q.name, ctx.access, ctx.via);
      } else {
        this.any(o, ctx);
      }
    }
  }

  private createFunction(n: PgNode, ctx: Ctx): void {
    let language = 'sql';
    let body: string | undefined;
    for (const o of list(n.options)) {
      const d = as(o, 'DefElem');
      if (!d) continue;
      if (d.defname === 'language') language = (sval(d.arg) ?? language).toLowerCase();
      if (d.defname === 'as') body = names(d.arg)[0] ?? sval(d.arg);
    }
    this.any(n.parameters, ctx);
    // A SQL-standard body (BEGIN ATOMIC / RETURN) is parsed already: walk it as queries.
    this.any(n.sql_body, { ...ctx, access: 'read', via: 'function-body' });
    if (body === undefined) return;
    if (language === 'sql') this.sqlBody(body, { ...ctx, access: 'read', via: 'function-body' });
    else if (language === 'plpgsql') {
      // The statement itself parses with its real parameters and return type; a body alone, in a
      // stand-in `RETURNS void` function, fails on `RETURN 1` or an OUT parameter. A body that
      // parses neither way is one dbgov cannot see into.
      const parsed = (this.source !== undefined && this.plpgsql(this.source, ctx, 'function-body')) || this.plpgsql(`CREATE FUNCTION dbgov_probe() RETURNS void LANGUAGE plpgsql AS $dbgov$${body}$dbgov$`, ctx, 'function-body');
      if (!parsed) this.out.markOpaque('parse-error', 'a PL/pgSQL function body dbgov could not parse');
    }
  }

  /** A DO block: reported for what it references, but it stays opaque to policy. */
  doBlock(n: PgNode): void {
    let language = 'plpgsql';
    let body: string | undefined;
    for (const o of list(n.args)) {
      const d = as(o, 'DefElem');
      if (d?.defname === 'language') language = (sval(d.arg) ?? language).toLowerCase();
      if (d?.defname === 'as') body = sval(d.arg);
    }
    this.out.markOpaque('do-block', `DO block in language ${language}`);
    if (body !== undefined && language === 'plpgsql') {
      const ctx: Ctx = { scope: new Scope(undefined), access: 'read', via: 'do-block', predicate: false };
      this.plpgsql(`DO $dbgov$${body}$dbgov$`, ctx, 'do-block');
    }
  }

  /**
   * A PL/pgSQL function's full definition as the server gives it (pg_get_functiondef), walked for
   * what its body calls and reads. False when it does not parse.
   */
  functionDefinition(definition: string): boolean {
    let tree: unknown;
    try {
      tree = parsePlPgSQLSync(definition);
    } catch {
      return false;
    }
    this.plNode(tree, { scope: new Scope(undefined), access: 'read', via: 'function-body', predicate: false });
    return true;
  }

  private sqlBody(sql: string, ctx: Ctx): void {
    let parsed;
    try {
      parsed = parseSync(sql);
    } catch {
      return;
    }
    for (const s of parsed.stmts ?? []) {
      const w = unwrap(s.stmt);
      if (!w) continue;
      this.node(w[0], w[1], { ...ctx, scope: new Scope(undefined), access: defaultAccessOf(w[0]) });
      this.tested(w[0], w[1]);
    }
  }

  private plpgsql(source: string, ctx: Ctx, via: string): boolean {
    let tree: unknown;
    try {
      tree = parsePlPgSQLSync(source);
    } catch {
      return false;
    }
    this.plNode(tree, { ...ctx, via });
    return true;
  }

  /** Walks a PL/pgSQL tree: its SQL lives in PLpgSQL_expr strings; EXECUTE is dynamic SQL. */
  private plNode(x: unknown, ctx: Ctx): void {
    if (Array.isArray(x)) {
      for (const i of x) this.plNode(i, ctx);
      return;
    }
    if (!isObject(x)) return;
    for (const key in x) {
      const v = x[key];
      if (key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors' || (key === 'PLpgSQL_stmt_open' && isObject(v) && v.dynquery)) {
        // The SQL text is built at run time: nothing here can say what it touches.
        this.out.fn(undefined, 'execute', ['dynamic-sql'], false);
        this.out.markOpaque('dynamic-sql', 'PL/pgSQL EXECUTE of a run-time string');
      }
      if (key === 'PLpgSQL_expr' && isObject(v) && typeof v.query === 'string') {
        // parseMode 0 is a whole statement; the others are expressions.
        this.sqlBody(v.parseMode === 0 ? v.query : `SELECT ${v.query}`, ctx);
        continue;
      }
      this.plNode(v, ctx);
    }
  }
}

const NO_KEYS: ReadonlySet<string> = new Set();
const FUNCNAME_KEY: ReadonlySet<string> = new Set(['funcname']);

/** Access for relations a statement reaches without a specific rule. */
export function defaultAccessOf(type: string): RelationAccess {
  if (QUERY_NODES.has(type) || type === 'ExplainStmt' || type === 'DeclareCursorStmt' || type === 'VariableSetStmt') return 'read';
  switch (type) {
    case 'TruncateStmt':
    case 'VacuumStmt':
    case 'ClusterStmt':
    case 'RefreshMatViewStmt':
    case 'ReindexStmt':
      return 'write';
    default:
      return 'ddl';
  }
}

/** Names a statement's target table goes by in its conditions: the alias, else the table name. */
function targetNames(rel: unknown): string[] {
  const r = as(rel, 'RangeVar') ?? (isObject(rel) ? rel : undefined);
  const alias = isObject(r?.alias) ? str(r.alias.aliasname) : undefined;
  const name = str(r?.relname);
  return [alias ?? name].filter((x): x is string => x !== undefined);
}

/**
 * Whether a write's WHERE (or a MERGE's ON and WHEN conditions) bounds the rows it changes when
 * it joins other rows. A join to another table is bounded by that table's rows, as `WHERE id IN
 * (SELECT …)` is. A join of the table with itself is not: `DELETE FROM orders o USING orders s
 * WHERE o.id = s.id` or `MERGE INTO orders o USING orders s ON o.id = s.id` matches every row.
 * With such a self-join only a condition that selects target rows without the self-joined copy
 * bounds the write. A MERGE whose source is a VALUES list or a SELECT without FROM is bounded.
 */
function joinRestricted(where: unknown[], target: unknown, joined: unknown[], fallback: () => boolean, self: ReadonlySet<string>): boolean {
  const targets = targetNames(target);
  const copies = selfJoined(self, joined);
  if (copies.size === 0) return fallback();
  return where.some((expr) => conjuncts(expr).some((c) => selectsRows(c, targets, self) && !qualifiedBy(c, copies)));
}

/**
 * The written table's name and the names of the statement's CTEs that read it (directly or
 * through another such CTE): what a subquery in its WHERE reads when it semi-joins the table
 * with itself (see selectsRows).
 */
function selfNames(n: PgNode): Set<string> {
  const rel = as(n.relation, 'RangeVar') ?? (isObject(n.relation) ? n.relation : undefined);
  const out = new Set<string>();
  const name = str(rel?.relname);
  if (name === undefined) return out;
  out.add(name);
  const withClause = as(n.withClause, 'WithClause') ?? (isObject(n.withClause) ? n.withClause : undefined);
  const ctes = list(withClause?.ctes)
    .map((c) => as(c, 'CommonTableExpr'))
    .filter((c): c is PgNode => c !== undefined);
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of ctes) {
      const cte = str(c.ctename);
      if (cte !== undefined && !out.has(cte) && readsAny(c.ctequery, out)) {
        out.add(cte);
        grew = true;
      }
    }
  }
  return out;
}

/**
 * Rows written out one by one: a VALUES list, or a SELECT with no FROM, set operation or WITH.
 * Not when its select list calls a function: a set-returning one (`SELECT generate_series(1,
 * 1e6)`, `SELECT unnest((SELECT array_agg(id) FROM t))`) makes as many rows as it likes.
 */
function rowsListed(x: unknown): boolean {
  const sel = as(x, 'SelectStmt');
  if (sel === undefined || list(sel.fromClause).length > 0 || (sel.op !== undefined && sel.op !== 'SETOP_NONE') || isObject(sel.withClause)) return false;
  return !callsFunction(sel.targetList);
}

function callsFunction(x: unknown): boolean {
  if (Array.isArray(x)) return x.some(callsFunction);
  if (!isObject(x)) return false;
  for (const k in x) if (k === 'FuncCall' || callsFunction(x[k])) return true;
  return false;
}

function mergeRestricted(n: PgNode): boolean {
  const src = unwrap(n.sourceRelation);
  const joined = joinedNames([n.sourceRelation], n.withClause);
  // Listed source rows bound the write only through an ON that names the target's rows: with
  // `ON true` or `ON s.x = 1` each source row matches every target row.
  if (src && src[0] === 'RangeSubselect' && rowsListed(src[1].subquery) && selectsRows(n.joinCondition, targetNames(n.relation), NO_SELF, joined)) return true;
  const acting = list(n.mergeWhenClauses)
    .map((w) => as(w, 'MergeWhenClause'))
    .filter((w) => w !== undefined && (w.matched === true || w.matchKind === 'MERGE_WHEN_MATCHED') && (w.commandType === 'CMD_UPDATE' || w.commandType === 'CMD_DELETE'));
  // Only inserts: no existing row changes.
  if (acting.length === 0) return true;
  // Every updating or deleting clause must be bounded, by ON or by its own condition.
  const self = selfNames(n);
  return (
    joinRestricted([n.joinCondition], n.relation, [n.sourceRelation], () => selectsRows(n.joinCondition, targetNames(n.relation), self, joined), self) ||
    acting.every((w) => joinRestricted([w!.condition], n.relation, [n.sourceRelation], () => false, self))
  );
}

const NO_SELF: ReadonlySet<string> = new Set();

/**
 * See StatementFacts.whereBareNames: the bare names a write's conditions use outside subqueries,
 * when it joins a base table (not a CTE) and no column in them is qualified by the target.
 */
function bareNamesOnly(conditions: unknown[], target: unknown, joined: unknown[], withClause: unknown): string[] | undefined {
  const ctes = new Set(list(as(withClause, 'WithClause')?.ctes ?? (isObject(withClause) ? withClause.ctes : undefined)).map((c) => str(as(c, 'CommonTableExpr')?.ctename) ?? ''));
  let base = false;
  forEachFromItem(joined, (item) => {
    const r = as(item, 'RangeVar');
    if (r && (r.schemaname !== undefined || !ctes.has(str(r.relname) ?? ''))) base = true;
  });
  if (!base) return undefined;
  const targets = new Set(targetNames(target));
  const bare = new Set<string>();
  let qualified = false;
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) return x.forEach(visit);
    if (!isObject(x)) return;
    for (const k in x) {
      const v = x[k];
      if (k === 'SelectStmt') {
        // A subquery correlated with the target names its rows by qualified columns.
        if (qualifiedBy(v, targets)) qualified = true;
        continue;
      }
      if (k === 'ColumnRef' && isObject(v)) {
        const fields = list(v.fields);
        const q = fields.length > 1 ? sval(fields[fields.length - 2]) : undefined;
        if (q !== undefined && targets.has(q)) qualified = true;
        else if (fields.length === 1 && sval(fields[0]) !== undefined) bare.add(sval(fields[0])!);
        continue;
      }
      visit(v);
    }
  };
  visit(conditions);
  return qualified || bare.size === 0 ? undefined : [...bare];
}

/**
 * What a bare name in a write's WHERE (or a MERGE's ON) may mean other than the target's column:
 * the other FROM items (as whole rows) and the columns they are known to have (a derived table's
 * or a VALUES list's, a table function's, a CTE's). A base table's columns are not known here:
 * a bare name is taken for the target's.
 */
function joinedNames(items: unknown[], withClause: unknown): Set<string> {
  const out = new Set<string>();
  const ctes = new Map<string, PgNode>();
  for (const c of list(as(withClause, 'WithClause')?.ctes ?? (isObject(withClause) ? withClause.ctes : undefined))) {
    const cte = as(c, 'CommonTableExpr');
    if (cte && str(cte.ctename) !== undefined) ctes.set(str(cte.ctename)!, cte);
  }
  const outputs = (query: unknown): string[] => {
    const sel = as(query, 'SelectStmt');
    if (!sel) return [];
    const values = list(sel.valuesLists);
    if (values.length > 0) return list(values[0]).map((_, i) => `column${i + 1}`);
    if (sel.op !== undefined && sel.op !== 'SETOP_NONE') return outputs({ SelectStmt: sel.larg });
    return list(sel.targetList).map((t) => {
      const rt = as(t, 'ResTarget');
      const ref = as(rt?.val, 'ColumnRef');
      const fields = list(ref?.fields);
      return str(rt?.name) ?? sval(fields[fields.length - 1]) ?? (as(rt?.val, 'FuncCall') ? (names(as(rt?.val, 'FuncCall')!.funcname).pop() ?? '') : '');
    });
  };
  forEachFromItem(items, (item, name) => {
    if (name !== undefined) out.add(name);
    const w = unwrap(item);
    if (!w) return;
    const [type, r] = w;
    const renamed = names(isObject(r.alias) ? r.alias.colnames : undefined);
    let cols: string[] = [];
    if (type === 'RangeSubselect') cols = outputs(r.subquery);
    else if (type === 'RangeFunction') cols = list(r.coldeflist).map((d) => str(as(d, 'ColumnDef')?.colname) ?? '');
    else if (type === 'RangeVar' && r.schemaname === undefined && ctes.has(str(r.relname) ?? '')) {
      const cte = ctes.get(str(r.relname) ?? '')!;
      cols = names(cte.aliascolnames);
      if (cols.length === 0) cols = outputs(cte.ctequery);
    }
    for (const c of [...renamed, ...cols]) if (c) out.add(c);
  });
  return out;
}

/** Names of FROM items that are the written table itself, or read it (a subquery, a CTE of `self`). */
function selfJoined(self: ReadonlySet<string>, joined: unknown[]): Set<string> {
  const out = new Set<string>();
  forEachFromItem(joined, (item, alias) => {
    if (alias && readsAny(item, self)) out.add(alias);
  });
  return out;
}

/**
 * `col IS NOT NULL` as a whole WHERE: the column. For a key column it holds for every row; a
 * name that is no column of the table is the whole row (`WHERE o IS NOT NULL`), which is no
 * filter either (TargetRuntime.resolve). Also in its other spellings: `col IS DISTINCT FROM
 * NULL`, `NOT col IS NULL`, `(…) IS TRUE`, with a cast or `+ 0` on the column, `ROW(col)`, and
 * next to conjuncts that are constant true (`AND true`) or disjuncts constant false (`OR false`).
 */
function notNullColumn(where: unknown): string | undefined {
  const b = as(where, 'BoolExpr');
  if (b?.boolop === 'AND_EXPR' || b?.boolop === 'OR_EXPR') {
    const idle = b.boolop === 'AND_EXPR' ? (v: unknown) => v === true : (v: unknown) => v === false || v === null;
    const rest = list(b.args).filter((a) => !idle(fold(a)));
    return rest.length === 1 ? notNullColumn(rest[0]) : undefined;
  }
  if (b?.boolop === 'NOT_EXPR') {
    const t = as(list(b.args)[0], 'NullTest');
    return t?.nulltesttype === 'IS_NULL' ? testedColumn(t.arg) : undefined;
  }
  const bt = as(where, 'BooleanTest');
  if (bt?.booltesttype === 'IS_TRUE' || bt?.booltesttype === 'IS_NOT_FALSE') return notNullColumn(bt.arg);
  const t = as(where, 'NullTest');
  if (t?.nulltesttype === 'IS_NOT_NULL') return testedColumn(t.arg);
  // `col IS DISTINCT FROM NULL` is the same test.
  const d = as(where, 'A_Expr');
  const isNull = (x: unknown): boolean => as(x, 'A_Const')?.isnull === true;
  if (d?.kind === 'AEXPR_DISTINCT') return testedColumn(isNull(d.rexpr) ? d.lexpr : isNull(d.lexpr) ? d.rexpr : undefined);
  return undefined;
}

/** The column whose NULLness decides `x`'s: `col`, `col::int`, `col + 0`, `ROW(col)`. */
function testedColumn(x: unknown): string | undefined {
  const inner = withoutIdentity(x);
  const cast = as(inner, 'TypeCast') ?? as(inner, 'CollateClause');
  if (cast) return testedColumn(cast.arg);
  const row = as(inner, 'RowExpr');
  if (row && list(row.args).length === 1) return testedColumn(list(row.args)[0]);
  const fields = list(as(inner, 'ColumnRef')?.fields);
  // `o.*` (alone or in ROW(o.*)) is the whole row, as `o` is: named by its range, not a column.
  if (fields.length > 1 && as(fields[fields.length - 1], 'A_Star') !== undefined) return sval(fields[fields.length - 2]);
  return fields.length > 0 ? sval(fields[fields.length - 1]) : undefined;
}
