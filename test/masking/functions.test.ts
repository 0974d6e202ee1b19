import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMasking, type MaskFunctionName, type Shape } from '../../src/masking/config.js';
import { ibanValid, luhnValid } from '../../src/masking/detectors.js';
import { compileContentScan, compileMask, hashToken, PgType } from '../../src/masking/functions.js';

const config = compileMasking({ key: 'test-key-0123456789abcdef' });
const options = config.classes.get('email')!.options;
const mask = (fn: MaskFunctionName, shape: Shape) => compileMask({ function: fn, shape, options }, config.key);
const text = (fn: MaskFunctionName, shape: Shape, value: string, typeId: number = PgType.text) => {
  const out = mask(fn, shape)(Buffer.from(value), 0, typeId);
  return out === null ? null : out.toString('utf8');
};

test('text values: expected output per function and shape', () => {
  const cases: [MaskFunctionName, Shape, string, string | null | RegExp][] = [
    ['redact', 'email', 'alice@example.com', '****'],
    ['redact', 'text', 'anything', '****'],
    ['null', 'email', 'alice@example.com', null],
    ['partial', 'email', 'alice@example.com', '****@example.com'],
    ['partial', 'email', 'no-at-sign', '****'],
    ['partial', 'card', '4111-1111-1111-1234', '****-****-****-1234'],
    ['partial', 'card', '4111111111111234', '************1234'],
    ['partial', 'phone', '+1 (555) 123-4567', '+* (***) ***-4567'],
    ['partial', 'ssn', '123-45-6789', '***-**-6789'],
    ['partial', 'text', 'short', '****'],
    ['hash', 'email', 'alice@example.com', /^tok_[0-9a-f]{16}$/],
    ['fake', 'email', 'alice@example.com', /^user_[0-9a-f]{10}@example\.com$/],
    ['fake', 'phone', '+1 (555) 123-4567', /^\+\d \(\d{3}\) \d{3}-\d{4}$/],
    ['fake', 'ssn', '123-45-6789', /^9\d\d-\d\d-\d{4}$/],
    ['fake', 'card', '4111-1111-1111-1111', /^\d{4}-\d{4}-\d{4}-\d{4}$/],
    ['fake', 'ip', '10.1.2.3', /^198\.1[89]\.\d+\.\d+$/],
    ['fake', 'text', 'Ab-12', /^[A-Z][a-z]-\d\d$/],
  ];
  for (const [fn, shape, input, expected] of cases) {
    const got = text(fn, shape, input);
    if (expected instanceof RegExp) assert.match(got ?? '', expected, `${fn}/${shape}`);
    else assert.equal(got, expected, `${fn}/${shape}`);
    assert.notEqual(got, input, `${fn}/${shape} must not return the clear value`);
  }
});

test('fake values keep their checksums and are deterministic', () => {
  const card = text('fake', 'card', '4111 1111 1111 1111')!;
  assert.ok(luhnValid(card.replace(/\D/g, '')), card);
  const iban = text('fake', 'iban', 'DE89370400440532013000')!;
  assert.ok(ibanValid(iban), iban);
  assert.equal(text('fake', 'email', 'a@b.io'), text('fake', 'email', 'a@b.io'));
  assert.notEqual(text('fake', 'email', 'a@b.io'), text('fake', 'email', 'c@b.io'));
});

test('hash: same input same token, different key different token', () => {
  const other = compileMasking({ key: 'another-key-0123456789' });
  const a = hashToken(config.key!, 'alice@example.com', options);
  assert.equal(a, text('hash', 'email', 'alice@example.com'));
  assert.equal(a, hashToken(config.key!, Buffer.from('alice@example.com'), options));
  assert.notEqual(a, hashToken(other.key!, 'alice@example.com', options));
  assert.notEqual(a, hashToken(config.key!, 'bob@example.com', options));
});

test('type-valid replacements for every wire form; never the clear bytes', () => {
  const int4 = Buffer.from([0, 0, 0, 42]);
  const cases: [string, MaskFunctionName, Buffer, 0 | 1, number, Buffer | null][] = [
    ['int4 text redact', 'redact', Buffer.from('42'), 0, PgType.int4, Buffer.from('0')],
    ['int4 binary redact', 'redact', int4, 1, PgType.int4, Buffer.alloc(4)],
    ['int8 binary partial', 'partial', Buffer.alloc(8, 7), 1, PgType.int8, Buffer.alloc(8)],
    ['int2 binary fake', 'fake', Buffer.from([1, 2]), 1, PgType.int2, Buffer.alloc(2)],
    ['numeric binary', 'redact', Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0, 42]), 1, PgType.numeric, Buffer.alloc(8)],
    ['float8 text', 'redact', Buffer.from('3.14'), 0, PgType.float8, Buffer.from('0')],
    ['bool binary', 'redact', Buffer.from([1]), 1, PgType.bool, Buffer.from([0])],
    ['bytea text', 'redact', Buffer.from('\\xdeadbeef'), 0, PgType.bytea, Buffer.from('\\x')],
    ['bytea binary', 'redact', Buffer.from([0xde, 0xad]), 1, PgType.bytea, Buffer.alloc(0)],
    ['date binary', 'redact', Buffer.from([0, 0, 1, 0]), 1, 1082, null],
    ['uuid text', 'hash', Buffer.from('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 0, 2950, null],
    ['text binary', 'redact', Buffer.from('secret'), 1, PgType.text, Buffer.from('****')],
    ['json text', 'redact', Buffer.from('"alice@x.io"'), 0, PgType.json, Buffer.from('"****"')],
    ['json partial', 'partial', Buffer.from('{"e":"alice@x.io"}'), 0, PgType.json, Buffer.from('"****"')],
    ['jsonb binary', 'redact', Buffer.from('\x01"alice@x.io"', 'latin1'), 1, PgType.jsonb, Buffer.from('\x01"****"', 'latin1')],
    ['null stays null', 'redact', null as unknown as Buffer, 0, PgType.text, null],
  ];
  for (const [name, fn, value, format, typeId, expected] of cases) {
    const got = mask(fn, 'email')(value, format, typeId);
    assert.deepEqual(got, expected, name);
  }
});

test('hash on integers: a keyed integer, equal across text and binary forms', () => {
  const m = mask('hash', 'text');
  const textOut = m(Buffer.from('42'), 0, PgType.int8)!.toString();
  const bin = Buffer.alloc(8);
  bin.writeBigInt64BE(42n);
  const binOut = m(bin, 1, PgType.int8)!;
  assert.match(textOut, /^\d+$/);
  assert.notEqual(textOut, '42');
  assert.equal(binOut.readBigInt64BE(0).toString(), textOut);
});

test('jsonb binary hash keeps the version byte and hashes the JSON text', () => {
  const m = mask('hash', 'text');
  const bin = m(Buffer.from('\x01"a@b.io"', 'latin1'), 1, PgType.jsonb)!;
  const txt = m(Buffer.from('"a@b.io"'), 0, PgType.jsonb)!;
  assert.equal(bin[0], 1);
  assert.deepEqual(bin.subarray(1), txt);
  assert.match(txt.toString(), /^"tok_[0-9a-f]{16}"$/);
});

test('content scan: replaces hits, passes clean values as the same buffer', () => {
  const scan = compileContentScan(['email', 'ssn']);
  const clean = Buffer.from('just a note');
  assert.equal(scan(clean, 0, PgType.text), clean);
  assert.equal(scan(Buffer.from('reach me at bob@x.io'), 0, PgType.text)!.toString(), 'reach me at ****');
  const int = Buffer.from('123456789');
  assert.equal(scan(int, 0, PgType.int4), int);
});
