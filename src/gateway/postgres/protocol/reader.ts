/**
 * Framing of PostgreSQL protocol v3 messages, in the layout of pg-protocol's reader: a message
 * is returned as a subarray of the bytes received (zero copy); bytes are copied only when a
 * message straddles TCP chunks, and then once, when the whole message has arrived.
 * https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 */
import { ProtocolError } from '../../../shared/errors.js';

/** Type byte + int32 length. The length counts itself but not the type byte. */
export const HEADER_BYTES = 5;
/** Startup-phase packets have no type byte: int32 length + int32 code. */
export const STARTUP_HEADER_BYTES = 8;
/** PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET_BYTES = 10_000;
/** PostgreSQL's largest possible message (MaxAllocSize); used for server messages. */
export const MAX_SERVER_MESSAGE_BYTES = 0x3fffffff;

const EMPTY = Buffer.alloc(0);

/** Raised when a message declares a length over the limit, before its body is buffered. */
export class MessageTooLargeError extends ProtocolError {
  readonly declaredBytes: number;
  constructor(declaredBytes: number, limit: number) {
    super(`message of ${declaredBytes} bytes is over the limit of ${limit}`);
    this.declaredBytes = declaredBytes;
  }
}

export class FrameReader {
  private buf: Buffer = EMPTY;
  private off = 0;
  /** Chunks that arrived while a message was incomplete; joined once the message is whole. */
  private parts: Buffer[] = [];
  private partsBytes = 0;

  constructor(private readonly maxMessageBytes: number) {}

  push(chunk: Buffer): void {
    if (this.partsBytes === 0 && this.off >= this.buf.length) {
      this.buf = chunk;
      this.off = 0;
      return;
    }
    this.parts.push(chunk);
    this.partsBytes += chunk.length;
  }

  /** The next whole typed message (type byte, length, body), or null until more bytes arrive. */
  next(): Buffer | null {
    if (!this.gather(HEADER_BYTES)) return null;
    const len = this.buf.readUInt32BE(this.off + 1);
    // A length under 4 cannot even cover itself: the stream is garbage from here on.
    if (len < 4) throw new ProtocolError(`invalid message length ${len}`);
    const total = len + 1;
    // Checked on the header, so a hostile length never makes us buffer its body.
    if (total > this.maxMessageBytes) throw new MessageTooLargeError(total, this.maxMessageBytes);
    if (!this.gather(total)) return null;
    const msg = this.buf.subarray(this.off, this.off + total);
    this.off += total;
    return msg;
  }

  /** The type byte of the next message once it has arrived, before the rest of it; else null. */
  peekType(): number | null {
    return this.off < this.buf.length ? this.buf[this.off] : null;
  }

  /** The next startup-phase packet (no type byte), or null until more bytes arrive. */
  nextStartup(): Buffer | null {
    if (!this.gather(4)) return null;
    const len = this.buf.readUInt32BE(this.off);
    if (len < STARTUP_HEADER_BYTES || len > MAX_STARTUP_PACKET_BYTES) throw new ProtocolError(`invalid startup packet length ${len}`);
    if (!this.gather(len)) return null;
    const msg = this.buf.subarray(this.off, this.off + len);
    this.off += len;
    return msg;
  }

  /** Makes `need` bytes contiguous at `off` if they have all arrived. */
  private gather(need: number): boolean {
    const have = this.buf.length - this.off;
    if (have >= need) return true;
    if (have + this.partsBytes < need) return false;
    if (have === 0 && this.parts.length === 1) this.buf = this.parts[0];
    else this.buf = Buffer.concat(have === 0 ? this.parts : [this.buf.subarray(this.off), ...this.parts], have + this.partsBytes);
    this.off = 0;
    this.parts = [];
    this.partsBytes = 0;
    return true;
  }
}
