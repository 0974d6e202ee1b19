/**
 * Small, allocation-light accessors over the libpg-query JSON tree. The tree is a nest of
 * single-key wrappers (`{ SelectStmt: {...} }`); walking it generically is what lets the
 * analyser see every relation and function anywhere, including in node types it has no
 * special rule for.
 */

/** One parse-tree object (the body inside a `{ Type: body }` wrapper, or a plain field bag). */
export type PgNode = { readonly [key: string]: unknown };

export function isObject(x: unknown): x is PgNode {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** `{ Type: body }` → `[Type, body]`; anything else → undefined. */
export function unwrap(x: unknown): [string, PgNode] | undefined {
  if (!isObject(x)) return undefined;
  for (const key in x) {
    const body = x[key];
    // A wrapper's key starts with an upper-case letter; field bags use lower-case names.
    if (isObject(body) && key.charCodeAt(0) >= 65 && key.charCodeAt(0) <= 90) return [key, body];
    return undefined;
  }
  return undefined;
}

/** The body of `x` if it is a `{ type: body }` wrapper of that type. */
export function as(x: unknown, type: string): PgNode | undefined {
  if (!isObject(x)) return undefined;
  const body = x[type];
  return isObject(body) ? body : undefined;
}

export function list(x: unknown): unknown[] {
  if (Array.isArray(x)) return x;
  const l = as(x, 'List');
  return l && Array.isArray(l.items) ? l.items : [];
}

export function str(x: unknown): string | undefined {
  return typeof x === 'string' ? x : undefined;
}

/** A `String` node's value. */
export function sval(x: unknown): string | undefined {
  const s = as(x, 'String');
  return s ? str(s.sval) ?? '' : undefined;
}

/** A list of `String` nodes (qualified names) → their values; non-strings are dropped. */
export function names(x: unknown): string[] {
  const out: string[] = [];
  for (const n of list(x)) {
    const s = sval(n);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** A qualified name split into optional schema and last part (`a.b.c` keeps `b` as schema). */
export function qualified(parts: string[]): { schema?: string; name: string } {
  const name = parts[parts.length - 1] ?? '';
  return parts.length > 1 ? { schema: parts[parts.length - 2], name } : { name };
}

/** Whether any column reference in a parse (sub)tree passes `test`, given its name parts. */
export function anyColumnRef(x: unknown, test: (fields: unknown[]) => boolean): boolean {
  if (Array.isArray(x)) return x.some((v) => anyColumnRef(v, test));
  if (!isObject(x)) return false;
  for (const k in x) {
    const v = x[k];
    if (k === 'ColumnRef' && isObject(v)) {
      if (test(list(v.fields))) return true;
      continue;
    }
    if (anyColumnRef(v, test)) return true;
  }
  return false;
}

/** The terms of an AND (nested ANDs flattened); the expression itself when it is no AND. */
export function conjuncts(expr: unknown): unknown[] {
  const b = as(expr, 'BoolExpr');
  if (b && b.boolop === 'AND_EXPR') return list(b.args).flatMap(conjuncts);
  return expr === undefined ? [] : [expr];
}

/**
 * Each item of a FROM list, with joins taken apart, and the name its columns are qualified by
 * there: its alias, else a table's own name.
 */
export function forEachFromItem(items: readonly unknown[], fn: (item: unknown, name: string | undefined) => void): void {
  const visit = (item: unknown): void => {
    const w = unwrap(item);
    if (!w) return;
    const [type, r] = w;
    if (type === 'JoinExpr') {
      visit(r.larg);
      visit(r.rarg);
      return;
    }
    fn(item, str(isObject(r.alias) ? r.alias.aliasname : undefined) ?? (type === 'RangeVar' ? str(r.relname) : undefined));
  };
  for (const item of items) visit(item);
}

/** Whether a column reference in a (sub)tree is qualified by one of `names` (`o.id` for o). */
export function qualifiedBy(x: unknown, names: ReadonlySet<string>): boolean {
  return anyColumnRef(x, (fields) => {
    const q = fields.length > 1 ? sval(fields[fields.length - 2]) : undefined;
    return q !== undefined && names.has(q);
  });
}
