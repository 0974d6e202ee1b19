/**
 * The architecture's floor, for the benchmark: the same two Node.js processes and the same TLS
 * hop as dbgov's path (a local tunnel, a TLS connection, a gateway that terminates TLS and
 * connects upstream), with nothing else: no preamble, no parsing, no policy, no audit, no
 * masking. Whatever dbgov costs above this is its own work; what this costs is the price of the
 * design (a tunnel process, TLS, a Node.js broker) on this machine.
 *
 *   node dist/bench/floor.js gateway CERT KEY UPSTREAM_HOST UPSTREAM_PORT
 *   node dist/bench/floor.js tunnel GATEWAY_PORT
 *
 * Each prints {"port": N} once it listens. Both pipe with stream.pipe, as the tunnel does.
 */
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';

const [mode, ...args] = process.argv.slice(2);

function splice(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

function listen(onConnection: (s: Socket) => void): void {
  const server = createServer({ noDelay: true }, onConnection);
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0 })}\n`);
  });
}

if (mode === 'gateway') {
  const [cert, key, host, port] = args;
  const secureContext = createSecureContext({ cert: readFileSync(cert), key: readFileSync(key), minVersion: 'TLSv1.3' });
  listen((raw) => {
    const tls = new TLSSocket(raw, { isServer: true, secureContext });
    const up = netConnect(Number(port), host);
    up.setNoDelay(true);
    splice(tls, up);
  });
} else if (mode === 'tunnel') {
  const [gatewayPort] = args;
  listen((local) => {
    const remote = tlsConnect({ host: '127.0.0.1', port: Number(gatewayPort), rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    remote.setNoDelay(true);
    splice(local, remote);
  });
} else {
  process.stderr.write('usage: floor.js gateway CERT KEY HOST PORT | floor.js tunnel GATEWAY_PORT\n');
  process.exit(2);
}
