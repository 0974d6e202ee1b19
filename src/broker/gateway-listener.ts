/**
 * The gateway listener: where tunnels connect. One TCP port, TLS always.
 *
 *   bytes in ─► sniff ─┬─ TLS ClientHello ────────────────► TLS ─► preamble ─► engine.serve
 *                      ├─ PostgreSQL SSLRequest ─► 'S' ───► TLS ─┘    │
 *                      └─ anything else (a raw client) ─► engine.refuse("use dbgov connect")
 *
 * The preamble carries the credential and a proof of possession bound to this TLS connection
 * (RFC 5705 exporter). Without a valid one the connection never reaches a database: the engine
 * tells the client why, in its own protocol, and closes.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { channelBindingOf, receiveTunnelHello, type TunnelHello } from '../auth/credentials.js';
import type { Engine } from '../gateway/engine.js';
import { AuthError, DbgovError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { EngineName } from '../shared/types.js';
import type { GatewayTls } from './gateway-tls.js';

/** What `authorize` returns: the engine to use and a function that serves the session. */
export interface AuthorizedSession {
  engine: EngineName;
  serve(client: Duplex): Promise<void>;
}

export interface GatewayListenerDeps {
  tls: GatewayTls;
  engines: Record<EngineName, Engine>;
  /** Verifies the credential and proof, opens the session. Throws DbgovError to refuse. */
  authorize(hello: TunnelHello, channelBinding: Buffer, remote: string): Promise<AuthorizedSession>;
  /** A refused connection: audit it. */
  refused(err: DbgovError, remote: string, engine: EngineName | undefined): void;
  log: Logger;
  handshakeTimeoutMs?: number;
}

const TLS_HANDSHAKE_RECORD = 0x16;
/** PostgreSQL SSLRequest: length 8, code 80877103. https://www.postgresql.org/docs/current/protocol-message-formats.html */
const PG_SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

export class GatewayListener {
  private readonly server: Server;
  private readonly secureContext;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly deps: GatewayListenerDeps) {
    this.secureContext = createSecureContext({ cert: deps.tls.cert, key: deps.tls.key, minVersion: 'TLSv1.3' });
    this.server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server.on('error', (e) => deps.log.error({ err: e }, 'gateway listener error'));
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address();
    return { host, port: typeof a === 'object' && a ? a.port : port };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(raw: Socket): void {
    raw.setNoDelay(true);
    this.sockets.add(raw);
    raw.on('close', () => this.sockets.delete(raw));
    // A socket error must end only this connection, never the listener.
    raw.on('error', (e) => this.deps.log.debug({ err: e }, 'gateway client socket error'));
    const remote = `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`;
    const timer = setTimeout(() => raw.destroy(), this.deps.handshakeTimeoutMs ?? 15_000);
    raw.once('close', () => clearTimeout(timer));

    const onFirst = (chunk: Buffer): void => {
      raw.pause();
      if (chunk[0] === TLS_HANDSHAKE_RECORD) {
        raw.unshift(chunk);
        this.startTls(raw, remote, timer);
      } else if (chunk.length >= 8 && chunk.subarray(0, 8).equals(PG_SSL_REQUEST)) {
        if (chunk.length > 8) raw.unshift(chunk.subarray(8));
        raw.write('S');
        this.startTls(raw, remote, timer);
      } else {
        // A client speaking straight to the gateway, without the tunnel: tell it how to connect.
        raw.unshift(chunk);
        clearTimeout(timer);
        this.refuse(raw, remote, undefined, noCredential());
      }
    };
    raw.once('data', onFirst);
  }

  private startTls(raw: Socket, remote: string, timer: NodeJS.Timeout): void {
    const tls = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext });
    tls.on('error', (e) => {
      this.deps.log.debug({ err: e, remote }, 'gateway TLS error');
      raw.destroy();
    });
    tls.once('secure', () => {
      tls.setNoDelay(true);
      void this.afterTls(tls, remote, timer);
    });
    // No raw.resume(): TLSSocket takes over the handle and drains the bytes unshifted above;
    // resuming the plain socket would steal them from the TLS layer.
  }

  private async afterTls(tls: TLSSocket, remote: string, timer: NodeJS.Timeout): Promise<void> {
    let hello: TunnelHello;
    try {
      const read = await receiveTunnelHello(tls, this.deps.handshakeTimeoutMs ?? 15_000);
      if (read.status !== 'ok') {
        clearTimeout(timer);
        tls.unshift(read.received);
        this.refuse(tls, remote, undefined, noCredential());
        return;
      }
      // Bytes after the preamble belong to the client's protocol (its startup packet).
      if (read.rest.length > 0) tls.unshift(read.rest);
      hello = read.hello;
    } catch (e) {
      clearTimeout(timer);
      this.deps.log.info({ err: e, remote }, 'bad tunnel preamble');
      tls.destroy();
      return;
    }
    clearTimeout(timer);
    const binding = channelBindingOf(tls);
    let session: AuthorizedSession;
    try {
      session = await this.deps.authorize(hello, binding, remote);
    } catch (e) {
      const err = e instanceof DbgovError ? e : new AuthError('credential-invalid', 'dbgov: the credential could not be checked', { actions: ['run `dbgov connect <target>` again'] });
      if (!(e instanceof DbgovError)) this.deps.log.error({ err: e }, 'authorize failed');
      this.refuse(tls, remote, engineHint(e), err);
      return;
    }
    try {
      await session.serve(tls);
    } catch (e) {
      // Engines never reject by contract; if one does, only this session ends.
      this.deps.log.error({ err: e, remote }, 'engine rejected');
      tls.destroy();
    }
  }

  private refuse(client: Duplex, remote: string, engine: EngineName | undefined, err: DbgovError): void {
    this.deps.refused(err, remote, engine);
    const e = this.deps.engines[engine ?? 'postgres'];
    e.refuse(client, err, this.deps.log).catch((x: unknown) => {
      this.deps.log.debug({ err: x }, 'refuse failed');
      client.destroy();
    });
  }
}

function noCredential(): AuthError {
  return new AuthError('no-credential', 'dbgov: this connection carries no dbgov credential', {
    actions: ['connect through the tunnel: run `dbgov connect <target>` and point your client at the address it prints'],
  });
}

/** Errors from authorize may say which engine the credential was for, so the refusal speaks it. */
function engineHint(e: unknown): EngineName | undefined {
  const d = e instanceof DbgovError ? e.detail : undefined;
  const engine = d?.engine;
  return engine === 'postgres' || engine === 'mysql' ? engine : undefined;
}

