/**
 * The hash chain's byte-exact form. Verification recomputes hashes from exported JSON, so the
 * canonical form must be identical for an event in memory and the same event after a JSON round
 * trip: sorted keys, `undefined` members dropped, `toJSON` honoured, numbers as JSON writes them.
 */
import { createHash, hash } from 'node:crypto';
import type { AuditEvent } from './event.js';

/** prevHash of the first event ever written (seq 1). */
export const GENESIS_HASH = '0'.repeat(64);

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // Same as JSON.stringify for primitives; undefined/functions become null as they would in arrays.
    return JSON.stringify(value) ?? 'null';
  }
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return canonicalJson(withToJson.toJSON());
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return out + ']';
  }
  return objectJson(value as Record<string, unknown>, undefined);
}

/** `"key":` for the few key names events use, remembered (bounded: keys of `detail` can be anything). */
const quotedKeys = new Map<string, string>();
function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = `${JSON.stringify(k)}:`;
    if (quotedKeys.size < 1024) quotedKeys.set(k, q);
  }
  return q;
}

/** A plain object's members in sorted key order, leaving out `skip` (the event's own hash). */
function objectJson(obj: Record<string, unknown>, skip: string | undefined): string {
  const keys = Object.keys(obj);
  // Insertion sort: objects here have a dozen keys, mostly in order already, and this is on the
  // statement path (two events per statement). Same order as the default sort: UTF-16 code units.
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i];
    let j = i - 1;
    while (j >= 0 && keys[j] > k) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = k;
  }
  let out = '{';
  let first = true;
  for (const k of keys) {
    if (k === skip) continue;
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    out += (first ? '' : ',') + quotedKey(k) + (typeof v === 'string' ? JSON.stringify(v) : canonicalJson(v));
    first = false;
  }
  return out + '}';
}

/** SHA-256 over prevHash + the canonical JSON of the event without its `hash`. Hex. */
export function eventHash(event: Omit<AuditEvent, 'hash'> & { hash?: string }): string {
  // One-shot hash of the concatenation: the same digest as two updates, without a Hash object.
  if (typeof (event as { toJSON?: unknown }).toJSON !== 'function') return hash('sha256', event.prevHash + objectJson(event as unknown as Record<string, unknown>, 'hash'), 'hex');
  const { hash: _omit, ...body } = event;
  return createHash('sha256').update(body.prevHash).update(canonicalJson(body)).digest('hex');
}

/**
 * True when `JSON.stringify(value)` already is its canonical form: plain data whose objects have
 * their keys in sorted order all the way down, with no `toJSON`, functions, symbols or bigints.
 * Checking is a walk over keys; serialising is then V8's native stringifier, several times
 * faster than building the canonical form by hand. Anything else answers false (and takes the
 * general path), so the answer is never wrong, only sometimes slower.
 */
export function stringifiesCanonically(value: unknown): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!stringifiesCanonically(value[i])) return false;
    return true;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  // Object.keys is the order JSON.stringify writes (integer-like keys first): it must be sorted.
  const keys = Object.keys(value);
  const obj = value as Record<string, unknown>;
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !(keys[i - 1] < keys[i])) return false;
    if (!stringifiesCanonically(obj[keys[i]])) return false;
  }
  return true;
}

const SCALAR_OR_ABSENT = (v: unknown): boolean => v === null || v === undefined || typeof v === 'string';

/**
 * An event's hash and its stored line, serialising the event once. The line is the event's
 * canonical members with `seq` moved to the front (scans read it without parsing) and `hash`
 * appended; parsed back, it is the same event, so verification recomputes the same hash.
 */
export function sealEvent(event: Omit<AuditEvent, 'hash'>): { hash: string; line: string } {
  const { seq, prevHash } = event;
  const plain =
    Number.isSafeInteger(seq) &&
    typeof event.id === 'string' &&
    typeof event.time === 'string' &&
    typeof event.kind === 'string' &&
    typeof event.broker === 'string' &&
    typeof prevHash === 'string' &&
    SCALAR_OR_ABSENT(event.access) &&
    SCALAR_OR_ABSENT(event.target) &&
    SCALAR_OR_ABSENT(event.database) &&
    SCALAR_OR_ABSENT(event.sessionId) &&
    stringifiesCanonically(event.identity) &&
    stringifiesCanonically(event.statement) &&
    stringifiesCanonically(event.detail);
  if (!plain || !onlyEventMembers(event)) {
    const hash = eventHash(event);
    return { hash, line: JSON.stringify({ ...event, hash }) };
  }
  // The members before `seq` in sorted order, then those after it; undefined ones are dropped,
  // as the canonical form drops them. Neither part is ever empty (id, prevHash; time).
  const before = JSON.stringify({ access: event.access, broker: event.broker, database: event.database, detail: event.detail, id: event.id, identity: event.identity, kind: event.kind, prevHash });
  const after = JSON.stringify({ sessionId: event.sessionId, statement: event.statement, target: event.target, time: event.time });
  const head = before.slice(1, -1);
  const tail = after.slice(1, -1);
  const digest = hash('sha256', prevHash + '{' + head + ',"seq":' + seq + ',' + tail + '}', 'hex');
  return { hash: digest, line: '{"seq":' + seq + ',' + head + ',' + tail + ',"hash":"' + digest + '"}' };
}

const EVENT_MEMBER_NAMES = new Set(['seq', 'id', 'time', 'kind', 'broker', 'identity', 'target', 'database', 'sessionId', 'access', 'statement', 'detail', 'prevHash']);

/** The fast path writes exactly these members; an event with any other takes the general one. */
function onlyEventMembers(event: object): boolean {
  for (const k of Object.keys(event)) if (!EVENT_MEMBER_NAMES.has(k)) return false;
  return true;
}
