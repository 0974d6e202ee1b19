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
 * The same values fastJson writes in one pass (sealEvent no longer calls this); kept for callers
 * and tests that check a record is in canonical order, never wrong, only sometimes false.
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

/** Printable ASCII without `"` and `\\`: JSON writes such a string as it is, between quotes. */
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A string as JSON.stringify writes it. */
function jsonString(s: string): string {
  return PLAIN_STRING.test(s) ? '"' + s + '"' : JSON.stringify(s);
}

/**
 * JSON of deeply frozen values, remembered: a session's identity, a statement's table list.
 * Frozen all the way down, they cannot change, so their text cannot go stale.
 */
const frozenJson = new WeakMap<object, string>();
/** Set by fastJson: the value it just wrote is deeply frozen (or a primitive). */
let wroteFrozen = true;

/**
 * The canonical JSON of plain data whose objects have their keys in sorted order, written in
 * one pass; undefined for anything else (unsorted keys, `toJSON`, class instances, functions,
 * symbols, bigints), which then takes the general path. Where it answers, the answer equals
 * canonicalJson (tested against the reference form).
 */
export function fastJson(value: unknown): string | undefined {
  wroteFrozen = true;
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return jsonString(value);
    case 'number':
      // JSON writes a finite number as String does, and null for the others.
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      return objectFastJson(value);
    default:
      return undefined;
  }
}

function objectFastJson(value: object): string | undefined {
  const frozen = Object.isFrozen(value);
  if (frozen) {
    const known = frozenJson.get(value);
    if (known !== undefined) {
      wroteFrozen = true;
      return known;
    }
  }
  let deep = frozen;
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      // In arrays, undefined is written as null (canonicalJson and JSON.stringify agree).
      const j = v === undefined ? 'null' : fastJson(v);
      if (j === undefined) return undefined;
      deep &&= wroteFrozen;
      out += i === 0 ? j : ',' + j;
    }
    out += ']';
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return undefined;
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
    // Object.keys is the order JSON.stringify writes (integer-like keys first): it must be sorted.
    const keys = Object.keys(value);
    const obj = value as Record<string, unknown>;
    out = '{';
    let first = true;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (i > 0 && !(keys[i - 1] < k)) return undefined;
      const v = obj[k];
      if (v === undefined) continue;
      const j = fastJson(v);
      if (j === undefined) return undefined;
      deep &&= wroteFrozen;
      out += (first ? '' : ',') + quotedKey(k) + j;
      first = false;
    }
    out += '}';
  }
  if (deep) frozenJson.set(value, out);
  wroteFrozen = deep;
  return out;
}

/**
 * JSON of strings that recur from record to record (statement text, fingerprints, table and
 * session names), remembered. Unique values (ids, times, hashes) do not go through it. When full
 * it starts again, so it holds what is in use now.
 */
const recurringJson = new Map<string, string>();
function recurring(s: string): string {
  let j = recurringJson.get(s);
  if (j === undefined) {
    j = jsonString(s);
    if (recurringJson.size >= 4096) recurringJson.clear();
    recurringJson.set(s, j);
  }
  return j;
}

/** `,"key":value` for a member that is set; '' when it is undefined; undefined when it cannot be written fast. */
function member(quoted: string, v: unknown): string | undefined {
  if (v === undefined) return '';
  const j = fastJson(v);
  return j === undefined ? undefined : quoted + j;
}

/** member() for values that mostly recur: strings go through the `recurring` cache. */
function recurringMember(quoted: string, v: unknown): string | undefined {
  return typeof v === 'string' ? quoted + recurring(v) : member(quoted, v);
}

const STATEMENT_MEMBERS = new Set(['decision', 'durationMs', 'error', 'fingerprint', 'kind', 'maskedColumns', 'protocol', 'ref', 'requestId', 'rows', 'rule', 'tables', 'text', 'unmaskedColumns']);

/**
 * A statement record (two per statement on the gateway's path), written member by member in
 * sorted order without walking its keys twice. Records with other members take fastJson.
 */
function statementJson(st: unknown): string | undefined {
  if (st === null || typeof st !== 'object' || Object.getPrototypeOf(st) !== Object.prototype) return fastJson(st);
  for (const k of Object.keys(st)) if (!STATEMENT_MEMBERS.has(k)) return fastJson(st);
  if (typeof (st as { toJSON?: unknown }).toJSON === 'function') return undefined;
  const s = st as Record<string, unknown>;
  const parts = [
    recurringMember(',"decision":', s.decision),
    member(',"durationMs":', s.durationMs),
    member(',"error":', s.error),
    recurringMember(',"fingerprint":', s.fingerprint),
    recurringMember(',"kind":', s.kind),
    member(',"maskedColumns":', s.maskedColumns),
    recurringMember(',"protocol":', s.protocol),
    member(',"ref":', s.ref),
    member(',"requestId":', s.requestId),
    member(',"rows":', s.rows),
    recurringMember(',"rule":', s.rule),
    member(',"tables":', s.tables),
    recurringMember(',"text":', s.text),
    member(',"unmaskedColumns":', s.unmaskedColumns),
  ];
  let out = '';
  for (const p of parts) {
    if (p === undefined) return undefined;
    out += p;
  }
  return out === '' ? '{}' : '{' + out.slice(1) + '}';
}

/**
 * An event's hash and its stored line, serialising the event once. The line is the event's
 * canonical members with `seq` moved to the front (scans read it without parsing) and `hash`
 * appended; parsed back, it is the same event, so verification recomputes the same hash.
 */
export function sealEvent(event: Omit<AuditEvent, 'hash'>): { hash: string; line: string } {
  const { seq, prevHash } = event;
  const parts =
    Number.isSafeInteger(seq) && typeof event.id === 'string' && typeof event.time === 'string' && typeof event.kind === 'string' && typeof event.broker === 'string' && typeof prevHash === 'string' && onlyEventMembers(event)
      ? [
          member('"access":', event.access),
          recurringMember(',"database":', event.database),
          member(',"detail":', event.detail),
          member(',"identity":', event.identity),
          event.statement === undefined ? '' : prefixed(',"statement":', statementJson(event.statement)),
          recurringMember(',"sessionId":', event.sessionId),
          recurringMember(',"target":', event.target),
        ]
      : undefined;
  if (parts === undefined || parts.includes(undefined)) {
    const hash = eventHash(event);
    return { hash, line: JSON.stringify({ ...event, hash }) };
  }
  const [access, database, detail, identity, statement, sessionId, target] = parts as string[];
  // The members before `seq` in sorted order, then those after it. Neither part is ever empty
  // (broker, prevHash; time).
  const head = (access === '' ? '' : access + ',') + '"broker":' + recurring(event.broker) + database + detail + ',"id":' + jsonString(event.id) + identity + ',"kind":' + recurring(event.kind) + ',"prevHash":' + jsonString(prevHash);
  const time = '"time":' + jsonString(event.time);
  const rest = sessionId + statement + target;
  const tail = rest === '' ? time : rest.slice(1) + ',' + time;
  const digest = hash('sha256', prevHash + '{' + head + ',"seq":' + seq + ',' + tail + '}', 'hex');
  return { hash: digest, line: '{"seq":' + seq + ',' + head + ',' + tail + ',"hash":"' + digest + '"}' };
}

function prefixed(quoted: string, json: string | undefined): string | undefined {
  return json === undefined ? undefined : quoted + json;
}

const EVENT_MEMBER_NAMES = new Set(['seq', 'id', 'time', 'kind', 'broker', 'identity', 'target', 'database', 'sessionId', 'access', 'statement', 'detail', 'prevHash']);

/** The fast path writes exactly these members; an event with any other takes the general one. */
function onlyEventMembers(event: object): boolean {
  for (const k of Object.keys(event)) if (!EVENT_MEMBER_NAMES.has(k)) return false;
  return true;
}
