import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../../../src/shared/errors.js';
import { Duplex } from 'node:stream';
import { frame, PacketChannel, PacketReader } from '../../../../src/gateway/mysql/protocol/framing.js';

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

/** A socket stand-in: reads nothing, records every write as given. */
function recorder(): { socket: Duplex; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk);
      cb();
    },
  });
  return { socket, writes };
}

describe('mysql packet channel output', () => {
  const payloads = [Buffer.from([0x01]), Buffer.from([0x03, 0x64, 0x65, 0x66]), Buffer.alloc(0), Buffer.from([0xfe, 0, 0, 2, 0])];
  const received = wire(payloads);

  it('relays packets that arrived together as one write of the very bytes received', () => {
    const { socket, writes } = recorder();
    const out = new PacketChannel(socket, 1 << 20);
    const packets = new PacketReader(1024).push(received);
    let seq = 0;
    for (const p of packets) seq = out.send(p.payload, seq);
    assert.equal(out.flush(), undefined);
    assert.equal(writes.length, 1);
    assert.deepEqual(writes[0], received);
    // Zero copy: the write is a view of the received chunk, not a copy.
    assert.equal(writes[0].buffer, received.buffer);
    assert.equal(seq, payloads.length);
  });

  it('reframes packets whose sequence ids change, still in one write, byte for byte', () => {
    for (let cut = 0; cut <= received.length; cut++) {
      const { socket, writes } = recorder();
      const out = new PacketChannel(socket, 1 << 20);
      const reader = new PacketReader(1024);
      const packets = [...reader.push(received.subarray(0, cut)), ...reader.push(received.subarray(cut))];
      let seq = 5;
      for (const p of packets) seq = out.send(p.payload, seq);
      out.send(Buffer.from('synthesised'), seq);
      void out.flush();
      assert.equal(writes.length, 1, `cut ${cut}`);
      const want = Buffer.concat([...payloads.flatMap((p, k) => frame(p, 5 + k).frames), ...frame(Buffer.from('synthesised'), 5 + payloads.length).frames]);
      assert.deepEqual(writes[0], want, `cut ${cut}`);
    }
  });

  it('splits a payload of 16 MB and more into continuation frames', () => {
    const { socket, writes } = recorder();
    const out = new PacketChannel(socket, 1 << 20);
    const big = Buffer.alloc(0xffffff + 3, 9);
    const next = out.send(big, 1);
    void out.flush();
    assert.equal(next, 3);
    assert.deepEqual(Buffer.concat(writes), Buffer.concat(frame(big, 1).frames));
  });
});

