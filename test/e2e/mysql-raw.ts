/**
 * A raw MySQL client for hostile-protocol tests: it logs in through a tunnel like any client
 * (the tunnel attaches the credential; no password), then sends whatever packets a test builds,
 * with any sequence id or length, and reads the replies packet by packet.
 * https://mariadb.com/kb/en/clientserver-protocol/
 */
import type { Socket } from 'node:net';
import { Cap, Command } from '../../src/gateway/mysql/protocol/constants.js';
import { PacketReader, type Packet } from '../../src/gateway/mysql/protocol/framing.js';
import { encodeHandshakeResponse } from '../../src/gateway/mysql/protocol/packets.js';
import { RawSocket } from './raw-socket.js';

export { Cap, Command };

/** One frame: 3-byte length (the real one unless `len` lies), sequence id, payload. */
export function frame(payload: Buffer, seq = 0, len?: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(len ?? payload.length, 0, 3);
  h[3] = seq & 0xff;
  return Buffer.concat([h, payload]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

export const com = {
  query: (sql: string | Buffer): Buffer => Buffer.concat([Buffer.from([Command.QUERY]), typeof sql === 'string' ? Buffer.from(sql) : sql]),
  prepare: (sql: string): Buffer => Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from(sql)]),
  /** COM_STMT_EXECUTE with string parameters (types sent: MYSQL_TYPE_VAR_STRING). */
  execute: (id: number, params: (string | null)[] = [], flags = 0, opts: { bound?: 0 | 1; types?: Buffer } = {}): Buffer => {
    const parts = [Buffer.from([Command.STMT_EXECUTE]), u32(id), Buffer.from([flags]), u32(1)];
    if (params.length > 0) {
      const bitmap = Buffer.alloc((params.length + 7) >> 3);
      params.forEach((p, k) => {
        if (p === null) bitmap[k >> 3] |= 1 << (k & 7);
      });
      parts.push(bitmap, Buffer.from([opts.bound ?? 1]));
      if ((opts.bound ?? 1) === 1) parts.push(opts.types ?? Buffer.concat(params.map(() => Buffer.from([0xfd, 0]))));
      for (const p of params) if (p !== null) parts.push(Buffer.from([Buffer.byteLength(p)]), Buffer.from(p));
    }
    return Buffer.concat(parts);
  },
  fetch: (id: number, rows: number): Buffer => Buffer.concat([Buffer.from([Command.STMT_FETCH]), u32(id), u32(rows)]),
  close: (id: number): Buffer => Buffer.concat([Buffer.from([Command.STMT_CLOSE]), u32(id)]),
  reset: (id: number): Buffer => Buffer.concat([Buffer.from([Command.STMT_RESET]), u32(id)]),
  longData: (id: number, param: number, data: Buffer | string): Buffer => Buffer.concat([Buffer.from([Command.STMT_SEND_LONG_DATA]), u32(id), u16(param), Buffer.from(data)]),
  setOption: (on: boolean): Buffer => Buffer.concat([Buffer.from([Command.SET_OPTION]), u16(on ? 0 : 1)]),
  bare: (cmd: number, rest: Buffer = Buffer.alloc(0)): Buffer => Buffer.concat([Buffer.from([cmd]), rest]),
};

export interface Result {
  packets: Packet[];
  /** Row packets (text or binary), as received. */
  rows: Buffer[];
  error?: { code: number; message: string };
  /** The statement id of a COM_STMT_PREPARE OK. */
  stmtId?: number;
  status?: number;
}

export class RawMy extends RawSocket {
  private readonly queue: Packet[] = [];
  private readonly reader = new PacketReader(1 << 30);

  private constructor(sock: Socket) {
    super(sock);
  }

  protected frame(d: Buffer): void {
    try {
      this.queue.push(...this.reader.push(d));
    } catch {
      this.sock.destroy();
    }
  }

  /** Logs in through the tunnel. `capabilities` and `charset` are what the client claims. */
  static async open(port: number, user: string, database: string, opts: { capabilities?: number; charset?: number } = {}): Promise<{ c: RawMy; login: Packet | undefined }> {
    const c = new RawMy(await RawSocket.connect(port));
    await c.next();
    const caps = opts.capabilities ?? Cap.LONG_PASSWORD | Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | Cap.CONNECT_WITH_DB | Cap.MULTI_RESULTS | Cap.PS_MULTI_RESULTS | Cap.TRANSACTIONS;
    c.sock.write(frame(encodeHandshakeResponse({ capabilities: caps, charset: opts.charset ?? 45, user, authResponse: Buffer.alloc(0), database, authPlugin: 'mysql_native_password' }), 1));
    const login = await c.next();
    return { c, login };
  }

  write(bytes: Buffer): void {
    if (!this.sock.destroyed) this.sock.write(bytes);
  }

  /** Sends one command (sequence id 0). */
  send(payload: Buffer): void {
    this.write(frame(payload, 0));
  }

  /** The next packet, or undefined once the connection closed or the time ran out. */
  async next(timeoutMs = 5000): Promise<Packet | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.queue.shift();
  }

  /** Reads the answer to COM_QUERY / COM_STMT_EXECUTE / COM_STMT_FETCH (EOF framing, no DEPRECATE_EOF). */
  async result(opts: { prepare?: boolean; fetch?: boolean; timeoutMs?: number } = {}): Promise<Result> {
    const out: Result = { packets: [], rows: [] };
    const take = async (): Promise<Packet> => {
      const p = await this.next(opts.timeoutMs);
      if (!p) throw new Error(`no answer (closed: ${this.closed})`);
      out.packets.push(p);
      return p;
    };
    const rowsUntilEof = async (): Promise<boolean> => {
      for (;;) {
        const r = await take();
        if (r.payload[0] === 0xfe && r.payload.length < 9) {
          out.status = r.payload.readUInt16LE(3);
          return (out.status & 0x08) !== 0;
        }
        if (r.payload[0] === 0xff) {
          out.error = errOf(r.payload);
          return false;
        }
        out.rows.push(r.payload);
      }
    };
    if (opts.fetch) {
      await rowsUntilEof();
      return out;
    }
    for (;;) {
      const first = await take();
      if (first.payload[0] === 0xff) {
        out.error = errOf(first.payload);
        return out;
      }
      if (opts.prepare && first.payload[0] === 0x00) {
        out.stmtId = first.payload.readUInt32LE(1);
        const columns = first.payload.readUInt16LE(5);
        const params = first.payload.readUInt16LE(7);
        for (const n of [params, columns]) if (n > 0) for (let k = 0; k <= n; k++) await take();
        return out;
      }
      if (first.payload[0] === 0x00) {
        let off = 1;
        for (let k = 0; k < 2; k++) off += lenencLength(first.payload, off);
        out.status = first.payload.readUInt16LE(off);
        if (out.status & 0x08) continue;
        return out;
      }
      const n = first.payload[0];
      for (let k = 0; k < n; k++) await take();
      const eof = await take();
      out.status = eof.payload.readUInt16LE(3);
      // A cursor was opened: rows come through COM_STMT_FETCH.
      if (out.status & 0x40) return out;
      if (!(await rowsUntilEof())) return out;
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      // Drain what comes; a closed session may send a last ERR first.
      await this.next(50);
    }
    return this.closed;
  }

  /** Every packet still queued (e.g. a last ERR before the close). */
  drain(): Packet[] {
    return this.queue.splice(0);
  }
}

function lenencLength(b: Buffer, off: number): number {
  const x = b[off];
  return x < 0xfb ? 1 : x === 0xfc ? 3 : x === 0xfd ? 4 : 9;
}

export function errOf(payload: Buffer): { code: number; message: string } {
  const code = payload.readUInt16LE(1);
  const message = payload[3] === 0x23 ? payload.toString('utf8', 9) : payload.toString('utf8', 3);
  return { code, message };
}

/** The values of text-protocol rows (lenenc strings; null for NULL). */
export function textRows(rows: Buffer[]): (string | null)[][] {
  return rows.map((r) => {
    const out: (string | null)[] = [];
    let off = 0;
    while (off < r.length) {
      const x = r[off];
      if (x === 0xfb) {
        out.push(null);
        off++;
        continue;
      }
      const size = lenencLength(r, off);
      const len = size === 1 ? x : size === 3 ? r.readUIntLE(off + 1, 2) : size === 4 ? r.readUIntLE(off + 1, 3) : Number(r.readBigUInt64LE(off + 1));
      off += size;
      out.push(r.toString('utf8', off, off + len));
      off += len;
    }
    return out;
  });
}
