/**
 * What the raw protocol clients of the hostile-protocol tests share (pg-raw.ts, mysql-raw.ts): a
 * plain socket through the tunnel, every byte the gateway sent kept for leak checks, and waiters
 * woken whenever something arrives or the gateway closes the session.
 */
import { connect as netConnect, type Socket } from 'node:net';

export abstract class RawSocket {
  /** Every byte the gateway sent, for leak checks. */
  readonly bytes: Buffer[] = [];
  /** Whether the gateway ended the connection (set when the socket closes). */
  closed = false;
  protected waiters: (() => void)[] = [];

  protected constructor(protected readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.bytes.push(d);
      this.frame(d);
      this.wake();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Frames what arrived (the socket may be destroyed when it cannot be framed). */
  protected abstract frame(chunk: Buffer): void;

  protected static connect(port: number): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
  }

  allBytes(): Buffer {
    return Buffer.concat(this.bytes);
  }

  end(): void {
    this.sock.destroy();
  }

  protected wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
