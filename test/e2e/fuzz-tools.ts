/**
 * Seeded randomness for the stateful protocol fuzzers: the same seed replays the same batches.
 * Set DBGOV_FUZZ_SEED to replay one; every failure message names the seed it ran with.
 */

export interface Rng {
  seed: number;
  /** [0, 1) */
  next(): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
  bytes(n: number): Buffer;
}

/** mulberry32: tiny, fast, and good enough to pick messages. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    seed,
    next,
    int,
    pick: (items) => items[int(items.length)],
    chance: (p) => next() < p,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}

export function fuzzSeed(): number {
  const fixed = process.env.DBGOV_FUZZ_SEED;
  return fixed !== undefined && fixed !== '' ? Number(fixed) >>> 0 : (Date.now() ^ (process.pid << 8)) >>> 0;
}

/**
 * One mutation of a whole message or packet (header included): a flipped byte, a cut, a length
 * that lies, a random type, random bytes inserted or appended.
 */
export function mutate(r: Rng, msg: Buffer, lengthAt: { offset: number; size: 3 | 4; le: boolean }): Buffer {
  const out = Buffer.from(msg);
  switch (r.int(6)) {
    case 0: {
      if (out.length > 0) out[r.int(out.length)] ^= 1 << r.int(8);
      return out;
    }
    case 1:
      return out.subarray(0, r.int(out.length + 1));
    case 2: {
      const lie = r.pick([0, 1, 3, 4, r.int(out.length + 8), 0xffff, r.int(0x1000000)]);
      if (out.length >= lengthAt.offset + lengthAt.size) {
        if (lengthAt.size === 4) out.writeUInt32BE(lie >>> 0, lengthAt.offset);
        else out.writeUIntLE(lie & 0xffffff, lengthAt.offset, 3);
      }
      return out;
    }
    case 3: {
      if (out.length > 0 && lengthAt.size === 4) out[0] = r.int(256);
      else if (out.length > 4) out[4] = r.int(256);
      return out;
    }
    case 4: {
      const at = r.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), r.bytes(1 + r.int(8)), out.subarray(at)]);
    }
    default:
      return Buffer.concat([out, r.bytes(1 + r.int(16))]);
  }
}

/** Splits bytes into random chunks, so framing meets every kind of boundary. */
export function chunks(r: Rng, bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < bytes.length) {
    const n = 1 + r.int(Math.min(bytes.length - off, r.chance(0.3) ? 7 : 4096));
    out.push(bytes.subarray(off, off + n));
    off += n;
  }
  return out;
}
