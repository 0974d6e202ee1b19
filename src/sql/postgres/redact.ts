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
