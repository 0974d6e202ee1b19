/**
 * Functions a statement calls without naming them: an operator runs the function the catalog
 * binds it to (`CREATE OPERATOR ### (function = f)`), and so does a cast (`CREATE CAST (int AS
 * text) WITH FUNCTION f`). Built-in ones only compute from their inputs; a user-defined one runs
 * a user function, which can read any table or keep what it is given. Only the catalog can say
 * which is which, so the analyser lists every operator and cast by name.
 */
import type { ImplicitCall } from '../facts.js';
import { isObject, list, names, qualified, type PgNode } from './ast.js';

/** BETWEEN is spelled with this name in the tree; it compares with >= and <=. */
const BETWEEN_OPERATORS = ['>=', '<='];

/** The operators and casts one parse node uses itself (not those of its children). */
export function implicitCallsOf(type: string, n: PgNode): ImplicitCall[] {
  switch (type) {
    case 'A_Expr': {
      const parts = names(n.name);
      const kind = String(n.kind);
      if (kind.startsWith('AEXPR_BETWEEN') || kind.startsWith('AEXPR_NOT_BETWEEN')) return BETWEEN_OPERATORS.map((name) => ({ kind: 'operator', name }));
      return parts.length > 0 ? [{ kind: 'operator', ...qualified(parts) }] : [];
    }
    case 'SubLink': {
      const parts = names(n.operName);
      return parts.length > 0 ? [{ kind: 'operator', ...qualified(parts) }] : [];
    }
    case 'SortBy': {
      const parts = names(n.useOp);
      return parts.length > 0 ? [{ kind: 'operator', ...qualified(parts) }] : [];
    }
    case 'TypeCast': {
      const t = isObject(n.typeName) ? names(n.typeName.names) : [];
      return t.length > 0 ? [{ kind: 'cast', ...qualified(t) }] : [];
    }
    default:
      return [];
  }
}

/** A stable text key for an implicit call (lineage keeps calls as strings). */
export function implicitCallKey(c: ImplicitCall): string {
  return `${c.kind}\u0000${c.schema ?? ''}\u0000${c.name}`;
}

/** The call a key stands for; undefined for an ordinary function name. */
export function implicitCallOfKey(key: string): ImplicitCall | undefined {
  const [kind, schema, name] = key.split('\u0000');
  if ((kind !== 'operator' && kind !== 'cast') || name === undefined) return undefined;
  return { kind, ...(schema ? { schema } : {}), name };
}
