/**
 * Micro-benchmark of masking: per value for each function, and per DataRow-like row of five
 * columns with three masked, against the same rows passed through unmasked.
 * Run: npx tsx bench/masking.ts
 */
import { compileMasking } from '../src/masking/config.js';
import { RowMasker } from '../src/gateway/postgres/mask-row.js';
import { dataRow } from '../src/gateway/postgres/protocol/serializer.js';
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

/** A DataRow of five columns, three masked, through the gateway's row masker (the slab path). */
const columns = [PgType.int4, PgType.text, PgType.text, PgType.text, PgType.text].map((typeId, index) => ({ index, name: `c${index}`, typeId, format: 0 as const }));
const plan = {
  columns: [
    { index: 1, mask: compileMask({ function: 'partial', shape: 'email', options }, null) },
    { index: 2, mask: compileMask({ function: 'partial', shape: 'phone', options }, null) },
    { index: 3, mask: compileMask({ function: 'hash', shape: 'card', options }, config.key) },
  ],
  maskedColumns: [],
};
const rows = Array.from({ length: 1000 }, (_, g) =>
  dataRow([Buffer.from(String(g)), Buffer.from(`user${g}@example.com`), Buffer.from(`+1 415-555-0${String(g % 1000).padStart(3, '0')}`), Buffer.from(`4111 1111 1111 ${String(g).padStart(4, '0')}`), Buffer.from('pro')]),
);
const masker = new RowMasker(plan, columns);
const copy = (m: Buffer): Buffer => Buffer.from(m); // what a pass-through costs at least: the bytes once
const off = time('row: masking off (copy only)', N, () => {
  for (let i = 0; i < N; i++) copy(rows[i % rows.length]);
});
const on = time('row: 3 masked (partial, partial, hash)', N, () => {
  for (let i = 0; i < N; i++) masker.mask(rows[i % rows.length]);
});
process.stdout.write(`ratio masked/off: ${(on / off).toFixed(2)} (CPU of masking alone; the gateway target is ≥ 0.5 end to end)\n`);
