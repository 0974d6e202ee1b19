/**
 * Statement shapes for the simple protocol. A client that inlines its values (`WHERE aid = 4711`)
 * sends a new text for every statement, so a cache by text never hits and every statement pays
 * a full parse. Here texts that differ only in the values compared with a column share one
 * analysis.
 *
 * Safety does not rest on the scanner below being a complete SQL lexer:
 * - it accepts only plain texts (no comments, quoted identifiers, dollar quotes, backslashes,
 *   prefixed strings, non-ASCII outside strings, several statements) and gives up on anything
 *   else, which then takes the full path;
 * - a literal becomes a placeholder only directly after a comparison operator whose left side
 *   is a plain word, and directly before the end, `)` or a clause keyword;
 * - the first text of each shape is analysed twice, as sent and as the shape, and the shape is
 *   used only if the real parser shows every placeholder as the right operand of such a
 *   comparison with a column on the left, and both analyses agree on every fact. A column
 *   compared with a value folds to "unknown" whatever the value, so the facts cannot depend
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

/** The text's shape, or null when no literal qualifies or the text is not plain. */
export function shapeOf(sql: string): Shape | null {
  if (sql.length > MAX_LENGTH) return null;
  const tokens = scan(sql);
  if (tokens === null || tokens.length === 0 || tokens[0].type !== 'word' || !LEADERS.has(tokens[0].value)) return null;
  let text = '';
  let kinds = '';
  let at = 0;
  let k = 0;
  for (let i = 2; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.type !== 'number' && t.type !== 'string') continue;
    const op = tokens[i - 1];
    const left = tokens[i - 2];
    if (op.type !== 'op' || !COMPARISONS.has(op.value) || left.type !== 'word') continue;
    const next = tokens[i + 1];
    const ends = next === undefined || (next.type === 'punct' && (next.value === ')' || next.value === ';')) || (next.type === 'word' && FOLLOWERS.has(next.value));
    if (!ends) continue;
    k++;
    text += `${sql.slice(at, t.start)}$${k}`;
    kinds += t.type === 'number' ? 'n' : 's';
    at = t.end;
  }
  if (k === 0) return null;
  text += sql.slice(at);
  return { text, key: `${text}\u0000${kinds}`, placeholders: k };
}

/**
 * True when the parse tree of the shape has exactly `placeholders` parameters, each the right
 * operand of a comparison whose left operand is a column reference.
 */
function placeholdersCompareColumns(shape: Shape): boolean {
  let tree: unknown;
  try {
    tree = parseSync(shape.text);
  } catch {
    return false;
  }
  let seen = 0;
  let ok = true;
  const visit = (v: unknown, parentExpr: Record<string, unknown> | undefined, key: string | undefined): void => {
    if (!ok) return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x, undefined, undefined);
      return;
    }
    if (!isObject(v)) return;
    for (const [k, child] of Object.entries(v)) {
      if (k === 'ParamRef') {
        seen++;
        const e = parentExpr;
        const op = e ? names(e.name).pop() : undefined;
        if (!e || key !== 'rexpr' || str(e.kind) !== 'AEXPR_OP' || op === undefined || !COMPARISONS.has(op) || as(e.lexpr, 'ColumnRef') === undefined) ok = false;
        continue;
      }
      if (k === 'A_Expr' && isObject(child)) {
        // The node wrapping a ParamRef is the operand object: { ParamRef: … } under lexpr/rexpr.
        for (const [ek, ev] of Object.entries(child)) visit(ev, child, ek);
        continue;
      }
      visit(child, k === 'rexpr' || k === 'lexpr' ? parentExpr : undefined, k === 'rexpr' || k === 'lexpr' ? key : undefined);
    }
  };
  visit(tree, undefined, undefined);
  return ok && seen === shape.placeholders;
}

/**
 * The shared analysis for a shape, given the analysis of its first text as sent; null when
 * the shape cannot stand for its texts (then every text of it takes the full path).
 */
export function verifyShape(shape: Shape, sent: MessageAnalysis, analyse: (sql: string) => MessageAnalysis): MessageAnalysis | null {
  if (sent.statements.length !== 1 || sent.statements[0].opaque) return null;
  if (!placeholdersCompareColumns(shape)) return null;
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
