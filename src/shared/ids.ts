import { randomBytes, randomUUID } from 'node:crypto';

/**
 * Unique, roughly time-sortable, URL-safe ids with a readable prefix: `ses_…`, `cred_…`, `evt_…`.
 * A random per-process part plus a counter: ids are unique across brokers and restarts without
 * drawing random bytes per id (which cost ~3 µs on the statement path). Ids are not secrets.
 */
const PROCESS_PART = randomBytes(5).toString('hex');
let counter = 0;

let lastMs = -1;
let lastMs36 = '';

export function newId(prefix: string): string {
  counter = (counter + 1) % 0x1000000;
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastMs36 = ms.toString(36);
  }
  return `${prefix}_${lastMs36}${PROCESS_PART}${counter.toString(36).padStart(5, '0')}`;
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
