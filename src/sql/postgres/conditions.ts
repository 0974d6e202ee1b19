/**
 * Which operands of a PostgreSQL expression the server tests rather than passes on: a column (or
 * a subquery) whose value steers a condition, a comparison, a search or an error is a filter on
 * it wherever it stands, as it is in a WHERE. `SELECT CASE WHEN ssn = '1…' THEN 1/0 ELSE 0 END`
 * returns a masked value, but whether it errs answers the comparison; so does `NULLIF(ssn, '1…')`
 * by coming back NULL, and `generate_series(1, CASE WHEN ssn = '1…' THEN 1 ELSE 1e7 END)` in a
 * FROM by how long it takes.
 *
 * An operand passes only by climbing to the top of its expression through known value
 * transforms (an allowlist, the same rule as src/sql/mysql/conditions.ts): built-ins whose
 * result, NULL-ness included, depends on the operand only as a value that lineage masks, and
 * that raise no error for any value. Anything else (an operator, a condition, a search, a
 * user-defined or unknown function, a cast to a type that can reject a value) tests its
 * operands. Lineage (src/sql/lineage.ts) walks the tree and asks these helpers, slot by slot.
 */
import { as, list, names, qualified, str, sval, type PgNode } from './ast.js';
import { STORING_FUNCTIONS } from './functions.js';

/** Argument positions that carry a value through (`all`, or the indices). */
type ValueArgs = 'all' | readonly number[];

/**
 * Value transforms among the pg_catalog built-ins: the argument positions whose value reaches
 * the result only as data (never NULL for a non-NULL value, never an error). Positions not listed
 * are lengths, offsets, patterns, formats or keys: a classified value there steers what comes out.
 */
const TRANSFORMS: Readonly<Record<string, ValueArgs>> = {
  concat: 'all',
  concat_ws: 'all',
  upper: 'all',
  lower: 'all',
  initcap: 'all',
  reverse: 'all',
  md5: 'all',
  quote_literal: 'all',
  quote_nullable: 'all',
  quote_ident: 'all',
  length: 'all',
  char_length: 'all',
  character_length: 'all',
  octet_length: 'all',
  bit_length: 'all',
  // The characters or strings searched for and put in only change the (masked) result.
  btrim: 'all',
  ltrim: 'all',
  rtrim: 'all',
  replace: 'all',
  translate: 'all',
  split_part: [0, 1],
  left: [0],
  right: [0],
  lpad: [0, 2],
  rpad: [0, 2],
  // The pattern is a search: a classified one steers what matches. Over a value it only rewrites.
  regexp_replace: [0, 2],
  encode: [0],
  array_to_string: 'all',
  to_json: 'all',
  to_jsonb: 'all',
  row_to_json: [0],
  array_to_json: [0],
  json_build_object: 'all',
  jsonb_build_object: 'all',
  json_build_array: 'all',
  jsonb_build_array: 'all',
  // Aggregates and window functions that return the values they read (or their count).
  max: 'all',
  min: 'all',
  count: 'all',
  string_agg: 'all',
  array_agg: 'all',
  json_agg: 'all',
  jsonb_agg: 'all',
  json_object_agg: 'all',
  jsonb_object_agg: 'all',
  mode: 'all',
  percentile_disc: [],
  first_value: 'all',
  last_value: 'all',
  nth_value: [0],
  lag: [0, 2],
  lead: [0, 2],
  unnest: 'all',
};

/** Whether x is an integer constant (`1`, `-3`): a position or length that cannot be a pattern. */
function isIntConst(x: unknown): boolean {
  const c = as(x, 'A_Const');
  return c !== undefined && c.ival !== undefined;
}

function stringConst(x: unknown): string | undefined {
  const c = as(x, 'A_Const');
  return c === undefined ? undefined : sval({ String: c.sval });
}

/**
 * The value slots of a call, or undefined when it is no known value transform (a user-defined,
 * schema-qualified or unknown function: everything given to it is tested). Some built-ins are
 * transforms only in one shape of their arguments.
 */
export function valueSlots(call: PgNode): ValueArgs | undefined {
  const { schema, name } = qualified(names(call.funcname));
  // A qualified name reaches a user function unless it is pg_catalog's own.
  if (schema !== undefined && schema !== 'pg_catalog') return undefined;
  const args = list(call.args);
  // What these keep (a notification, a setting, a large object) is a stored value: the store
  // check refuses any of them given data read from a row (src/sql/lineage.ts, storingCalls), with
  // the reason that fits.
  if (STORING_FUNCTIONS.has(name)) return 'all';
  switch (name) {
    case 'substr':
    case 'substring':
      // substring(x FROM 'regex') and substring(x SIMILAR …) search x: NULL unless it matches.
      return args.slice(1).every(isIntConst) ? [0] : [];
    case 'convert_to': {
      // Into another encoding, a character it lacks is an error that tells the character.
      const enc = stringConst(args[1])?.toLowerCase().replace(/[-_]/g, '');
      return enc === 'utf8' ? [0] : [];
    }
    case 'format': {
      // A constant format without `*` (a width taken from an argument) only places values.
      const fmt = stringConst(args[0]);
      return fmt !== undefined && !fmt.includes('*') ? args.map((_, i) => i).slice(1) : [];
    }
    default:
      return TRANSFORMS[name];
  }
}

/** Functions valueSlots may take for value transforms (by name alone, without a catalog). */
const TRANSFORM_NAMES: ReadonlySet<string> = new Set([...Object.keys(TRANSFORMS), 'substr', 'substring', 'convert_to', 'format', ...STORING_FUNCTIONS]);
/** Operators that may pass an operand on: concatenation, and a field of a JSON value (fieldOf). */
const PASSING_OPERATORS: ReadonlySet<string> = new Set(['||', '->', '->>']);

/**
 * Whether the analyser takes a call by this name for a built-in that passes values on (a value
 * transform, concatenation, a JSON field, a cast to a text type). Without a catalog it cannot
 * tell: the server picks among every function (or operator, or cast) of the name by argument
 * types, so a user-defined overload elsewhere on the path (`public.md5(varchar)`) may be the one
 * called. The catalog says (src/sql/lineage.ts, resolveTestedColumns).
 */
export function passingName(kind: 'function' | 'operator' | 'cast', name: string): boolean {
  switch (kind) {
    case 'function':
      return TRANSFORM_NAMES.has(name);
    case 'operator':
      return PASSING_OPERATORS.has(name);
    case 'cast':
      return TEXT_TYPES.has(name);
    default: {
      const never: never = kind;
      return never;
    }
  }
}

export function passes(slots: ValueArgs | undefined, index: number): boolean {
  return slots === 'all' || (slots !== undefined && slots.includes(index));
}

/**
 * Whether an indirection (`x[…]`, `(x).f`) picks from x by its shape alone, never by its data:
 * fields of a composite, and integer-constant subscripts first, of a value that is certainly an
 * array of a length the data does not set (ARRAY[…], ARRAY(SELECT …), array_agg: its rows). A
 * subscript of anything else may be a jsonb one, which looks keys up, integers included
 * (`jsonb_build_object(ssn, 1)['123-45-6789']` is NULL unless they match): it tests x.
 */
export function shapeIndirection(n: PgNode): boolean {
  const steps = list(n.indirection);
  const subscripts = steps.findIndex((x) => as(x, 'A_Indices') === undefined);
  const leading = subscripts === -1 ? steps.length : subscripts;
  const fields = steps.slice(leading).every((x) => sval(x) !== undefined || as(x, 'A_Star') !== undefined);
  if (!fields) return false;
  if (leading === 0) return true;
  const constant = steps.slice(0, leading).every((x) => {
    const i = as(x, 'A_Indices') as PgNode;
    return (i.lidx === undefined || isIntConst(i.lidx)) && (i.uidx === undefined || isIntConst(i.uidx));
  });
  return constant && isArrayShaped(n.arg);
}

function isArrayShaped(x: unknown): boolean {
  if (as(x, 'A_ArrayExpr')) return true;
  const sub = as(x, 'SubLink');
  if (sub) return str(sub.subLinkType) === 'ARRAY_SUBLINK';
  const call = as(x, 'FuncCall');
  return call !== undefined && names(call.funcname).join('.').replace(/^pg_catalog\./, '') === 'array_agg';
}

/** Types every value casts to without an error: text, varchar(n) and char(n) (an explicit cast truncates). */
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar']);

/** Whether a TypeCast's target accepts any value (a text type, not an array or domain of one). */
export function castsToText(typeName: unknown): boolean {
  const t = typeName as PgNode | undefined;
  if (t === undefined || list(t.arrayBounds).length > 0) return false;
  const parts = names(t.names);
  const { schema, name } = qualified(parts);
  return (schema === undefined || schema === 'pg_catalog') && TEXT_TYPES.has(name);
}

/** Operators that pass both operands on: concatenation (text, arrays, jsonb, bytea). */
export function concatenates(expr: PgNode): boolean {
  if (str(expr.kind) !== 'AEXPR_OP') return false;
  const op = names(expr.name);
  return (op.length === 1 || (op.length === 2 && op[0] === 'pg_catalog')) && op[op.length - 1] === '||';
}

/** `->` / `->>` with a constant key: a field of a JSON value. */
export function fieldOf(expr: PgNode): boolean {
  if (str(expr.kind) !== 'AEXPR_OP') return false;
  const op = names(expr.name);
  return op.length === 1 && (op[0] === '->' || op[0] === '->>') && as(expr.rexpr, 'A_Const') !== undefined;
}

/**
 * A JSON value whose keys are fixed by a row type, not by the data (`to_jsonb(u)` of a whole row
 * `u`): whether it has a field, and so whether `->>` gives NULL, tells nothing about the values.
 * `isRow` says whether a name is a range (a whole-row reference) rather than a column.
 */
export function rowJson(x: unknown, isRow: (name: string) => boolean): boolean {
  const call = as(x, 'FuncCall');
  if (!call || valueSlots(call) === undefined) return false;
  const fn = qualified(names(call.funcname)).name;
  if (fn !== 'to_json' && fn !== 'to_jsonb' && fn !== 'row_to_json') return false;
  const args = list(call.args);
  const ref = as(args[0], 'ColumnRef');
  if (args.length !== 1 || !ref) return false;
  const fields = list(ref.fields);
  if (as(fields[fields.length - 1], 'A_Star') !== undefined) return true;
  return fields.length === 1 && isRow(sval(fields[0]) ?? '');
}

/**
 * Whether a sort or grouping key compares what it reads with something: it holds a constant, a
 * parameter or a subquery (`ORDER BY ssn = '1…'`, `GROUP BY left(ssn, 1)`). Sorting by a column,
 * or by an expression of columns alone, only orders rows, as ORDER BY ssn does.
 */
export function compares(x: unknown): boolean {
  if (Array.isArray(x)) return x.some(compares);
  if (typeof x !== 'object' || x === null) return false;
  for (const k in x as PgNode) {
    if (k === 'A_Const' || k === 'ParamRef' || k === 'SubLink' || k === 'SQLValueFunction') return true;
    if (compares((x as PgNode)[k])) return true;
  }
  return false;
}
