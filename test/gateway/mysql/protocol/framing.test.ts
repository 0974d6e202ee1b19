import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../../../src/shared/errors.js';
import { frame, PacketReader } from '../../../../src/gateway/mysql/protocol/framing.js';

const wire = (payloads: Buffer[]): Buffer => Buffer.concat(payloads.flatMap((p, k) => frame(p, k).frames));

describe('mysql framing', () => {
  const payloads = [Buffer.from([0x03, ...Buffer.from('SELECT 1')]), Buffer.alloc(0), Buffer.from([0x0e])];
  const bytes = wire(payloads);
  for (let cut = 0; cut <= bytes.length; cut++) {
    it(`reassembles packets split at offset ${cut}`, () => {
      const r = new PacketReader(1024);
      const got = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))];
      assert.deepEqual(
        got.map((p) => [p.seq, p.payload.toString('hex')]),
        payloads.map((p, k) => [k, p.toString('hex')]),
      );
    });
  }
  it('joins a payload of 16 MB and more from continuation frames and splits it back', () => {
    const big = Buffer.alloc(0xffffff + 10, 7);
    const { frames, nextSeq } = frame(big, 3);
    assert.equal(frames.length, 4);
    assert.equal(nextSeq, 5);
    const [p] = new PacketReader(64 << 20).push(Buffer.concat(frames));
    assert.equal(p.payload.length, big.length);
    assert.deepEqual([p.seq, p.lastSeq], [3, 4]);
  });
  it('refuses a packet larger than the limit from its header alone', () => {
    const r = new PacketReader(100);
    assert.throws(() => r.push(Buffer.from([0xff, 0xff, 0x00, 0x00])), ProtocolError);
  });
});
