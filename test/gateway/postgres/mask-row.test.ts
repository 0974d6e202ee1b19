import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { MaskPlan, ResultColumn, ValueMask } from '../../../src/gateway/engine.js';
import { RowMasker } from '../../../src/gateway/postgres/mask-row.js';
import { decodeDataRow } from '../../../src/gateway/postgres/protocol/backend.js';
import * as ser from '../../../src/gateway/postgres/protocol/serializer.js';
import { compileMasking } from '../../../src/masking/config.js';
import { compileContentScan, compileMask, PgType } from '../../../src/masking/functions.js';

const config = compileMasking({ key: 'test-key-0123456789abcdef' });
const options = config.classes.get('email')!.options;

const col = (index: number, typeId: number, format: 0 | 1 = 0): ResultColumn => ({ index, name: `c${index}`, typeId, format });

/** The straightforward rewrite the slab path must equal: decode, mask each field, encode. */
function expected(msg: Buffer, plan: MaskPlan, columns: ResultColumn[]): Buffer {
  const fields = decodeDataRow(msg);
  for (const c of plan.columns) {
    if (c.index >= fields.length) continue;
    fields[c.index] = c.mask(fields[c.index], columns[c.index].format, columns[c.index].typeId);
  }
  return ser.dataRow(fields);
}

const masks: ValueMask[] = [
  compileMask({ function: 'partial', shape: 'email', options }, null),
  compileMask({ function: 'partial', shape: 'phone', options }, null),
  compileMask({ function: 'hash', shape: 'ssn', options }, config.key),
  compileMask({ function: 'null', shape: 'text', options }, null),
  compileMask({ function: 'fake', shape: 'email', options }, config.key), // function form only
  compileMask({ function: 'redact', shape: 'text', options }, null),
  compileContentScan(['email']), // no writer
];

function randomField(): Buffer | null {
  const r = Math.random();
  if (r < 0.1) return null;
  if (r < 0.15) return randomBytes(70_000); // larger than a slab
  if (r < 0.2) return Buffer.alloc(0);
  if (r < 0.6) return Buffer.from(`user${Math.floor(Math.random() * 1e6)}@example.com`);
  return Buffer.from(randomBytes(1 + Math.floor(Math.random() * 40)).toString('base64'));
}

test('masked DataRows equal decode + mask + encode, across slab refills, and earlier rows never change', () => {
  for (let trial = 0; trial < 40; trial++) {
    const n = 1 + Math.floor(Math.random() * 8);
    const columns = Array.from({ length: n }, (_, i) => col(i, Math.random() < 0.8 ? PgType.text : PgType.varchar, Math.random() < 0.3 ? 1 : 0));
    const plan: MaskPlan = {
      columns: columns.filter(() => Math.random() < 0.6).map((c) => ({ index: c.index, mask: masks[Math.floor(Math.random() * masks.length)] })),
      maskedColumns: [],
    };
    const masker = new RowMasker(plan, columns);
    const handedOut: [Buffer, Buffer][] = [];
    for (let r = 0; r < 300; r++) {
      const msg = ser.dataRow(columns.map(() => randomField()));
      const got = masker.mask(msg);
      const want = plan.columns.length === 0 ? msg : expected(msg, plan, columns);
      assert.deepEqual(got, want, `trial ${trial} row ${r}`);
      handedOut.push([got, Buffer.from(got)]);
    }
    for (const [slice, copy] of handedOut) assert.deepEqual(slice, copy, 'a row handed out is never overwritten');
  }
});

test('consecutive masked rows are adjacent slices of one buffer (one write for the batch)', () => {
  const columns = [col(0, PgType.int4), col(1, PgType.text)];
  const masker = new RowMasker({ columns: [{ index: 1, mask: masks[0] }], maskedColumns: ['email'] }, columns);
  const a = masker.mask(ser.dataRow([Buffer.from('1'), Buffer.from('a@x.io')]));
  const b = masker.mask(ser.dataRow([Buffer.from('2'), Buffer.from('b@x.io')]));
  assert.equal(a.buffer, b.buffer);
  assert.equal(b.byteOffset, a.byteOffset + a.length);
  assert.deepEqual(decodeDataRow(b), [Buffer.from('2'), Buffer.from('****@x.io')]);
});

test('truncated or lying DataRows are protocol errors, never out-of-bounds reads', () => {
  const columns = [col(0, PgType.text), col(1, PgType.text)];
  const masker = new RowMasker({ columns: [{ index: 0, mask: masks[2] }], maskedColumns: ['ssn'] }, columns);
  const good = ser.dataRow([Buffer.from('123-45-6789'), Buffer.from('x')]);
  for (let cut = 0; cut < good.length; cut++) {
    const bad = Buffer.from(good.subarray(0, cut));
    if (bad.length >= 5) bad.writeInt32BE(bad.length - 1, 1);
    assert.throws(() => masker.mask(bad), /DataRow truncated/, `cut at ${cut}`);
  }
  const lying = Buffer.from(good);
  lying.writeInt32BE(1_000_000, 7); // first field claims a megabyte
  assert.throws(() => masker.mask(lying), /DataRow truncated/);
});

test('maskInto hands the outbox the same bytes as mask, as ranges that continue one run', () => {
  const columns = [col(0, PgType.int4), col(1, PgType.text), col(2, PgType.text)];
  const plan: MaskPlan = { columns: [{ index: 1, mask: masks[0] }, { index: 2, mask: masks[2] }], maskedColumns: ['email', 'ssn'] };
  const masker = new RowMasker(plan, columns);
  const rows = Array.from({ length: 3000 }, (_, i) => ser.dataRow([Buffer.from(String(i)), Buffer.from(`u${i}@x.io`), i % 9 === 0 ? null : Buffer.from(`${i}-45-6789`)]));
  const ranges: Buffer[] = [];
  let continued = 0;
  let last: { buf: Buffer; end: number } | undefined;
  const sink = {
    add: (m: Buffer) => void ranges.push(Buffer.from(m)),
    addRange: (buf: Buffer, offset: number, len: number) => {
      if (last && last.buf === buf && last.end === offset) continued++;
      last = { buf, end: offset + len };
      ranges.push(Buffer.from(buf.subarray(offset, offset + len)));
    },
  };
  for (const r of rows) masker.maskInto(r, sink);
  assert.deepEqual(Buffer.concat(ranges), Buffer.concat(rows.map((r) => expected(r, plan, columns))));
  assert.ok(continued > 2900, `consecutive rows are adjacent in one buffer (${continued})`);
});
