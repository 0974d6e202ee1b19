/**
 * Micro-benchmark of masking: per value for each function, and per DataRow-like row of five
 * columns with three masked, against the same rows passed through unmasked.
 * Run: npx tsx bench/masking.ts
 */
import { compileMasking } from '../src/masking/config.js';
import { compileMask, PgType, type MaskFn } from '../src/masking/functions.js';

const config = compileMasking({ key: 'bench-key-0123456789abcdef' });
const options = config.classes.get('email')!.options;
const N = Number(process.env.BENCH_ROWS ?? 1_000_000);

function time(label: string, n: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  const perSec = (n / ns) * 1e9;
  process.stdout.write(`${label.padEnd(34)} ${(ns / n).toFixed(0).padStart(6)} ns/op ${Math.round(perSec).toLocaleString('en-US').padStart(14)} ops/s\n`);
  return perSec;
}

const email = Buffer.from('alice.liddell@example.com');
const perValue: [string, MaskFn][] = [
  ['redact', compileMask({ function: 'redact', shape: 'text', options }, null)],
  ['partial email', compileMask({ function: 'partial', shape: 'email', options }, null)],
  ['partial card', compileMask({ function: 'partial', shape: 'card', options }, null)],
  ['hash', compileMask({ function: 'hash', shape: 'email', options }, config.key)],
  ['fake email', compileMask({ function: 'fake', shape: 'email', options }, config.key)],
  ['null', compileMask({ function: 'null', shape: 'text', options }, null)],
];
const values = N / 10;
for (const [name, m] of perValue) time(`value: ${name}`, values, () => {
  for (let i = 0; i < values; i++) m(email, 0, PgType.text);
});

/** Rows as field slices of one DataRow body, the way the gateway sees them. */
const row = [Buffer.from('42'), email, Buffer.from('+1 415-555-0199'), Buffer.from('4111 1111 1111 1111'), Buffer.from('pro')];
const masks: (MaskFn | null)[] = [
  null,
  compileMask({ function: 'partial', shape: 'email', options }, null),
  compileMask({ function: 'partial', shape: 'phone', options }, null),
  compileMask({ function: 'hash', shape: 'card', options }, config.key),
  null,
];

/** Re-encodes a DataRow: int16 count, then int32 length + bytes per field. */
function encode(fields: (Buffer | null)[]): Buffer {
  let size = 2;
  for (const f of fields) size += 4 + (f ? f.length : 0);
  const out = Buffer.allocUnsafe(size);
  out.writeInt16BE(fields.length, 0);
  let p = 2;
  for (const f of fields) {
    out.writeInt32BE(f ? f.length : -1, p);
    p += 4;
    if (f) p += f.copy(out, p);
  }
  return out;
}

const off = time('row: masking off (re-encode only)', N, () => {
  for (let i = 0; i < N; i++) encode(row);
});
const on = time('row: 3 masked (partial, partial, hash)', N, () => {
  for (let i = 0; i < N; i++) encode(row.map((v, j) => (masks[j] ? masks[j]!(v, 0, PgType.text) : v)));
});
process.stdout.write(`ratio masked/off: ${(on / off).toFixed(2)} (CPU of masking alone; the gateway target is ≥ 0.5 end to end)\n`);
