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

test('byte writers produce exactly what the mask functions return, at any offset', () => {
  const specs: [MaskFunctionName, Shape][] = [
    ['redact', 'text'], ['null', 'email'], ['hash', 'email'], ['partial', 'email'], ['partial', 'card'],
    ['partial', 'phone'], ['partial', 'ssn'], ['partial', 'iban'],
  ];
  const long = compileMasking({ key: 'test-key-0123456789abcdef', classes: { ssn: { function: 'hash', length: 64, prefix: 'h:' } } });
  const samples = ['alice@example.com', '@x', 'x@', '', 'no-at', 'a@b@c.io', '4111-1111-1111-1234', '+1 (555) 123-4567', 'DE89 3704 0044 0532 0130 00', 'naïve@exämple.com', '12', 'x'.repeat(300)];
  for (let i = 0; i < 200; i++) samples.push(Buffer.from(Array.from({ length: i % 40 }, () => 32 + Math.floor(Math.random() * 95))).toString('latin1'));
  const cases: [string, ReturnType<typeof compileMask>][] = specs.map(([fn, shape]) => [`${fn}/${shape}`, mask(fn, shape)]);
  cases.push(['hash length 64', compileMask({ function: 'hash', shape: 'ssn', options: long.classes.get('ssn')!.options }, long.key)]);
  for (const [name, m] of cases) {
    for (const typeId of [PgType.text, PgType.varchar, PgType.bpchar, PgType.name]) {
      for (const format of [0, 1] as const) {
        const w = m.writer!(format, typeId);
        assert.ok(w, `${name}: a text column has a writer`);
        for (const s of samples) {
          const value = Buffer.from(s);
          const expected = m(value, format, typeId);
          const src = Buffer.concat([Buffer.from('xyz'), value, Buffer.from('!')]);
          const out = Buffer.alloc(3 + w.max(value.length) + 2, 0xee);
          const end = w.write(src, 3, value.length, out, 3);
          if (expected === null) {
            assert.equal(end, -1, `${name} ${JSON.stringify(s)}: NULL`);
            continue;
          }
          assert.deepEqual(out.subarray(3, end), expected, `${name} ${JSON.stringify(s)}`);
          assert.ok(end - 3 <= w.max(value.length), `${name}: max() bounds the output`);
          assert.equal(out[end], 0xee, `${name}: nothing written past the end`);
          for (const b of out.subarray(3, end)) assert.ok(value.includes(b) || w.emits.includes(b), `${name}: byte ${b} is from the input or listed in emits`);
        }
      }
    }
  }
  // Shapes that work on characters, fakes, JSON and non-text types keep the function form.
  assert.equal(mask('partial', 'name').writer!(0, PgType.text), null);
  assert.equal(mask('fake', 'email').writer!(0, PgType.text), null);
  assert.equal(mask('hash', 'email').writer!(0, PgType.json), null);
  assert.equal(mask('redact', 'text').writer!(1, PgType.int4), null);
});

test('hash tokens: 64 hex characters are four independent blocks; the prefix is kept', () => {
  const long = compileMasking({ key: 'test-key-0123456789abcdef', classes: { ssn: { function: 'hash', length: 64, prefix: 'h:' } } });
  const t = hashToken(long.key!, '123-45-6789', long.classes.get('ssn')!.options);
  assert.match(t, /^h:[0-9a-f]{64}$/);
  const blocks = t.slice(2).match(/.{16}/g)!;
  assert.equal(new Set(blocks).size, 4, 'each 16-character block comes from its own key');
  assert.equal(hashToken(long.key!, '123-45-6789', { prefix: 'h:', length: 16 }), `h:${blocks[0]}`, 'a shorter token is a prefix of a longer one');
});
