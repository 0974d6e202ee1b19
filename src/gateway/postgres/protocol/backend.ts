/**
 * Server → client messages: type codes and decoders for what the gateway inspects
 * (RowDescription, DataRow when masking, error/notice fields, CommandComplete, ParameterStatus,
 * BackendKeyData, Authentication, CopyOutResponse).
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { ProtocolError } from '../../../shared/errors.js';
import type { ResultColumn } from '../../engine.js';
import { readCString } from './frontend.js';
import { HEADER_BYTES } from './reader.js';

export const BackendCode = {
  authentication: 0x52, // R
  backendKeyData: 0x4b, // K
  parameterStatus: 0x53, // S
  readyForQuery: 0x5a, // Z
  rowDescription: 0x54, // T
  dataRow: 0x44, // D
  commandComplete: 0x43, // C
  emptyQuery: 0x49, // I
  errorResponse: 0x45, // E
  noticeResponse: 0x4e, // N
  notification: 0x41, // A
  parseComplete: 0x31, // 1
  bindComplete: 0x32, // 2
  closeComplete: 0x33, // 3
  noData: 0x6e, // n
  parameterDescription: 0x74, // t
  portalSuspended: 0x73, // s
  copyInResponse: 0x47, // G
  copyOutResponse: 0x48, // H
  copyBothResponse: 0x57, // W
  copyData: 0x64, // d
  copyDone: 0x63, // c
  functionCallResponse: 0x56, // V
  negotiateProtocol: 0x76, // v
} as const;

/** The int32 after 'R' says which authentication step the server wants. */
export const AuthCode = {
  ok: 0,
  cleartext: 3,
  md5: 5,
  sasl: 10,
  saslContinue: 11,
  saslFinal: 12,
} as const;

/** Error and notice field codes. https://www.postgresql.org/docs/current/protocol-error-fields.html */
export const ErrorField = {
  severity: 0x53, // S (localized)
  severityRaw: 0x56, // V (never localized)
  code: 0x43, // C
  message: 0x4d, // M
  detail: 0x44, // D
  hint: 0x48, // H
  where: 0x57, // W
} as const;

export function decodeRowDescription(msg: Buffer): ResultColumn[] {
  const count = msg.readUInt16BE(HEADER_BYTES);
  const columns: ResultColumn[] = new Array(count);
  let off = HEADER_BYTES + 2;
  for (let i = 0; i < count; i++) {
    const name = readCString(msg, off);
    off = name.next;
    // tableOid int32, attnum int16, typeOid int32, typlen int16, typmod int32, format int16
    if (off + 18 > msg.length) throw new ProtocolError('RowDescription truncated');
    columns[i] = {
      index: i,
      name: name.value,
      tableOid: msg.readUInt32BE(off),
      attnum: msg.readInt16BE(off + 4),
      typeId: msg.readUInt32BE(off + 6),
      format: msg.readUInt16BE(off + 16) === 1 ? 1 : 0,
    };
    off += 18;
  }
  return columns;
}

/** DataRow fields as subarrays of the message (null for SQL NULL). */
export function decodeDataRow(msg: Buffer): (Buffer | null)[] {
  const count = msg.readUInt16BE(HEADER_BYTES);
  const fields: (Buffer | null)[] = new Array(count);
  let off = HEADER_BYTES + 2;
  for (let i = 0; i < count; i++) {
    const len = msg.readInt32BE(off);
    off += 4;
    if (len < 0) {
      fields[i] = null;
      continue;
    }
    if (off + len > msg.length) throw new ProtocolError('DataRow truncated');
    fields[i] = msg.subarray(off, off + len);
    off += len;
  }
  return fields;
}

/** Error/Notice fields in wire order, so an unchanged message can be re-encoded identically. */
export function decodeFields(msg: Buffer): [number, string][] {
  const fields: [number, string][] = [];
  let off = HEADER_BYTES;
  while (off < msg.length && msg[off] !== 0) {
    const code = msg[off];
    const value = readCString(msg, off + 1);
    fields.push([code, value.value]);
    off = value.next;
  }
  return fields;
}

export function fieldValue(fields: [number, string][], code: number): string | undefined {
  for (const [c, v] of fields) if (c === code) return v;
  return undefined;
}

export function decodeCommandComplete(msg: Buffer): string {
  return readCString(msg, HEADER_BYTES).value;
}

/** Rows a command tag reports (`SELECT 5`, `INSERT 0 3`, `COPY 10`), when it reports any. */
export function tagRows(tag: string): number | undefined {
  const space = tag.lastIndexOf(' ');
  if (space < 0) return undefined;
  const n = Number(tag.slice(space + 1));
  return Number.isInteger(n) ? n : undefined;
}

export function decodeParameterStatus(msg: Buffer): { name: string; value: string } {
  const name = readCString(msg, HEADER_BYTES);
  return { name: name.value, value: readCString(msg, name.next).value };
}

export function decodeBackendKeyData(msg: Buffer): { pid: number; key: number } {
  return { pid: msg.readInt32BE(HEADER_BYTES), key: msg.readInt32BE(HEADER_BYTES + 4) };
}

export function decodeAuthentication(msg: Buffer): { code: number; data: Buffer } {
  return { code: msg.readUInt32BE(HEADER_BYTES), data: msg.subarray(HEADER_BYTES + 4) };
}

/** SASL mechanism names in AuthenticationSASL: NUL-terminated strings, then one more NUL. */
export function decodeSaslMechanisms(data: Buffer): string[] {
  const out: string[] = [];
  let off = 0;
  while (off < data.length && data[off] !== 0) {
    const m = readCString(data, off);
    out.push(m.value);
    off = m.next;
  }
  return out;
}

export function decodeCopyOutResponse(msg: Buffer): { binary: boolean; columnCount: number } {
  return { binary: msg[HEADER_BYTES] === 1, columnCount: msg.readUInt16BE(HEADER_BYTES + 1) };
}
