/**
 * An output slab for masked results: rewritten rows are written into one large buffer and
 * handed out as slices of it, so masking allocates per slab, not per value or row, and
 * consecutive rows are adjacent (one socket write for many). Bytes handed out are never
 * written again: a full slab is replaced, not reused.
 *
 * One slab serves the whole process: JavaScript runs one rewrite at a time, and each unit (a
 * row, or a chunk of COPY rows) is finished before the next starts.
 */
const SLAB_BYTES = 64 * 1024;

export class Slab {
  buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
  /** Where the next unit starts; everything before it has been handed out. */
  pos = 0;

  /**
   * Makes room for `need` more bytes at `at` for the unit that started at `start`. When the
   * slab is full, the unit so far moves to a fresh slab; returns how far it moved (subtract it
   * from positions in the unit).
   */
  room(start: number, at: number, need: number): number {
    if (at + need <= this.buf.length) return 0;
    const fresh = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, (at - start + need) * 2));
    this.buf.copy(fresh, 0, start, at);
    this.buf = fresh;
    this.pos = 0;
    return start;
  }

  /** Hands out the finished unit [start, end). */
  take(start: number, end: number): Buffer {
    this.pos = end;
    return this.buf.subarray(start, end);
  }
}

export const slab = new Slab();

export function writeInt32(out: Buffer, pos: number, v: number): void {
  out[pos] = v >>> 24;
  out[pos + 1] = v >>> 16;
  out[pos + 2] = v >>> 8;
  out[pos + 3] = v;
}
