import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeDataRow, decodeRowDescription } from '../../../../src/gateway/postgres/protocol/backend.js';
import { decodeBind, decodeExecute, decodeParse, decodeQuery, decodeStartup, decodeTarget } from '../../../../src/gateway/postgres/protocol/frontend.js';
import { FrameReader, MessageTooLargeError } from '../../../../src/gateway/postgres/protocol/reader.js';
import * as ser from '../../../../src/gateway/postgres/protocol/serializer.js';
import { ProtocolError } from '../../../../src/shared/errors.js';

/** Captured from PostgreSQL 15: `SELECT 1 AS one, NULL::text AS n, 'x' AS s` → T D C Z. */
const SERVER_STREAM = Buffer.from(
  '540000004400036f6e6500000000000000000000170004ffffffff00006e0000000000000000000019ffffffffffff0000730000000000000000000019ffffffffffff0000440000001400030000000131ffffffff0000000178430000000d53454c4543542031005a0000000549',
  'hex',
);
/** A pipelined extended batch as pg sends it. */
const CLIENT_STREAM = Buffer.concat([ser.parse('s1', 'SELECT $1::int'), ser.bind('p1', 's1'), ser.describePortal('p1'), ser.execute('p1'), ser.sync(), ser.query('SELECT 1')]);

function frames(reader: FrameReader, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) {
    reader.push(c);
    for (let m = reader.next(); m !== null; m = reader.next()) out.push(Buffer.from(m));
  }
  return out;
}

const streams: { name: string; bytes: Buffer; codes: string }[] = [
  { name: 'server result', bytes: SERVER_STREAM, codes: 'TDCZ' },
  { name: 'client batch', bytes: CLIENT_STREAM, codes: 'PBDESQ' },
];

for (const s of streams) {
  test(`${s.name}: same messages at every split offset`, () => {
    const whole = frames(new FrameReader(1 << 20), [s.bytes]);
    assert.equal(whole.map((m) => String.fromCharCode(m[0])).join(''), s.codes);
    for (let i = 0; i <= s.bytes.length; i++) {
      assert.deepEqual(frames(new FrameReader(1 << 20), [s.bytes.subarray(0, i), s.bytes.subarray(i)]), whole, `split at ${i}`);
    }
    for (let i = 1; i < s.bytes.length; i += 7) {
      const j = Math.min(s.bytes.length, i + 11);
      assert.deepEqual(frames(new FrameReader(1 << 20), [s.bytes.subarray(0, i), s.bytes.subarray(i, j), s.bytes.subarray(j)]), whole, `splits at ${i}, ${j}`);
    }
    const bytewise = [...s.bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(frames(new FrameReader(1 << 20), bytewise), whole, 'one byte at a time');
  });
}

test('messages inside one chunk are zero-copy slices of it', () => {
  const r = new FrameReader(1 << 20);
  r.push(SERVER_STREAM);
  const first = r.next()!;
  assert.equal(first.buffer, SERVER_STREAM.buffer);
  assert.equal(first.byteOffset, SERVER_STREAM.byteOffset);
});

test('length errors are protocol errors, raised on the header', () => {
  const cases: { bytes: Buffer; error: new (...a: never[]) => Error }[] = [
    { bytes: Buffer.from([0x51, 0, 0, 0, 3]), error: ProtocolError },
    { bytes: Buffer.from([0x51, 0, 0, 0x10, 0]), error: MessageTooLargeError },
    { bytes: Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]), error: MessageTooLargeError },
  ];
  for (const k of cases) {
    const r = new FrameReader(1024);
    r.push(k.bytes);
    assert.throws(() => r.next(), k.error);
  }
});

test('startup packets: split, SSLRequest, cancel, bad lengths', () => {
  const startup = ser.startupMessage([['user', 'u'], ['database', 'd'], ['application_name', 'psql']]);
  for (let i = 0; i <= startup.length; i++) {
    const r = new FrameReader(1024);
    r.push(startup.subarray(0, i));
    const early = r.nextStartup();
    r.push(startup.subarray(i));
    const packet = early ?? r.nextStartup();
    assert.ok(packet !== null, `split at ${i}`);
    const decoded = decodeStartup(packet);
    assert.equal(decoded.kind, 'startup');
    if (decoded.kind === 'startup') assert.deepEqual([...decoded.params], [['user', 'u'], ['database', 'd'], ['application_name', 'psql']]);
  }
  assert.deepEqual(decodeStartup(ser.sslRequest()), { kind: 'ssl' });
  assert.deepEqual(decodeStartup(ser.cancelRequest(12, -5)), { kind: 'cancel', pid: 12, key: -5 });
  for (const bad of [Buffer.from([0, 0, 0, 4, 0, 0, 0, 0]), Buffer.from([0, 1, 0, 0, 0, 3, 0, 0])]) {
    const r = new FrameReader(1024);
    r.push(bad);
    assert.throws(() => r.nextStartup(), ProtocolError);
  }
  assert.throws(() => decodeStartup(Buffer.from([0, 0, 0, 8, 0, 2, 0, 0])), ProtocolError);
});

test('decoders read real frames', () => {
  const [t, d] = frames(new FrameReader(1 << 20), [SERVER_STREAM]);
  assert.deepEqual(
    decodeRowDescription(t).map((c) => [c.name, c.typeId, c.format]),
    [
      ['one', 23, 0],
      ['n', 25, 0],
      ['s', 25, 0],
    ],
  );
  assert.deepEqual(decodeDataRow(d), [Buffer.from('1'), null, Buffer.from('x')]);
  assert.deepEqual(ser.dataRow(decodeDataRow(d)), d, 'DataRow re-encodes byte for byte');
  assert.deepEqual(decodeParse(ser.parse('s1', 'SELECT 1')), { name: 's1', sql: 'SELECT 1' });
  assert.deepEqual(decodeBind(ser.bind('p', 's')), { portal: 'p', statement: 's' });
  assert.deepEqual(decodeExecute(ser.execute('p', 10)), { portal: 'p' });
  assert.deepEqual(decodeTarget(ser.describePortal('p')), { kind: 'P', name: 'p' });
  assert.equal(decodeQuery(ser.query('SELECT 2')), 'SELECT 2');
});

test('property: random bytes in random chunks raise nothing but ProtocolError', () => {
  const decoders = [decodeQuery, decodeParse, decodeBind, decodeExecute, decodeTarget];
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
      const r = new FrameReader(256);
      try {
        for (const c of chunks) {
          r.push(Buffer.from(c));
          for (let m = r.next(); m !== null; m = r.next()) {
            for (const decode of decoders) {
              try {
                decode(m);
              } catch (e) {
                if (!(e instanceof ProtocolError)) throw e;
              }
            }
          }
        }
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
});
