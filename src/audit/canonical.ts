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
