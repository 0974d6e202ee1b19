/**
 * The statement the gateway sends instead of a refused one: a DO block that raises the refusal
 * as a real server error. The server then changes its transaction state exactly as for any
 * failed statement (a transaction becomes aborted, a COMMIT after it rolls back), so the client's
 * view and the server's never drift apart.
 */
import { randomBytes } from 'node:crypto';
import type { ClientError } from '../engine.js';

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Every text is dollar-quoted with a random tag that does not occur in it, so no client-visible
 * text (which may quote the refused SQL) can close a literal and inject SQL, whatever
 * standard_conforming_strings says.
 */
export function raiseSql(err: ClientError): string {
  const texts = [err.message, err.detail ?? '', err.hint ?? ''];
  const tag = freshTag(texts);
  const lit = (s: string): string => {
    const inner = freshTag([...texts, tag]);
    return `$${inner}$${s}$${inner}$`;
  };
  const code = SQLSTATE.test(err.sqlstate) ? err.sqlstate : '42501';
  const using = [`ERRCODE = '${code}'`, `MESSAGE = ${lit(err.message)}`];
  if (err.detail !== undefined) using.push(`DETAIL = ${lit(err.detail)}`);
  if (err.hint !== undefined) using.push(`HINT = ${lit(err.hint)}`);
  return `DO $${tag}$BEGIN RAISE EXCEPTION USING ${using.join(', ')}; END$${tag}$`;
}

function freshTag(texts: string[]): string {
  for (;;) {
    const tag = `dbgov${randomBytes(6).toString('hex')}`;
    if (!texts.some((t) => t.includes(tag))) return tag;
  }
}
