/**
 * Masking COPY … TO STDOUT output. CopyData payloads are cut anywhere (the server sends a row per
 * message today, but a proxy must not rely on it), so each plan keeps a carry buffer with the
 * incomplete row and rewrites only complete rows.
 *
 * Formats: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9
 */
import type { CopyMaskPlan } from '../gateway/engine.js';
import { contentScanOn } from './config.js';
import { compileContentScan, PgType, type MaskFn } from './functions.js';
import { slab, writeInt32 } from './slab.js';
import { decideColumns, maskFor, type MaskBlock, type MaskPlanInput } from './plan.js';

export const COPY_FORMATS = ['text', 'csv', 'binary'] as const;
export type CopyFormat = (typeof COPY_FORMATS)[number];

/** One output position of a COPY; null positions pass through unchanged. */
export interface CopyColumn {
  mask: MaskFn;
  /** Type OID of the column. Unknown (0) in binary means the masked value goes out as NULL. */
  typeId?: number;
  /** For the audit record; null for the content safety net on an unclassified column. */
  label: string | null;
}

/** COPY options that change the byte layout. Defaults are PostgreSQL's. */
export interface CopyOptions {
  delimiter?: string;
  null?: string;
  quote?: string;
  escape?: string;
  /** The first line is a header of column names (CSV HEADER): passed through. */
  header?: boolean;
}

const LF = 0x0a;
/** fastRow's answers other than an LF index. */
const NO_ROW = -1;
const SLOW = -2;
/** CopyData message type. */
const COPY_DATA = 0x64;
const EMPTY = Buffer.alloc(0);
const CR = 0x0d;
const BACKSLASH = 0x5c;

/** "PGCOPY\n\377\r\n\0", then int32 flags and int32 header-extension length. */
const BINARY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const BINARY_HEADER_FIXED = BINARY_SIGNATURE.length + 8;

export function buildCopyMaskPlan(format: CopyFormat, columns: readonly (CopyColumn | null)[], options: CopyOptions = {}): CopyMaskPlan {
  const maskedColumns = columns.flatMap((c) => (c?.label ? [c.label] : []));
  switch (format) {
    case 'text':
      return textMasker(maskedColumns, columns, byteOf(options.delimiter, '\t'), Buffer.from(options.null ?? '\\N'), options.header === true);
    case 'csv': {
      const csv = { delim: byteOf(options.delimiter, ','), quote: byteOf(options.quote, '"'), escape: byteOf(options.escape ?? options.quote, '"'), null: Buffer.from(options.null ?? '') };
      return lineMasker(maskedColumns, (row) => maskCsvRow(row, columns, csv), csv, options.header === true);
    }
    case 'binary':
      return binaryMasker(columns, maskedColumns);
    default: {
      const never: never = format;
      return never;
    }
  }
}

function byteOf(s: string | undefined, fallback: string): number {
  return Buffer.from(s ?? fallback)[0];
}

/**
 * Text and CSV: rows end at LF (in CSV, only outside quotes). Complete rows are rewritten; the
 * rest is carried to the next chunk.
 */
function lineMasker(maskedColumns: string[], rewrite: (row: Buffer) => Buffer, csv: CsvLayout | null, header: boolean): CopyMaskPlan {
  let carry: Buffer = Buffer.alloc(0);
  let headerPending = header;
  let scanned = 0;
  let inQuote = false;
  // An escape byte inside quotes at the end of one chunk escapes the first byte of the next.
  let escaped = false;
  const take = (buf: Buffer): Buffer => {
    const out: Buffer[] = [];
    let rowStart = 0;
    for (let i = scanned; i < buf.length; i++) {
      const c = buf[i];
      if (escaped) escaped = false;
      else if (csv && inQuote && c === csv.escape && csv.escape !== csv.quote) escaped = true;
      else if (csv && c === csv.quote) inQuote = !inQuote;
      else if (c === LF && !inQuote) {
        const row = buf.subarray(rowStart, i + 1);
        out.push(headerPending ? row : rewrite(row));
        headerPending = false;
        rowStart = i + 1;
      }
    }
    carry = buf.subarray(rowStart);
    scanned = carry.length;
    return out.length === 1 ? out[0] : Buffer.concat(out);
  };
  return {
    maskChunk: (chunk) => take(carry.length === 0 ? chunk : Buffer.concat([carry, chunk])),
    end: () => {
      if (carry.length === 0) return null;
      // A last row without its LF (never sent by the server, but a pipe must not pass it in clear).
      const rest = rewrite(carry);
      carry = Buffer.alloc(0);
      return rest;
    },
    maskedColumns,
  };
}

/**
 * Text format, written into the output slab: a chunk's rows come out as one slice. A row with
 * no backslash holds no escapes, so its masked fields are the raw bytes and byte-level masks
 * run on them in place; any other row (escapes, the end marker, a mask without a byte form, a
 * mask output that would need escaping) takes maskTextRow.
 */
function textMasker(maskedColumns: string[], columns: readonly (CopyColumn | null)[], delim: number, nullText: Buffer, header: boolean): CopyMaskPlan {
  const writers = columns.map((c) => (c ? (c.mask.writer?.(0, c.typeId ?? PgType.text) ?? undefined) : null));
  // In a row without a backslash no byte needs escaping, so a writer's output is safe as is when
  // the bytes it adds (a configured replacement or prefix) need none either.
  const needsEscape = (b: Buffer): boolean => b.some((c) => ESCAPED[c] === 1 || c === delim);
  const fast = !writers.includes(undefined) && !writers.some((w) => w && needsEscape(w.emits));
  // The bytes fastRow stops at: field and row ends, and the escape byte.
  const special = new Uint8Array(256);
  for (const b of [delim, LF, CR, BACKSLASH]) special[b] = 1;
  let carry: Buffer = EMPTY;
  let headerPending = header;
  // Output positions in the slab of the unit (this chunk's rows), of the row being written, and the next byte.
  let unitStart = 0;
  let rowOut = 0;
  let pos = 0;
  const ensure = (n: number): Buffer => {
    const moved = slab.room(unitStart, pos, n);
    unitStart -= moved;
    rowOut -= moved;
    pos -= moved;
    return slab.buf;
  };
  const copyIn = (bytes: Buffer): void => {
    const out = ensure(bytes.length);
    pos += bytes.copy(out, pos);
  };

  /**
   * Writes the row that starts at `start` and returns the index of its LF; NO_ROW when no LF
   * follows yet, SLOW when the row needs the general path (in both cases nothing is kept).
   */
  const fastRow = (buf: Buffer, start: number): number => {
    const n = buf.length;
    let col = 0;
    let fieldStart = start;
    // The output position lives in a local while the row is written (closure variables cost
    // more per byte); `pos` is brought up to date around every `ensure`, which may move the unit.
    let p = pos;
    let out: Buffer = slab.buf;
    for (let i = start; ; i++) {
      if (i >= n) return NO_ROW;
      const c = buf[i];
      if (special[c] === 0) continue;
      if (c === BACKSLASH) return SLOW;
      // A CR ends the row only as part of CR LF.
      if (c === CR) {
        if (i + 1 >= n) return NO_ROW;
        if (buf[i + 1] !== LF) continue;
      }
      const len = i - fieldStart;
      const w = col < writers.length ? writers[col] : null;
      // The field, a delimiter before it, and the row's line end after it.
      const need = 3 + (w ? Math.max(w.max(len), nullText.length) : len);
      if (p + need > out.length) {
        pos = p;
        out = ensure(need);
        p = pos;
      }
      if (col > 0) out[p++] = delim;
      if (!w) {
        for (let j = fieldStart; j < i; j++) out[p++] = buf[j];
      } else if (len === nullText.length && buf.compare(nullText, 0, len, fieldStart, i) === 0) {
        p += nullText.copy(out, p);
      } else {
        const end = w.write(buf, fieldStart, len, out, p);
        p = end < 0 ? p + nullText.copy(out, p) : end;
      }
      if (c !== delim) {
        if (c === CR) out[p++] = CR;
        out[p++] = LF;
        pos = p;
        return c === CR ? i + 1 : i;
      }
      col++;
      fieldStart = i + 1;
    }
  };

  /**
   * Masks the complete rows of buf[from…] into the slab; returns where the output starts (it
   * ends at slab.pos). With `framed`, the output is a whole CopyData message.
   */
  const take = (buf: Buffer, from: number, framed: boolean): number => {
    unitStart = pos = slab.pos;
    if (framed) {
      ensure(5)[pos] = COPY_DATA;
      pos += 5;
    }
    let start = from;
    while (start < buf.length) {
      let lf: number;
      if (fast && !headerPending) {
        rowOut = pos;
        lf = fastRow(buf, start);
        if (lf === NO_ROW) {
          pos = rowOut;
          break;
        }
        if (lf === SLOW) {
          pos = rowOut;
          lf = nextLF(buf, start);
          if (lf === -1) break;
          copyIn(maskTextRow(buf.subarray(start, lf + 1), columns, delim, nullText));
        }
      } else {
        lf = nextLF(buf, start);
        if (lf === -1) break;
        if (headerPending) {
          headerPending = false;
          copyIn(buf.subarray(start, lf + 1));
        } else copyIn(maskTextRow(buf.subarray(start, lf + 1), columns, delim, nullText));
      }
      start = lf + 1;
    }
    carry = start === buf.length ? EMPTY : buf.subarray(start);
    if (framed) writeInt32(slab.buf, unitStart + 1, pos - unitStart - 1);
    slab.pos = pos;
    return unitStart;
  };
  return {
    maskChunk: (chunk) => {
      const start = carry.length === 0 ? take(chunk, 0, false) : take(Buffer.concat([carry, chunk]), 0, false);
      return slab.take(start, slab.pos);
    },
    maskMessageInto: (msg, sink) => {
      const start = carry.length === 0 ? take(msg, 5, true) : take(Buffer.concat([carry, msg.subarray(5)]), 0, true);
      sink.addRange(slab.buf, start, slab.pos - start);
    },
    end: () => {
      if (carry.length === 0) return null;
      // A last row without its LF (never sent by the server, but a pipe must not pass it in clear).
      const rest = maskTextRow(carry, columns, delim, nullText);
      carry = EMPTY;
      return rest;
    },
    maskedColumns,
  };
}

/** The next LF at or after `from`, or -1. A loop: rows are short, and Buffer#indexOf's native call costs more. */
function nextLF(buf: Buffer, from: number): number {
  for (let i = from; i < buf.length; i++) if (buf[i] === LF) return i;
  return -1;
}

/** Text format escapes: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2 */
const TEXT_UNESCAPE: Record<number, number> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };
const TEXT_ESCAPE: Record<number, number> = { 0x08: 0x62, 0x0c: 0x66, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74, 0x0b: 0x76, [BACKSLASH]: BACKSLASH };
/** 1 for the bytes TEXT_ESCAPE escapes, as a table for the per-byte check. */
const ESCAPED = new Uint8Array(256);
for (const b of Object.keys(TEXT_ESCAPE)) ESCAPED[Number(b)] = 1;

function splitFields(row: Buffer, delim: number, skipEscaped: boolean): Buffer[] {
  const fields: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < row.length; i++) {
    if (skipEscaped && row[i] === BACKSLASH) i++;
    else if (row[i] === delim) {
      fields.push(row.subarray(start, i));
      start = i + 1;
    }
  }
  fields.push(row.subarray(start));
  return fields;
}

function decodeText(field: Buffer): Buffer {
  if (!field.includes(BACKSLASH)) return field;
  const out: number[] = [];
  for (let i = 0; i < field.length; i++) {
    const c = field[i];
    if (c !== BACKSLASH || i + 1 >= field.length) {
      out.push(c);
      continue;
    }
    const n = field[++i];
    if (n in TEXT_UNESCAPE) out.push(TEXT_UNESCAPE[n]);
    else if (n >= 0x30 && n <= 0x37) {
      let v = n - 0x30;
      for (let k = 0; k < 2 && i + 1 < field.length && field[i + 1] >= 0x30 && field[i + 1] <= 0x37; k++) v = v * 8 + (field[++i] - 0x30);
      out.push(v & 0xff);
    } else if (n === 0x78 && i + 1 < field.length && isHex(field[i + 1])) {
      let v = parseInt(String.fromCharCode(field[++i]), 16);
      if (i + 1 < field.length && isHex(field[i + 1])) v = v * 16 + parseInt(String.fromCharCode(field[++i]), 16);
      out.push(v);
    } else out.push(n);
  }
  return Buffer.from(out);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function encodeText(value: Buffer, delim: number): Buffer {
  const out: number[] = [];
  for (const c of value) {
    if (c in TEXT_ESCAPE) out.push(BACKSLASH, TEXT_ESCAPE[c]);
    else if (c === delim) out.push(BACKSLASH, c);
    else out.push(c);
  }
  return Buffer.from(out);
}

function lineEnd(row: Buffer): number {
  let end = row.length;
  if (end > 0 && row[end - 1] === LF) end--;
  if (end > 0 && row[end - 1] === CR) end--;
  return end;
}

/** One text-format row, decoded, masked and re-encoded: the general path (exported for tests). */
export function maskTextRow(row: Buffer, columns: readonly (CopyColumn | null)[], delim: number, nullText: Buffer): Buffer {
  const end = lineEnd(row);
  const body = row.subarray(0, end);
  // The end-of-data marker of protocol 2 clients; never a data row.
  if (body.length === 2 && body[0] === BACKSLASH && body[1] === 0x2e) return row;
  const fields = splitFields(body, delim, true);
  const parts: Buffer[] = [];
  for (const [i, f] of fields.entries()) {
    if (i > 0) parts.push(Buffer.from([delim]));
    const col = columns[i];
    if (!col) {
      parts.push(f);
      continue;
    }
    const value = f.equals(nullText) ? null : decodeText(f);
    const masked = col.mask(value, 0, col.typeId ?? PgType.text);
    parts.push(masked === null ? nullText : encodeText(masked, delim));
  }
  parts.push(row.subarray(end));
  return Buffer.concat(parts);
}

interface CsvLayout {
  delim: number;
  quote: number;
  escape: number;
  null: Buffer;
}

function splitCsv(body: Buffer, csv: CsvLayout): { raw: Buffer; quoted: boolean }[] {
  const fields: { raw: Buffer; quoted: boolean }[] = [];
  let start = 0;
  let inQuote = false;
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inQuote) {
      if (c === csv.escape && csv.escape !== csv.quote && i + 1 < body.length) i++;
      else if (c === csv.quote) {
        if (csv.escape === csv.quote && body[i + 1] === csv.quote) i++;
        else inQuote = false;
      }
    } else if (c === csv.quote) {
      inQuote = true;
      quoted = true;
    } else if (c === csv.delim) {
      fields.push({ raw: body.subarray(start, i), quoted });
      start = i + 1;
      quoted = false;
    }
  }
  fields.push({ raw: body.subarray(start), quoted });
  return fields;
}

function decodeCsv(raw: Buffer, csv: CsvLayout): Buffer {
  const out: number[] = [];
  let inQuote = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inQuote) {
      if (c === csv.escape && i + 1 < raw.length && (raw[i + 1] === csv.quote || raw[i + 1] === csv.escape) && (csv.escape !== csv.quote || raw[i + 1] === csv.quote)) out.push(raw[++i]);
      else if (c === csv.quote) inQuote = false;
      else out.push(c);
    } else if (c === csv.quote) inQuote = true;
    else out.push(c);
  }
  return Buffer.from(out);
}

function encodeCsv(value: Buffer, csv: CsvLayout): Buffer {
  const needsQuote =
    value.length === 0 ||
    value.equals(csv.null) ||
    (value.length >= 2 && value[0] === BACKSLASH && value[1] === 0x2e) ||
    value.some((c) => c === csv.delim || c === csv.quote || c === csv.escape || c === LF || c === CR);
  if (!needsQuote) return value;
  const out: number[] = [csv.quote];
  for (const c of value) {
    if (c === csv.quote || c === csv.escape) out.push(csv.escape);
    out.push(c);
  }
  out.push(csv.quote);
  return Buffer.from(out);
}

function maskCsvRow(row: Buffer, columns: readonly (CopyColumn | null)[], csv: CsvLayout): Buffer {
  const end = lineEnd(row);
  const fields = splitCsv(row.subarray(0, end), csv);
  const parts: Buffer[] = [];
  for (const [i, f] of fields.entries()) {
    if (i > 0) parts.push(Buffer.from([csv.delim]));
    const col = columns[i];
    if (!col) {
      parts.push(f.raw);
      continue;
    }
    // In CSV, NULL is the null string unquoted; a quoted empty string is a value.
    const value = !f.quoted && f.raw.equals(csv.null) ? null : decodeCsv(f.raw, csv);
    const masked = col.mask(value, 0, col.typeId ?? PgType.text);
    parts.push(masked === null ? csv.null : encodeCsv(masked, csv));
  }
  parts.push(row.subarray(end));
  return Buffer.concat(parts);
}

/** Binary: header, then tuples of int16 field count and (int32 length, bytes) per field; count -1 ends. */
function binaryMasker(columns: readonly (CopyColumn | null)[], maskedColumns: string[]): CopyMaskPlan {
  let carry: Buffer = Buffer.alloc(0);
  let headerDone = false;
  let trailerSeen = false;

  const take = (buf: Buffer): Buffer => {
    const out: Buffer[] = [];
    let at = 0;
    if (!headerDone) {
      if (buf.length < BINARY_HEADER_FIXED) {
        carry = buf;
        return Buffer.alloc(0);
      }
      const headerLen = BINARY_HEADER_FIXED + buf.readUInt32BE(BINARY_SIGNATURE.length + 4);
      if (buf.length < headerLen) {
        carry = buf;
        return Buffer.alloc(0);
      }
      out.push(buf.subarray(0, headerLen));
      at = headerLen;
      headerDone = true;
    }
    while (!trailerSeen && at + 2 <= buf.length) {
      const count = buf.readInt16BE(at);
      if (count === -1) {
        out.push(buf.subarray(at, at + 2));
        at += 2;
        trailerSeen = true;
        break;
      }
      // Find the tuple's end first, so a partial tuple is carried whole.
      let p = at + 2;
      let complete = true;
      for (let f = 0; f < count; f++) {
        if (p + 4 > buf.length) {
          complete = false;
          break;
        }
        const len = buf.readInt32BE(p);
        p += 4 + (len > 0 ? len : 0);
        if (p > buf.length) {
          complete = false;
          break;
        }
      }
      if (!complete) break;
      out.push(maskBinaryTuple(buf.subarray(at, p), count, columns));
      at = p;
    }
    // After the trailer nothing is data; whatever follows passes as is.
    if (trailerSeen && at < buf.length) {
      out.push(buf.subarray(at));
      at = buf.length;
    }
    carry = buf.subarray(at);
    return out.length === 1 ? out[0] : Buffer.concat(out);
  };

  return {
    maskChunk: (chunk) => take(carry.length === 0 ? chunk : Buffer.concat([carry, chunk])),
    // A truncated tuple at CopyDone is dropped, not passed: it could hold a clear value.
    end: () => {
      carry = Buffer.alloc(0);
      return null;
    },
    maskedColumns,
  };
}

const NULL_LENGTH = Buffer.from([0xff, 0xff, 0xff, 0xff]);

function maskBinaryTuple(tuple: Buffer, count: number, columns: readonly (CopyColumn | null)[]): Buffer {
  const parts: Buffer[] = [tuple.subarray(0, 2)];
  let p = 2;
  for (let f = 0; f < count; f++) {
    const len = tuple.readInt32BE(p);
    const end = p + 4 + (len > 0 ? len : 0);
    const col = columns[f];
    if (!col) {
      parts.push(tuple.subarray(p, end));
    } else {
      const masked = col.mask(len < 0 ? null : tuple.subarray(p + 4, end), 1, col.typeId ?? 0);
      if (masked === null) parts.push(NULL_LENGTH);
      else {
        const head = Buffer.allocUnsafe(4);
        head.writeInt32BE(masked.length, 0);
        parts.push(head, masked);
      }
    }
    p = end;
  }
  return Buffer.concat(parts);
}

export interface CopyPlanInput extends Omit<MaskPlanInput, 'columns'> {
  format: CopyFormat;
  /** Number of columns the server announced in CopyOutResponse. */
  columnCount: number;
  /** Column type OIDs when the broker knows them (from the catalog); needed for type-valid binary masks. */
  typeIds?: readonly number[];
  options?: CopyOptions;
}

/**
 * The COPY plan for one COPY … TO STDOUT: columns come only from lineage (COPY has no
 * RowDescription), so a position without lineage is unprovable when classified data is touched.
 */
export function planCopy(input: CopyPlanInput): CopyMaskPlan | MaskBlock | null {
  const columns = Array.from({ length: input.columnCount }, (_, i) => ({
    index: i,
    name: input.lineage?.[i]?.name ?? `column${i + 1}`,
    tableOid: 0,
    typeId: input.typeIds?.[i] ?? (input.format === 'binary' ? 0 : PgType.text),
    format: (input.format === 'binary' ? 1 : 0) as 0 | 1,
  }));
  const decisions = decideColumns({ ...input, columns });
  const unprovable = decisions.flatMap((d) => (d.kind === 'unprovable' ? [d.label] : []));
  if (unprovable.length > 0 && input.config.onUnprovable === 'block') return blockForCopy(unprovable);
  const scan = contentScanOn(input.config, input.target) ? compileContentScan(input.config.contentScan!.detectors) : null;
  let any = false;
  const copyColumns = decisions.map((d, i): CopyColumn | null => {
    const mask = maskFor(d, input.config.key, scan, columns[i].typeId);
    if (!mask) return null;
    any = true;
    return { mask, typeId: columns[i].typeId, label: d.kind === 'clear' ? null : d.label };
  });
  const unmaskedColumns = decisions.flatMap((d) => (d.kind === 'clear' && d.unmasked ? [d.unmasked] : []));
  const extra = unmaskedColumns.length ? { unmaskedColumns } : {};
  if (any) return { ...buildCopyMaskPlan(input.format, copyColumns, input.options), ...extra };
  // Nothing to rewrite, but the audit records the classified columns read in clear.
  return unmaskedColumns.length ? { maskChunk: (chunk) => chunk, end: () => null, maskedColumns: [], ...extra } : null;
}

function blockForCopy(columns: string[]): MaskBlock {
  return {
    blocked: true,
    columns,
    error: {
      message: 'dbgov: blocked: a COPY column may carry classified data that masking cannot follow',
      detail: `rule: masking.onUnprovable = block; columns: ${columns.join(', ')}`,
      hint: 'COPY the table itself (its classified columns are masked), or ask for an approval to see them in clear.',
      sqlstate: '42501',
    },
  };
}
