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

const EMPTY = Buffer.alloc(0);

/** Incremental reassembly; survives any split of the byte stream. */
export class PacketReader {
  private pending: Buffer = EMPTY;
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
    this.pending = off === this.pending.length ? EMPTY : this.pending.subarray(off);
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
/** Below this many queued bytes a flush copies into one buffer; above it, a corked writev. */
const COALESCE_LIMIT = 64 * 1024;

/**
 * Frames waiting to be written. A response relayed unchanged keeps the upstream's framing
 * (same length, same sequence id), so its frames are the very bytes that arrived: they are
 * sent as slices of the received chunk, and neighbouring frames merge into one run. The
 * point is one socket write (one TLS record, one syscall) per chunk instead of two per packet.
 */
class Outbox {
  private runs: Buffer[] = [];
  private bytes = 0;
  /** The run being extended: bytes [start, end) of `buf`'s memory. */
  private buf: Buffer | null = null;
  private start = 0;
  private end = 0;
  /** A byte view of the memory the last payload lived in: one per received chunk, not per packet. */
  private view: Uint8Array = new Uint8Array(0);

  /** Queues one logical packet; returns the next sequence id. */
  add(payload: Buffer, seq: number): number {
    if (payload.length >= MAX_FRAME_PAYLOAD) {
      const { frames, nextSeq } = frame(payload, seq);
      this.endRun();
      for (const f of frames) this.push(f);
      return nextSeq;
    }
    const len = payload.length;
    const off = payload.byteOffset;
    const mem = payload.buffer;
    // The four bytes before the payload already are the header we would write: send them as they are.
    if (off >= 4) {
      if (this.view.buffer !== mem) this.view = new Uint8Array(mem);
      const b = this.view;
      if (b[off - 4] === (len & 0xff) && b[off - 3] === ((len >>> 8) & 0xff) && b[off - 2] === len >>> 16 && b[off - 1] === (seq & 0xff)) {
        if (this.buf !== null && this.buf.buffer === mem && this.end === off - 4) this.end = off + len;
        else {
          this.endRun();
          this.buf = payload;
          this.start = off - 4;
          this.end = off + len;
        }
        return (seq + 1) & 0xff;
      }
    }
    this.endRun();
    const f = Buffer.allocUnsafe(4 + len);
    f[0] = len & 0xff;
    f[1] = (len >>> 8) & 0xff;
    f[2] = len >>> 16;
    f[3] = seq & 0xff;
    payload.copy(f, 4);
    this.push(f);
    return (seq + 1) & 0xff;
  }

  private push(b: Buffer): void {
    this.runs.push(b);
    this.bytes += b.length;
  }

  private endRun(): void {
    if (this.buf === null) return;
    this.push(Buffer.from(this.buf.buffer, this.start, this.end - this.start));
    this.buf = null;
  }

  /** Writes everything queued; false when the socket asks the writer to wait for 'drain'. */
  writeTo(socket: Duplex): boolean {
    this.endRun();
    const runs = this.runs;
    if (runs.length === 0) return !socket.writableNeedDrain;
    const bytes = this.bytes;
    this.runs = [];
    this.bytes = 0;
    if (runs.length === 1) return socket.write(runs[0]);
    if (bytes <= COALESCE_LIMIT) return socket.write(Buffer.concat(runs, bytes));
    // Large output: no copy; corked writes leave as one writev.
    socket.cork();
    let ok = true;
    for (const r of runs) ok = socket.write(r) && ok;
    socket.uncork();
    return ok;
  }
}

/**
 * One side of a connection as a sequence of packets, with backpressure both ways: reading pauses
 * the socket while unconsumed packets pile up, and `flush` reports when the peer is slow.
 * Writes are queued (`send`) and leave together (`flush`).
 */
export class PacketChannel {
  private reader: PacketReader;
  private queue: Packet[] = [];
  private head = 0;
  private waiter: ((p: Packet | null) => void) | undefined;
  private failure: unknown;
  private ended = false;
  private socket: Duplex;
  private readonly out = new Outbox();
  private readonly onData = (chunk: Buffer): void => {
    try {
      for (const p of this.reader.push(chunk)) this.queue.push(p);
    } catch (e) {
      this.failure = e;
      this.socket.pause();
    }
    if (this.queue.length - this.head >= QUEUE_HIGH_WATER) this.socket.pause();
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
    if (this.head < this.queue.length) {
      const p = this.queue[this.head++];
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      if (this.queue.length - this.head < QUEUE_HIGH_WATER / 2 && this.failure === undefined && this.socket.isPaused()) this.socket.resume();
      return p;
    }
    if (this.failure !== undefined) return null;
    if (this.ended) return null;
    return undefined;
  }

  /** A packet already received, without waiting; undefined when none is queued (or the stream ended). */
  poll(): Packet | undefined {
    return this.head < this.queue.length ? (this.take() ?? undefined) : undefined;
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

  /** Queues one logical packet for the next flush. Returns the next sequence id. */
  send(payload: Buffer, seq: number): number {
    return this.out.add(payload, seq);
  }

  /**
   * Writes what `send` queued, in one write. Returns a promise only when the peer is slow (the
   * caller waits for it before producing more), so the common case costs no microtask.
   */
  flush(): Promise<void> | undefined {
    if (this.socket.destroyed || this.socket.writableEnded) return undefined;
    if (this.out.writeTo(this.socket)) return undefined;
    return drained(this.socket);
  }

  /** A promise when the peer has not taken what was written yet ('drain' pending), else undefined. */
  backpressure(): Promise<void> | undefined {
    return this.socket.writableNeedDrain && !this.socket.destroyed ? drained(this.socket) : undefined;
  }

  /** Writes one logical packet; resolves once the peer has room again. Returns the next sequence id. */
  async write(payload: Buffer, seq: number): Promise<number> {
    const next = this.send(payload, seq);
    const wait = this.flush();
    if (wait) await wait;
    return next;
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
