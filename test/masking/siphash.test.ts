import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sipHash, sipKey, sipOut, writeSipHex } from '../../src/masking/siphash.js';

/** The result as 8 bytes in the reference implementation's output order (little-endian). */
function digest(key: Buffer, msg: Buffer): Buffer {
  sipHash(sipKey(key), msg, 0, msg.length);
  const out = Buffer.alloc(8);
  out.writeInt32LE(sipOut.lo, 0);
  out.writeInt32LE(sipOut.hi, 4);
  return out;
}

/** A straightforward SipHash-2-4 over BigInt, written from the paper, to compare against. */
function reference(key: Buffer, msg: Buffer): Buffer {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M;
  const k0 = key.readBigUInt64LE(0);
  const k1 = key.readBigUInt64LE(8);
  let v0 = k0 ^ 0x736f6d6570736575n;
  let v1 = k1 ^ 0x646f72616e646f6dn;
  let v2 = k0 ^ 0x6c7967656e657261n;
  let v3 = k1 ^ 0x7465646279746573n;
  const round = () => {
    v0 = (v0 + v1) & M; v1 = rotl(v1, 13n); v1 ^= v0; v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M; v3 = rotl(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & M; v3 = rotl(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & M; v1 = rotl(v1, 17n); v1 ^= v2; v2 = rotl(v2, 32n);
  };
  const padded = Buffer.alloc(Math.floor(msg.length / 8) * 8 + 8);
  msg.copy(padded);
  padded[padded.length - 1] = msg.length & 0xff;
  for (let i = 0; i < padded.length; i += 8) {
    const m = padded.readBigUInt64LE(i);
    v3 ^= m; round(); round(); v0 ^= m;
  }
  v2 ^= 0xffn;
  round(); round(); round(); round();
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(v0 ^ v1 ^ v2 ^ v3);
  return out;
}

test('SipHash-2-4 matches the published reference vectors', () => {
  // veorq/SipHash vectors.h: key 00..0f, message i = bytes 00..(i-1).
  const vectors: Record<number, string> = {
    0: '310e0edd47db6f72', 1: 'fd67dc93c539f874', 2: '5a4fa9d909806c0d', 3: '2d7efbd796666785',
    4: 'b7877127e09427cf', 5: '8da699cd64557618', 6: 'cee3fe586e46c9cb', 7: '37d1018bf50002ab',
    8: '6224939a79f5f593', 9: 'b0e4a90bdf82009e', 15: 'e545be4961ca29a1',
  };
  const key = Buffer.from([...Array(16).keys()]);
  for (const [n, hex] of Object.entries(vectors)) {
    const msg = Buffer.from([...Array(Number(n)).keys()]);
    assert.equal(digest(key, msg).toString('hex'), hex, `length ${n}`);
    assert.equal(reference(key, msg).toString('hex'), hex, `reference, length ${n}`);
  }
});

test('SipHash-2-4 agrees with the BigInt reference on random keys, lengths and offsets', () => {
  for (let i = 0; i < 2000; i++) {
    const key = randomBytes(16);
    const msg = randomBytes(i % 97);
    const pad = i % 5;
    const framed = Buffer.concat([randomBytes(pad), msg, randomBytes(3)]);
    sipHash(sipKey(key), framed, pad, msg.length);
    const got = Buffer.alloc(8);
    got.writeInt32LE(sipOut.lo, 0);
    got.writeInt32LE(sipOut.hi, 4);
    assert.deepEqual(got, reference(key, msg), `length ${msg.length} at offset ${pad}`);
  }
});

test('hex output is the digest bytes in order, cut to the requested length', () => {
  const key = randomBytes(16);
  const msg = Buffer.from('alice@example.com');
  const full = reference(key, msg).toString('hex');
  for (const chars of [1, 8, 9, 16]) {
    sipHash(sipKey(key), msg, 0, msg.length);
    const out = Buffer.alloc(chars);
    assert.equal(writeSipHex(out, 0, chars), chars);
    assert.equal(out.toString('latin1'), full.slice(0, chars));
  }
  assert.throws(() => sipKey(Buffer.alloc(8)), /16 bytes/);
});
