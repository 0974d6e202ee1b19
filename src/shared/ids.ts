import { randomBytes, randomUUID } from 'node:crypto';

/** Sortable-enough, URL-safe ids with a readable prefix: `ses_…`, `req_…`, `cred_…`. */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}

/** Short ids that a person types: `dbgov approve 7KQ2MX`. Crockford base32, no I/L/O/U. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export function shortId(length = 6): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}

export { randomUUID };
