/**
 * The hash chain's byte-exact form. Verification recomputes hashes from exported JSON, so the
 * canonical form must be identical for an event in memory and the same event after a JSON round
 * trip: sorted keys, `undefined` members dropped, `toJSON` honoured, numbers as JSON writes them.
 */
import { createHash } from 'node:crypto';
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
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + canonicalJson(v);
    first = false;
  }
  return out + '}';
}

/** SHA-256 over prevHash + the canonical JSON of the event without its `hash`. Hex. */
export function eventHash(event: Omit<AuditEvent, 'hash'> & { hash?: string }): string {
  const { hash: _omit, ...body } = event;
  return createHash('sha256').update(body.prevHash).update(canonicalJson(body)).digest('hex');
}
