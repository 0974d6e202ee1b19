import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMasking } from '../../src/masking/config.js';
import { buildCopyMaskPlan, planCopy, type CopyColumn, type CopyFormat, type CopyOptions } from '../../src/masking/copy.js';
import { compileMask, PgType } from '../../src/masking/functions.js';
import type { CopyMaskPlan } from '../../src/gateway/engine.js';

const config = compileMasking({ key: 'copy-test-key-0123456789', columns: { 'public.users.email': 'email', 'public.users.note': 'secret' } });
const opts = config.classes.get('email')!.options;
const partialEmail: CopyColumn = { mask: compileMask({ function: 'partial', shape: 'email', options: opts }, null), typeId: PgType.text, label: 'email' };
const redact: CopyColumn = { mask: compileMask({ function: 'redact', shape: 'text', options: opts }, null), typeId: PgType.text, label: 'note' };

function run(plan: CopyMaskPlan, chunks: Buffer[]): Buffer {
  const out = chunks.map((c) => plan.maskChunk(c));
  const tail = plan.end();
  return Buffer.concat(tail ? [...out, tail] : out);
}

function binaryCopy(rows: (string | null)[][]): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const row of rows) {
    const n = Buffer.alloc(2);
    n.writeInt16BE(row.length);
    parts.push(n);
    for (const v of row) {
      const len = Buffer.alloc(4);
      len.writeInt32BE(v === null ? -1 : Buffer.byteLength(v));
      parts.push(len);
      if (v !== null) parts.push(Buffer.from(v));
    }
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

interface Case {
  name: string;
  format: CopyFormat;
  options?: CopyOptions;
  columns: (CopyColumn | null)[];
  input: Buffer;
  expected: Buffer;
}

const CASES: Case[] = [
  {
    name: 'text: escapes, NULL, tabs inside values',
    format: 'text',
    columns: [null, partialEmail, redact],
    input: Buffer.from('1\talice@example.com\tline1\\nline2\\tTAB\n2\t\\N\tx\\\\y\n3\tbob\\t@x.io\tz\n'),
    expected: Buffer.from('1\t****@example.com\t****\n2\t\\N\t****\n3\t****@x.io\t****\n'),
  },
  {
    name: 'text: custom delimiter, escaped delimiter in data',
    format: 'text',
    options: { delimiter: '|' },
    columns: [null, partialEmail],
    input: Buffer.from('a\\|b|carol@example.com\n'),
    expected: Buffer.from('a\\|b|****@example.com\n'),
  },
  {
    name: 'csv: quotes, embedded newline, NULL vs empty string',
    format: 'csv',
    columns: [null, partialEmail, redact],
    input: Buffer.from('1,alice@example.com,"multi\nline, with ""quotes"""\n2,,""\n"3,x",dave@example.com,plain\n'),
    expected: Buffer.from('1,****@example.com,****\n2,,****\n"3,x",****@example.com,****\n'),
  },
  {
    name: 'csv: masked value that needs quoting gets quoted',
    format: 'csv',
    columns: [{ mask: compileMask({ function: 'redact', shape: 'text', options: { ...opts, replacement: 'a,"b"' } }, null), typeId: PgType.text, label: 'x' }],
    input: Buffer.from('secret\n'),
    expected: Buffer.from('"a,""b"""\n'),
  },
  {
    name: 'binary: header, tuples, NULL field, trailer',
    format: 'binary',
    columns: [null, partialEmail, redact],
    input: binaryCopy([['1', 'alice@example.com', 'secret note'], ['2', null, 'x']]),
    expected: binaryCopy([['1', '****@example.com', '****'], ['2', null, '****']]),
  },
  {
    name: 'binary: unknown type goes out as NULL',
    format: 'binary',
    columns: [{ mask: redact.mask, typeId: 0, label: 'x' }],
    input: binaryCopy([['\x00\x01']]),
    expected: binaryCopy([[null]]),
  },
];

test('COPY masking: whole stream', () => {
  for (const c of CASES) {
    const out = run(buildCopyMaskPlan(c.format, c.columns, c.options), [c.input]);
    assert.deepEqual(out.toString('latin1'), c.expected.toString('latin1'), c.name);
  }
});

test('COPY masking: identical output for a split at every offset, and in single bytes', () => {
  for (const c of CASES) {
    for (let at = 0; at <= c.input.length; at++) {
      const out = run(buildCopyMaskPlan(c.format, c.columns, c.options), [c.input.subarray(0, at), c.input.subarray(at)]);
      assert.deepEqual(out, c.expected, `${c.name} split at ${at}`);
    }
    const bytes = [...c.input].map((b) => Buffer.from([b]));
    assert.deepEqual(run(buildCopyMaskPlan(c.format, c.columns, c.options), bytes), c.expected, `${c.name} byte by byte`);
  }
});

test('binary: a truncated tuple at the end is dropped, not passed in clear', () => {
  const full = binaryCopy([['alice@example.com']]);
  const plan = buildCopyMaskPlan('binary', [partialEmail]);
  const out = Buffer.concat([plan.maskChunk(full.subarray(0, full.length - 6)), plan.end() ?? Buffer.alloc(0)]);
  assert.ok(!out.includes('alice'), out.toString('latin1'));
});

test('planCopy: columns from lineage; unknown lineage on classified data is masked', () => {
  const base = { relations: [{ schema: 'public', name: 'users', access: 'read' as const }], resolve: () => undefined, identity: { id: 'd', kind: 'human' as const, groups: [] }, target: 'prod', config };
  const plan = planCopy({ ...base, format: 'text', columnCount: 2, lineage: [
    { index: 0, name: 'id', sources: [{ schema: 'public', table: 'users', column: 'id' }], direct: true, opaque: false },
    { index: 1, name: 'email', sources: [{ schema: 'public', table: 'users', column: 'email' }], direct: true, opaque: false },
  ] });
  assert.ok(plan && !('blocked' in plan));
  assert.equal(run(plan, [Buffer.from('7\tzed@example.com\n')]).toString(), '7\t****@example.com\n');
  assert.deepEqual(plan.maskedColumns, ['public.users.email']);
  const blind = planCopy({ ...base, format: 'text', columnCount: 1 });
  assert.ok(blind && !('blocked' in blind));
  assert.equal(run(blind, [Buffer.from('zed@example.com\n')]).toString(), '****\n');
});
