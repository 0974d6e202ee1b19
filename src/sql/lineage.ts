/**
 * Column lineage: for each output column of a row-returning statement, the source columns its
 * value may carry. This is what keeps PII masked through reshaped queries (aliases, casts,
 * concatenation, subqueries, CTEs, set operations, whole-row references), so it errs on the
 * side of too many sources, and says `opaque` where it cannot know: masking then masks.
 *
 * Without a catalog (`statementLineage`, run by the analyser) a base table's columns are
 * unknown: `*` stays a placeholder and an unqualified name is attributed to every candidate.
 * `resolveLineage` re-runs the same analysis with the catalog, which makes both exact, and
 * qualifies every source to its real schema.table.column, through views.
 */
import { parseSync } from 'libpg-query';
import type { ColumnLineage, ImplicitCall, StatementFacts } from './facts.js';
import type { PostgresCatalog, ResolveOptions } from './catalog.js';
import { as, isObject, list, names, qualified, str, sval, unwrap, type PgNode } from './postgres/ast.js';
import { castsToText, compares, concatenates, fieldOf, passes, passingName, rowJson, shapeIndirection, valueSlots } from './postgres/conditions.js';
import { STORING_FUNCTIONS, functionRisks, hidesLineage } from './postgres/functions.js';
import { implicitCallKey, implicitCallOfKey, implicitCallsOf } from './postgres/implicit-calls.js';

export interface Source {
  schema?: string;
  table: string;
  column: string;
}

/** One output column while lineage is being worked out. */
interface Col {
  name: string;
  sources: Source[];
  opaque: boolean;
  direct: boolean;
  /** An unexpanded `*` over a base table whose columns are not known. */
  star: boolean;
  /** Functions applied on the way (names as written), for the catalog's user-function check. */
  functions: string[];
  /** One column through lower() or upper() only: every character where it was (see ColumnLineage.caseMapped). */
  caseMapped?: true;
}

/** A value a statement stores: the destination column, and the lineage of the value. */
interface Flow {
  dest: { schema?: string; table: string };
  column: string;
  value: Col;
  /** The destination is a table the statement creates (CREATE TABLE AS, SELECT INTO). */
  created?: boolean;
}

/**
 * Whether a call may run a user function rather than the built-in its name suggests: the catalog
 * says (an overload in another schema, a user-defined operator or cast). Absent: built-in.
 */
export type UserCode = (call: { kind: 'function'; schema?: string; name: string } | ImplicitCall) => boolean;

/** Gives a base relation's column names in order, or undefined when not known. */
export type ColumnProvider = (schema: string | undefined, table: string) => string[] | undefined;

const MAX_RECURSIVE_ROUNDS = 8;

/** Functions that change only the case of each character, in place. */
const CASE_MAPPINGS: ReadonlySet<string> = new Set(['lower', 'upper']);

function col(name: string, init: Partial<Col> = {}): Col {
  return { name, sources: [], opaque: false, direct: false, star: false, functions: [], ...init };
}

/** Union of several values flowing into one output. */
function merge(name: string, parts: Col[]): Col {
  const out = col(name);
  const seen = new Set<string>();
  for (const p of parts) {
    for (const s of p.sources) {
      const k = `${s.schema ?? ''}\u0000${s.table}\u0000${s.column}`;
      if (!seen.has(k)) {
        seen.add(k);
        out.sources.push(s);
      }
    }
    for (const f of p.functions) if (!out.functions.includes(f)) out.functions.push(f);
    out.opaque ||= p.opaque || p.star;
  }
  return out;
}

interface Range {
  /** Name a qualified reference uses: the alias, or the table name. */
  alias: string;
  /** For base tables: the relation as written. */
  base?: { schema?: string; table: string };
  /** Output columns in order, when known. */
  cols: Col[] | undefined;
  /** Lineage any column of an unknown-shape range carries (a table function's arguments). */
  fallback?: Col;
  /** Extra values a column may carry (UPDATE … SET c = expr RETURNING c). */
  extra?: Map<string, Col>;
}

class Scope {
  readonly ranges: Range[] = [];
  /** FROM items in order, for `*`: each is the list of ranges it expands. */
  readonly items: Col[][] = [];
  readonly ctes = new Map<string, Col[]>();
  constructor(readonly parent: Scope | undefined) {}

  cte(name: string): Col[] | undefined {
    for (let s: Scope | undefined = this; s; s = s.parent) {
      const c = s.ctes.get(name);
      if (c) return c;
    }
    return undefined;
  }
}

class Lineage {
  /** Sources of operands that steer a condition or an error (see postgres/conditions.ts). */
  private readonly testedIndex = new Map<string, Source>();

  /**
   * `testing`: also walk every clause that does not make output (WHERE, ORDER BY, LIMIT, join
   * conditions, writes' conditions, …) and collect what is tested anywhere; plain lineage skips them.
   */
  constructor(
    private readonly provider: ColumnProvider | undefined,
    private readonly testing = false,
    private readonly userCode?: UserCode,
  ) {}

  get tested(): Source[] {
    return [...this.testedIndex.values()];
  }

  /** Records a value that is tested: every source it may carry becomes a filter column. */
  private test(c: Col): void {
    if (!this.testing) return;
    for (const s of c.sources) this.testedIndex.set(`${s.schema ?? ''}\u0000${s.table}\u0000${s.column}`, s);
  }

  // ---- ranges -------------------------------------------------------------------------

  private baseRange(schema: string | undefined, table: string, alias: PgNode | undefined): Range {
    const known = this.provider?.(schema, table);
    const aliasName = str(alias?.aliasname) ?? table;
    const renamed = names(alias?.colnames);
    if (!known) {
      // Renamed columns of an unknown table cannot be matched to the real ones: whole row.
      const cols = renamed.length > 0 ? renamed.map((n) => col(n, { sources: [{ ...sch(schema), table, column: '*' }], opaque: true })) : undefined;
      return { alias: aliasName, base: { ...sch(schema), table }, cols };
    }
    const cols = known.map((c, i) => col(renamed[i] ?? c, { sources: [{ ...sch(schema), table, column: c }], direct: true }));
    return { alias: aliasName, base: { ...sch(schema), table }, cols };
  }

  private derivedRange(aliasName: string, cols: Col[], alias: PgNode | undefined): Range {
    const renamed = names(alias?.colnames);
    return { alias: aliasName, cols: cols.map((c, i) => (renamed[i] ? { ...c, name: renamed[i] } : c)) };
  }

  /** Columns a range contributes to `*`. */
  private starOf(r: Range): Col[] {
    if (r.cols) return r.cols;
    if (r.base) return [col('*', { sources: [{ ...r.base, column: '*' }], star: true, direct: true })];
    return [r.fallback ? { ...r.fallback, name: '*', opaque: true } : col('*', { opaque: true })];
  }

  /** A column of a range by name: a list of candidate values, or undefined if it has none. */
  private lookup(r: Range, name: string): Col | undefined {
    const extra = r.extra?.get(name);
    let found: Col | undefined;
    if (r.cols) {
      const hits = r.cols.filter((c) => c.name === name);
      const stars = r.cols.filter((c) => c.star);
      if (hits.length > 0) found = hits.length === 1 ? hits[0] : merge(name, hits);
      else if (stars.length > 0) {
        found = col(name, { sources: stars.flatMap((s) => s.sources.map((src) => ({ ...src, column: name }))), direct: true });
      }
    } else if (r.base) found = col(name, { sources: [{ ...r.base, column: name }], direct: true });
    else if (r.fallback) found = { ...r.fallback, name };
    if (found && extra) return { ...merge(name, [found, extra]), direct: false };
    return found;
  }

  /** Every column of a range as one value: a whole-row reference (`t`, `t.*`, row_to_json(t)). */
  private wholeRow(r: Range, name: string): Col {
    const parts = this.starOf(r).map((c) => (c.star ? { ...c, star: false } : c));
    return { ...merge(name, parts), direct: false };
  }

  private findRange(scope: Scope, qual: string[]): Range | undefined {
    const alias = qual[qual.length - 1];
    const schema = qual.length > 1 ? qual[qual.length - 2] : undefined;
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const r = s.ranges.find((x) => x.alias === alias && (schema === undefined || x.base?.schema === schema));
      if (r) return r;
    }
    return undefined;
  }

  // ---- expressions --------------------------------------------------------------------

  private columnRef(n: PgNode, scope: Scope): Col {
    const parts = list(n.fields).map((f) => sval(f) ?? '*');
    const last = parts[parts.length - 1] ?? '*';
    const name = last === '*' ? '*' : last;
    if (parts.length === 1) {
      if (last === '*') return merge('*', scope.ranges.map((r) => this.wholeRow(r, '*')));
      return this.unqualified(last, scope);
    }
    const r = this.findRange(scope, parts.slice(0, -1));
    if (r) {
      if (last === '*') return this.wholeRow(r, name);
      return this.lookup(r, last) ?? col(name, { opaque: true });
    }
    // `c.field`: a field of a composite column c carries c.
    const viaColumn = this.unqualified(parts[0] ?? '', scope);
    return { ...viaColumn, name, direct: false };
  }

  /** An unqualified name: the nearest level that certainly has it wins; uncertain levels all count. */
  private unqualified(name: string, scope: Scope): Col {
    const candidates: Col[] = [];
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      let certain = false;
      for (const r of s.ranges) {
        const c = this.lookup(r, name);
        if (!c) continue;
        candidates.push(c);
        if (r.cols && !r.cols.some((x) => x.star)) certain = true;
      }
      // A range alias used as a value is a whole-row reference (`SELECT t FROM t`, `t::text`).
      const asRow = s.ranges.find((r) => r.alias === name);
      if (asRow && !certain) candidates.push(this.wholeRow(asRow, name));
      if (certain) break;
    }
    if (candidates.length === 0) return col(name, { opaque: true });
    if (candidates.length === 1) return candidates[0] as Col;
    return { ...merge(name, candidates), direct: false };
  }

  /**
   * Lineage of one expression: every column any part of it may carry. `tested`: the expression
   * stands where its value is tested (a condition, an operator, an unknown function's argument),
   * so every column and subquery output in it is a filter on what it reads; otherwise each part
   * is judged by where it stands (postgres/conditions.ts).
   */
  expr(x: unknown, scope: Scope, name: string, tested = false): Col {
    const w = unwrap(x);
    if (!w) return col(name);
    const [type, n] = w;
    switch (type) {
      case 'ColumnRef': {
        const c = { ...this.columnRef(n, scope), name };
        if (tested) this.test(c);
        return c;
      }
      case 'A_Const':
      case 'ParamRef':
      case 'SQLValueFunction':
        return col(name);
      case 'SubLink': {
        // EXISTS / IN / ANY yield only a boolean about the subquery; its values do not flow out.
        // IN / ANY / ALL compare what the subquery returns; EXISTS tests only that rows exist.
        const t = str(n.subLinkType);
        const returns = t === 'EXPR_SUBLINK' || t === 'ARRAY_SUBLINK' || t === 'MULTIEXPR_SUBLINK';
        const test = this.expr(n.testexpr, scope, name, true);
        if (!returns) {
          if (this.testing) this.select(n.subselect, new Scope(scope), t !== 'EXISTS_SUBLINK');
          return { ...test, direct: false };
        }
        const inner = this.select(n.subselect, new Scope(scope), tested);
        return { ...withImplicitCalls(merge(name, [test, ...inner]), type, n), direct: false };
      }
      case 'FuncCall': {
        const parts = names(n.funcname);
        const fname = qualified(parts).name;
        // A user function of a transform's name (an overload the server picks by argument types) tests all it is given.
        const slots = this.userCode?.({ kind: 'function', ...qualified(parts) }) ? undefined : valueSlots(n);
        // count(DISTINCT v) compares the values it takes (one fewer when a guess matches one).
        const argCols = list(n.args).map((a, i) => (n.agg_distinct === true ? this.sortKey(a, scope, name, tested || !passes(slots, i)) : this.expr(a, scope, name, tested || !passes(slots, i))));
        // FILTER (WHERE …) is a condition; an aggregate's ORDER BY and OVER (…) sort and group
        // (see sortKey). An unknown function is given all of them.
        const own = slots === undefined || tested;
        const rest = this.children(n, scope, name, FUNCTION_PARTS, (k) => k === 'agg_filter' || own);
        const over = isObject(n.over) ? this.window(n.over, scope, name, own) : col(name);
        const args = merge(name, [...argCols, rest, over]);
        args.functions.push(parts.join('.'));
        if (hidesLineage(functionRisks(fname, undefined))) args.opaque = true;
        // lower(col) / upper(col) keep every character in its place (a user overload of the name
        // makes the value opaque when the catalog qualifies it).
        const one = argCols.length === 1 ? argCols[0] : undefined;
        const caseOnly = CASE_MAPPINGS.has(fname.toLowerCase()) && (parts.length === 1 || parts[0] === 'pg_catalog') && one !== undefined && (one.direct || one.caseMapped === true) && !one.opaque && one.sources.length === 1 && n.agg_filter === undefined && n.over === undefined;
        return { ...args, direct: false, ...(caseOnly ? { caseMapped: true as const } : {}) };
      }
      case 'SelectStmt':
        return { ...merge(name, this.select(x, new Scope(scope), tested)), direct: false };
      case 'SortBy':
      case 'GroupingSet':
        return this.sortKey(x, scope, name, tested);
      case 'WindowDef':
        return { ...this.window(n, scope, name, tested), direct: false };
      default:
        // An operator or a cast may run a user function (see implicit-calls.ts): the catalog says.
        return { ...withImplicitCalls(this.children(n, scope, name, NO_KEYS, this.slotTest(type, n, scope, tested)), type, n), direct: false };
    }
  }

  /**
   * For a node that is not a column, a call or a subquery: whether each of its fields is tested.
   * Value transforms pass their value slots on as tested as they are; every other node (and
   * every node type not listed: fail closed) tests all it holds.
   */
  private slotTest(type: string, n: PgNode, scope: Scope, tested: boolean): boolean | ((key: string) => boolean) {
    if (!this.testing || tested) return true;
    // A user-defined operator or cast runs a user function: it tests what it is given.
    if (this.userCode && implicitCallsOf(type, n).some((c) => this.userCode!(c))) return true;
    switch (type) {
      case 'List':
      case 'ResTarget':
      case 'MultiAssignRef':
      case 'RowExpr':
      case 'A_ArrayExpr':
      case 'CoalesceExpr':
      case 'CollateClause':
        return false;
      case 'TypeCast':
        // A cast to a text type accepts any value; to another type it can reject one (an error).
        return (k) => k !== 'arg' || !castsToText(n.typeName);
      case 'CaseExpr':
        // CASE x WHEN … compares x; only the THEN and ELSE values come out.
        return (k) => k === 'arg';
      case 'CaseWhen':
        return (k) => k !== 'result';
      case 'MergeWhenClause':
        // WHEN MATCHED AND cond: the condition tests; the values stored pass on.
        return (k) => k === 'condition';
      case 'A_Indirection':
        // A field or an element of a value passes it on; a subscript chooses (NULL when out of
        // range): by the value's shape, or, for a jsonb subscript, by its keys (a test of them).
        return (k) => k !== 'arg' || !shapeIndirection(n);
      case 'A_Expr': {
        if (concatenates(n)) return false;
        const call = as(n.lexpr, 'FuncCall');
        const builtIn = call !== undefined && !this.userCode?.({ kind: 'function', ...qualified(names(call.funcname)) });
        if (fieldOf(n) && builtIn && rowJson(n.lexpr, (alias) => this.wholeRowReference(alias, scope))) return (k) => k !== 'lexpr';
        return true;
      }
      default:
        return true;
    }
  }

  /**
   * Whether a bare name is certainly a whole-row reference. The server takes it for a column
   * first, at any level, where one of that name exists: `to_jsonb(s)` of a column s is that
   * value, keyed by its data (`jsonb_build_object(full_name, 1) AS s`), not a row keyed by column
   * names. So a range alias counts only where no range has such a column; where a range's
   * columns are not known (a base table, without the catalog), its column of that name, if it
   * has one, is tested.
   */
  private wholeRowReference(name: string, scope: Scope): boolean {
    if (this.findRange(scope, [name]) === undefined) return false;
    const maybe: Col[] = [];
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      for (const r of s.ranges) {
        if (r.cols !== undefined && !r.cols.some((c) => c.star)) {
          if (r.cols.some((c) => c.name === name)) return false;
          continue;
        }
        const c = this.lookup(r, name);
        if (c) maybe.push(c);
      }
    }
    for (const c of maybe) this.test(c);
    return true;
  }

  /** Lineage of a sort or grouping key (ORDER BY, GROUP BY, PARTITION BY, DISTINCT ON). */
  private sortKey(x: unknown, scope: Scope, name: string, tested: boolean): Col {
    const set = as(x, 'GroupingSet');
    if (set) return merge(name, list(set.content).map((c) => this.sortKey(c, scope, name, tested)));
    const by = as(x, 'SortBy');
    // ORDER BY x USING op sorts by an operator, perhaps a user one: it compares.
    if (by) return { ...withImplicitCalls(this.sortKey(by.node, scope, name, tested || by.sortby_dir === 'SORTBY_USING'), 'SortBy', by), direct: false };
    // Sorting by a column, or an expression of columns alone, only orders rows (as ORDER BY ssn
    // does); a key that compares them with something sorts the matching rows first. So does a
    // column of a subquery or CTE that is not a plain column: it may hold values from elsewhere
    // (a UNION ALL with a literal, a CASE), sorted among the real ones.
    if (this.testing) for (const ref of columnRefsOf(x)) {
      const c = this.columnRef(ref, scope);
      if (!c.direct) this.test(c);
    }
    return this.expr(x, scope, name, tested || (as(x, 'ColumnRef') === undefined && compares(x)));
  }

  /** A sort key of a SELECT, where a position or an output name stands for a select-list item. */
  private outputKey(x: unknown, targetList: unknown[], scope: Scope): void {
    const by = as(x, 'SortBy');
    const node = by ? by.node : x;
    const target = (i: number): unknown => as(targetList[i], 'ResTarget')?.val;
    const konst = as(node, 'A_Const');
    const position = konst && isObject(konst.ival) ? Number((konst.ival as PgNode).ival ?? 0) : undefined;
    if (position !== undefined && target(position - 1) !== undefined) {
      this.sortKey(target(position - 1), scope, '?column?', by?.sortby_dir === 'SORTBY_USING');
      return;
    }
    const ref = as(node, 'ColumnRef');
    const fields = ref ? list(ref.fields).map((f) => sval(f)) : [];
    if (fields.length === 1 && fields[0] !== undefined) {
      const k = targetList.findIndex((t) => str(as(t, 'ResTarget')?.name) === fields[0]);
      if (k >= 0) {
        this.sortKey(target(k), scope, '?column?', by?.sortby_dir === 'SORTBY_USING');
        return;
      }
    }
    this.sortKey(x, scope, '?column?', false);
  }

  /** A window (OVER (…) or WINDOW w AS (…)): partitions and order are sort keys, frame offsets count rows. */
  private window(def: PgNode, scope: Scope, name: string, tested: boolean): Col {
    const parts = [...list(def.partitionClause), ...list(def.orderClause)].map((k) => this.sortKey(k, scope, name, tested));
    parts.push(this.expr(def.startOffset, scope, name, true), this.expr(def.endOffset, scope, name, true));
    return merge(name, parts);
  }

  private children(n: PgNode, scope: Scope, name: string, skip: ReadonlySet<string>, tested: boolean | ((key: string) => boolean) = false): Col {
    const parts: Col[] = [];
    const visit = (v: unknown, t: boolean): void => {
      if (Array.isArray(v)) {
        for (const i of v) visit(i, t);
      } else if (unwrap(v)) parts.push(this.expr(v, scope, name, t));
      else if (isObject(v)) for (const k in v) visit(v[k], t);
    };
    for (const k in n) if (!skip.has(k)) visit(n[k], typeof tested === 'function' ? tested(k) : tested);
    return merge(name, parts);
  }

  // ---- queries ------------------------------------------------------------------------

  /**
   * Output columns of a SELECT / VALUES / set operation. `tested`: what it returns is tested
   * where it is used (`WHERE (SELECT ssn …) = '…'`).
   */
  select(x: unknown, scope: Scope, tested = false): Col[] {
    const n = selectBody(x);
    if (!n) return this.statement(x, scope) ?? [col('?column?', { opaque: true })];
    if (isObject(n.withClause)) this.ctes(n.withClause, scope);
    if (n.op !== undefined && n.op !== 'SETOP_NONE') {
      const l = this.select(n.larg, new Scope(scope), tested);
      const r = this.select(n.rarg, new Scope(scope), tested);
      const out = setOperation(l, r);
      // Only UNION ALL keeps every row as it is; the others compare rows to drop or keep them, so
      // a classified value is compared with whatever another branch puts beside it (`SELECT ssn
      // FROM users EXCEPT SELECT '<guess>'`), unless every branch reads that same column plainly.
      if (!(n.op === 'SETOP_UNION' && n.all === true)) l.forEach((c, i) => plainColumn(c) && r[i] !== undefined && plainColumn(r[i]) && sameSources(c, r[i]) ? undefined : this.test(out[i] ?? c));
      this.clauses(n, scope, out);
      return out;
    }
    const values = list(n.valuesLists);
    if (values.length > 0) {
      const rows = values.map((row) => list(row).map((e, i) => this.expr(e, scope, `column${i + 1}`, tested)));
      const width = Math.max(...rows.map((r) => r.length));
      this.clauses(n, scope);
      return Array.from({ length: width }, (_, i) => merge(`column${i + 1}`, rows.map((r) => r[i] ?? col(''))));
    }
    for (const item of list(n.fromClause)) scope.items.push(this.fromItem(item, scope));
    const out = this.targets(list(n.targetList), scope, tested);
    this.clauses(n, scope);
    return out;
  }

  /**
   * When testing: the clauses of a SELECT that decide which rows (and how many) come back.
   * Conditions and counts test what they read; sort and grouping keys are judged as keys.
   */
  private clauses(n: PgNode, scope: Scope, outputs?: Col[]): void {
    if (!this.testing) return;
    for (const k of ['whereClause', 'havingClause', 'limitCount', 'limitOffset']) this.expr(n[k], scope, '?column?', true);
    const targetList = list(n.targetList);
    if (outputs !== undefined) {
      // ORDER BY of a set operation names or numbers its output columns: one that is not the
      // same plain column in every branch sorts other values among the real ones.
      for (const k of list(n.sortClause)) {
        const by = as(k, 'SortBy');
        const node = by ? by.node : k;
        const konst = as(node, 'A_Const');
        const ref = as(node, 'ColumnRef');
        const field = ref && list(ref.fields).length === 1 ? sval(list(ref.fields)[0]) : undefined;
        const out = konst && isObject(konst.ival) ? outputs[Number((konst.ival as PgNode).ival ?? 0) - 1] : field !== undefined ? outputs.find((c) => c.name === field) : undefined;
        if (out !== undefined) {
          if (!plainColumn(out)) this.test(out);
        } else for (const c of outputs) if (!plainColumn(c)) this.test(c);
      }
    } else {
      for (const k of list(n.groupClause)) this.sortKey(k, scope, '?column?', false);
      for (const k of list(n.sortClause)) this.outputKey(k, targetList, scope);
      const distinct = list(n.distinctClause);
      // Plain DISTINCT (one empty entry) compares every output row: each item is a key.
      if (distinct.length === 1 && !unwrap(distinct[0])) for (const t of targetList) this.sortKey(as(t, 'ResTarget')?.val, scope, '?column?', false);
      else for (const k of distinct) this.outputKey(k, targetList, scope);
    }
    for (const w of list(n.windowClause)) this.expr(w, scope, '?column?', false);
  }

  private targets(targetList: unknown[], scope: Scope, tested = false): Col[] {
    const out: Col[] = [];
    for (const t of targetList) {
      const rt = as(t, 'ResTarget');
      if (!rt) continue;
      const ref = as(rt.val, 'ColumnRef');
      const fields = ref ? list(ref.fields) : [];
      const isStar = fields.length > 0 && as(fields[fields.length - 1], 'A_Star') !== undefined;
      if (ref && isStar) {
        // `*` and `t.*` in the select list expand to one output per column.
        if (fields.length === 1) for (const item of scope.items) out.push(...item);
        else {
          const r = this.findRange(scope, fields.slice(0, -1).map((f) => sval(f) ?? ''));
          out.push(...(r ? this.starOf(r) : [col('*', { opaque: true })]));
        }
        if (tested) for (const c of out) this.test(c);
        continue;
      }
      const name = str(rt.name) ?? figureName(rt.val);
      out.push(this.expr(rt.val, scope, name, tested));
    }
    return out;
  }

  /** WITH: later CTEs see earlier ones; a recursive one is iterated until its lineage is stable. */
  private ctes(w: PgNode, scope: Scope): void {
    for (const c of list(w.ctes)) {
      const cte = as(c, 'CommonTableExpr');
      if (!cte) continue;
      const name = str(cte.ctename) ?? '';
      const rename = (cols: Col[]): Col[] => {
        const aliases = names(cte.aliascolnames);
        return cols.map((k, i) => (aliases[i] ? { ...k, name: aliases[i] } : k));
      };
      const q = selectBody(cte.ctequery);
      if (w.recursive === true && q && q.op !== 'SETOP_NONE' && q.op !== undefined) {
        let cols = rename(this.select(q.larg, new Scope(scope)));
        for (let round = 0; ; round++) {
          scope.ctes.set(name, cols);
          const next = rename(setOperation(cols, this.select(q.rarg, new Scope(scope))));
          const stable = next.every((k, i) => k.sources.length === cols[i]?.sources.length && k.opaque === cols[i]?.opaque);
          cols = next;
          if (stable) break;
          if (round >= MAX_RECURSIVE_ROUNDS) {
            cols = cols.map((k) => ({ ...k, opaque: true }));
            break;
          }
        }
        scope.ctes.set(name, cols);
        // UNION (not ALL) drops each new row equal to one already there, the guess a branch adds
        // included (`SELECT '<guess>' UNION SELECT ssn FROM users` counts one fewer when it is a
        // value); CYCLE stops at a row whose columns equal an earlier one's, SEARCH orders rows by
        // its columns (the sequence column tells where a guess sorts among the values).
        if (this.testing) {
          if (!(q.op === 'SETOP_UNION' && q.all === true)) for (const k of cols) this.test(k);
          const byName = (list_: unknown): void => {
            for (const x of list(list_)) for (const k of cols) if (k.name === sval(x)) this.test(k);
          };
          if (isObject(cte.cycle_clause)) byName(cte.cycle_clause.cycle_col_list);
          if (isObject(cte.search_clause)) byName(cte.search_clause.search_col_list);
        }
      } else {
        scope.ctes.set(name, rename(this.statement(cte.ctequery, new Scope(scope)) ?? []));
      }
    }
  }

  /** One FROM item: registers its ranges and returns what `*` expands to for it. */
  private fromItem(item: unknown, scope: Scope): Col[] {
    const w = unwrap(item);
    if (!w) return [];
    const [type, n] = w;
    const alias = isObject(n.alias) ? n.alias : undefined;
    switch (type) {
      case 'RangeVar': {
        const table = str(n.relname) ?? '';
        const schema = str(n.schemaname);
        const cte = schema === undefined ? scope.cte(table) : undefined;
        const r = cte ? this.derivedRange(str(alias?.aliasname) ?? table, cte, alias) : this.baseRange(schema, table, alias);
        scope.ranges.push(r);
        return this.starOf(r);
      }
      case 'RangeSubselect': {
        // Only LATERAL subqueries see the FROM items to their left.
        const inner = n.lateral === true ? new Scope(scope) : new Scope(scope.parent);
        for (const [k, v] of scope.ctes) if (!inner.parent?.cte(k)) inner.ctes.set(k, v);
        const r = this.derivedRange(str(alias?.aliasname) ?? '', this.select(n.subquery, inner), alias);
        scope.ranges.push(r);
        return this.starOf(r);
      }
      case 'RangeFunction': {
        // Table functions may read their arguments (and earlier FROM items, implicitly lateral).
        const args = merge('?column?', list(n.functions).map((f) => this.expr(list(f)[0], scope, '?column?')));
        const colnames = names(alias?.colnames);
        const defs = list(n.coldeflist).map((d) => str(as(d, 'ColumnDef')?.colname) ?? '');
        const declared = colnames.length > 0 ? colnames : defs;
        const aliasName = str(alias?.aliasname) ?? qualified(names(as(list(list(n.functions)[0])[0], 'FuncCall')?.funcname)).name;
        const r: Range = declared.length > 0 ? { alias: aliasName, cols: declared.map((d) => ({ ...args, name: d })) } : { alias: aliasName, cols: undefined, fallback: args };
        scope.ranges.push(r);
        return this.starOf(r);
      }
      case 'JoinExpr':
        return this.join(n, scope);
      default: {
        // RangeTableFunc (XMLTABLE), JSON_TABLE, TABLESAMPLE wrappers: carry every column they name.
        const inner = as(n.relation, 'RangeVar') ? this.fromItem(n.relation, scope) : [];
        // Their documents, paths and sample sizes are parsed or counted: a value there is tested.
        const any = merge('?column?', [...inner, this.children(n, scope, '?column?', RELATION_KEY, true)]);
        const r: Range = { alias: str(alias?.aliasname) ?? '', cols: undefined, fallback: { ...any, opaque: any.opaque || inner.length === 0 } };
        if (inner.length === 0) scope.ranges.push(r);
        return inner.length > 0 ? inner : this.starOf(r);
      }
    }
  }

  private join(n: PgNode, scope: Scope): Col[] {
    const left = this.fromItem(n.larg, scope);
    const right = this.fromItem(n.rarg, scope);
    let using = names(n.usingClause);
    if (n.isNatural === true) {
      const rightNames = new Set(right.map((c) => c.name));
      using = left.some((c) => c.star) || right.some((c) => c.star) ? [] : left.map((c) => c.name).filter((c) => rightNames.has(c));
    }
    if (this.testing) {
      // ON compares; USING and NATURAL compare the columns they name (all of them, when a side's
      // columns are not known).
      this.expr(n.quals, scope, '?column?', true);
      for (const u of using) for (const c of [...left, ...right]) if (c.name === u || c.star) this.test(c.star ? { ...c, sources: c.sources.map((x) => ({ ...x, column: u })) } : c);
      if (n.isNatural === true && using.length === 0 && [...left, ...right].some((c) => c.star)) for (const c of [...left, ...right]) this.test(c);
    }
    let star: Col[];
    if (using.length === 0) star = [...left, ...right];
    else {
      const merged = using.map((u) =>
        merge(
          u,
          [...left, ...right].filter((c) => c.name === u || c.star).map((c) => (c.star ? { ...c, star: false, sources: c.sources.map((s) => ({ ...s, column: u })) } : c)),
        ),
      );
      const rest = (cols: Col[]): Col[] => cols.filter((c) => !using.includes(c.name));
      star = [...merged, ...rest(left), ...rest(right)];
    }
    const alias = isObject(n.alias) ? n.alias : undefined;
    if (alias) scope.ranges.push(this.derivedRange(str(alias.aliasname) ?? '', star, alias));
    return star;
  }

  /** Rows a statement returns: queries, RETURNING, COPY … TO, cursors, prepared statements. */
  statement(x: unknown, scope: Scope): Col[] | undefined {
    const w = unwrap(x);
    if (!w) return undefined;
    const [type, n] = w;
    switch (type) {
      case 'SelectStmt':
        return isObject(n.intoClause) ? undefined : this.select(x, scope);
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return this.returning(type, n, scope);
      case 'DeclareCursorStmt':
      case 'PrepareStmt':
        return this.statement(n.query, scope);
      case 'CopyStmt': {
        if (n.is_from === true) return undefined;
        if (n.query) return this.statement(n.query, scope);
        const rel = isObject(n.relation) ? n.relation : undefined;
        if (!rel) return undefined;
        const r = this.baseRange(str(rel.schemaname), str(rel.relname) ?? '', undefined);
        const attlist = names(n.attlist);
        return attlist.length > 0 ? attlist.map((a) => this.lookup(r, a) ?? col(a, { opaque: true })) : this.starOf(r);
      }
      case 'ExplainStmt':
        return [col('QUERY PLAN')];
      default:
        return undefined;
    }
  }

  private returning(type: string, n: PgNode, scope: Scope): Col[] | undefined {
    const exprs = isObject(n.returningClause) ? list(n.returningClause.exprs) : list(n.returningList);
    // When testing, a write without RETURNING is walked too: its conditions and values test.
    if (exprs.length === 0 && !this.testing) return undefined;
    if (isObject(n.withClause)) this.ctes(n.withClause, scope);
    const rel = isObject(n.relation) ? n.relation : undefined;
    if (!rel) return undefined;
    const alias = isObject(rel.alias) ? rel.alias : undefined;
    const target = this.baseRange(str(rel.schemaname), str(rel.relname) ?? '', alias);
    // An INSERT's query does not see the table it fills; an UPDATE's and a MERGE's values do.
    const inserted = type === 'InsertStmt' ? this.writtenValues(type, n, scope) : undefined;
    scope.ranges.push(target);
    // Returned values are what was written: the new values' own lineage counts too.
    const written = inserted ?? this.writtenValues(type, n, scope);
    if (written.size > 0) target.extra = written;
    for (const a of ['old', 'new']) scope.ranges.push({ ...target, alias: a });
    scope.items.push(this.starOf(target));
    for (const k of ['fromClause', 'usingClause']) for (const item of list(n[k])) scope.items.push(this.fromItem(item, scope));
    if (n.sourceRelation) scope.items.push(this.fromItem(n.sourceRelation, scope));
    if (this.testing) this.writeConditions(type, n, scope, target);
    if (exprs.length === 0) return undefined;
    const out = this.targets(exprs, scope);
    const all = written.get('*');
    return all ? out.map((c) => ({ ...merge(c.name, [c, all]), direct: false })) : out;
  }

  /**
   * When testing: what decides which rows a write changes (WHERE, MERGE's ON and WHEN, ON
   * CONFLICT's WHERE) tests; the values it stores pass on (stored-value checks follow them).
   */
  private writeConditions(type: string, n: PgNode, scope: Scope, target: Range): void {
    this.expr(n.whereClause, scope, '?column?', true);
    if (type === 'MergeStmt') {
      this.expr(n.joinCondition, scope, '?column?', true);
      for (const w of list(n.mergeWhenClauses)) this.expr(as(w, 'MergeWhenClause')?.condition, scope, '?column?', true);
    }
    const conflict = isObject(n.onConflictClause) ? n.onConflictClause : undefined;
    if (conflict) {
      const s = new Scope(scope);
      s.ranges.push({ ...target, alias: 'excluded' });
      this.expr(conflict.whereClause, s, '?column?', true);
      for (const t of list(conflict.targetList)) this.expr(as(t, 'ResTarget')?.val, s, '?column?');
    }
  }

  /**
   * When testing, a statement of any kind: the queries it runs (and those it keeps, a view's or a
   * rule's, which run later as part of other statements) are walked for what they test.
   */
  judge(x: unknown, scope: Scope): void {
    const w = unwrap(x);
    if (!w) return;
    const [type, n] = w;
    switch (type) {
      case 'SelectStmt':
        // SELECT … INTO: the same query, its rows stored.
        this.select(isObject(n.intoClause) ? { SelectStmt: { ...n, intoClause: undefined } } : x, scope);
        return;
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
      case 'DeclareCursorStmt':
      case 'PrepareStmt':
      case 'CopyStmt':
        this.statement(x, scope);
        return;
      case 'CallStmt':
        // The procedure is a user one: everything given to it is tested.
        this.expr({ FuncCall: n.funccall }, scope, '?column?', true);
        return;
      case 'IndexStmt':
        this.indexOver(n.relation, list(n.indexParams), n.whereClause, scope);
        return;
      case 'CreateStatsStmt': {
        // ANALYZE keeps an expression's distribution (pg_stats_ext_exprs: n_distinct, frequencies).
        const exprs = list(n.exprs).flatMap((e) => (as(e, 'StatsElem')?.expr === undefined ? [] : [as(e, 'StatsElem')!.expr]));
        for (const r of list(n.relations)) {
          const s = this.rowsOf(r, scope);
          for (const e of exprs) this.sortKey(e, s, '?column?', false);
        }
        return;
      }
      case 'AlterTableStmt':
        this.alterTable(n, scope);
        return;
      case 'CreatePolicyStmt':
      case 'AlterPolicyStmt': {
        // A row security policy is a WHERE that every later query of the table runs under.
        const s = this.rowsOf(n.table, scope);
        this.expr(n.qual, s, '?column?', true);
        this.expr(n.with_check, s, '?column?', true);
        return;
      }
      case 'AlterDomainStmt': {
        // A CHECK added to a domain is validated on every column of that type, in any table:
        // which ones only the catalog knows, so any column may be tested (fail closed).
        const con = as(n.def, 'Constraint');
        const validates = (n.subtype === 'C' && con?.contype === 'CONSTR_CHECK' && con.skip_validation !== true) || n.subtype === 'V';
        if (validates) this.test(col('*', { sources: [{ table: '*', column: '*' }] }));
        return;
      }
      default:
        // CREATE TABLE AS, CREATE VIEW, RULE actions, EXPLAIN, a BEGIN ATOMIC body, …: their queries.
        for (const k in n) this.judgeWithin(n[k], scope);
    }
  }

  /** A scope whose one range is the rows of `rel` (a RangeVar, wrapped or bare), as DDL over them sees them. */
  private rowsOf(rel: unknown, scope: Scope): Scope {
    const r = as(rel, 'RangeVar') ?? (isObject(rel) && typeof rel.relname === 'string' ? rel : undefined);
    const s = new Scope(scope);
    if (r) s.ranges.push(this.baseRange(str(r.schemaname), str(r.relname) ?? '', undefined));
    return s;
  }

  /**
   * An index (or an exclusion constraint) is built over every row at once: its WHERE picks rows
   * (the new index's reltuples counts them, a unique one fails on two), and its expressions are
   * computed for each (an error in one answers it; ANALYZE keeps their distribution in pg_stats;
   * CLUSTER leaves the rows in their order). Expressions are judged as sort keys, the WHERE as a
   * WHERE: `CREATE INDEX … WHERE ssn = '…'` is the filter `SELECT … WHERE ssn = '…'` is.
   */
  private indexOver(rel: unknown, elems: unknown[], where: unknown, scope: Scope): void {
    const s = this.rowsOf(rel, scope);
    for (const e of elems) {
      const el = as(e, 'IndexElem');
      if (el?.expr !== undefined) this.sortKey(el.expr, s, '?column?', false);
    }
    this.expr(where, s, '?column?', true);
  }

  /**
   * ALTER TABLE commands that evaluate something over the table's existing rows, and fail (or
   * not) by what they find: a CHECK (validated at once), an exclusion constraint, a foreign key
   * (each value looked up in a table the client filled), a column type change (every value cast,
   * or computed by USING), a generated column, a table attached as a partition (its rows checked
   * against the bound, on keys only the parent knows: every column).
   */
  private alterTable(n: PgNode, scope: Scope): void {
    const s = this.rowsOf(n.relation, scope);
    const column = (name: string): PgNode => ({ ColumnRef: { fields: [{ String: { sval: name } }] } });
    const constraint = (c: PgNode | undefined): void => {
      if (!c) return;
      switch (c.contype) {
        case 'CONSTR_CHECK':
          this.expr(c.raw_expr, s, '?column?', true);
          return;
        case 'CONSTR_EXCLUSION':
          this.indexOver(n.relation, list(c.exclusions).map((pair) => list(as(pair, 'List')?.items)[0]), c.where_clause, scope);
          return;
        case 'CONSTR_FOREIGN':
          for (const a of list(c.fk_attrs)) {
            const name = sval(a);
            if (name !== undefined) this.expr(column(name), s, name, true);
          }
          return;
        case 'CONSTR_GENERATED':
          this.expr(c.raw_expr, s, '?column?');
          return;
        default:
      }
    };
    for (const x of list(n.cmds)) {
      const cmd = as(x, 'AlterTableCmd');
      if (!cmd) continue;
      const def = as(cmd.def, 'ColumnDef');
      switch (cmd.subtype) {
        case 'AT_AddConstraint':
          constraint(as(cmd.def, 'Constraint'));
          break;
        case 'AT_AddColumn':
          for (const k of list(def?.constraints)) constraint(as(k, 'Constraint'));
          break;
        case 'AT_AlterColumnType': {
          // Without USING, the server casts the column itself to the new type.
          const name = str(cmd.name) ?? '*';
          if (def) this.expr({ TypeCast: { arg: def.raw_default ?? column(name), typeName: def.typeName } }, s, name);
          break;
        }
        case 'AT_AttachPartition': {
          const part = as(cmd.def, 'PartitionCmd');
          const r = as(part?.name, 'RangeVar') ?? (isObject(part?.name) && typeof part.name.relname === 'string' ? part.name : undefined);
          if (r) this.test(col('*', { sources: [{ ...sch(str(r.schemaname)), table: str(r.relname) ?? '', column: '*' }] }));
          break;
        }
        default:
      }
    }
  }

  private judgeWithin(v: unknown, scope: Scope): void {
    if (Array.isArray(v)) {
      for (const i of v) this.judgeWithin(i, scope);
      return;
    }
    if (!isObject(v)) return;
    const w = unwrap(v);
    if (w && JUDGED_STATEMENTS.has(w[0])) this.judge(v, new Scope(scope));
    else for (const k in w ? w[1] : v) this.judgeWithin((w ? w[1] : v)[k], scope);
  }

  /**
   * Where a statement stores values, and what they carry: INSERT, UPDATE and MERGE into their
   * target's columns, CREATE TABLE AS / SELECT INTO into a new table, including those inside
   * data-modifying CTEs. Values that cannot be matched to a column go to `*`.
   */
  writes(x: unknown, scope: Scope, out: Flow[] = []): Flow[] {
    const w = unwrap(x);
    if (!w) return out;
    const [type, n] = w;
    // EXPLAIN ANALYZE runs its statement; PREPARE's runs at each EXECUTE (judged by its facts,
    // whose text is the PREPARE's); COPY (query) TO runs a data-modifying query as well.
    if (type === 'ExplainStmt' || type === 'PrepareStmt' || (type === 'CopyStmt' && n.query !== undefined)) return this.writes(n.query, scope, out);
    if (isObject(n.withClause)) {
      for (const c of list(n.withClause.ctes)) this.writes(as(c, 'CommonTableExpr')?.ctequery, new Scope(scope), out);
    }
    switch (type) {
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'MergeStmt': {
        const rel = isObject(n.relation) ? n.relation : undefined;
        if (!rel) return out;
        if (isObject(n.withClause)) this.ctes(n.withClause, scope);
        const dest = { ...sch(str(rel.schemaname)), table: str(rel.relname) ?? '' };
        if (type === 'InsertStmt') {
          const listed = list(n.cols).map((c) => str(as(c, 'ResTarget')?.name) ?? '*');
          const columns = listed.length > 0 ? listed : (this.provider?.(dest.schema, dest.table) ?? []);
          const values = n.selectStmt ? this.select(n.selectStmt, new Scope(scope)) : [];
          values.forEach((v, i) => out.push({ dest, column: columns[i] ?? '*', value: v }));
          // ON CONFLICT DO UPDATE SET c = expr stores expr into the existing row: expr sees the
          // row (as the table or its alias) and the proposed one (`excluded`, the values above).
          const conflict = isObject(n.onConflictClause) ? n.onConflictClause : undefined;
          const sets = list(conflict?.targetList);
          if (sets.length > 0) {
            const s = new Scope(scope);
            s.ranges.push(this.baseRange(dest.schema, dest.table, isObject(rel.alias) ? rel.alias : undefined));
            const proposed = new Map(columns.map((c, i) => [c, values[i]]));
            s.ranges.push({ alias: 'excluded', cols: (this.provider?.(dest.schema, dest.table) ?? columns).map((c) => ({ ...(proposed.get(c) ?? col(c)), name: c })) });
            for (const t of sets) {
              const rt = as(t, 'ResTarget');
              const name = str(rt?.name);
              if (rt && name) out.push({ dest, column: name, value: this.expr(rt.val, s, name) });
            }
          }
          return out;
        }
        const alias = isObject(rel.alias) ? rel.alias : undefined;
        scope.ranges.push(this.baseRange(dest.schema, dest.table, alias));
        for (const [column, value] of this.writtenValues(type, n, scope)) out.push({ dest, column, value });
        return out;
      }
      case 'AlterTableStmt': {
        // ALTER COLUMN … TYPE … USING expr rewrites the column from expr; ADD COLUMN … GENERATED
        // ALWAYS AS (expr) stores expr in the new column. Both read the row being changed.
        const rel = isObject(n.relation) ? n.relation : undefined;
        if (!rel) return out;
        const dest = { ...sch(str(rel.schemaname)), table: str(rel.relname) ?? '' };
        const s = new Scope(scope);
        s.ranges.push(this.baseRange(dest.schema, dest.table, undefined));
        for (const c of list(n.cmds)) {
          const cmd = as(c, 'AlterTableCmd');
          // SET DEFAULT stores its value in every row inserted later without the column (and in
          // those an UPDATE sets to DEFAULT): written as much as by INSERT … VALUES.
          if (cmd?.subtype === 'AT_ColumnDefault' && cmd.def !== undefined) out.push({ dest, column: str(cmd.name) ?? '*', value: this.expr(cmd.def, s, str(cmd.name) ?? '*') });
          const def = as(cmd?.def, 'ColumnDef');
          if (!cmd || !def) continue;
          if (cmd.subtype === 'AT_AlterColumnType' && def.raw_default !== undefined) out.push({ dest, column: str(cmd.name) ?? '*', value: this.expr(def.raw_default, s, str(cmd.name) ?? '*') });
          if (cmd.subtype === 'AT_AddColumn') {
            for (const k of list(def.constraints)) {
              const con = as(k, 'Constraint');
              if (con?.raw_expr !== undefined && (con.contype === 'CONSTR_GENERATED' || con.contype === 'CONSTR_DEFAULT')) out.push({ dest, column: str(def.colname) ?? '*', value: this.expr(con.raw_expr, s, str(def.colname) ?? '*') });
            }
          }
        }
        return out;
      }
      case 'CreateStmt': {
        // A column DEFAULT is stored in each row inserted without that column (see AT_ColumnDefault).
        const rel = isObject(n.relation) ? n.relation : undefined;
        if (!rel) return out;
        const dest = { ...sch(str(rel.schemaname)), table: str(rel.relname) ?? '' };
        for (const e of list(n.tableElts)) {
          const def = as(e, 'ColumnDef');
          const column = str(def?.colname);
          if (!def || column === undefined) continue;
          for (const k of list(def.constraints)) {
            const con = as(k, 'Constraint');
            if (con?.contype === 'CONSTR_DEFAULT' && con.raw_expr !== undefined) out.push({ dest, column, value: this.expr(con.raw_expr, new Scope(scope), column) });
          }
        }
        return out;
      }
      case 'CreateTableAsStmt': {
        const into = isObject(n.into) ? n.into : undefined;
        const rel = isObject(into?.rel) ? into.rel : undefined;
        return this.intoNewTable(rel, names(into?.colNames), this.statement(n.query, scope), out);
      }
      case 'SelectStmt': {
        const into = isObject(n.intoClause) ? n.intoClause : undefined;
        if (!into) return out;
        return this.intoNewTable(isObject(into.rel) ? into.rel : undefined, names(into.colNames), this.select({ SelectStmt: { ...n, intoClause: undefined } }, scope), out);
      }
      default:
        return out;
    }
  }

  private intoNewTable(rel: PgNode | undefined, renamed: string[], values: Col[] | undefined, out: Flow[]): Flow[] {
    const dest = { ...sch(str(rel?.schemaname)), table: str(rel?.relname) ?? '' };
    (values ?? [col('*', { opaque: true })]).forEach((v, i) => out.push({ dest, column: renamed[i] ?? v.name, value: v, created: true }));
    return out;
  }

  /** UPDATE SET / MERGE / INSERT values per column; `*` when they cannot be matched to columns. */
  private writtenValues(type: string, n: PgNode, scope: Scope): Map<string, Col> {
    const out = new Map<string, Col>();
    if (type === 'UpdateStmt') {
      const s = new Scope(scope);
      for (const item of list(n.fromClause)) s.items.push(this.fromItem(item, s));
      for (const t of list(n.targetList)) {
        const rt = as(t, 'ResTarget');
        const name = str(rt?.name);
        if (rt && name) out.set(name, this.expr(rt.val, s, name));
      }
    } else if (type === 'InsertStmt' && n.selectStmt) {
      out.set('*', merge('*', this.select(n.selectStmt, new Scope(scope))));
    } else if (type === 'MergeStmt') {
      const s = new Scope(scope);
      this.fromItem(n.sourceRelation, s);
      const rel = isObject(n.relation) ? n.relation : undefined;
      const add = (column: string, value: Col): void => {
        const had = out.get(column);
        out.set(column, had ? { ...merge(column, [had, value]), direct: had.direct && value.direct } : value);
      };
      // Per column, as UPDATE and INSERT store them: WHEN … THEN UPDATE SET c = v, THEN INSERT (c) VALUES (v).
      for (const w of list(n.mergeWhenClauses)) {
        const when = as(w, 'MergeWhenClause');
        if (!when) continue;
        const targets = list(when.targetList).map((t) => as(t, 'ResTarget'));
        if (when.commandType === 'CMD_UPDATE') {
          for (const rt of targets) if (rt && str(rt.name)) add(str(rt.name)!, this.expr(rt.val, s, str(rt.name)!));
        } else if (when.commandType === 'CMD_INSERT') {
          const listed = targets.map((rt) => str(rt?.name));
          const columns = listed.length > 0 ? listed : (this.provider?.(str(rel?.schemaname), str(rel?.relname) ?? '') ?? []);
          list(when.values).forEach((v, i) => add(columns[i] ?? '*', this.expr(v, s, columns[i] ?? '*')));
        }
      }
    }
    return out;
  }
}

/** A SELECT, wrapped or bare (set operations hold their branches as bare bodies). */
function selectBody(x: unknown): PgNode | undefined {
  return as(x, 'SelectStmt') ?? (isObject(x) && typeof x.op === 'string' ? x : undefined);
}

function sch(schema: string | undefined): { schema?: string } {
  return schema === undefined ? {} : { schema };
}

/** UNION / INTERSECT / EXCEPT: position by position, both branches. */
function setOperation(l: Col[], r: Col[]): Col[] {
  if (l.some((c) => c.star) || r.some((c) => c.star)) {
    // Positions cannot be aligned while a `*` is unexpanded: every output may carry anything.
    const all = merge('?column?', [...l, ...r].map((c) => ({ ...c, star: false })));
    return l.map((c) => ({ ...all, name: c.name, opaque: true }));
  }
  return l.map((c, i) => {
    const o = r[i];
    const m = merge(c.name, o ? [c, o] : [c]);
    return { ...m, direct: c.direct && (o?.direct ?? false) };
  });
}

/** Adds the operators and casts node `n` uses to the functions applied on the way. */
function withImplicitCalls(c: Col, type: string, n: PgNode): Col {
  for (const call of implicitCallsOf(type, n)) {
    const key = implicitCallKey(call);
    if (!c.functions.includes(key)) c.functions.push(key);
  }
  return c;
}

const NO_KEYS: ReadonlySet<string> = new Set();
/** A call's fields walked on their own: its name, arguments and window. */
const FUNCTION_PARTS: ReadonlySet<string> = new Set(['funcname', 'location', 'args', 'over']);
const RELATION_KEY: ReadonlySet<string> = new Set(['relation', 'alias']);
const JUDGED_STATEMENTS: ReadonlySet<string> = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CallStmt']);

/** The server's label for an unnamed select-list expression (FigureColname). */
export function figureName(x: unknown): string {
  const w = unwrap(x);
  if (!w) return '?column?';
  const [type, n] = w;
  switch (type) {
    case 'ColumnRef': {
      const f = list(n.fields);
      return sval(f[f.length - 1]) ?? '?column?';
    }
    case 'A_Indirection': {
      const ind = list(n.indirection);
      const last = sval(ind[ind.length - 1]);
      return last ?? figureName(n.arg);
    }
    case 'FuncCall':
      return qualified(names(n.funcname)).name;
    case 'TypeCast': {
      const inner = figureName(n.arg);
      return inner !== '?column?' ? inner : (names(isObject(n.typeName) ? n.typeName.names : undefined).pop() ?? '?column?');
    }
    case 'CollateClause':
      return figureName(n.arg);
    case 'CaseExpr':
      return n.defresult ? figureNameOr(n.defresult, 'case') : 'case';
    case 'CoalesceExpr':
      return 'coalesce';
    case 'MinMaxExpr':
      return n.op === 'IS_GREATEST' ? 'greatest' : 'least';
    case 'A_Expr':
      return n.kind === 'AEXPR_NULLIF' ? 'nullif' : '?column?';
    case 'A_ArrayExpr':
      return 'array';
    case 'RowExpr':
      return 'row';
    case 'SubLink':
      switch (n.subLinkType) {
        case 'EXISTS_SUBLINK':
          return 'exists';
        case 'ARRAY_SUBLINK':
          return 'array';
        case 'EXPR_SUBLINK': {
          const t = list(as(n.subselect, 'SelectStmt')?.targetList)[0];
          const rt = as(t, 'ResTarget');
          return str(rt?.name) ?? figureName(rt?.val);
        }
        default:
          return '?column?';
      }
    case 'SQLValueFunction':
      return SQL_VALUE_NAMES[str(n.op) ?? ''] ?? '?column?';
    case 'XmlExpr':
      return 'xml' + (str(n.op)?.replace(/^IS_XML/, '').toLowerCase() ?? '');
    default:
      return '?column?';
  }
}

function figureNameOr(x: unknown, fallback: string): string {
  const n = figureName(x);
  return n === '?column?' ? fallback : n;
}

const SQL_VALUE_NAMES: Record<string, string> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
  SVFOP_CURRENT_ROLE: 'current_role',
  SVFOP_CURRENT_USER: 'current_user',
  SVFOP_USER: 'user',
  SVFOP_SESSION_USER: 'session_user',
  SVFOP_CURRENT_CATALOG: 'current_catalog',
  SVFOP_CURRENT_SCHEMA: 'current_schema',
};

/** Lineage of a parsed statement, without a catalog (see the module comment). Undefined: returns no rows. */
export function statementLineage(type: string, node: PgNode, provider?: ColumnProvider): ColumnLineage[] | undefined {
  const cols = new Lineage(provider).statement({ [type]: node }, new Scope(undefined));
  if (!cols) return undefined;
  return cols.map((c, index) => ({
    index,
    name: c.name,
    sources: c.sources,
    // A placeholder `*` is not opaque: resolveLineage expands it. Everything else says what it knows.
    opaque: c.opaque,
    direct: c.direct && !c.opaque,
  }));
}

/**
 * Columns a statement tests anywhere (see postgres/conditions.ts), as written: filter columns for
 * the masked-predicate rule, as a WHERE's are. Through subqueries, CTEs and derived tables to
 * the base columns they read.
 */
export function testedColumns(type: string, node: PgNode, userCode?: UserCode): Source[] {
  const l = new Lineage(undefined, true, userCode);
  l.judge({ [type]: node }, new Scope(undefined));
  return l.tested;
}

/**
 * The analyser's tested columns (testedColumns) take every call of a value transform's name, a
 * `||` or `->>`, and a cast to text for the built-in. Where the catalog says one may reach a user
 * function instead, the statement's tested columns worked out again with those as user code;
 * undefined when every such call is certainly built in (nothing to add).
 */
export function resolveTestedColumns(facts: StatementFacts, userCode: UserCode): Source[] | undefined {
  const suspect =
    facts.functions.some((f) => passingName('function', f.name) && userCode({ kind: 'function', ...(f.schema !== undefined ? { schema: f.schema } : {}), name: f.name })) ||
    (facts.implicitCalls ?? []).some((c) => passingName(c.kind, c.name) && userCode(c));
  if (!suspect) return undefined;
  let stmt: unknown;
  try {
    stmt = parseSync(facts.text).stmts?.[0]?.stmt;
  } catch {
    return undefined;
  }
  const w = unwrap(stmt);
  return w ? testedColumns(w[0], w[1], userCode) : undefined;
}

/** Recursion guard for views defined over views. */
const MAX_VIEW_DEPTH = 16;

/**
 * Lineage with every source qualified to the real schema.table.column, `*` expanded from the
 * catalog, views followed to their base columns, and outputs computed by any function that is
 * not a built-in marked opaque (user-defined or unknown ones: their bodies can read any table).
 */
export function resolveLineage(facts: StatementFacts, catalog: PostgresCatalog, searchPath: string[] | ResolveOptions, depth = 0): ColumnLineage[] {
  const opts: ResolveOptions = Array.isArray(searchPath) ? { searchPath } : searchPath;
  let stmt: unknown;
  try {
    stmt = parseSync(facts.text).stmts?.[0]?.stmt;
  } catch {
    return [{ index: 0, name: '?column?', sources: [], opaque: true, direct: false }];
  }
  const provider: ColumnProvider = (schema, table) => {
    const rel = catalog.resolveRelation({ ...sch(schema), name: table }, opts);
    return rel ? catalog.columns(rel.oid).map((c) => c.name) : undefined;
  };
  const cols = new Lineage(provider).statement(stmt, new Scope(undefined));
  if (!cols) return [];
  return cols.map((c, index) => qualify(c, index, catalog, opts, depth));
}

/** A value a statement stores, with its lineage qualified as `resolveLineage` qualifies outputs. */
export interface WriteFlow {
  /** Destination as written (a created table does not exist yet), schema-qualified when the catalog knows it. */
  dest: { schema?: string; table: string };
  column: string;
  created: boolean;
  /** Not a table: where the value goes instead (`pg_notify()`, a user variable). Never masked. */
  place?: string;
  value: ColumnLineage;
}

/**
 * Values a data-modifying statement stores (INSERT, UPDATE, MERGE, CREATE TABLE AS, SELECT
 * INTO, and those in data-modifying CTEs), and the source columns each may carry. A value
 * stored where masking does not reach can be read back in clear, so masking checks these.
 */
export function resolveWriteFlows(facts: StatementFacts, catalog: PostgresCatalog, searchPath: string[] | ResolveOptions): WriteFlow[] {
  const opts: ResolveOptions = Array.isArray(searchPath) ? { searchPath } : searchPath;
  let stmt: unknown;
  try {
    stmt = parseSync(facts.text).stmts?.[0]?.stmt;
  } catch {
    return [{ dest: { table: '?' }, column: '*', created: false, value: { index: 0, name: '*', sources: [], opaque: true, direct: false } }];
  }
  const provider: ColumnProvider = (schema, table) => {
    const rel = catalog.resolveRelation({ ...sch(schema), name: table }, opts);
    return rel ? catalog.columns(rel.oid).map((c) => c.name) : undefined;
  };
  const flows = new Lineage(provider).writes(stmt, new Scope(undefined)).flatMap((f, i): WriteFlow[] => {
    const rel = f.created ? undefined : catalog.resolveRelation({ ...sch(f.dest.schema), name: f.dest.table }, opts);
    const value = qualify(f.value, i, catalog, opts, 0);
    // A write through an updatable view lands in its base table's column: judged there (a guess
    // written into a view's column over orders.card reads back as a token like one written there).
    if (rel?.relkind === 'v') return viewWriteColumns(rel.oid, f.column, catalog).map((d) => ({ dest: { schema: d.schema, table: d.table }, column: d.column, created: false, value }));
    return [{ dest: rel ? { schema: rel.schema, table: rel.name } : f.dest, column: f.column, created: f.created === true, value }];
  });
  // Functions that keep a value outside any table (a notification, a setting, a large object):
  // one given anything read from a row stores data the result masks never see. Its lineage is
  // not worked out per argument: it counts as unknown.
  for (const name of storingCalls(stmt)) flows.push({ dest: { table: '' }, column: '*', created: false, place: `${name}()`, value: { index: flows.length, name, sources: [], opaque: true, direct: false } });
  return flows;
}

/** Calls anywhere in a statement to functions that store their arguments, with an argument that reads data. */
function storingCalls(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const x of node) storingCalls(x, out);
    return out;
  }
  if (!isObject(node)) return out;
  const call = as(node, 'FuncCall');
  if (call) {
    const { name } = qualified(names(call.funcname));
    if (STORING_FUNCTIONS.has(name) && list(call.args).some(readsData)) out.push(name);
  }
  for (const k in node) storingCalls(node[k], out);
  return out;
}

/** Whether an expression refers to a column or a subquery (anything but constants and parameters). */
function readsData(x: unknown): boolean {
  if (Array.isArray(x)) return x.some(readsData);
  if (!isObject(x)) return false;
  if (as(x, 'ColumnRef') || as(x, 'SubLink') || as(x, 'SelectStmt')) return true;
  for (const k in x) if (readsData(x[k])) return true;
  return false;
}

function qualify(c: Col, index: number, catalog: PostgresCatalog, opts: ResolveOptions, depth: number): ColumnLineage {
  let opaque = c.opaque || c.star;
  let direct = c.direct;
  // Whether the sources are plain columns (through views too): a case-mapped value keeps that.
  let plain = true;
  const sources: Source[] = [];
  const seen = new Set<string>();
  const add = (s: Source): void => {
    const k = `${s.schema}\u0000${s.table}\u0000${s.column}`;
    if (!seen.has(k)) {
      seen.add(k);
      sources.push(s);
    }
  };
  for (const f of c.functions) {
    const implicit = implicitCallOfKey(f);
    if (implicit) {
      // A user-defined operator or cast computes its value in a function: unknown, as a call to it is.
      const fns = catalog.implicitCallFunctions(implicit, opts);
      if (fns === 'unknown' || fns.some((fn) => !catalog.callsSystemFunction(fn.schema, fn.name, opts) || hidesLineage(fn.risks))) opaque = true;
      continue;
    }
    const { schema, name } = qualified(f.split('.'));
    if (!catalog.callsSystemFunction(schema, name, opts)) opaque = true;
  }
  for (const s of c.sources) {
    const rel = catalog.resolveRelation({ ...sch(s.schema), name: s.table }, opts);
    if (!rel) {
      // A name the catalog does not know (dropped, or a shape we misread): cannot prove it safe.
      opaque = true;
      continue;
    }
    const columns = catalog.columns(rel.oid);
    const wanted = s.column === '*' ? columns : columns.filter((k) => k.name === s.column);
    if (s.column !== '*' && wanted.length === 0) continue;
    if (s.column === '*') {
      direct = false;
      plain = false;
    }
    const viewCols = rel.relkind === 'v' || rel.relkind === 'm' ? viewLineage(rel.oid, catalog, depth) : undefined;
    for (const k of wanted) {
      if (viewCols === undefined && (rel.relkind === 'v' || rel.relkind === 'm')) {
        opaque = true;
        continue;
      }
      if (viewCols) {
        const v = viewCols[k.attnum - 1];
        if (!v) {
          opaque = true;
          continue;
        }
        opaque ||= v.opaque;
        direct &&= v.direct;
        plain &&= v.direct;
        for (const vs of v.sources) add({ schema: vs.schema, table: vs.table, column: vs.column });
      } else add({ schema: rel.schema, table: rel.name, column: k.name });
    }
  }
  if (c.sources.length > 0 && sources.length === 0) opaque = true;
  const caseMapped = c.caseMapped === true && plain && !opaque && sources.length === 1;
  return { index, name: c.name, sources, opaque, direct: direct && !opaque, ...(caseMapped ? { caseMapped: true as const } : {}) };
}

/**
 * The base column a write to a view's column changes: the view column's one plain source. When
 * that cannot be told (a column the lineage does not follow plainly, `*`), any column of any
 * table the view reads.
 */
function viewWriteColumns(oid: number, column: string, catalog: PostgresCatalog): { schema?: string; table: string; column: string }[] {
  const attnum = column === '*' ? undefined : catalog.columns(oid).find((c) => c.name === column)?.attnum;
  const v = attnum === undefined ? undefined : viewLineage(oid, catalog, 0)?.[attnum - 1];
  if (v && v.direct && !v.opaque && v.sources.length === 1 && v.sources[0].column !== '*') return [v.sources[0]];
  return catalog.viewBaseRelations(oid).map((b) => ({ schema: b.schema, table: b.name, column: '*' }));
}

function viewLineage(oid: number, catalog: PostgresCatalog, depth: number): ColumnLineage[] | undefined {
  if (depth >= MAX_VIEW_DEPTH) return undefined;
  return catalog.viewLineage(oid, (def) => resolveLineage(def, catalog, { searchPath: [] }, depth + 1));
}

/** A column whose values are all one table column's own (a plain reference, through any subqueries). */
function plainColumn(c: Col): boolean {
  return c.direct && !c.opaque && c.sources.length === 1 && c.sources[0].column !== '*';
}

function sameSources(a: Col, b: Col): boolean {
  const x = a.sources[0];
  const y = b.sources[0];
  return x !== undefined && y !== undefined && x.table === y.table && x.column === y.column && x.schema === y.schema;
}

/** The column references of an expression, outside any subquery in it. */
function columnRefsOf(x: unknown): PgNode[] {
  const out: PgNode[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) for (const i of v) visit(i);
    else if (isObject(v)) {
      for (const k in v) {
        if (k === 'SelectStmt') continue;
        if (k === 'ColumnRef' && isObject(v[k])) out.push(v[k] as PgNode);
        else visit(v[k]);
      }
    }
  };
  visit(x);
  return out;
}
