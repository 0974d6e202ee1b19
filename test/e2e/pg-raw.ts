/**
 * A raw PostgreSQL v3 client for hostile-protocol tests: it speaks through a tunnel like any
 * client, then sends whatever bytes a test builds, valid or not, and collects the server's
 * messages as they come. Frontend builders take the fields as given, so tests can lie.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import type { Socket } from 'node:net';
import { RawSocket } from './raw-socket.js';

export interface BackendMessage {
  type: string;
  body: Buffer;
}

/** One frontend message: type byte, int32 length (of itself and the body, unless `len` lies). */
export function msg(type: string, body: Buffer = Buffer.alloc(0), len?: number): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(len ?? body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export function cstr(s: string | Buffer): Buffer {
  return Buffer.concat([typeof s === 'string' ? Buffer.from(s, 'utf8') : s, Buffer.from([0])]);
}

function i16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

export const fe = {
  query: (sql: string | Buffer): Buffer => msg('Q', cstr(sql)),
  parse: (name: string, sql: string | Buffer, types: number[] = []): Buffer => msg('P', Buffer.concat([cstr(name), cstr(sql), i16(types.length), ...types.map(i32)])),
  /** Text parameters (null for SQL NULL); `count` overrides the declared number of parameters. */
  bind: (portal: string, stmt: string, params: (string | null)[] = [], count?: number): Buffer =>
    msg('B', Buffer.concat([cstr(portal), cstr(stmt), i16(0), i16(count ?? params.length), ...params.map((p) => (p === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(p)), Buffer.from(p)]))), i16(0)])),
  describe: (kind: 'S' | 'P', name: string): Buffer => msg('D', Buffer.concat([Buffer.from(kind), cstr(name)])),
  execute: (portal: string, maxRows = 0): Buffer => msg('E', Buffer.concat([cstr(portal), i32(maxRows)])),
  close: (kind: 'S' | 'P', name: string): Buffer => msg('C', Buffer.concat([Buffer.from(kind), cstr(name)])),
  sync: (): Buffer => msg('S'),
  flush: (): Buffer => msg('H'),
  copyData: (data: string | Buffer): Buffer => msg('d', typeof data === 'string' ? Buffer.from(data) : data),
  copyDone: (): Buffer => msg('c'),
  copyFail: (why: string): Buffer => msg('f', cstr(why)),
  functionCall: (oid: number, args: string[] = []): Buffer =>
    msg('F', Buffer.concat([i32(oid), i16(0), i16(args.length), ...args.map((a) => Buffer.concat([i32(Buffer.byteLength(a)), Buffer.from(a)])), i16(0)])),
  terminate: (): Buffer => msg('X'),
  startup: (params: Record<string, string>): Buffer => {
    const body = Buffer.concat([i32(196608), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
    return Buffer.concat([i32(body.length + 4), body]);
  },
  sslRequest: (): Buffer => Buffer.concat([i32(8), i32(80877103)]),
  gssencRequest: (): Buffer => Buffer.concat([i32(8), i32(80877104)]),
  cancel: (pid: number, key: number): Buffer => Buffer.concat([i32(16), i32(80877102), i32(pid), i32(key)]),
};

export class RawPg extends RawSocket {
  readonly received: BackendMessage[] = [];
  pid = 0;
  key = 0;
  private buf = Buffer.alloc(0);

  private constructor(sock: Socket) {
    super(sock);
  }

  protected frame(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 5) {
      const len = this.buf.readInt32BE(1);
      if (this.buf.length < len + 1) break;
      this.received.push({ type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, len + 1) });
      this.buf = this.buf.subarray(len + 1);
    }
  }

  /** Opens a session through the tunnel and reads up to its first ReadyForQuery. */
  static async open(port: number, user: string, database: string): Promise<RawPg> {
    return RawPg.openWith(port, { user, database });
  }

  /** Like open(), with whatever startup parameters a test builds (names and order as given). */
  static async openWith(port: number, params: Record<string, string>): Promise<RawPg> {
    const c = new RawPg(await RawSocket.connect(port));
    c.send(fe.startup(params));
    const start = await c.until((m) => m.type === 'Z' || m.type === 'E');
    const key = start.find((m) => m.type === 'K');
    if (key) {
      c.pid = key.body.readInt32BE(0);
      c.key = key.body.readInt32BE(4);
    }
    if (!start.some((m) => m.type === 'Z')) throw new Error(`session did not start: ${errorsOf(start).join('; ')}`);
    return c;
  }

  send(...bufs: Buffer[]): void {
    if (!this.sock.destroyed) this.sock.write(Buffer.concat(bufs));
  }

  /**
   * Messages from the first not yet taken up to and including the first that matches `done`, or
   * all that came when the session closed or the time ran out.
   */
  async until(done: (m: BackendMessage) => boolean, timeoutMs = 5000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const idx = this.received.findIndex(done);
      if (idx >= 0) return this.received.splice(0, idx + 1);
      if (this.closed || Date.now() >= deadline) return this.received.splice(0);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Messages up to the `n`th ReadyForQuery from now. */
  async ready(n = 1, timeoutMs = 5000): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (let k = 0; k < n; k++) {
      const part = await this.until((m) => m.type === 'Z', timeoutMs);
      out.push(...part);
      if (part.length === 0 || part[part.length - 1].type !== 'Z') break;
    }
    return out;
  }

  /** Resolves once the gateway closed the session (or after the timeout: false). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }
}

/** Field `code` (e.g. 'C' SQLSTATE, 'M' message, 'S' severity) of an ErrorResponse/Notice body. */
export function field(m: BackendMessage, code: string): string | undefined {
  let off = 0;
  while (off < m.body.length && m.body[off] !== 0) {
    const c = String.fromCharCode(m.body[off]);
    const nul = m.body.indexOf(0, off + 1);
    if (c === code) return m.body.toString('utf8', off + 1, nul);
    off = nul + 1;
  }
  return undefined;
}

export function errorsOf(ms: BackendMessage[]): string[] {
  return ms.filter((m) => m.type === 'E').map((m) => `${field(m, 'S')} ${field(m, 'C')} ${field(m, 'M')}`);
}

/** The text values of the DataRows in `ms`. */
export function rowsOf(ms: BackendMessage[]): (string | null)[][] {
  return ms
    .filter((m) => m.type === 'D')
    .map((m) => {
      const n = m.body.readInt16BE(0);
      const out: (string | null)[] = [];
      let off = 2;
      for (let k = 0; k < n; k++) {
        const len = m.body.readInt32BE(off);
        off += 4;
        if (len < 0) out.push(null);
        else {
          out.push(m.body.toString('utf8', off, off + len));
          off += len;
        }
      }
      return out;
    });
}
