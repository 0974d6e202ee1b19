/**
 * Line readers over JSONL segment files. They split on the byte 0x0A, which never occurs inside
 * a multi-byte UTF-8 sequence, so each line decodes on its own. Memory stays at one chunk plus
 * one line whatever the file size.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

const NL = 0x0a;
const CHUNK = 64 * 1024;

/**
 * Complete lines from start to end. A last line without its newline is not yielded: it is a
 * record still being written (or torn by a machine crash), not a record.
 */
export async function* readLinesForward(path: string): AsyncGenerator<string> {
  for await (const [line] of readLinesForwardFrom(path, 0)) yield line;
}

/**
 * Complete lines from byte `from` (a line start), each with the byte offset just past its
 * newline, so a reader can resume there later without rescanning the file.
 */
export async function* readLinesForwardFrom(path: string, from: number): AsyncGenerator<[line: string, end: number]> {
  const input = createReadStream(path, { highWaterMark: CHUNK, start: from });
  let carry: Buffer | undefined;
  let base = from;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      let start = 0;
      let nl = buf.indexOf(NL, start);
      while (nl !== -1) {
        if (nl > start) yield [buf.toString('utf8', start, nl), base + nl + 1];
        start = nl + 1;
        nl = buf.indexOf(NL, start);
      }
      base += start;
      carry = start < buf.length ? buf.subarray(start) : undefined;
    }
  } finally {
    input.destroy();
  }
}

/** Complete lines from the end back to the start. */
export async function* readLinesBackward(path: string): AsyncGenerator<string> {
  const fh = await open(path, 'r');
  try {
    let pos = (await fh.stat()).size;
    let carry: Buffer | undefined;
    // The file may end in a partial record being written right now; skip it, as the forward reader does.
    let skipPartialTail = true;
    while (pos > 0) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const chunk = Buffer.allocUnsafe(len);
      await fh.read(chunk, 0, len, pos);
      const buf = carry ? Buffer.concat([chunk, carry]) : chunk;
      let end = buf.length;
      let nl = buf.lastIndexOf(NL, end - 1);
      while (nl !== -1) {
        if (skipPartialTail) {
          skipPartialTail = false;
        } else if (end > nl + 1) {
          yield buf.toString('utf8', nl + 1, end);
        }
        end = nl;
        nl = end > 0 ? buf.lastIndexOf(NL, end - 1) : -1;
      }
      carry = end > 0 ? buf.subarray(0, end) : undefined;
    }
    if (carry && carry.length > 0 && !skipPartialTail) yield carry.toString('utf8');
  } finally {
    await fh.close();
  }
}

/** readLinesBackward for startup checks, which run before the broker serves anything. */
export function* readLinesBackwardSync(path: string): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    let pos = fstatSync(fd).size;
    let carry: Buffer | undefined;
    let skipPartialTail = true;
    while (pos > 0) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const chunk = Buffer.allocUnsafe(len);
      readSync(fd, chunk, 0, len, pos);
      const buf = carry ? Buffer.concat([chunk, carry]) : chunk;
      let end = buf.length;
      let nl = buf.lastIndexOf(NL, end - 1);
      while (nl !== -1) {
        if (skipPartialTail) skipPartialTail = false;
        else if (end > nl + 1) yield buf.toString('utf8', nl + 1, end);
        end = nl;
        nl = end > 0 ? buf.lastIndexOf(NL, end - 1) : -1;
      }
      carry = end > 0 ? buf.subarray(0, end) : undefined;
    }
    if (carry && carry.length > 0 && !skipPartialTail) yield carry.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The last complete line of a file and the byte length up to and including its newline. Bytes
 * after that are a torn record from a crash; the caller truncates them.
 */
export function lastCompleteLineSync(path: string): { line: string | undefined; validLength: number; size: number } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let pos = size;
    let tail: Buffer = Buffer.alloc(0);
    let lastNl = -1;
    while (pos > 0) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const chunk = Buffer.allocUnsafe(len);
      readSync(fd, chunk, 0, len, pos);
      tail = Buffer.concat([chunk, tail]);
      if (lastNl === -1) {
        const i = tail.lastIndexOf(NL);
        if (i === -1) continue;
        lastNl = pos + i;
      }
      const rel = lastNl - pos;
      const prev = rel > 0 ? tail.lastIndexOf(NL, rel - 1) : -1;
      if (prev !== -1 || pos === 0) {
        return { line: tail.toString('utf8', prev + 1, rel), validLength: lastNl + 1, size };
      }
    }
    return { line: undefined, validLength: 0, size };
  } finally {
    closeSync(fd);
  }
}

/** The first complete line of a file, if any. */
export function firstLineSync(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    let acc = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const n = readSync(fd, chunk, 0, CHUNK, pos);
      if (n === 0) return undefined;
      pos += n;
      acc = Buffer.concat([acc, chunk.subarray(0, n)]);
      const i = acc.indexOf(NL);
      if (i !== -1) return acc.toString('utf8', 0, i);
    }
  } finally {
    closeSync(fd);
  }
}
