/**
 * The local tunnel: a listener on 127.0.0.1 that any client (psql, an IDE, an app, pgbench,
 * mysql) connects to without a password. Each local connection becomes one TLS connection to
 * the broker's gateway, which starts with dbgov's preamble: the credential plus a proof of
 * possession bound to that TLS connection. After that it is a plain byte pipe; every decision
 * is taken server-side, so a modified tunnel cannot skip a guardrail.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { channelBindingOf, makeProof, tunnelHello } from '../auth/credentials.js';
import { AuthError, DbgovError, UnreachableError } from '../shared/errors.js';


export interface TunnelOptions {
  gateway: { host: string; port: number; certFingerprint256: string };
  credential: { id: string; token: string };
  key: { privateKey: KeyObject; publicJwk: Record<string, unknown> };
  /** Local port; 0 or undefined picks a free one. */
  port?: number;
  clientVersion: string;
  /** Applies to connecting to the gateway. */
  connectTimeoutMs?: number;
}

export interface Tunnel extends EventEmitter {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Open local connections. */
  readonly connections: number;
  close(): Promise<void>;
}

class TunnelImpl extends EventEmitter implements Tunnel {
  readonly host = '127.0.0.1' as const;
  port = 0;
  private readonly sockets = new Set<Socket>();
  constructor(
    private readonly server: Server,
    private readonly opts: TunnelOptions,
  ) {
    super();
  }

  get connections(): number {
    return this.sockets.size;
  }

  accept(local: Socket): void {
    local.setNoDelay(true);
    this.sockets.add(local);
    local.pause();
    let remote: TLSSocket | undefined;
    const finish = (err?: Error): void => {
      this.sockets.delete(local);
      local.destroy();
      remote?.destroy();
      if (err) this.emit('connection-error', err);
    };
    local.on('error', () => finish());
    local.on('close', () => finish());

    remote = tlsConnect({
      host: this.opts.gateway.host,
      port: this.opts.gateway.port,
      // The gateway's certificate is self-signed by default: trust is the pinned fingerprint
      // the broker API handed us, checked below before a single byte is sent.
      rejectUnauthorized: false,
      servername: isIp(this.opts.gateway.host) ? undefined : this.opts.gateway.host,
      minVersion: 'TLSv1.3',
      timeout: this.opts.connectTimeoutMs ?? 10_000,
    });
    remote.setNoDelay(true);
    remote.on('timeout', () => finish(new UnreachableError('gateway-timeout', `dbgov: timed out connecting to the gateway at ${this.opts.gateway.host}:${this.opts.gateway.port}`, { actions: ['check that the broker is running and reachable'] })));
    remote.on('error', (e: NodeJS.ErrnoException) =>
      finish(
        new UnreachableError('gateway-unreachable', `dbgov: cannot reach the gateway at ${this.opts.gateway.host}:${this.opts.gateway.port} (${e.code ?? e.message})`, {
          actions: ['check that the broker is running (`dbgov broker start`)', 'run `dbgov connect` again'],
        }),
      ),
    );
    remote.on('close', () => finish());
    remote.once('secureConnect', () => {
      const r = remote as TLSSocket;
      r.setTimeout(0);
      const cert = r.getPeerCertificate();
      // Pinning: without it, anyone on the path could terminate TLS and collect credentials.
      if (!cert?.fingerprint256 || normaliseFp(cert.fingerprint256) !== normaliseFp(this.opts.gateway.certFingerprint256)) {
        finish(new AuthError('gateway-cert-mismatch', 'dbgov: the gateway presented an unexpected TLS certificate; refusing to send the credential', { actions: ['run `dbgov connect` again to fetch the current gateway fingerprint', 'if it persists, tell your platform team'] }));
        return;
      }
      const binding = channelBindingOf(r);
      const proof = makeProof(this.opts.key.privateKey, binding, this.opts.credential.id);
      r.write(tunnelHello({ credential: this.opts.credential.token, proof, publicJwk: this.opts.key.publicJwk, clientVersion: this.opts.clientVersion }));
      local.pipe(r);
      r.pipe(local);
      local.resume();
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function openTunnel(opts: TunnelOptions): Promise<Tunnel> {
  const server = createServer();
  const tunnel = new TunnelImpl(server, opts);
  server.on('connection', (s) => tunnel.accept(s));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new DbgovError('port-in-use', `dbgov: port ${opts.port} on 127.0.0.1 is already in use`, { actions: ['pick another with --port, or leave --port out to get a free one'] })
          : e,
      ),
    );
    // 127.0.0.1 only: the tunnel attaches a credential, so it must not be reachable from the network.
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  tunnel.port = typeof addr === 'object' && addr ? addr.port : 0;
  return tunnel;
}

function normaliseFp(fp: string): string {
  return fp.replace(/:/g, '').toUpperCase();
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
