/**
 * Encodes the messages the gateway writes itself: its own errors and notices, the session
 * greeting, upstream startup and authentication, injected extended-protocol messages and
 * re-encoded (masked or scrubbed) server messages. Everything else is forwarded as received.
 */
import { StartupCode } from './frontend.js';

/** Builds one message body; `build` prepends the type byte (if any) and the int32 length. */
class Writer {
  private parts: Buffer[] = [];
  private size = 0;

  int8(n: number): this {
    return this.add(Buffer.from([n & 0xff]));
  }
  int16(n: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(n);
    return this.add(b);
  }
  int32(n: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(n);
    return this.add(b);
  }
  cstring(s: string): this {
    return this.add(Buffer.from(`${s}\0`, 'utf8'));
  }
  bytes(b: Buffer): this {
    return this.add(b);
  }
  build(code?: number): Buffer {
    const head = code === undefined ? 0 : 1;
    const out = Buffer.allocUnsafe(head + 4 + this.size);
    if (code !== undefined) out[0] = code;
    out.writeInt32BE(4 + this.size, head);
    let off = head + 4;
    for (const p of this.parts) {
      p.copy(out, off);
      off += p.length;
    }
    return out;
  }
  private add(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
}

export interface NoticeFields {
  severity: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING';
  sqlstate: string;
  message: string;
  detail?: string;
  hint?: string;
}

function fields(code: number, f: NoticeFields): Buffer {
  const w = new Writer();
  w.int8(0x53).cstring(f.severity).int8(0x56).cstring(f.severity).int8(0x43).cstring(f.sqlstate).int8(0x4d).cstring(f.message);
  if (f.detail !== undefined) w.int8(0x44).cstring(f.detail);
  if (f.hint !== undefined) w.int8(0x48).cstring(f.hint);
  return w.int8(0).build(code);
}

export const errorResponse = (f: NoticeFields): Buffer => fields(0x45, f);
export const noticeResponse = (f: NoticeFields): Buffer => fields(0x4e, f);

/** Re-encodes decoded Error/Notice fields (after scrubbing), keeping their order. */
export function fieldsMessage(code: number, list: [number, string][]): Buffer {
  const w = new Writer();
  for (const [c, v] of list) w.int8(c).cstring(v);
  return w.int8(0).build(code);
}

export const authenticationOk = (): Buffer => new Writer().int32(0).build(0x52);
export const backendKeyData = (pid: number, key: number): Buffer => new Writer().int32(pid).int32(key).build(0x4b);
export const readyForQuery = (status: number): Buffer => new Writer().int8(status).build(0x5a);
export const query = (sql: string): Buffer => new Writer().cstring(sql).build(0x51);
export const parse = (name: string, sql: string): Buffer => new Writer().cstring(name).cstring(sql).int16(0).build(0x50);
/** Bind with no parameters and default (text) result formats. */
export const bind = (portal: string, statement: string): Buffer => new Writer().cstring(portal).cstring(statement).int16(0).int16(0).int16(0).build(0x42);
export const execute = (portal: string, maxRows = 0): Buffer => new Writer().cstring(portal).int32(maxRows).build(0x45);
export const describePortal = (portal: string): Buffer => new Writer().int8(0x50).cstring(portal).build(0x44);
export const sync = (): Buffer => new Writer().build(0x53);
export const terminate = (): Buffer => new Writer().build(0x58);
export const copyData = (payload: Buffer): Buffer => new Writer().bytes(payload).build(0x64);
export const passwordMessage = (text: string): Buffer => new Writer().cstring(text).build(0x70);
export const saslInitialResponse = (mechanism: string, data: Buffer): Buffer => new Writer().cstring(mechanism).int32(data.length).bytes(data).build(0x70);
export const saslResponse = (data: Buffer): Buffer => new Writer().bytes(data).build(0x70);
export const sslRequest = (): Buffer => new Writer().int32(StartupCode.sslRequest).build();
export const cancelRequest = (pid: number, key: number): Buffer => new Writer().int32(StartupCode.cancelRequest).int32(pid).int32(key).build();

export function startupMessage(params: Iterable<[string, string]>): Buffer {
  const w = new Writer().int32(StartupCode.protocol3);
  for (const [k, v] of params) w.cstring(k).cstring(v);
  return w.int8(0).build();
}

/** FunctionCallResponse with one result value (null = SQL NULL). */
export const functionCallResponse = (value: Buffer | null): Buffer => (value === null ? new Writer().int32(-1) : new Writer().int32(value.length).bytes(value)).build(0x56);

/** DataRow from fields (null = SQL NULL), sized exactly and written once. */
export function dataRow(values: (Buffer | null)[]): Buffer {
  let size = 4 + 2;
  for (const v of values) size += 4 + (v === null ? 0 : v.length);
  const out = Buffer.allocUnsafe(1 + size);
  out[0] = 0x44;
  out.writeInt32BE(size, 1);
  out.writeInt16BE(values.length, 5);
  let off = 7;
  for (const v of values) {
    if (v === null) {
      out.writeInt32BE(-1, off);
      off += 4;
    } else {
      out.writeInt32BE(v.length, off);
      v.copy(out, off + 4);
      off += 4 + v.length;
    }
  }
  return out;
}
