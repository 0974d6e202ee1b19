/**
 * Client → server messages: type codes and the few decoders a decision needs (Query, Parse,
 * Bind, Execute, Describe, Close, FunctionCall, startup packets). Everything else is forwarded
 * as the bytes it arrived as.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { ProtocolError } from '../../../shared/errors.js';
import { HEADER_BYTES } from './reader.js';

export const FrontendCode = {
  query: 0x51, // Q
  parse: 0x50, // P
  bind: 0x42, // B
  execute: 0x45, // E
  describe: 0x44, // D
  close: 0x43, // C
  flush: 0x48, // H
  sync: 0x53, // S
  terminate: 0x58, // X
  functionCall: 0x46, // F
  copyData: 0x64, // d
  copyDone: 0x63, // c
  copyFail: 0x66, // f
} as const;

const FRONTEND_CODES: ReadonlySet<number> = new Set(Object.values(FrontendCode));

/** Whether `code` is a message type a client may send once the session is up. */
export function isFrontendCode(code: number): boolean {
  return FRONTEND_CODES.has(code);
}

/** The int32 code after the length in a startup-phase packet. */
export const StartupCode = {
  protocol3: 196608, // 3.0
  cancelRequest: 80877102,
  sslRequest: 80877103,
  gssEncRequest: 80877104,
} as const;

/** 'S' statement or 'P' portal, in Describe and Close. */
export type TargetKind = 'S' | 'P';

/** Reads a NUL-terminated UTF-8 string starting at `off`; returns it and the offset after the NUL. */
export function readCString(msg: Buffer, off: number, end = msg.length): { value: string; next: number } {
  const nul = msg.indexOf(0, off);
  if (nul < 0 || nul >= end) throw new ProtocolError('string without terminator');
  return { value: msg.toString('utf8', off, nul), next: nul + 1 };
}

export function decodeQuery(msg: Buffer): string {
  return readCString(msg, HEADER_BYTES).value;
}

export function decodeParse(msg: Buffer): { name: string; sql: string } {
  const name = readCString(msg, HEADER_BYTES);
  const sql = readCString(msg, name.next);
  return { name: name.value, sql: sql.value };
}

/** Bind: only the names; parameters and format codes are forwarded untouched. */
export function decodeBind(msg: Buffer): { portal: string; statement: string } {
  const portal = readCString(msg, HEADER_BYTES);
  const statement = readCString(msg, portal.next);
  return { portal: portal.value, statement: statement.value };
}

export function decodeExecute(msg: Buffer): { portal: string } {
  return { portal: readCString(msg, HEADER_BYTES).value };
}

/** Describe and Close share a layout: one kind byte, then a name. */
export function decodeTarget(msg: Buffer): { kind: TargetKind; name: string } {
  if (msg.length < HEADER_BYTES + 2) throw new ProtocolError('Describe/Close too short');
  const kind = msg[HEADER_BYTES];
  if (kind !== 0x53 && kind !== 0x50) throw new ProtocolError(`Describe/Close of unknown kind 0x${kind.toString(16)}`);
  return { kind: kind === 0x53 ? 'S' : 'P', name: readCString(msg, HEADER_BYTES + 1).value };
}

/** FunctionCall: the function's OID, and the format asked for its result (the message's last int16). */
export function decodeFunctionCall(msg: Buffer): { oid: number; resultFormat: 0 | 1 } {
  // OID, argument format count, argument count, result format: at least 10 bytes.
  if (msg.length < HEADER_BYTES + 10) throw new ProtocolError('FunctionCall too short');
  return { oid: msg.readUInt32BE(HEADER_BYTES), resultFormat: msg.readInt16BE(msg.length - 2) === 1 ? 1 : 0 };
}

export type StartupPacket =
  | { kind: 'startup'; params: Map<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; key: number };

export function decodeStartup(packet: Buffer): StartupPacket {
  const code = packet.readUInt32BE(4);
  switch (code) {
    case StartupCode.sslRequest:
      return { kind: 'ssl' };
    case StartupCode.gssEncRequest:
      return { kind: 'gssenc' };
    case StartupCode.cancelRequest:
      if (packet.length !== 16) throw new ProtocolError('CancelRequest of the wrong length');
      return { kind: 'cancel', pid: packet.readInt32BE(8), key: packet.readInt32BE(12) };
    case StartupCode.protocol3:
      return { kind: 'startup', params: decodeStartupParams(packet) };
    default:
      throw new ProtocolError(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`);
  }
}

function decodeStartupParams(packet: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let off = 8;
  // Name/value pairs end with one extra NUL.
  while (off < packet.length && packet[off] !== 0) {
    const name = readCString(packet, off);
    const value = readCString(packet, name.next);
    params.set(name.value, value.value);
    off = value.next;
  }
  if (off !== packet.length - 1) throw new ProtocolError('startup packet not terminated');
  return params;
}
