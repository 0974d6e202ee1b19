/**
 * Literal redaction for the audit log. normalizeSync replaces the literals the planner sees, but
 * leaves utility statements (PREPARE, COPY 'file', SET … = 'x') and comments alone, so a lexer
 * pass over its output replaces whatever literal or comment token survived. The audit log must
 * never hold a value masking protects, whatever the statement's shape.
 */
import { normalizeSync, scanSync } from 'libpg-query';

/**
 * Token type codes of literal tokens, from PostgreSQL's gram.h (FCONST 260, SCONST 261,
 * USCONST 262, BCONST 263, XCONST 264, ICONST 266). libpg-query's token names are off for some
 * of them, so the codes are used.
 */
const LITERAL_TOKENS = new Set([260, 261, 262, 263, 264, 266]);
const PARAM_TOKEN = 267;
const COMMENT_TOKENS = new Set(['SQL_COMMENT', 'C_COMMENT']);

/** Shown instead of text that could not even be tokenised (e.g. an unterminated quote). */
export const UNREDACTABLE = '<statement not redactable: not stored>';

export function redact(text: string): string {
  let normalized: string;
  try {
    normalized = normalizeSync(text);
  } catch {
    normalized = text;
  }
  // Most texts hold no literal or comment once normalised: the lexer pass would change nothing.
  return mayHoldLiteral(normalized) ? replaceLiteralTokens(normalized) : normalized;
}

/**
 * False only when `text` cannot hold a literal or comment token: no quote of any kind, no
 * backslash, no comment opener, no `$` other than a parameter's, no non-ASCII character, and
 * no digit that does not continue a name or a parameter. Every literal token of PostgreSQL's
 * lexer (numbers, strings in all their prefixed and dollar-quoted forms) and every comment
 * needs one of those, so the answer errs only towards lexing. Exported for the tests.
 */
export function mayHoldLiteral(text: string): boolean {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      const p = i === 0 ? 0 : text.charCodeAt(i - 1);
      const continues = (p >= 0x30 && p <= 0x39) || (p >= 0x41 && p <= 0x5a) || (p >= 0x61 && p <= 0x7a) || p === 0x5f || p === 0x24;
      if (!continues) return true;
    } else if (c === 0x27 || c === 0x22 || c === 0x5c || c >= 0x80) return true;
    else if (c === 0x2d && text.charCodeAt(i + 1) === 0x2d) return true;
    else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) return true;
    else if (c === 0x24) {
      const d = text.charCodeAt(i + 1);
      if (!(d >= 0x30 && d <= 0x39)) return true;
    }
  }
  return false;
}

/** The lexer pass: every literal token becomes a parameter and every comment a space. Exported for the tests. */
export function replaceLiteralTokens(normalized: string): string {
  let tokens;
  try {
    tokens = scanSync(normalized).tokens;
  } catch {
    return UNREDACTABLE;
  }
  let next = 1;
  for (const t of tokens) {
    if (t.tokenType === PARAM_TOKEN) next = Math.max(next, Number(t.text.slice(1)) + 1);
  }
  let out = '';
  let at = 0;
  // The scanner reports UTF-8 byte offsets; work on bytes so multi-byte text slices correctly.
  const bytes = Buffer.from(normalized, 'utf8');
  for (const t of tokens) {
    const literal = LITERAL_TOKENS.has(t.tokenType);
    if (!literal && !COMMENT_TOKENS.has(t.tokenName)) continue;
    out += bytes.subarray(at, t.start).toString('utf8');
    out += literal ? `$${next++}` : ' ';
    at = t.end;
  }
  out += bytes.subarray(at).toString('utf8');
  return out;
}
