/**
 * Opens the session to the real database: TCP, optional TLS (SSLRequest, then tls.connect),
 * StartupMessage, authentication (trust, cleartext, md5, SCRAM-SHA-256), then collects the
 * ParameterStatus messages and BackendKeyData up to the first ReadyForQuery.
 */
import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { UnreachableError, UpstreamError, type DbgovError } from '../../shared/errors.js';
import type { UpstreamEndpoint } from '../engine.js';
import { AuthCode, BackendCode, decodeAuthentication, decodeBackendKeyData, decodeDataRow, decodeFields, decodeParameterStatus, decodeSaslMechanisms, ErrorField, fieldValue } from './protocol/backend.js';
import { FrameReader, MAX_SERVER_MESSAGE_BYTES } from './protocol/reader.js';
import { SCRAM_MECHANISM, ScramClient } from './protocol/scram.js';
import * as ser from './protocol/serializer.js';

/** A ready upstream session; `reader` holds any bytes that arrived after ReadyForQuery. */
export interface UpstreamSession {
  socket: Socket;
  reader: FrameReader;
  /** ParameterStatus messages exactly as the server sent them. */
  parameters: Buffer[];
  serverVersion: string | undefined;
  pid: number;
  key: number;
  /** Transaction status byte of the first ReadyForQuery. */
  status: number;
  /**
   * The session's search_path as the server starts it (a database's or role's `SET search_path`
   * default, or the client's), asked for when the server does not report it (before PostgreSQL
   * 18); undefined when a ParameterStatus carries it.
   */
  searchPath: string | undefined;
}

/** Why the upstream session could not be opened, with the SQLSTATE the client is given. */
export class UpstreamConnectError extends UpstreamError {
  readonly sqlstate: string;
  constructor(sqlstate: string, message: string, actions: string[], cause?: unknown) {
    super('upstream-connect', message, { actions, cause });
    this.sqlstate = sqlstate;
  }
}

const CHECK_TARGET = 'Check that the database is up and that the target host and port in dbgov.yaml are right; `dbgov broker` logs have the details.';
const CHECK_PASSWORD = 'Check the target user and password in dbgov.yaml (and the server\'s pg_hba.conf), then restart the broker.';

/** Opens a TCP connection, with TLS negotiated PostgreSQL's way when the endpoint asks for it. */
export async function openSocket(ep: UpstreamEndpoint, deadline: AbortSignal): Promise<Socket> {
  const raw = netConnect({ host: ep.host, port: ep.port });
  raw.setNoDelay(true);
  try {
    await waitFor(raw, 'connect', deadline);
    if (ep.tls.mode === 'disable') return raw;
    raw.write(ser.sslRequest());
    const answer = await readBytes(raw, 1, deadline);
    // 'N' means the server would talk in clear text; require/verify-full must not fall back.
    if (answer[0] !== 0x53) throw new UpstreamConnectError('08006', `dbgov: upstream ${ep.host}:${ep.port} does not accept TLS, and the target requires it`, ['Turn on ssl in the server\'s postgresql.conf, or set the target\'s tls mode to disable.']);
    const verify = ep.tls.mode === 'verify-full';
    const secure = tlsConnect({
      socket: raw,
      ca: ep.tls.ca,
      servername: ep.tls.servername ?? (isIp(ep.host) ? undefined : ep.host),
      rejectUnauthorized: verify,
      checkServerIdentity: verify ? undefined : () => undefined,
    });
    secure.setNoDelay(true);
    await waitFor(secure, 'secureConnect', deadline);
    return secure;
  } catch (err) {
    raw.destroy();
    throw toConnectError(ep, err);
  }
}

export async function connectUpstream(ep: UpstreamEndpoint, clientParams: Iterable<[string, string]>): Promise<UpstreamSession> {
  const deadline = AbortSignal.timeout(ep.connectTimeoutMs);
  const socket = await openSocket(ep, deadline);
  const stream = new MessageStream(socket, deadline);
  try {
    const params = new Map<string, string>(clientParams);
    params.set('user', ep.user);
    params.set('database', ep.database);
    socket.write(ser.startupMessage(params));
    await authenticate(ep, stream);
    const parameters: Buffer[] = [];
    let serverVersion: string | undefined;
    let pid = 0;
    let key = 0;
    let reported = false;
    for (;;) {
      const msg = await stream.next();
      switch (msg[0]) {
        case BackendCode.parameterStatus: {
          parameters.push(msg);
          const p = decodeParameterStatus(msg);
          if (p.name === 'server_version') serverVersion = p.value;
          if (p.name === 'search_path') reported = true;
          break;
        }
        case BackendCode.backendKeyData:
          ({ pid, key } = decodeBackendKeyData(msg));
          break;
        case BackendCode.readyForQuery: {
          // Names resolve under the path the server starts the session with, which ALTER DATABASE
          // or ALTER ROLE … SET search_path may have changed for every session: ask once, here.
          const searchPath = reported ? undefined : await askSearchPath(ep, stream);
          return { socket, reader: stream.release(true), parameters, serverVersion, pid, key, status: msg[5], searchPath };
        }
        case BackendCode.errorResponse:
          throw serverError(ep, msg);
        default:
          // NoticeResponse and NegotiateProtocolVersion carry nothing the session needs.
          break;
      }
    }
  } catch (err) {
    socket.destroy();
    throw toConnectError(ep, err);
  }
}

const SEARCH_PATH_QUERY = "SELECT pg_catalog.current_setting('search_path')";

async function askSearchPath(ep: UpstreamEndpoint, stream: MessageStream): Promise<string> {
  stream.write(ser.query(SEARCH_PATH_QUERY));
  let value: string | undefined;
  for (;;) {
    const msg = await stream.next();
    switch (msg[0]) {
      case BackendCode.dataRow: {
        const [v] = decodeDataRow(msg);
        if (v) value = v.toString('utf8');
        break;
      }
      case BackendCode.errorResponse:
        throw serverError(ep, msg);
      case BackendCode.readyForQuery:
        // Not knowing it would judge names under a path the server does not use: no session.
        if (value === undefined) throw new UpstreamConnectError('08P01', 'dbgov: upstream did not say what search_path the session starts with', [CHECK_TARGET]);
        return value;
      default:
        // RowDescription, CommandComplete, a NoticeResponse.
        break;
    }
  }
}

async function authenticate(ep: UpstreamEndpoint, stream: MessageStream): Promise<void> {
  let scram: ScramClient | undefined;
  for (;;) {
    const msg = await stream.next();
    if (msg[0] === BackendCode.errorResponse) throw serverError(ep, msg);
    if (msg[0] !== BackendCode.authentication) throw new UpstreamConnectError('08P01', `dbgov: upstream sent an unexpected message (0x${msg[0].toString(16)}) during authentication`, [CHECK_TARGET]);
    const { code, data } = decodeAuthentication(msg);
    switch (code) {
      case AuthCode.ok:
        return;
      case AuthCode.cleartext:
        stream.write(ser.passwordMessage(needPassword(ep)));
        break;
      case AuthCode.md5: {
        const inner = createHash('md5').update(needPassword(ep) + ep.user).digest('hex');
        const outer = createHash('md5').update(inner).update(data.subarray(0, 4)).digest('hex');
        stream.write(ser.passwordMessage(`md5${outer}`));
        break;
      }
      case AuthCode.sasl: {
        const mechanisms = decodeSaslMechanisms(data);
        if (!mechanisms.includes(SCRAM_MECHANISM)) throw unsupportedAuth(`SASL mechanisms ${mechanisms.join(', ')}`);
        scram = new ScramClient(needPassword(ep));
        stream.write(ser.saslInitialResponse(SCRAM_MECHANISM, scram.clientFirst()));
        break;
      }
      case AuthCode.saslContinue:
        if (scram === undefined) throw unsupportedAuth('SASL continue without a SASL start');
        stream.write(ser.saslResponse(await scram.clientFinal(data.toString('utf8'))));
        break;
      case AuthCode.saslFinal:
        if (scram === undefined) throw unsupportedAuth('SASL final without a SASL start');
        try {
          scram.verifyServerFinal(data.toString('utf8'));
        } catch (err) {
          throw new UpstreamConnectError('28P01', (err as Error).message, [CHECK_PASSWORD], err);
        }
        break;
      default:
        throw unsupportedAuth(`authentication method ${code}`);
    }
  }

  function needPassword(e: UpstreamEndpoint): string {
    if (e.password === undefined) throw new UpstreamConnectError('28P01', `dbgov: upstream asks for a password for user "${e.user}", and the target has none configured`, [CHECK_PASSWORD]);
    return e.password;
  }
}

function unsupportedAuth(what: string): UpstreamConnectError {
  return new UpstreamConnectError('28000', `dbgov: upstream asked for ${what}, which dbgov does not support`, ['Use scram-sha-256, md5, password or trust for the dbgov user in the server\'s pg_hba.conf.']);
}

/** The server refused the session: keep its SQLSTATE, say it came from upstream. */
function serverError(ep: UpstreamEndpoint, msg: Buffer): UpstreamConnectError {
  const fields = decodeFields(msg);
  const sqlstate = fieldValue(fields, ErrorField.code) ?? '08006';
  const text = fieldValue(fields, ErrorField.message) ?? 'unknown error';
  const authFailed = sqlstate === '28P01' || sqlstate === '28000';
  return new UpstreamConnectError(
    authFailed ? '28P01' : sqlstate,
    `dbgov: upstream ${authFailed ? 'authentication failed' : 'refused the session'} for user "${ep.user}" on ${ep.host}:${ep.port}: ${text}`,
    [authFailed ? CHECK_PASSWORD : CHECK_TARGET],
  );
}

function toConnectError(ep: UpstreamEndpoint, err: unknown): DbgovError {
  if (err instanceof UpstreamConnectError) return err;
  const e = err as NodeJS.ErrnoException;
  const what = e.name === 'TimeoutError' || e.name === 'AbortError' ? `did not answer within ${ep.connectTimeoutMs} ms` : e.code === 'ECONNREFUSED' ? 'refused the connection' : `could not be reached (${e.code ?? e.message})`;
  return new UpstreamConnectError('08006', `dbgov: upstream ${ep.host}:${ep.port} ${what}`, [CHECK_TARGET], err);
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function waitFor(sock: Socket, event: string, deadline: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown): void => {
      sock.off(event, onEvent);
      sock.off('error', done);
      sock.off('close', onClose);
      deadline.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onEvent = (): void => done();
    const onClose = (): void => done(new Error('connection closed'));
    const onAbort = (): void => done(deadline.reason);
    if (deadline.aborted) return onAbort();
    sock.once(event, onEvent);
    sock.once('error', done);
    sock.once('close', onClose);
    deadline.addEventListener('abort', onAbort, { once: true });
  });
}

async function readBytes(sock: Socket, n: number, deadline: AbortSignal): Promise<Buffer> {
  const stream = new MessageStream(sock, deadline);
  const got = await stream.raw(n);
  stream.release();
  return got;
}

/** Promise-style reads over a socket during the handshake; `release` hands the buffered rest on. */
class MessageStream {
  private readonly reader = new FrameReader(MAX_SERVER_MESSAGE_BYTES);
  private rawBuf: Buffer[] = [];
  private wake: (() => void) | undefined;
  private failure: unknown;
  private readonly onData = (chunk: Buffer): void => {
    this.rawBuf.push(chunk);
    this.reader.push(chunk);
    this.wake?.();
  };
  private readonly onEnd = (err?: unknown): void => {
    this.failure ??= err instanceof Error ? err : new Error('connection closed');
    this.wake?.();
  };
  private readonly onAbort = (): void => this.onEnd(this.deadline.reason);

  constructor(private readonly sock: Socket, private readonly deadline: AbortSignal) {
    sock.on('data', this.onData);
    sock.on('error', this.onEnd);
    sock.on('close', this.onEnd);
    deadline.addEventListener('abort', this.onAbort, { once: true });
  }

  write(msg: Buffer): void {
    this.sock.write(msg);
  }

  async next(): Promise<Buffer> {
    for (;;) {
      const msg = this.reader.next();
      if (msg !== null) return msg;
      await this.waitData();
    }
  }

  /** Exactly `n` raw bytes (the one-byte SSLRequest answer); never used together with `next`. */
  async raw(n: number): Promise<Buffer> {
    for (;;) {
      const all = Buffer.concat(this.rawBuf);
      // More than asked for would be a server talking before the TLS handshake: refuse it.
      if (all.length > n) throw new UpstreamConnectError('08P01', 'dbgov: upstream sent unexpected bytes before TLS started', [CHECK_TARGET]);
      if (all.length === n) return all;
      await this.waitData();
    }
  }

  /** Stops listening; with `pause`, data waits in the socket until the next owner resumes it. */
  release(pause = false): FrameReader {
    if (pause) this.sock.pause();
    this.sock.off('data', this.onData);
    this.sock.off('error', this.onEnd);
    this.sock.off('close', this.onEnd);
    this.deadline.removeEventListener('abort', this.onAbort);
    return this.reader;
  }

  private waitData(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.wake = () => {
        this.wake = undefined;
        if (this.failure !== undefined) reject(this.failure);
        else resolve();
      };
    });
  }
}
