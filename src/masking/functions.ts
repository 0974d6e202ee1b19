/**
 * Mask functions over raw field bytes, as they travel in a DataRow or COPY row.
 *
 * A value's bytes depend on the wire format and the type: text-carrying types (text, varchar,
 * json, …) hold text in both formats (binary jsonb adds a version byte); other types in binary
 * hold their own encoding. A replacement must be valid for the type, or clients fail to decode
 * the row, so non-text types get a type-valid neutral value (zero, false, empty, or NULL).
 * Clear bytes are never returned for a masked column.
 */
import { createHash, createHmac } from 'node:crypto';
import type { ValueMask, ValueWriter } from '../gateway/engine.js';
import type { MaskFunctionName, MaskOptions, Shape } from './config.js';
import { redactDetected, type DetectorName } from './detectors.js';
import { sipHash, sipKey, sipOut, writeSipHex, type SipKey } from './siphash.js';

/** A mask over one value, with its byte-level form where one exists (the row path writes without allocating). */
export type MaskFn = ValueMask;
export type ByteWriter = ValueWriter;

/** PostgreSQL type OIDs the masks distinguish (pg_type.dat). */
export const PgType = {
  bool: 16,
  bytea: 17,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  numeric: 1700,
  jsonb: 3802,
} as const;

type TypeKind = 'text' | 'json' | 'int' | 'float' | 'numeric' | 'bool' | 'bytea' | 'other';

function typeKind(typeId: number): TypeKind {
  switch (typeId) {
    case PgType.text:
    case PgType.varchar:
    case PgType.bpchar:
    case PgType.name:
    case PgType.unknown:
    case PgType.xml:
      return 'text';
    case PgType.json:
    case PgType.jsonb:
      return 'json';
    case PgType.int2:
    case PgType.int4:
    case PgType.int8:
    case PgType.oid:
      return 'int';
    case PgType.float4:
    case PgType.float8:
      return 'float';
    case PgType.numeric:
      return 'numeric';
    case PgType.bool:
      return 'bool';
    case PgType.bytea:
      return 'bytea';
    default:
      return 'other';
  }
}

/** True when values of this type carry text that the shaped masks can work on. */
export function carriesText(typeId: number): boolean {
  const k = typeKind(typeId);
  return k === 'text' || k === 'json';
}

export interface MaskSpec {
  function: MaskFunctionName;
  shape: Shape;
  options: MaskOptions;
}

/** The binary jsonb format puts a version byte before the JSON text. */
const JSONB_VERSION = 1;

const INT_WIDTH: Record<number, number> = { [PgType.int2]: 2, [PgType.int4]: 4, [PgType.int8]: 8, [PgType.oid]: 4 };
const ZERO_TEXT = Buffer.from('0');
const FALSE_TEXT = Buffer.from('f');
const EMPTY_BYTEA_TEXT = Buffer.from('\\x');
const EMPTY = Buffer.alloc(0);
const STAR = 0x2a;

/**
 * A type-valid neutral value for a non-text type. Binary numeric zero is ndigits=0, weight=0,
 * sign=0, dscale=0: eight zero bytes.
 */
function neutral(kind: TypeKind, format: 0 | 1, typeId: number): Buffer | null {
  switch (kind) {
    case 'int':
      return format === 0 ? ZERO_TEXT : Buffer.alloc(INT_WIDTH[typeId]);
    case 'float':
      return format === 0 ? ZERO_TEXT : Buffer.alloc(typeId === PgType.float4 ? 4 : 8);
    case 'numeric':
      return format === 0 ? ZERO_TEXT : Buffer.alloc(8);
    case 'bool':
      return format === 0 ? FALSE_TEXT : Buffer.alloc(1);
    case 'bytea':
      return format === 0 ? EMPTY_BYTEA_TEXT : EMPTY;
    case 'text':
    case 'json':
    case 'other':
      return null;
    default: {
      const never: never = kind;
      return never;
    }
  }
}

/** A keyed stream of bytes for one value: HMAC-SHA256, extended by hashing when more is needed. */
class Keyed {
  constructor(private readonly key: Buffer) {}

  bytes(domain: string, value: Buffer | string, n: number): Buffer {
    let out = createHmac('sha256', this.key).update(`${domain}\0`).update(value).digest();
    while (out.length < n) out = Buffer.concat([out, createHash('sha256').update(out).digest()]);
    return out;
  }
}

const keyedCache = new WeakMap<Buffer, Keyed>();
function keyed(key: Buffer | null): Keyed {
  if (key === null) throw new Error('masking: hash and fake need a key; compileMasking enforces this');
  let k = keyedCache.get(key);
  if (!k) keyedCache.set(key, (k = new Keyed(key)));
  return k;
}

/** Token hex characters per SipHash block, and the most blocks a token can have (length ≤ 64). */
const BLOCK_CHARS = 16;
const MAX_BLOCKS = 4;

const tokenKeysCache = new WeakMap<Buffer, SipKey[]>();
/**
 * One SipHash key per 16 hex characters of a token, each derived from the deployment key by
 * HMAC-SHA256 with its own label, so blocks are independent and the deployment key is never
 * used directly.
 */
function tokenKeys(key: Buffer | null): SipKey[] {
  if (key === null) throw new Error('masking: hash and fake need a key; compileMasking enforces this');
  let keys = tokenKeysCache.get(key);
  if (!keys) {
    keys = Array.from({ length: MAX_BLOCKS }, (_, i) => sipKey(createHmac('sha256', key).update(`dbgov mask token ${i}`).digest().subarray(0, 16)));
    tokenKeysCache.set(key, keys);
  }
  return keys;
}

/** Writes prefix + `length` hex characters of the keyed token of src[start, start + len). */
function writeToken(keys: SipKey[], prefix: Buffer, length: number, src: Buffer, start: number, len: number, out: Buffer, pos: number): number {
  for (let i = 0; i < prefix.length; i++) out[pos++] = prefix[i];
  for (let b = 0, left = length; left > 0; b++, left -= BLOCK_CHARS) {
    sipHash(keys[b], src, start, len);
    pos = writeSipHex(out, pos, Math.min(left, BLOCK_CHARS));
  }
  return pos;
}

function tokenOf(keys: SipKey[], prefix: Buffer, length: number, value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + length);
  writeToken(keys, prefix, length, value, 0, value.length, out, 0);
  return out;
}

/**
 * A deterministic token: prefix + hex of a keyed PRF (SipHash-2-4 under keys derived from the
 * deployment key) of the value. Same key and value, same token, so joins and GROUP BY work.
 */
export function hashToken(key: Buffer, text: Buffer | string, options: Pick<MaskOptions, 'prefix' | 'length'>): string {
  const value = typeof text === 'string' ? Buffer.from(text) : text;
  return tokenOf(tokenKeys(key), Buffer.from(options.prefix), options.length, value).toString('latin1');
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** partial: keep the email domain, or the last N digits (card, phone, ssn, iban), or the last N characters. */
function partialText(text: Buffer, shape: Shape, options: MaskOptions): Buffer {
  switch (shape) {
    case 'email': {
      // A plain loop: Buffer#lastIndexOf crosses into C++ and costs more than the scan.
      let at = text.length - 1;
      while (at >= 0 && text[at] !== 0x40) at--;
      if (at <= 0) return Buffer.from(options.replacement);
      const out = Buffer.allocUnsafe(4 + text.length - at);
      out.fill(STAR, 0, 4);
      text.copy(out, 4, at);
      return out;
    }
    case 'card':
    case 'phone':
    case 'ssn':
    case 'iban': {
      // Digits other than the last N become *, separators stay: the shape is visible, the number is not.
      const out = Buffer.from(text);
      let kept = 0;
      for (let i = out.length - 1; i >= 0; i--) {
        const c = out[i];
        const alnum = isDigit(c) || (shape === 'iban' && ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)));
        if (!alnum) continue;
        if (kept < options.keepLast) kept++;
        else out[i] = STAR;
      }
      return out;
    }
    case 'name':
    case 'address':
    case 'secret':
    case 'ip':
    case 'text': {
      const s = text.toString('utf8');
      const chars = [...s];
      if (chars.length <= options.keepLast * 2) return Buffer.from(options.replacement);
      return Buffer.from(options.replacement + chars.slice(-options.keepLast).join(''));
    }
    default: {
      const never: never = shape;
      return never;
    }
  }
}

const FIRST_NAMES = ['Alex', 'Sam', 'Jordan', 'Taylor', 'Morgan', 'Casey', 'Riley', 'Jamie', 'Avery', 'Quinn', 'Robin', 'Drew', 'Kai', 'Rowan', 'Sage', 'Emery'];
const LAST_NAMES = ['Smith', 'Garcia', 'Chen', 'Okafor', 'Novak', 'Silva', 'Kim', 'Müller', 'Rossi', 'Dubois', 'Singh', 'Larsen', 'Tanaka', 'Costa', 'Ivanov', 'Haddad'];
const STREETS = ['Maple', 'Oak', 'Cedar', 'Elm', 'Pine', 'Birch', 'Willow', 'Aspen'];

/** Replaces each digit with a keyed digit; keeps separators and letters. */
function fakeDigits(text: string, rnd: Buffer): string {
  let i = 0;
  return text.replace(/\d/g, () => String(rnd[i++ % rnd.length] % 10));
}

/** fake: a keyed, format-preserving stand-in. Never a real value: reserved ranges where they exist. */
function fakeText(text: Buffer, shape: Shape, k: Keyed): Buffer {
  const s = text.toString('utf8');
  const rnd = k.bytes(`fake:${shape}`, text, Math.max(32, s.length));
  const hex = rnd.toString('hex');
  switch (shape) {
    case 'email':
      return Buffer.from(`user_${hex.slice(0, 10)}@example.com`);
    case 'phone':
      return Buffer.from(fakeDigits(s, rnd));
    case 'ssn': {
      // Area numbers 900-999 are never issued, so a fake can never be someone's SSN.
      const digits = s.replace(/\D/g, '');
      const fake = `9${fakeDigits('00000000', rnd)}`;
      return Buffer.from(digits.length === 9 && /^\d{3}-\d{2}-\d{4}$/.test(s) ? `${fake.slice(0, 3)}-${fake.slice(3, 5)}-${fake.slice(5)}` : fake);
    }
    case 'card': {
      const count = s.replace(/\D/g, '').length;
      if (count < 2) return Buffer.from(fakeDigits(s, rnd));
      const body = fakeDigits('0'.repeat(count - 1), rnd);
      const digits = `4${body.slice(1)}`;
      const full = digits + luhnDigit(digits);
      let i = 0;
      return Buffer.from(s.replace(/\d/g, () => full[i++]));
    }
    case 'name':
      return Buffer.from(`${FIRST_NAMES[rnd[0] % FIRST_NAMES.length]} ${LAST_NAMES[rnd[1] % LAST_NAMES.length]}`);
    case 'address':
      return Buffer.from(`${100 + (rnd.readUInt16BE(0) % 9900)} ${STREETS[rnd[2] % STREETS.length]} St`);
    case 'ip':
      // 198.18.0.0/15 (RFC 2544) and 2001:db8::/32 (RFC 3849) are reserved for tests and docs.
      return Buffer.from(s.includes(':') ? `2001:db8::${hex.slice(0, 4)}:${hex.slice(4, 8)}` : `198.${18 + (rnd[0] & 1)}.${rnd[1]}.${rnd[2]}`);
    case 'iban': {
      const compact = s.replace(/\s/g, '').toUpperCase();
      const country = /^[A-Z]{2}/.test(compact) ? compact.slice(0, 2) : 'DE';
      const bban = fakeDigits('0'.repeat(Math.max(11, compact.length - 4)), rnd);
      return Buffer.from(country + ibanCheckDigits(country, bban) + bban);
    }
    case 'secret':
      return Buffer.from(`fake_${hex.slice(0, 24)}`);
    case 'text': {
      // Letters stay letters of the same case, digits stay digits: lengths and layouts survive.
      let i = 0;
      let out = '';
      for (const ch of s) {
        const r = rnd[i++ % rnd.length];
        if (ch >= 'a' && ch <= 'z') out += String.fromCharCode(97 + (r % 26));
        else if (ch >= 'A' && ch <= 'Z') out += String.fromCharCode(65 + (r % 26));
        else if (ch >= '0' && ch <= '9') out += String(r % 10);
        else out += ch;
      }
      return Buffer.from(out);
    }
    default: {
      const never: never = shape;
      return never;
    }
  }
}

function luhnDigit(payload: string): string {
  let sum = 0;
  for (let i = payload.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = payload.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

function ibanCheckDigits(country: string, bban: string): string {
  const numeric = (bban + country + '00').replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let rem = 0;
  for (const d of numeric) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  return String(98 - rem).padStart(2, '0');
}

/** Wraps masked text as a JSON string, so json/jsonb columns stay valid JSON. */
function jsonString(text: Buffer): Buffer {
  return Buffer.from(JSON.stringify(text.toString('utf8')));
}

/** Precomputed per (format, type): the work done for each value of a column. */
type Impl = (value: Buffer) => Buffer | null;

function specialise(spec: MaskSpec, key: Buffer | null, format: 0 | 1, typeId: number): Impl {
  const kind = typeKind(typeId);
  if (spec.function === 'null') return () => null;
  if (kind !== 'text' && kind !== 'json') {
    if (spec.function === 'hash' && kind === 'int') return keyedInt(tokenKeys(key)[0], format, typeId);
    const replacement = neutral(kind, format, typeId);
    return () => replacement;
  }
  const binaryJsonb = format === 1 && typeId === PgType.jsonb;
  const wrap = (text: Buffer): Buffer => {
    const json = kind === 'json' ? jsonString(text) : text;
    return binaryJsonb ? Buffer.concat([Buffer.from([JSONB_VERSION]), json]) : json;
  };
  const textOf = (value: Buffer): Buffer => (binaryJsonb ? value.subarray(1) : value);
  switch (spec.function) {
    case 'redact': {
      const fixed = wrap(Buffer.from(spec.options.replacement));
      return () => fixed;
    }
    case 'hash': {
      const keys = tokenKeys(key);
      const prefix = Buffer.from(spec.options.prefix);
      const { length } = spec.options;
      return (value) => wrap(tokenOf(keys, prefix, length, textOf(value)));
    }
    case 'partial':
      // Partial masking of JSON text could keep structure that carries the value: redact instead.
      if (kind === 'json') {
        const fixed = wrap(Buffer.from(spec.options.replacement));
        return () => fixed;
      }
      return (value) => partialText(value, spec.shape, spec.options);
    case 'fake': {
      const k = keyed(key);
      return (value) => wrap(fakeText(kind === 'json' ? Buffer.from(jsonUnquote(textOf(value))) : textOf(value), spec.shape, k));
    }
    default: {
      const never: never = spec.function;
      return never;
    }
  }
}

/** A JSON string's content, or the JSON text itself for other JSON values. */
function jsonUnquote(text: Buffer): string {
  const s = text.toString('utf8');
  if (s.startsWith('"')) {
    try {
      const v: unknown = JSON.parse(s);
      if (typeof v === 'string') return v;
    } catch {
      return s;
    }
  }
  return s;
}

/** hash on an integer column: a keyed integer of the same width, from the decimal text (so text and binary agree). */
function keyedInt(k: SipKey, format: 0 | 1, typeId: number): Impl {
  const width = INT_WIDTH[typeId];
  return (value) => {
    const decimal = format === 0 ? value.toString('latin1') : readInt(value, width);
    if (decimal === null) return format === 0 ? ZERO_TEXT : Buffer.alloc(width);
    const input = Buffer.from(`int:${decimal}`, 'latin1');
    sipHash(k, input, 0, input.length);
    const mac = Buffer.allocUnsafe(8);
    mac.writeInt32BE(sipOut.hi, 0);
    mac.writeInt32BE(sipOut.lo, 4);
    // Keep it non-negative so an ORDER BY does not hint at the sign of the original.
    mac[0] &= 0x7f;
    const out = mac.subarray(0, width);
    if (format === 1) return Buffer.from(out);
    return Buffer.from(width === 8 ? out.readBigInt64BE(0).toString() : width === 4 ? String(out.readInt32BE(0)) : String(out.readInt16BE(0)));
  };
}

function readInt(value: Buffer, width: number): string | null {
  if (value.length !== width) return null;
  return width === 8 ? value.readBigInt64BE(0).toString() : width === 4 ? String(value.readInt32BE(0)) : String(value.readInt16BE(0));
}

/**
 * The byte-level form of a mask for one (format, type), or null where only the function form
 * exists (fakes, JSON, non-text types, shapes that work on characters). Each writer produces
 * exactly the bytes the function form returns for the same value.
 */
export function byteWriter(spec: MaskSpec, key: Buffer | null, format: 0 | 1, typeId: number): ByteWriter | null {
  if (spec.function === 'null') return { max: () => 0, write: () => -1, emits: EMPTY };
  // Text-carrying types hold the same text bytes in both formats.
  if (typeKind(typeId) !== 'text') return null;
  switch (spec.function) {
    case 'redact': {
      const fixed = Buffer.from(spec.options.replacement);
      return { max: () => fixed.length, write: (_src, _start, _len, out, pos) => pos + fixed.copy(out, pos), emits: fixed };
    }
    case 'hash': {
      const keys = tokenKeys(key);
      const prefix = Buffer.from(spec.options.prefix);
      const { length } = spec.options;
      return {
        max: () => prefix.length + length,
        write: (src, start, len, out, pos) => writeToken(keys, prefix, length, src, start, len, out, pos),
        emits: Buffer.concat([prefix, Buffer.from('0123456789abcdef')]),
      };
    }
    case 'partial':
      return partialWriter(spec.shape, spec.options);
    case 'fake':
      return null;
    default: {
      const never: never = spec.function;
      return never;
    }
  }
}

/** partial as a writer, for the shapes that work on bytes (the same rules as partialText). */
function partialWriter(shape: Shape, options: MaskOptions): ByteWriter | null {
  switch (shape) {
    case 'email': {
      const replacement = Buffer.from(options.replacement);
      return {
        emits: Buffer.concat([replacement, Buffer.from([STAR])]),
        max: (len) => Math.max(replacement.length, 4 + len),
        write: (src, start, len, out, pos) => {
          let at = start + len - 1;
          while (at >= start && src[at] !== 0x40) at--;
          if (at <= start) return pos + replacement.copy(out, pos);
          out[pos++] = STAR;
          out[pos++] = STAR;
          out[pos++] = STAR;
          out[pos++] = STAR;
          for (let i = at, end = start + len; i < end; i++) out[pos++] = src[i];
          return pos;
        },
      };
    }
    case 'card':
    case 'phone':
    case 'ssn':
    case 'iban': {
      const iban = shape === 'iban';
      const keep = options.keepLast;
      return {
        emits: Buffer.from([STAR]),
        max: (len) => len,
        write: (src, start, len, out, pos) => {
          let kept = 0;
          for (let i = len - 1; i >= 0; i--) {
            const c = src[start + i];
            const alnum = isDigit(c) || (iban && ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)));
            if (alnum && kept++ >= keep) out[pos + i] = STAR;
            else out[pos + i] = c;
          }
          return pos + len;
        },
      };
    }
    case 'name':
    case 'address':
    case 'secret':
    case 'ip':
    case 'text':
      return null;
    default: {
      const never: never = shape;
      return never;
    }
  }
}

/**
 * Compiles one mask. The work that depends only on (format, type) is done once and reused
 * while consecutive values share them, which is every value of a result column.
 */
export function compileMask(spec: MaskSpec, key: Buffer | null): MaskFn {
  let lastFormat = -1;
  let lastType = -1;
  let impl: Impl = () => null;
  const fn: MaskFn = (value, format, typeId) => {
    if (spec.function === 'null') return null;
    if (value === null) return null;
    if (format !== lastFormat || typeId !== lastType) {
      impl = specialise(spec, key, format, typeId);
      lastFormat = format;
      lastType = typeId;
    }
    return impl(value);
  };
  fn.writer = (format, typeId) => byteWriter(spec, key, format, typeId);
  return fn;
}

/**
 * The content safety net for an unclassified column: detector hits inside text values are
 * replaced; values without hits pass through as the same Buffer.
 */
export function compileContentScan(detectors: readonly DetectorName[], replacement = '****'): MaskFn {
  return (value, format, typeId) => {
    if (value === null || !carriesText(typeId)) return value;
    const jsonbBinary = format === 1 && typeId === PgType.jsonb;
    const text = (jsonbBinary ? value.subarray(1) : value).toString('utf8');
    const scrubbed = redactDetected(text, replacement, detectors);
    if (scrubbed === text) return value;
    const body = Buffer.from(scrubbed);
    return jsonbBinary ? Buffer.concat([Buffer.from([JSONB_VERSION]), body]) : body;
  };
}
