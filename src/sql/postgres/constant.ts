/**
 * Constant folding for WHERE clauses. `UPDATE t SET … WHERE 1=1` must count as an unrestricted
 * update, so guardrails cannot be sidestepped by a tautology. Only what is provably constant is
 * folded; anything else (columns, parameters, functions) is unknown and counts as a real filter.
 */
import { anyColumnRef, as, conjuncts, forEachFromItem, isObject, list, names, qualifiedBy, str, sval, unwrap, type PgNode } from './ast.js';

type Value = boolean | number | string | null;
/** `undefined` means "not a known constant". */
type Folded = Value | undefined;

const TRUE_WORDS = new Set(['t', 'true', 'y', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['f', 'false', 'n', 'no', 'off', '0']);
const NUMERIC_TYPES = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8']);
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar']);

/** True when the expression is provably true for every row (or absent). */
export function isConstantTrue(expr: unknown): boolean {
  return expr === undefined || fold(expr) === true;
}

/**
 * Whether a WHERE (or MERGE ON) can pick out particular rows: it is provably false, or it is
 * not provably true and names a column (or is WHERE CURRENT OF a cursor). Inside a subquery only
 * a column qualified by one of `targets` (the written table's name or alias: a correlated
 * subquery) counts. A condition that names no such column, such as `(1)::bool`,
 * `now() > '2000-01-01'`, `$1` or `EXISTS (SELECT 1 FROM t WHERE t.id = 1)`, holds for every row
 * or for none, so it restricts nothing.
 */
export function selectsRows(expr: unknown, targets: readonly string[], self: ReadonlySet<string> = NO_NAMES, joined: ReadonlySet<string> = NO_NAMES): boolean {
  if (expr === undefined) return false;
  const v = fold(expr);
  // Provably false (or NULL): no row at all, which is as restricted as it gets.
  if (v === false || v === null) return true;
  if (v === true) return false;
  // `id = $1 OR $2`: a disjunct that names no row holds for every row or for none, and when it
  // holds so does the whole OR. Each disjunct must pick out rows on its own.
  const b = as(expr, 'BoolExpr');
  if (b?.boolop === 'OR_EXPR') return list(b.args).every((a) => selectsRows(a, targets, self, joined));
  return namesRow(expr, new Set(targets), false, self, joined);
}

const NO_NAMES: ReadonlySet<string> = new Set();

/**
 * `self`: the written table's name and the statement's CTEs that read it. A membership test in a
 * subquery over them (`id IN (SELECT id FROM orders)`, `id = ANY (ARRAY(SELECT id FROM orders))`,
 * `EXISTS (SELECT 1 FROM orders p WHERE p.id = o.id)`) is a semi-join of the table with itself:
 * it matches every row, as `DELETE … USING orders` does (see joinRestricted), unless it picks
 * out rows of its own. A scalar subquery (`amount > (SELECT avg(amount) FROM orders)`) is a
 * value, like any other the column is compared with.
 */
function namesRow(x: unknown, targets: ReadonlySet<string>, inSubquery: boolean, self: ReadonlySet<string>, joined: ReadonlySet<string> = NO_NAMES): boolean {
  if (Array.isArray(x)) return x.some((v) => namesRow(v, targets, inSubquery, self, joined));
  if (!isObject(x)) return false;
  for (const k in x) {
    const v = x[k];
    if (k === 'CurrentOfExpr') return true;
    if (k === 'ColumnRef' && isObject(v)) {
      const fields = list(v.fields);
      // tableoid is the same for every row of a table: it tells partitions apart, not rows.
      if (sval(fields[fields.length - 1]) === 'tableoid') continue;
      const qualifier = fields.length > 1 ? as(fields[fields.length - 2], 'String')?.sval : undefined;
      if (!inSubquery) {
        // Another FROM item's column (`USING (VALUES (1)) v(x) WHERE v.x = 1`, a MERGE source's
        // `ON s.x = 1`) is the same for every target row it joins: it does not pick rows out.
        if (typeof qualifier === 'string') {
          if (targets.has(qualifier)) return true;
          continue;
        }
        if (fields.length === 1 && joined.has(sval(fields[0]) ?? '')) continue;
        return true;
      }
      if (typeof qualifier === 'string' && targets.has(qualifier)) return true;
      continue;
    }
    if (k === 'SubLink' && isObject(v)) {
      if ((v.subLinkType === 'EXISTS_SUBLINK' || v.subLinkType === 'ANY_SUBLINK') && selfSemiJoin(v, targets, self)) continue;
      // `x IN (SELECT …)`: x is in this query; the subquery's own columns are not.
      if (namesRow(v.testexpr, targets, inSubquery, self, joined) || namesRow(v.subselect, targets, true, self)) return true;
      continue;
    }
    // `id = ANY (ARRAY(SELECT id FROM orders))`: membership in the table's own values.
    if (k === 'A_Expr' && isObject(v) && v.kind === 'AEXPR_OP_ANY' && isObject(v.rexpr) && isObject(v.rexpr.SubLink) && v.rexpr.SubLink.subLinkType === 'ARRAY_SUBLINK' && selfSemiJoin(v.rexpr.SubLink, targets, self)) continue;
    if (namesRow(v, targets, inSubquery, self, joined)) return true;
  }
  return false;
}

function selfSemiJoin(link: PgNode, targets: ReadonlySet<string>, self: ReadonlySet<string>): boolean {
  return self.size > 0 && readsAny(link.subselect, self) && !picksOwnRows(link.subselect, targets, self);
}

/** Whether a (sub)tree reads a relation by one of these names (any schema: erring towards "yes"). */
export function readsAny(x: unknown, relnames: ReadonlySet<string>): boolean {
  if (Array.isArray(x)) return x.some((v) => readsAny(v, relnames));
  if (!isObject(x)) return false;
  for (const k in x) {
    const v = x[k];
    if (k === 'RangeVar' && isObject(v) && typeof v.relname === 'string' && relnames.has(v.relname)) return true;
    if (readsAny(v, relnames)) return true;
  }
  return false;
}

/**
 * Whether a subquery over the written table restricts its own rows: it also reads another
 * relation (a join bounds, as elsewhere), has LIMIT or HAVING, or a WHERE conjunct that picks
 * out rows without reading the outer query's copy of the table. The subquery's own CTEs over the
 * table are the table too (`id IN (WITH c AS (SELECT id FROM orders) SELECT id FROM c)`).
 */
function picksOwnRows(sub: unknown, outerTargets: ReadonlySet<string>, outerSelf: ReadonlySet<string>): boolean {
  const sel = as(sub, 'SelectStmt');
  if (sel === undefined || (sel.op !== undefined && sel.op !== 'SETOP_NONE')) return false;
  if (isObject(sel.limitCount) || isObject(sel.havingClause)) return true;
  const self = new Set(outerSelf);
  const ctes = isObject(sel.withClause) ? list(sel.withClause.ctes) : [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of ctes) {
      const cte = as(c, 'CommonTableExpr');
      const name = str(cte?.ctename);
      if (cte && name !== undefined && !self.has(name) && readsAny(cte.ctequery, self) && !picksOwnRows(cte.ctequery, outerTargets, self)) {
        self.add(name);
        grew = true;
      }
    }
  }
  const own = new Set<string>();
  let other = false;
  forEachFromItem(list(sel.fromClause), (item, name) => {
    if (!readsAny(item, self)) other = true;
    if (name !== undefined) own.add(name);
  });
  if (other) return true;
  const outer = new Set([...outerTargets].filter((t) => !own.has(t)));
  return conjuncts(sel.whereClause).some((c) => selectsRows(c, [...own], self) && !qualifiedBy(c, outer));
}

function constValue(c: PgNode): Folded {
  if (c.isnull === true) return null;
  // Zero and false are omitted from the tree: `{ ival: {} }`, `{ boolval: {} }`.
  if (isObject(c.ival)) return typeof c.ival.ival === 'number' ? c.ival.ival : 0;
  if (isObject(c.fval)) return Number(c.fval.fval);
  if (isObject(c.boolval)) return c.boolval.boolval === true;
  if (isObject(c.sval)) return typeof c.sval.sval === 'string' ? c.sval.sval : '';
  return undefined;
}

function toBool(v: Folded): boolean | null | undefined {
  if (v === undefined || v === null || typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const w = v.trim().toLowerCase();
    if (TRUE_WORDS.has(w)) return true;
    if (FALSE_WORDS.has(w)) return false;
  }
  return undefined;
}

function cast(v: Folded, typeName: unknown): Folded {
  if (v === undefined || v === null) return v;
  const type = names(isObject(typeName) ? typeName.names : undefined).pop() ?? '';
  if (type === 'bool') return toBool(v);
  if (NUMERIC_TYPES.has(type)) {
    const n = typeof v === 'boolean' ? undefined : Number(v);
    return n === undefined || Number.isNaN(n) ? undefined : n;
  }
  if (TEXT_TYPES.has(type)) return typeof v === 'string' ? v : undefined;
  return undefined;
}

function compare(op: string, a: Folded, b: Folded): Folded {
  if (a === undefined || b === undefined) return undefined;
  if (a === null || b === null) return null;
  if (typeof a !== typeof b) {
    // '1' = 1: the server coerces the unknown-typed literal to the other side's type.
    if (typeof a === 'string' && typeof b === 'number') a = Number(a);
    else if (typeof b === 'string' && typeof a === 'number') b = Number(b);
    else if (typeof a === 'string' && typeof b === 'boolean') a = toBool(a) ?? undefined;
    else if (typeof b === 'string' && typeof a === 'boolean') b = toBool(b) ?? undefined;
    if (a === undefined || b === undefined || typeof a !== typeof b || Number.isNaN(a) || Number.isNaN(b)) return undefined;
  }
  switch (op) {
    case '=':
      return a === b;
    case '<>':
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    case '>=':
      return a >= b;
    case '+':
      return typeof a === 'number' && typeof b === 'number' ? a + b : undefined;
    case '-':
      return typeof a === 'number' && typeof b === 'number' ? a - b : undefined;
    case '*':
      return typeof a === 'number' && typeof b === 'number' ? a * b : undefined;
    case '||':
      return typeof a === 'string' && typeof b === 'string' ? a + b : undefined;
    default:
      return undefined;
  }
}

/**
 * The same expression of the row on both sides: `id = id`, `id + 0 = id`, `lower(x) >= lower(x)`.
 * Compared as parse trees without positions, after dropping `+ 0`, `- 0`, `* 1`, `/ 1` and
 * `|| ''`. Only expressions that read a column count (without one it is not about the row).
 */
function sameExpr(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return false;
  const x = withoutIdentity(a);
  const y = withoutIdentity(b);
  // Different kinds of node (`aid = $1`: a column and a parameter) are never the same: no serialising.
  const kind = isObject(x) ? Object.keys(x)[0] : undefined;
  if (kind === undefined || !isObject(y) || Object.keys(y)[0] !== kind) return false;
  // A call counts too (`lower(x) = lower(x)`): only a volatile one could differ between the two
  // sides, and nobody bounds a write by `random_per_row(x) = random_per_row(x)`.
  if (!readsAColumn(x)) return false;
  return shape(x) === shape(y);
}

function shape(x: unknown): string {
  return JSON.stringify(stripLocations(x));
}

function stripLocations(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripLocations);
  if (!isObject(x)) return x;
  const out: Record<string, unknown> = {};
  for (const k in x) if (k !== 'location') out[k] = stripLocations(x[k]);
  return out;
}

/** `x + 0`, `0 + x`, `x - 0`, `x * 1`, `1 * x`, `x / 1`, `x || ''` → x. */
export function withoutIdentity(x: unknown): unknown {
  const e = as(x, 'A_Expr');
  if (!e || e.kind !== 'AEXPR_OP' || e.lexpr === undefined) return x;
  const op = names(e.name).pop() ?? '';
  const l = fold(e.lexpr);
  const r = fold(e.rexpr);
  if ((op === '+' || op === '-') && r === 0) return withoutIdentity(e.lexpr);
  if (op === '+' && l === 0) return withoutIdentity(e.rexpr);
  if ((op === '*' || op === '/') && r === 1) return withoutIdentity(e.lexpr);
  if (op === '*' && l === 1) return withoutIdentity(e.rexpr);
  if (op === '||' && r === '') return withoutIdentity(e.lexpr);
  return x;
}

function readsAColumn(x: unknown): boolean {
  return anyColumnRef(x, () => true);
}


/** `P OR NOT P`, `x IS NULL OR x IS NOT NULL`: one of two disjuncts holds for every row. */
function excludedMiddle(args: unknown[]): boolean {
  const shapes = new Set(args.map(shape));
  for (const a of args) {
    const not = as(a, 'BoolExpr');
    if (not?.boolop === 'NOT_EXPR' && shapes.has(shape(list(not.args)[0]))) return true;
    const t = as(a, 'NullTest');
    if (t && t.nulltesttype === 'IS_NULL' && shapes.has(shape({ NullTest: { ...t, nulltesttype: 'IS_NOT_NULL' } }))) return true;
  }
  return false;
}

/**
 * Whether a pattern match holds for every non-NULL string (`LIKE '%%%'`, `SIMILAR TO '%'`,
 * `~ ''`, `~ '.*'`), or for none (its negation, `NOT LIKE '%'`); undefined when it depends on
 * the value. `op` is the operator as the parser names it: LIKE is `~~`, ILIKE `~~*`, SIMILAR TO
 * a `~` over similar_to_escape(), each with a `!` form for NOT.
 */
function matchesEverything(kind: unknown, op: string, pattern: unknown): boolean | undefined {
  const negated = op.startsWith('!');
  const base = negated ? op.slice(1) : op;
  let all: boolean;
  if (base === '~~' || base === '~~*') all = likeMatchesAll(pattern);
  else if (kind === 'AEXPR_SIMILAR' && base === '~') all = similarMatchesAll(pattern);
  else if (base === '~' || base === '~*') all = regexMatchesAll(fold(pattern));
  else return undefined;
  if (!all) return undefined;
  return !negated;
}

/** A LIKE pattern of nothing but `%` (also through `ESCAPE`, unless `%` is the escape character). */
function likeMatchesAll(pattern: unknown): boolean {
  const esc = as(pattern, 'FuncCall');
  if (esc && names(esc.funcname).pop() === 'like_escape') {
    const [p, e] = list(esc.args).map(fold);
    return e !== '%' && onlyPercent(p);
  }
  return onlyPercent(fold(pattern));
}

/** SIMILAR TO compiles to a regex match on similar_to_escape(pattern[, escape]). */
function similarMatchesAll(pattern: unknown): boolean {
  const esc = as(pattern, 'FuncCall');
  if (!esc || names(esc.funcname).pop() !== 'similar_to_escape') return false;
  const [p, e] = list(esc.args).map(fold);
  return e !== '%' && onlyPercent(p);
}

function onlyPercent(p: Folded): boolean {
  return typeof p === 'string' && p.length > 0 && [...p].every((c) => c === '%');
}

/**
 * An unanchored regular expression that matches the empty string matches inside every string.
 * Judged only for patterns without anchors, escapes or `(?` groups, where PostgreSQL's and
 * JavaScript's syntax agree; any other pattern is left to count as a real condition.
 */
function regexMatchesAll(p: Folded): boolean {
  if (typeof p !== 'string' || /[\\^$]|\(\?/.test(p)) return false;
  try {
    return new RegExp(p).test('');
  } catch {
    return false;
  }
}

function foldAExpr(e: PgNode): Folded {
  const op = names(e.name).pop() ?? '';
  // A column compared with itself, or LIKE '%', is a tautology for every row that has a value:
  // as a WHERE it restricts nothing that matters, so an UPDATE/DELETE with it is unbounded.
  if ((e.kind === 'AEXPR_OP' && ['=', '>=', '<='].includes(op) && sameExpr(e.lexpr, e.rexpr)) || (e.kind === 'AEXPR_NOT_DISTINCT' && sameExpr(e.lexpr, e.rexpr))) return true;
  // `x IN (…, x, …)`, `x = ANY (ARRAY[…, x, …])`, `x BETWEEN x AND x`.
  if (e.kind === 'AEXPR_IN' && op === '=' && list(e.rexpr).some((item) => sameExpr(e.lexpr, item))) return true;
  if (e.kind === 'AEXPR_OP_ANY' && ['=', '>=', '<='].includes(op) && list(as(e.rexpr, 'A_ArrayExpr')?.elements).some((item) => sameExpr(e.lexpr, item))) return true;
  if ((e.kind === 'AEXPR_BETWEEN' || e.kind === 'AEXPR_BETWEEN_SYM') && list(e.rexpr).every((bound) => sameExpr(e.lexpr, bound))) return true;
  // Its negations (`NOT (id <> id)` is `id = id`): false for every row that has a value.
  if ((e.kind === 'AEXPR_OP' && ['<>', '!=', '<', '>'].includes(op) && sameExpr(e.lexpr, e.rexpr)) || (e.kind === 'AEXPR_DISTINCT' && sameExpr(e.lexpr, e.rexpr))) return false;
  if (e.kind === 'AEXPR_LIKE' || e.kind === 'AEXPR_ILIKE' || e.kind === 'AEXPR_SIMILAR' || e.kind === 'AEXPR_OP') {
    const all = matchesEverything(e.kind, op, e.rexpr);
    if (all !== undefined && e.lexpr !== undefined) return all;
  }
  switch (e.kind) {
    case 'AEXPR_OP': {
      if (e.lexpr === undefined) {
        const r = fold(e.rexpr);
        if (op === '-' && typeof r === 'number') return -r;
        return op === '+' && typeof r === 'number' ? r : undefined;
      }
      return compare(op, fold(e.lexpr), fold(e.rexpr));
    }
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT': {
      const a = fold(e.lexpr);
      const b = fold(e.rexpr);
      if (a === undefined || b === undefined) return undefined;
      const same = a === null || b === null ? a === b : compare('=', a, b);
      if (same === undefined || same === null) return undefined;
      return e.kind === 'AEXPR_DISTINCT' ? !same : same;
    }
    case 'AEXPR_IN': {
      const a = fold(e.lexpr);
      const items = list(e.rexpr).map(fold);
      if (a === undefined || items.some((v) => v === undefined)) return undefined;
      const hit = items.some((v) => compare('=', a, v) === true);
      return op === '<>' ? !hit : hit;
    }
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN': {
      const [lo, hi] = list(e.rexpr).map(fold);
      const v = fold(e.lexpr);
      const inside = and(compare('>=', v, lo), compare('<=', v, hi));
      if (inside === undefined || inside === null || typeof inside !== 'boolean') return undefined;
      return e.kind === 'AEXPR_BETWEEN' ? inside : !inside;
    }
    default:
      return undefined;
  }
}

function and(a: Folded, b: Folded): Folded {
  const x = toBool(a);
  const y = toBool(b);
  if (x === false || y === false) return false;
  if (x === true && y === true) return true;
  if (x === undefined || y === undefined) return undefined;
  return null;
}

function or(a: Folded, b: Folded): Folded {
  const x = toBool(a);
  const y = toBool(b);
  if (x === true || y === true) return true;
  if (x === false && y === false) return false;
  if (x === undefined || y === undefined) return undefined;
  return null;
}

/** Folds a scalar subquery with no FROM (`(SELECT true)`, `EXISTS (SELECT 1)`). */
function foldSubLink(s: PgNode): Folded {
  const sel = as(s.subselect, 'SelectStmt');
  if (!sel || sel.fromClause || sel.whereClause || sel.havingClause || sel.limitCount || sel.op !== 'SETOP_NONE') {
    return undefined;
  }
  if (s.subLinkType === 'EXISTS_SUBLINK') return true;
  if (s.subLinkType !== 'EXPR_SUBLINK') return undefined;
  const targets = list(sel.targetList);
  if (targets.length !== 1) return undefined;
  const rt = as(targets[0], 'ResTarget');
  return rt ? fold(rt.val) : undefined;
}

export function fold(x: unknown): Folded {
  const w = unwrap(x);
  if (!w) return undefined;
  const [type, n] = w;
  switch (type) {
    case 'A_Const':
      return constValue(n);
    case 'TypeCast':
      return cast(fold(n.arg), n.typeName);
    case 'BoolExpr': {
      const args = list(n.args).map(fold);
      if (n.boolop === 'NOT_EXPR') {
        const v = toBool(args[0]);
        return v === undefined || v === null ? v : !v;
      }
      if (n.boolop === 'OR_EXPR' && excludedMiddle(list(n.args))) return true;
      return args.reduce(n.boolop === 'AND_EXPR' ? and : or);
    }
    case 'A_Expr':
      return foldAExpr(n);
    case 'BooleanTest': {
      const v = toBool(fold(n.arg));
      if (v === undefined) return undefined;
      switch (n.booltesttype) {
        case 'IS_TRUE':
          return v === true;
        case 'IS_NOT_TRUE':
          return v !== true;
        case 'IS_FALSE':
          return v === false;
        case 'IS_NOT_FALSE':
          return v !== false;
        case 'IS_UNKNOWN':
          return v === null;
        case 'IS_NOT_UNKNOWN':
          return v !== null;
        default:
          return undefined;
      }
    }
    case 'NullTest': {
      // A system column (no user column may take its name) is never NULL: `ctid IS NOT NULL`.
      if (isSystemColumn(n.arg)) return n.nulltesttype !== 'IS_NULL';
      const v = fold(n.arg);
      if (v === undefined) return undefined;
      return n.nulltesttype === 'IS_NULL' ? v === null : v !== null;
    }
    case 'CoalesceExpr': {
      for (const a of list(n.args)) {
        const v = fold(a);
        if (v !== null) return v;
      }
      return null;
    }
    case 'SubLink':
      return foldSubLink(n);
    default:
      return undefined;
  }
}

const SYSTEM_COLUMNS = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid']);

function isSystemColumn(x: unknown): boolean {
  const c = as(x, 'ColumnRef');
  const fields = list(c?.fields);
  const last = fields[fields.length - 1];
  const name = last === undefined ? undefined : as(last, 'String')?.sval;
  return typeof name === 'string' && SYSTEM_COLUMNS.has(name);
}
