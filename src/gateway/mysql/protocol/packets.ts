/**
 * Payload encoders and decoders for the packets the gateway reads or writes.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets.html
 */
import { ProtocolError } from '../../../shared/errors.js';
import { BINARY_FIXED_WIDTH, BINARY_TEMPORAL, Cap } from './constants.js';

/** Bounds-checked cursor over a payload: a short payload is a ProtocolError, never a RangeError. */
export class PayloadReader {
  off: number;
  constructor(
    readonly buf: Buffer,
    off = 0,
  ) {
    this.off = off;
  }
  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new ProtocolError('truncated packet');
  }
  remaining(): number {
    return this.buf.length - this.off;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++];
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.off, 3);
    this.off += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  rest(): Buffer {
    const b = this.buf.subarray(this.off);
    this.off = this.buf.length;
    return b;
  }
  nulString(): Buffer {
    const end = this.buf.indexOf(0, this.off);
    if (end < 0) throw new ProtocolError('unterminated string in packet');
    const b = this.buf.subarray(this.off, end);
    this.off = end + 1;
    return b;
  }
  /** Length-encoded integer; null for the 0xfb NULL marker. */
  lenenc(): number | null {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfb) return null;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.u24();
    if (first === 0xfe) {
      this.need(8);
      const v = this.buf.readBigUInt64LE(this.off);
      this.off += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('length-encoded integer too large');
      return Number(v);
    }
    throw new ProtocolError('invalid length-encoded integer');
  }
  lenencBytes(): Buffer | null {
    const n = this.lenenc();
    return n === null ? null : this.bytes(n);
  }
}

export function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n < 0x1000000) {
    const b = Buffer.alloc(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencBytes(v: Buffer): Buffer {
  return Buffer.concat([lenencInt(v.length), v]);
}

// ---- generic responses ---------------------------------------------------------------------

export function errPacket(code: number, sqlstate: string, message: string): Buffer {
  const head = Buffer.alloc(9);
  head[0] = 0xff;
  head.writeUInt16LE(code, 1);
  head.write('#', 3, 'latin1');
  head.write(sqlstate.padEnd(5, '0').slice(0, 5), 4, 'latin1');
  return Buffer.concat([head, Buffer.from(message, 'utf8')]);
}

export function okPacket(statusFlags: number, affectedRows = 0, lastInsertId = 0, warnings = 0): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16LE(statusFlags, 0);
  tail.writeUInt16LE(warnings, 2);
  return Buffer.concat([Buffer.from([0x00]), lenencInt(affectedRows), lenencInt(lastInsertId), tail]);
}

export interface ErrInfo {
  code: number;
  sqlstate: string;
  message: string;
}

export function parseErr(payload: Buffer): ErrInfo {
  const r = new PayloadReader(payload, 1);
  const code = r.u16();
  let sqlstate = 'HY000';
  if (r.remaining() >= 6 && payload[r.off] === 0x23) {
    r.off++;
    sqlstate = r.bytes(5).toString('latin1');
  }
  return { code, sqlstate, message: r.rest().toString('utf8') };
}

export interface OkInfo {
  affectedRows: number;
  lastInsertId: number;
  status: number;
}

export function parseOk(payload: Buffer): OkInfo {
  const r = new PayloadReader(payload, 1);
  const affectedRows = r.lenenc() ?? 0;
  const lastInsertId = r.lenenc() ?? 0;
  const status = r.remaining() >= 2 ? r.u16() : 0;
  return { affectedRows, lastInsertId, status };
}

/** An EOF packet: 0xfe and shorter than 9 bytes (a longer 0xfe packet is a row or auth switch). */
export function isEof(payload: Buffer): boolean {
  return payload.length > 0 && payload.length < 9 && payload[0] === 0xfe;
}

export function eofStatus(payload: Buffer): number {
  return payload.length >= 5 ? payload.readUInt16LE(3) : 0;
}

// ---- handshake -----------------------------------------------------------------------------

export interface ServerHandshake {
  protocolVersion: number;
  serverVersion: string;
  connectionId: number;
  /** The 20-byte scramble (nonce) for password plugins. */
  scramble: Buffer;
  capabilities: number;
  charset: number;
  status: number;
  authPlugin: string;
}

export function parseServerHandshake(payload: Buffer): ServerHandshake {
  const r = new PayloadReader(payload);
  const protocolVersion = r.u8();
  if (protocolVersion !== 10) throw new ProtocolError(`unsupported handshake protocol version ${protocolVersion}`);
  const serverVersion = r.nulString().toString('utf8');
  const connectionId = r.u32();
  const part1 = r.bytes(8);
  r.u8();
  let capabilities = r.u16();
  const charset = r.remaining() > 0 ? r.u8() : 0x21;
  const status = r.remaining() >= 2 ? r.u16() : 0;
  let part2: Buffer = Buffer.alloc(0);
  let authPlugin = 'mysql_native_password';
  if (r.remaining() >= 13) {
    capabilities |= r.u16() << 16;
    const authLen = r.u8();
    r.bytes(10);
    if (capabilities & Cap.SECURE_CONNECTION) {
      part2 = r.bytes(Math.max(13, authLen - 8));
      // The scramble's last byte in the packet is a NUL terminator, not part of the nonce.
      if (part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
    }
    if (capabilities & Cap.PLUGIN_AUTH && r.remaining() > 0) {
      const end = payload.indexOf(0, r.off);
      authPlugin = payload.subarray(r.off, end < 0 ? payload.length : end).toString('utf8');
    }
  }
  return { protocolVersion, serverVersion, connectionId: connectionId >>> 0, scramble: Buffer.concat([part1, part2]), capabilities: capabilities >>> 0, charset, status, authPlugin };
}

export function encodeServerHandshake(h: Omit<ServerHandshake, 'protocolVersion'>): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(h.connectionId >>> 0, 0);
  const mid = Buffer.alloc(1 + 2 + 1 + 2 + 2 + 1 + 10);
  let o = 0;
  mid[o++] = 0;
  mid.writeUInt16LE(h.capabilities & 0xffff, o);
  o += 2;
  mid[o++] = h.charset;
  mid.writeUInt16LE(h.status, o);
  o += 2;
  mid.writeUInt16LE((h.capabilities >>> 16) & 0xffff, o);
  o += 2;
  mid[o++] = h.scramble.length + 1;
  return Buffer.concat([
    Buffer.from([10]),
    Buffer.from(`${h.serverVersion}\0`, 'utf8'),
    head,
    h.scramble.subarray(0, 8),
    mid,
    h.scramble.subarray(8),
    Buffer.from([0]),
    Buffer.from(`${h.authPlugin}\0`, 'utf8'),
  ]);
}

export interface HandshakeResponse {
  capabilities: number;
  maxPacket: number;
  charset: number;
  user: string;
  authResponse: Buffer;
  database: string | undefined;
  authPlugin: string | undefined;
  /** The client asked to start TLS (an SSLRequest): not offered by the gateway. */
  sslRequest: boolean;
}

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new PayloadReader(payload);
  const capabilities = r.u32();
  if (!(capabilities & Cap.PROTOCOL_41)) throw new ProtocolError('client does not speak protocol 4.1');
  const maxPacket = r.u32();
  const charset = r.u8();
  r.bytes(23);
  if (r.remaining() === 0 && capabilities & Cap.SSL) {
    return { capabilities, maxPacket, charset, user: '', authResponse: Buffer.alloc(0), database: undefined, authPlugin: undefined, sslRequest: true };
  }
  const user = r.nulString().toString('utf8');
  let authResponse: Buffer;
  if (capabilities & Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.lenencBytes() ?? Buffer.alloc(0);
  else if (capabilities & Cap.SECURE_CONNECTION) authResponse = r.bytes(r.u8());
  else authResponse = r.nulString();
  let database: string | undefined;
  if (capabilities & Cap.CONNECT_WITH_DB && r.remaining() > 0) database = r.nulString().toString('utf8');
  let authPlugin: string | undefined;
  if (capabilities & Cap.PLUGIN_AUTH && r.remaining() > 0) {
    const end = payload.indexOf(0, r.off);
    authPlugin = payload.subarray(r.off, end < 0 ? payload.length : end).toString('utf8');
  }
  return { capabilities, maxPacket, charset, user, authResponse, database: database === '' ? undefined : database, authPlugin, sslRequest: false };
}

export function encodeHandshakeResponse(opts: { capabilities: number; charset: number; user: string; authResponse: Buffer; database?: string; authPlugin: string }): Buffer {
  const head = Buffer.alloc(32);
  head.writeUInt32LE(opts.capabilities >>> 0, 0);
  head.writeUInt32LE(0x40000000, 4);
  head[8] = opts.charset;
  const parts: Buffer[] = [head];
  if (opts.capabilities & Cap.SSL && opts.user === '' && opts.authPlugin === '') return head;
  parts.push(Buffer.from(`${opts.user}\0`, 'utf8'), lenencBytes(opts.authResponse));
  if (opts.capabilities & Cap.CONNECT_WITH_DB) parts.push(Buffer.from(`${opts.database ?? ''}\0`, 'utf8'));
  parts.push(Buffer.from(`${opts.authPlugin}\0`, 'utf8'));
  return Buffer.concat(parts);
}

/** The 32-byte SSLRequest that precedes a TLS upgrade. */
export function encodeSslRequest(capabilities: number, charset: number): Buffer {
  return encodeHandshakeResponse({ capabilities: capabilities | Cap.SSL, charset, user: '', authResponse: Buffer.alloc(0), authPlugin: '' });
}

// ---- result sets ---------------------------------------------------------------------------

export interface ColumnDefinition {
  schema: string;
  table: string;
  orgTable: string;
  name: string;
  orgName: string;
  charset: number;
  type: number;
  flags: number;
}

export function parseColumnDefinition(payload: Buffer): ColumnDefinition {
  const r = new PayloadReader(payload);
  const str = (): string => (r.lenencBytes() ?? Buffer.alloc(0)).toString('utf8');
  str(); // catalog, always "def"
  const schema = str();
  const table = str();
  const orgTable = str();
  const name = str();
  const orgName = str();
  r.lenenc();
  const charset = r.u16();
  r.u32();
  const type = r.u8();
  const flags = r.u16();
  return { schema, table, orgTable, name, orgName, charset, type, flags };
}

type MaskFn = (value: Buffer | null, format: 0 | 1, typeId: number) => Buffer | null;

/** Rewrites one text-protocol row: every field is a length-encoded string or 0xfb (NULL). */
export function maskTextRow(payload: Buffer, types: number[], masks: Map<number, MaskFn>): Buffer {
  const r = new PayloadReader(payload);
  const out: Buffer[] = [];
  for (let c = 0; c < types.length; c++) {
    const start = r.off;
    const value = r.lenencBytes();
    const mask = masks.get(c);
    if (!mask) {
      out.push(payload.subarray(start, r.off));
      continue;
    }
    const masked = mask(value, 0, types[c]);
    out.push(masked === null ? Buffer.from([0xfb]) : lenencBytes(masked));
  }
  if (r.remaining() !== 0) throw new ProtocolError('text row longer than its columns');
  return Buffer.concat(out);
}

/**
 * Rewrites one binary-protocol row: 0x00, a NULL bitmap offset by 2 bits, then the non-NULL values.
 * A masked value that no longer fits a fixed-width type is sent as NULL rather than unmasked.
 */
export function maskBinaryRow(payload: Buffer, types: number[], masks: Map<number, MaskFn>): Buffer {
  const n = types.length;
  const bitmapLen = Math.floor((n + 7 + 2) / 8);
  const r = new PayloadReader(payload, 1);
  const bitmap = Buffer.from(r.bytes(bitmapLen));
  const values: Buffer[] = [];
  for (let c = 0; c < n; c++) {
    const bit = c + 2;
    const isNull = (bitmap[bit >> 3] & (1 << (bit & 7))) !== 0;
    const type = types[c];
    let raw: Buffer | null = null;
    let encoded: Buffer | null = null;
    if (!isNull) {
      const start = r.off;
      const fixed = BINARY_FIXED_WIDTH[type];
      if (fixed !== undefined) raw = r.bytes(fixed);
      else if (BINARY_TEMPORAL.has(type)) raw = r.bytes(r.u8());
      else raw = r.lenencBytes() ?? Buffer.alloc(0);
      encoded = payload.subarray(start, r.off);
    }
    const mask = masks.get(c);
    if (!mask) {
      if (encoded) values.push(encoded);
      continue;
    }
    const masked = mask(raw, 1, type);
    const fixed = BINARY_FIXED_WIDTH[type];
    let ok: Buffer | null = null;
    if (masked !== null) {
      if (fixed !== undefined) ok = masked.length === fixed ? masked : null;
      else if (BINARY_TEMPORAL.has(type)) ok = masked.length < 256 ? Buffer.concat([Buffer.from([masked.length]), masked]) : null;
      else ok = lenencBytes(masked);
    }
    if (ok === null) bitmap[bit >> 3] |= 1 << (bit & 7);
    else {
      bitmap[bit >> 3] &= ~(1 << (bit & 7));
      values.push(ok);
    }
  }
  if (r.remaining() !== 0) throw new ProtocolError('binary row longer than its columns');
  return Buffer.concat([Buffer.from([0x00]), bitmap, ...values]);
}
