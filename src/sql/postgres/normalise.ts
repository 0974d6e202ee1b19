/**
 * Statement shapes for the simple protocol. A client that inlines its values (`WHERE aid = 4711`)
 * sends a new text for every statement, so a cache by text never hits and every statement pays
 * a full parse. Here texts that differ only in values in positions where no fact can depend on
 * them share one analysis. Those positions are:
 * - the right operand of a comparison whose left operand is a column (`WHERE aid = 4711`);
 * - a value assigned by UPDATE … SET, alone or added to / subtracted from a column
 *   (`SET abalance = abalance + -17`, `SET status = 'paid'`);
 * - an element of an INSERT … VALUES row (`VALUES (1, 'x', -2.5)`).
 *
 * Safety does not rest on the scanner below being a complete SQL lexer:
 * - it accepts only plain texts (no comments, quoted identifiers, dollar quotes, backslashes,
 *   prefixed strings, non-ASCII outside strings, several statements) and gives up on anything
 *   else, which then takes the full path;
 * - a literal becomes a placeholder only where the tokens around it suggest one of the positions
 *   above;
 * - the first text of each shape is analysed twice, as sent and as the shape, and the shape is
 *   used only if the real parser puts every placeholder in one of the positions above, and both
 *   analyses agree on every fact. A column compared with a value folds to "unknown" whatever
 *   the value, and a stored constant carries nothing from any table, so the facts cannot depend
 *   on it; the check makes sure of it for each shape rather than trusting the argument.
 */
import { parseSync } from 'libpg-query';
import { sameFacts } from '../cache.js';
import type { MessageAnalysis } from '../facts.js';
import { as, isObject, names, str } from './ast.js';

const COMPARISONS = new Set(['=', '<', '>', '<=', '>=', '<>', '!=']);
/** Words that may follow a normalised literal: they end a condition. */
const FOLLOWERS = new Set(['and', 'or', 'limit', 'offset', 'order', 'group', 'returning', 'for', 'having', 'window']);
/** Statements whose shapes are shared. Others (PREPARE, SET, COPY, DO, …) always take the full path. */
const LEADERS = new Set(['select', 'update', 'delete', 'insert']);
/** PostgreSQL's operator characters: a run of them is one operator token. */
const OPERATOR_CHARS = new Set('+-*/<>=~!@#%^&|`?');
/** Longest text considered; longer texts are rare in OLTP and take the full path. */
const MAX_LENGTH = 4096;

export interface Shape {
  /** The text with the chosen literals replaced by $1, $2, … (parseable). */
  text: string;
  /** Cache key: the text plus the kind of each replaced literal (number or string). */
  key: string;
  placeholders: number;
}

type Token = { type: 'word' | 'number' | 'string' | 'op' | 'punct'; start: number; end: number; value: string };

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isWordStart = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
const isWordChar = (c: number): boolean => isWordStart(c) || isDigit(c);

/** Tokens of a plain text, or null when the text holds anything this scanner does not handle. */
function scan(sql: string): Token[] | null {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const start = i;
    if (isWordStart(c)) {
      while (i < n && isWordChar(sql.charCodeAt(i))) i++;
      // E'…', B'…', X'…', N'…' and friends: prefixed strings.
      if (i < n && sql.charCodeAt(i) === 0x27) return null;
      tokens.push({ type: 'word', start, end: i, value: sql.slice(start, i).toLowerCase() });
    } else if (isDigit(c) || (c === 0x2e && i + 1 < n && isDigit(sql.charCodeAt(i + 1)))) {
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      if (i < n && sql.charCodeAt(i) === 0x2e) {
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
      }
      if (i < n && (sql.charCodeAt(i) === 0x65 || sql.charCodeAt(i) === 0x45)) {
        i++;
        if (i < n && (sql.charCodeAt(i) === 0x2b || sql.charCodeAt(i) === 0x2d)) i++;
        if (!(i < n && isDigit(sql.charCodeAt(i)))) return null;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
      }
      // 0x1F, 1_000, 12abc, 1.2.3: forms this scanner does not model.
      if (i < n && (isWordChar(sql.charCodeAt(i)) || sql.charCodeAt(i) === 0x2e)) return null;
      tokens.push({ type: 'number', start, end: i, value: sql.slice(start, i) });
    } else if (c === 0x27) {
      i++;
      for (;;) {
        if (i >= n) return null;
        const d = sql.charCodeAt(i);
        // A backslash means something else when standard_conforming_strings is off.
        if (d === 0x5c) return null;
        if (d === 0x27) {
          if (i + 1 < n && sql.charCodeAt(i + 1) === 0x27) i += 2;
          else break;
        } else i++;
      }
      i++;
      // 'a' <newline> 'b' is one string in SQL: do not split what the server joins.
      let j = i;
      while (j < n && isSpace(sql.charCodeAt(j))) j++;
      if (j < n && sql.charCodeAt(j) === 0x27) return null;
      tokens.push({ type: 'string', start, end: i, value: sql.slice(start, i) });
    } else if (OPERATOR_CHARS.has(sql[i])) {
      while (i < n && OPERATOR_CHARS.has(sql[i])) i++;
      const op = sql.slice(start, i);
      if (op.includes('--') || op.includes('/*')) return null;
      tokens.push({ type: 'op', start, end: i, value: op });
    } else if (c === 0x28 || c === 0x29 || c === 0x2c || c === 0x2e || c === 0x3a) {
      i++;
      tokens.push({ type: 'punct', start, end: i, value: sql[start] });
    } else if (c === 0x3b) {
      // Only a trailing semicolon: several statements take the full path.
      i++;
      while (i < n && isSpace(sql.charCodeAt(i))) i++;
      if (i < n) return null;
      tokens.push({ type: 'punct', start, end: start + 1, value: ';' });
    } else {
      // Quoted identifiers, dollar quotes, parameters, brackets, non-ASCII, …
      return null;
    }
  }
  return tokens;
}

/** Words that end an UPDATE's SET list. */
const SET_END = new Set(['where', 'from', 'returning']);

/** The text's shape, or null when no literal qualifies or the text is not plain. */
export function shapeOf(sql: string): Shape | null {
  if (sql.length > MAX_LENGTH) return null;
  const tokens = scan(sql);
  if (tokens === null || tokens.length === 0 || tokens[0].type !== 'word' || !LEADERS.has(tokens[0].value)) return null;
  const leader = tokens[0].value;
  let text = '';
  let kinds = '';
  let at = 0;
  let k = 0;
  let depth = 0;
  /** Inside UPDATE's SET list (at depth 0), or inside INSERT's VALUES rows. */
  let inSet = false;
  let inValues = false;
  const isOp = (t: Token | undefined, ...ops: string[]): boolean => t?.type === 'op' && ops.includes(t.value);
  const isPunct = (t: Token | undefined, ...ps: string[]): boolean => t?.type === 'punct' && ps.includes(t.value);
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')') depth--;
    else if (t.type === 'word' && depth === 0) {
      if (leader === 'update' && t.value === 'set') inSet = true;
      else if (leader === 'update' && SET_END.has(t.value)) inSet = false;
      else if (leader === 'insert' && t.value === 'values') inValues = true;
      else if (leader === 'insert') inValues = false;
    }
    if (t.type !== 'number' && t.type !== 'string') continue;
    const next = tokens[i + 1];
    // A unary minus before a number belongs to the value (`+ -17`, `(-2.5`).
    const signed = t.type === 'number' && isOp(tokens[i - 1], '-') && (isOp(tokens[i - 2], '+', '-', '=') || isPunct(tokens[i - 2], '(', ','));
    const start = signed ? tokens[i - 1].start : t.start;
    const op = tokens[signed ? i - 2 : i - 1];
    const left = tokens[signed ? i - 3 : i - 2];
    let take = false;
    if (!signed && i >= 2 && op.type === 'op' && COMPARISONS.has(op.value) && left?.type === 'word') {
      take = next === undefined || isPunct(next, ')', ';') || (next.type === 'word' && FOLLOWERS.has(next.value));
    }
    if (!take && inSet && depth === 0) {
      // SET col = v, or SET col = other + v / other - v, then `,`, the end or a clause word.
      const assigned = isOp(op, '=') && left?.type === 'word';
      const added = isOp(op, '+', '-') && left?.type === 'word' && isOp(tokens[(signed ? i - 4 : i - 3)], '=');
      take = (assigned || added) && (next === undefined || isPunct(next, ',', ';') || (next.type === 'word' && SET_END.has(next.value)));
    }
    if (!take && inValues && depth === 1) take = isPunct(op, '(', ',') && isPunct(next, ',', ')');
    if (!take) continue;
    k++;
    text += `${sql.slice(at, start)}$${k}`;
    kinds += t.type === 'number' ? 'n' : 's';
    at = t.end;
  }
  if (k === 0) return null;
  text += sql.slice(at);
  return { text, key: `${text}\u0000${kinds}`, placeholders: k };
}

/**
 * True when the parse tree of the shape has exactly `placeholders` parameters, each in one of
 * the positions of this file's header: the right operand of a comparison with a column on the
 * left, the value of a SET item of a top-level UPDATE (alone or as `column ± value`), or an
 * element of a VALUES row of a top-level INSERT.
 */
function placeholdersInSharedPositions(shape: Shape): boolean {
  let tree: unknown;
  try {
    tree = parseSync(shape.text);
  } catch {
    return false;
  }
  let seen = 0;
  let ok = true;
  /** Keys from the root to the node being visited (array indices left out), and the objects they hold. */
  const keys: string[] = [];
  const nodes: unknown[] = [];
  const at = (back: number): string | undefined => keys[keys.length - back];
  const prefixIs = (...want: string[]): boolean => keys.length === want.length && want.every((w, j) => keys[j] === w);
  const isComparison = (e: unknown): boolean => {
    const x = isObject(e) ? e : undefined;
    const op = x ? names(x.name).pop() : undefined;
    return x !== undefined && str(x.kind) === 'AEXPR_OP' && op !== undefined && COMPARISONS.has(op) && as(x.lexpr, 'ColumnRef') !== undefined;
  };
  const isColumnPlusMinus = (e: unknown): boolean => {
    const x = isObject(e) ? e : undefined;
    const op = x ? names(x.name).pop() : undefined;
    return x !== undefined && str(x.kind) === 'AEXPR_OP' && (op === '+' || op === '-') && as(x.lexpr, 'ColumnRef') !== undefined;
  };
  const placed = (): boolean => {
    // …A_Expr.rexpr.ParamRef: a comparison with a column, anywhere.
    if (at(1) === 'rexpr' && at(2) === 'A_Expr' && isComparison(nodes[nodes.length - 2])) return true;
    // UPDATE … SET col = $n
    if (prefixIs('stmts', 'stmt', 'UpdateStmt', 'targetList', 'ResTarget', 'val')) return true;
    // UPDATE … SET col = other ± $n
    if (prefixIs('stmts', 'stmt', 'UpdateStmt', 'targetList', 'ResTarget', 'val', 'A_Expr', 'rexpr') && isColumnPlusMinus(nodes[nodes.length - 2])) return true;
    // INSERT … VALUES (…, $n, …)
    return prefixIs('stmts', 'stmt', 'InsertStmt', 'selectStmt', 'SelectStmt', 'valuesLists', 'List', 'items');
  };
  const visit = (v: unknown): void => {
    if (!ok) return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if (!isObject(v)) return;
    for (const [k, child] of Object.entries(v)) {
      if (k === 'ParamRef') {
        seen++;
        if (!placed()) ok = false;
        continue;
      }
      keys.push(k);
      nodes.push(child);
      visit(child);
      keys.pop();
      nodes.pop();
    }
  };
  visit(tree);
  return ok && seen === shape.placeholders;
}

/**
 * The shared analysis for a shape, given the analysis of its first text as sent; null when
 * the shape cannot stand for its texts (then every text of it takes the full path).
 */
export function verifyShape(shape: Shape, sent: MessageAnalysis, analyse: (sql: string) => MessageAnalysis): MessageAnalysis | null {
  if (sent.statements.length !== 1 || sent.statements[0].opaque) return null;
  if (!placeholdersInSharedPositions(shape)) return null;
  const asShape = analyse(shape.text);
  if (!sameFacts(asShape, sent, ['text', 'redacted', 'fingerprint'])) return null;
  const s = sent.statements[0];
  // The shape's text (no values in it), with the redaction and fingerprint every text of the shape has.
  return { statements: [{ ...asShape.statements[0], redacted: s.redacted, fingerprint: s.fingerprint }] };
}

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as string);
}

/**
 * An analyser that caches by exact text and, for plain texts with inlined values, by shape:
 * every text of a verified shape gets the shape's one shared analysis (so what is cached
 * downstream of it, resolution and mask plans, is shared too). Eviction is first-in-first-out.
 */
export function createShapeAnalyser(analyse: (sql: string) => MessageAnalysis, maxEntries: number): (sql: string) => MessageAnalysis {
  const exact = new Map<string, MessageAnalysis>();
  const shapes = new Map<string, MessageAnalysis | null>();
  return (sql) => {
    const hit = exact.get(sql);
    if (hit !== undefined) return hit;
    const shape = shapeOf(sql);
    if (shape !== null) {
      const shared = shapes.get(shape.key);
      if (shared) return shared;
      if (shared === undefined) {
        const sent = analyse(sql);
        const verified = verifyShape(shape, sent, analyse);
        remember(shapes, shape.key, verified, maxEntries);
        if (verified) return verified;
        remember(exact, sql, sent, maxEntries);
        return sent;
      }
    }
    const fresh = analyse(sql);
    remember(exact, sql, fresh, maxEntries);
    return fresh;
  };
}
