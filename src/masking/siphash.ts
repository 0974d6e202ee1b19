/**
 * SipHash-2-4 (Aumasson & Bernstein, 2012): a keyed pseudorandom function for short inputs,
 * used for hash-mask tokens. A result column masks every row, so the token must cost far less
 * than an HMAC-SHA256 call (node:crypto spends ~2–4 µs per value on object set-up alone); this
 * runs in ~0.2 µs without allocating.
 *
 * 64-bit lanes are kept as 32-bit halves so V8 stays in small-integer arithmetic. Checked
 * against the reference vectors and a BigInt implementation in test/masking/siphash.test.ts.
 */

/** A 128-bit SipHash key as four 32-bit words (k0 = bytes 0–7, k1 = bytes 8–15, little-endian). */
export interface SipKey {
  readonly k0h: number;
  readonly k0l: number;
  readonly k1h: number;
  readonly k1l: number;
}

export function sipKey(key: Buffer): SipKey {
  if (key.length !== 16) throw new Error('siphash: the key must be 16 bytes');
  return { k0l: key.readInt32LE(0), k0h: key.readInt32LE(4), k1l: key.readInt32LE(8), k1h: key.readInt32LE(12) };
}

/** The high and low 32 bits of the last result. */
export const sipOut = { hi: 0, lo: 0 };

/**
 * SipHash-2-4 of src[start, start + len); the 64-bit result is left in `sipOut`. The state
 * lives in locals, and one loop runs every round (two per block, then four to finish), so V8
 * keeps all of it in registers.
 */
export function sipHash(k: SipKey, src: Uint8Array, start: number, len: number): void {
  let v0h = k.k0h ^ 0x736f6d65;
  let v0l = k.k0l ^ 0x70736575;
  let v1h = k.k1h ^ 0x646f7261;
  let v1l = k.k1l ^ 0x6e646f6d;
  let v2h = k.k0h ^ 0x6c796765;
  let v2l = k.k0l ^ 0x6e657261;
  let v3h = k.k1h ^ 0x74656462;
  let v3l = k.k1l ^ 0x79746573;
  const end = start + len;
  // Where the last block starts: the remaining 0–7 bytes, with the length's low byte on top.
  const last = start + (len & ~7);
  let i = start;
  let ml = 0;
  let mh = 0;
  let finishing = false;
  for (let rounds = 0; ; ) {
    if (rounds === 0) {
      if (i <= last) {
        if (i < last) {
          ml = src[i] | (src[i + 1] << 8) | (src[i + 2] << 16) | (src[i + 3] << 24);
          mh = src[i + 4] | (src[i + 5] << 8) | (src[i + 6] << 16) | (src[i + 7] << 24);
        } else {
          ml = 0;
          mh = (len & 0xff) << 24;
          for (let j = 0; i + j < end; j++) {
            if (j < 4) ml |= src[i + j] << (8 * j);
            else mh |= src[i + j] << (8 * (j - 4));
          }
        }
        i += 8;
        v3h ^= mh;
        v3l ^= ml;
        rounds = 2;
      } else {
        v2l ^= 0xff;
        rounds = 4;
        finishing = true;
      }
    }
    // SipRound on 64-bit lanes kept as (high, low) 32-bit halves.
    let l = (v0l >>> 0) + (v1l >>> 0);
    v0h = (v0h + v1h + (l > 0xffffffff ? 1 : 0)) | 0;
    v0l = l | 0;
    let th = (v1h << 13) | (v1l >>> 19);
    let tl = (v1l << 13) | (v1h >>> 19);
    v1h = th ^ v0h;
    v1l = tl ^ v0l;
    th = v0h;
    v0h = v0l;
    v0l = th;
    l = (v2l >>> 0) + (v3l >>> 0);
    v2h = (v2h + v3h + (l > 0xffffffff ? 1 : 0)) | 0;
    v2l = l | 0;
    th = (v3h << 16) | (v3l >>> 16);
    tl = (v3l << 16) | (v3h >>> 16);
    v3h = th ^ v2h;
    v3l = tl ^ v2l;
    l = (v0l >>> 0) + (v3l >>> 0);
    v0h = (v0h + v3h + (l > 0xffffffff ? 1 : 0)) | 0;
    v0l = l | 0;
    th = (v3h << 21) | (v3l >>> 11);
    tl = (v3l << 21) | (v3h >>> 11);
    v3h = th ^ v0h;
    v3l = tl ^ v0l;
    l = (v2l >>> 0) + (v1l >>> 0);
    v2h = (v2h + v1h + (l > 0xffffffff ? 1 : 0)) | 0;
    v2l = l | 0;
    th = (v1h << 17) | (v1l >>> 15);
    tl = (v1l << 17) | (v1h >>> 15);
    v1h = th ^ v2h;
    v1l = tl ^ v2l;
    th = v2h;
    v2h = v2l;
    v2l = th;
    if (--rounds === 0) {
      if (finishing) break;
      v0h ^= mh;
      v0l ^= ml;
    }
  }
  sipOut.hi = v0h ^ v1h ^ v2h ^ v3h;
  sipOut.lo = v0l ^ v1l ^ v2l ^ v3l;
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');

/**
 * Writes the first `chars` (≤ 16) hex characters of `sipOut`, in byte order (little-endian,
 * as the reference implementation emits the result), into out at pos; returns the end.
 */
export function writeSipHex(out: Uint8Array, pos: number, chars: number): number {
  for (let c = 0; c < chars; c++) {
    const byte = c < 8 ? sipOut.lo >>> (8 * (c >> 1)) : sipOut.hi >>> (8 * ((c - 8) >> 1));
    out[pos++] = HEX[(c & 1) === 0 ? (byte >>> 4) & 0xf : byte & 0xf];
  }
  return pos;
}
