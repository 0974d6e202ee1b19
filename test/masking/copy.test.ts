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

test('text COPY: the in-place path equals decode + mask + encode per row, for any chunking', async () => {
  const { maskTextRow } = await import('../../src/masking/copy.js');
  const withTab = compileMasking({ key: 'copy-test-key-0123456789', classes: { secret: { function: 'redact', replacement: 'x\ty' } } });
  const hashOpts = compileMasking({ key: 'copy-test-key-0123456789' }).classes.get('ssn')!.options;
  const cols: (CopyColumn | null)[] = [
    null,
    partialEmail,
    { mask: compileMask({ function: 'partial', shape: 'phone', options: opts }, null), typeId: PgType.text, label: 'phone' },
    { mask: compileMask({ function: 'hash', shape: 'ssn', options: hashOpts }, config.key), typeId: PgType.text, label: 'ssn' },
    null,
  ];
  const variants: { name: string; cols: (CopyColumn | null)[]; options: CopyOptions }[] = [
    { name: 'writers', cols, options: {} },
    { name: 'delimiter and null string', cols, options: { delimiter: ',', null: 'NULL' } },
    { name: 'header', cols, options: { header: true } },
    { name: 'a mask without a byte form', cols: [...cols.slice(0, 4), { mask: compileMask({ function: 'fake', shape: 'email', options: opts }, config.key), typeId: PgType.text, label: 'f' }], options: {} },
    { name: 'replacement that needs escaping', cols: [null, { mask: compileMask({ function: 'redact', shape: 'text', options: withTab.classes.get('secret')!.options }, null), typeId: PgType.text, label: 's' }], options: {} },
  ];
  const pieces = ['alice@example.com', '+1 415-555-0199', '123-45-6789', 'plain', '', 'a\\tb', 'back\\\\slash', 'x@y', 'é@ü.de'];
  for (const v of variants) {
    const delim = v.options.delimiter ?? '\t';
    const nul = v.options.null ?? '\\N';
    const rows: string[] = [];
    if (v.options.header) rows.push(['id', 'email', 'phone', 'ssn', 'plan'].join(delim) + '\n');
    for (let r = 0; r < 300; r++) {
      const n = 1 + (r % 6);
      const fields = Array.from({ length: n }, () => (Math.random() < 0.15 ? nul : pieces[Math.floor(Math.random() * pieces.length)].replaceAll(delim, '')));
      rows.push(fields.join(delim) + (r % 7 === 0 ? '\r\n' : '\n'));
    }
    const stream = Buffer.from(rows.join(''));
    const delimByte = Buffer.from(delim)[0];
    const expected = Buffer.concat(rows.map((row, i) => (v.options.header && i === 0 ? Buffer.from(row) : maskTextRow(Buffer.from(row), v.cols, delimByte, Buffer.from(nul)))));
    for (let trial = 0; trial < 5; trial++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = trial === 0 ? stream.length : 1 + Math.floor(Math.random() * 200);
        chunks.push(stream.subarray(at, at + n));
        at += n;
      }
      assert.deepEqual(run(buildCopyMaskPlan('text', v.cols, v.options), chunks), expected, `${v.name}, trial ${trial}`);
      // The same through whole CopyData messages, handed to a sink as ranges (how the session takes them).
      const ranged = buildCopyMaskPlan('text', v.cols, v.options);
      const got: Buffer[] = [];
      for (const c of chunks) {
        const msg = Buffer.concat([Buffer.from([0x64, 0, 0, 0, 0]), c]);
        msg.writeInt32BE(msg.length - 1, 1);
        ranged.maskMessageInto!(msg, {
          add: () => assert.fail('COPY output is handed over as ranges of the slab'),
          addRange: (buf, offset, len) => {
            // One well-formed CopyData per message.
            assert.equal(buf[offset], 0x64);
            assert.equal(buf.readInt32BE(offset + 1), len - 1);
            got.push(Buffer.from(buf.subarray(offset + 5, offset + len)));
          },
        });
      }
      assert.deepEqual(Buffer.concat(got), expected, `${v.name}, ranges, trial ${trial}`);
    }
  }
});
