/**
 * Masks DataRow messages by rewriting them into the output slab (src/masking/slab.ts).
 *
 * A masked result costs per row what the masks cost, not what allocation costs: fields are
 * walked by offset (no per-field Buffer), byte-level masks write straight into the slab, and
 * each row comes out as one slice of it. Consecutive rows are adjacent slices of one buffer, so
 * the session's Outbox sends them as one run.
 */
import { ProtocolError } from '../../shared/errors.js';
import type { MaskPlan, RangeSink, ResultColumn, ValueMask, ValueWriter } from '../engine.js';
import { slab, writeInt32 } from '../../masking/slab.js';
import { HEADER_BYTES } from './protocol/reader.js';

/** Fields up to this size are copied by a loop; a native copy costs more below it. */
const LOOP_COPY_MAX = 24;

/** What happens to one field: pass through, a byte-level writer, or the mask function. */
type FieldOp = null | { writer: ValueWriter } | { fn: ValueMask; format: 0 | 1; typeId: number };

/** A result's masking: the plan, the columns it applies to, and the compiled per-field work. */
export class RowMasker {
  private readonly ops: FieldOp[];

  constructor(
    readonly plan: MaskPlan,
    readonly columns: readonly ResultColumn[],
  ) {
    this.ops = columns.map(() => null);
    for (const c of plan.columns) {
      const col = columns[c.index];
      if (col === undefined) continue;
      const writer = c.mask.writer?.(col.format, col.typeId) ?? null;
      this.ops[c.index] = writer !== null ? { writer } : { fn: c.mask, format: col.format, typeId: col.typeId };
    }
  }

  /** The DataRow with masked fields rewritten; the same message when nothing is masked. */
  mask(msg: Buffer): Buffer {
    if (this.plan.columns.length === 0) return msg;
    const start = this.write(msg);
    return slab.take(start, slab.pos);
  }

  /** The same, handed to `out` as a range of the slab (no Buffer per row while rows stay adjacent). */
  maskInto(msg: Buffer, out: RangeSink): void {
    if (this.plan.columns.length === 0) return out.add(msg);
    const start = this.write(msg);
    out.addRange(slab.buf, start, slab.pos - start);
  }

  /** Writes the masked row into the slab; returns where it starts (it ends at slab.pos). */
  private write(msg: Buffer): number {
    const ops = this.ops;
    if (msg.length < HEADER_BYTES + 2) throw new ProtocolError('DataRow truncated');
    const count = (msg[HEADER_BYTES] << 8) | msg[HEADER_BYTES + 1];
    let rowStart = slab.pos;
    let pos = rowStart;
    let shift = slab.room(rowStart, pos, HEADER_BYTES + 2);
    rowStart -= shift;
    pos -= shift;
    let out = slab.buf;
    out[pos] = msg[0];
    out[pos + 5] = msg[5];
    out[pos + 6] = msg[6];
    pos += HEADER_BYTES + 2;
    let off = HEADER_BYTES + 2;
    for (let i = 0; i < count; i++) {
      if (off + 4 > msg.length) throw new ProtocolError('DataRow truncated');
      const len = msg.readInt32BE(off);
      off += 4;
      if (len >= 0 && off + len > msg.length) throw new ProtocolError('DataRow truncated');
      const op = i < ops.length ? ops[i] : null;
      if (len < 0 || op === null) {
        // Unmasked, or SQL NULL (every mask keeps NULL as NULL).
        const n = len < 0 ? 0 : len;
        shift = slab.room(rowStart, pos, 4 + n);
        rowStart -= shift;
        pos -= shift;
        out = slab.buf;
        writeInt32(out, pos, len);
        pos += 4;
        if (n <= LOOP_COPY_MAX) for (let j = 0; j < n; j++) out[pos + j] = msg[off + j];
        else msg.copy(out, pos, off, off + n);
        pos += n;
      } else if ('writer' in op) {
        shift = slab.room(rowStart, pos, 4 + op.writer.max(len));
        rowStart -= shift;
        pos -= shift;
        out = slab.buf;
        const end = op.writer.write(msg, off, len, out, pos + 4);
        writeInt32(out, pos, end < 0 ? -1 : end - pos - 4);
        pos = end < 0 ? pos + 4 : end;
      } else {
        const v = op.fn(msg.subarray(off, off + len), op.format, op.typeId);
        const n = v === null ? 0 : v.length;
        shift = slab.room(rowStart, pos, 4 + n);
        rowStart -= shift;
        pos -= shift;
        out = slab.buf;
        writeInt32(out, pos, v === null ? -1 : n);
        pos += 4;
        if (v !== null) pos += v.copy(out, pos);
      }
      if (len > 0) off += len;
    }
    writeInt32(out, rowStart + 1, pos - rowStart - 1);
    slab.pos = pos;
    return rowStart;
  }
}
