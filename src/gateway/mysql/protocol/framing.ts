/**
 * Framing: 4-byte header (3-byte little-endian payload length, 1-byte sequence id), then the
 * payload. A payload of exactly 0xffffff bytes continues in the next frame; the logical packet
 * ends with the first shorter frame (possibly empty).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
 */
import type { Duplex } from 'node:stream';
import { ProtocolError } from '../../../shared/errors.js';
import { MAX_FRAME_PAYLOAD } from './constants.js';

export interface Packet {
  /** Sequence id of the packet's first frame. */
  seq: number;
  /** Sequence id of its last frame (differs for packets of 16 MB and more). */
  lastSeq: number;
  payload: Buffer;
}

/** Incremental reassembly; survives any split of the byte stream. */
export class PacketReader {
  private pending: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partsLength = 0;
  private firstSeq = -1;

  /** @param maxPayload larger logical packets are a protocol error (closes the session). */
  constructor(private readonly maxPayload: number) {}

  push(chunk: Buffer): Packet[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Packet[] = [];
    let off = 0;
    while (this.pending.length - off >= 4) {
      const len = this.pending.readUIntLE(off, 3);
      const seq = this.pending[off + 3];
      // Refuse before buffering: an attacker must not make us allocate what it announces.
      if (this.partsLength + len > this.maxPayload) throw new ProtocolError(`packet of ${this.partsLength + len} bytes exceeds the ${this.maxPayload}-byte limit`);
      if (this.pending.length - off < 4 + len) break;
      const body = this.pending.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      if (this.firstSeq < 0) this.firstSeq = seq;
      if (len === MAX_FRAME_PAYLOAD) {
        this.parts.push(Buffer.from(body));
        this.partsLength += len;
        continue;
      }
      const payload = this.parts.length === 0 ? body : Buffer.concat([...this.parts, body]);
      out.push({ seq: this.firstSeq, lastSeq: seq, payload });
      this.parts = [];
      this.partsLength = 0;
      this.firstSeq = -1;
    }
    this.pending = off === this.pending.length ? Buffer.alloc(0) : this.pending.subarray(off);
    return out;
  }
}

/** Frames one logical packet; returns the buffers to write and the next sequence id. */
export function frame(payload: Buffer, seq: number): { frames: Buffer[]; nextSeq: number } {
  const frames: Buffer[] = [];
  let off = 0;
  for (;;) {
    const len = Math.min(MAX_FRAME_PAYLOAD, payload.length - off);
    const header = Buffer.allocUnsafe(4);
    header.writeUIntLE(len, 0, 3);
    header[3] = seq & 0xff;
    seq = (seq + 1) & 0xff;
    frames.push(header, payload.subarray(off, off + len));
    off += len;
    if (len < MAX_FRAME_PAYLOAD) break;
  }
  return { frames, nextSeq: seq };
}

const QUEUE_HIGH_WATER = 64;

/**
 * One side of a connection as a sequence of packets, with backpressure both ways: reading pauses
 * the socket while unconsumed packets pile up, and `write` reports when the peer is slow.
 */
export class PacketChannel {
  private reader: PacketReader;
  private queue: Packet[] = [];
  private waiter: ((p: Packet | null) => void) | undefined;
  private failure: unknown;
  private ended = false;
  private socket: Duplex;
  private readonly onData = (chunk: Buffer): void => {
    try {
      for (const p of this.reader.push(chunk)) this.queue.push(p);
    } catch (e) {
      this.failure = e;
      this.socket.pause();
    }
    if (this.queue.length >= QUEUE_HIGH_WATER) this.socket.pause();
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };

  constructor(socket: Duplex, maxPayload: number) {
    this.socket = socket;
    this.reader = new PacketReader(maxPayload);
    this.attach(socket);
  }

  private attach(socket: Duplex): void {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
  }

  /** Moves reading to another stream wrapping the same connection (after a TLS upgrade). */
  replaceSocket(socket: Duplex): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    this.socket = socket;
    this.ended = false;
    this.attach(socket);
  }

  get stream(): Duplex {
    return this.socket;
  }

  private wake(): void {
    if (!this.waiter) return;
    const p = this.take();
    if (p === undefined) return;
    const w = this.waiter;
    this.waiter = undefined;
    w(p);
  }

  /** undefined: nothing yet; null: the stream ended. Throws the framing error, once queued packets are consumed. */
  private take(): Packet | null | undefined {
    const p = this.queue.shift();
    if (p) {
      if (this.queue.length < QUEUE_HIGH_WATER / 2 && this.failure === undefined) this.socket.resume();
      return p;
    }
    if (this.failure !== undefined) return null;
    if (this.ended) return null;
    return undefined;
  }

  /** The next packet, or null when the stream ended or sent bytes that cannot be framed (see `error`). */
  next(): Promise<Packet | null> {
    const p = this.take();
    if (p !== undefined) return Promise.resolve(p);
    // The stream may arrive paused (the gateway pauses it after reading the tunnel preamble).
    if (this.failure === undefined && !this.ended) this.socket.resume();
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** The framing error that ended the stream, if any. */
  get error(): unknown {
    return this.failure;
  }

  /** Writes one logical packet; resolves once the peer has room again. Returns the next sequence id. */
  async write(payload: Buffer, seq: number): Promise<number> {
    const { frames, nextSeq } = frame(payload, seq);
    let ok = true;
    for (const f of frames) ok = this.socket.write(f) && ok;
    if (!ok && !this.socket.destroyed) await drained(this.socket);
    return nextSeq;
  }
}

function drained(socket: Duplex): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
