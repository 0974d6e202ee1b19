/**
 * Upstream authentication: the gateway logs in to the real server with the broker's credentials.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
 */
import { constants, createHash, publicEncrypt } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ProtocolError, UpstreamError, UnreachableError } from '../../../shared/errors.js';
import type { UpstreamEndpoint } from '../../engine.js';
import { Cap } from './constants.js';
import { PacketChannel, type Packet } from './framing.js';
import { encodeHandshakeResponse, encodeSslRequest, parseErr, parseOk, parseServerHandshake, type ServerHandshake } from './packets.js';

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const xor = (a: Buffer, b: Buffer): Buffer => {
  const out = Buffer.alloc(a.length);
  for (let k = 0; k < a.length; k++) out[k] = a[k] ^ b[k % b.length];
  return out;
};

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))). */
export function nativePasswordResponse(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const h1 = sha1(Buffer.from(password, 'utf8'));
  return xor(h1, sha1(scramble.subarray(0, 20), sha1(h1)));
}

/** caching_sha2_password fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble). */
export function cachingSha2Response(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const h1 = sha256(Buffer.from(password, 'utf8'));
  return xor(h1, sha256(sha256(h1), scramble.subarray(0, 20)));
}

export const SUPPORTED_PLUGINS = ['mysql_native_password', 'caching_sha2_password'] as const;
type Plugin = (typeof SUPPORTED_PLUGINS)[number];

function isSupported(p: string): p is Plugin {
  return (SUPPORTED_PLUGINS as readonly string[]).includes(p);
}

function pluginResponse(plugin: Plugin, password: string, scramble: Buffer): Buffer {
  switch (plugin) {
    case 'mysql_native_password':
      return nativePasswordResponse(password, scramble);
    case 'caching_sha2_password':
      return cachingSha2Response(password, scramble);
    default: {
      const never: never = plugin;
      throw new UpstreamError('mysql-auth-plugin', `unsupported plugin ${String(never)}`);
    }
  }
}

export interface UpstreamSession {
  channel: PacketChannel;
  socket: Socket;
  handshake: ServerHandshake;
  /** Capabilities agreed with the server. */
  capabilities: number;
  /** Status flags from the final OK. */
  status: number;
}

export function connectSocket(endpoint: UpstreamEndpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: endpoint.host, port: endpoint.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UnreachableError('mysql-upstream-timeout', `the database at ${endpoint.host}:${endpoint.port} did not answer within ${endpoint.connectTimeoutMs} ms`));
    }, endpoint.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(new UnreachableError('mysql-upstream-unreachable', `cannot reach the database at ${endpoint.host}:${endpoint.port}: ${e.message}`, { cause: e }));
    });
  });
}

async function expect(channel: PacketChannel, what: string): Promise<Packet> {
  const p = await channel.next();
  if (!p) throw new UpstreamError('mysql-upstream-closed', `the database closed the connection during ${what}`);
  return p;
}

/**
 * Reads the server greeting, upgrades to TLS when configured, and authenticates.
 * `clientCapabilities` are the ones the real client asked for: the upstream session must use the
 * same result framing, so the gateway asks the server for the same set (minus what it withholds).
 */
export async function authenticateUpstream(socket: Socket, endpoint: UpstreamEndpoint, clientCapabilities: number, charset: number, greeting?: { channel: PacketChannel; handshake: ServerHandshake }): Promise<UpstreamSession> {
  let channel = greeting?.channel ?? new PacketChannel(socket, 1 << 30);
  const handshake = greeting?.handshake ?? (await readGreeting(channel));
  let seq = 1;
  let caps = (clientCapabilities & handshake.capabilities) | Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | Cap.CONNECT_WITH_DB | Cap.LONG_PASSWORD;
  caps &= ~(Cap.SSL | Cap.COMPRESS | Cap.CONNECT_ATTRS | Cap.LOCAL_FILES);
  let secure = false;
  let current: Socket = socket;
  if (endpoint.tls.mode !== 'disable') {
    if (!(handshake.capabilities & Cap.SSL)) throw new UpstreamError('mysql-upstream-tls', `the database at ${endpoint.host}:${endpoint.port} does not offer TLS, but the target requires it`, { actions: ['Enable TLS on the database server, or set the target tls mode to disable.'] });
    caps |= Cap.SSL;
    seq = await channel.write(encodeSslRequest(caps, charset), seq);
    const tlsSocket = tlsConnect({
      socket,
      servername: endpoint.tls.servername ?? endpoint.host,
      rejectUnauthorized: endpoint.tls.mode === 'verify-full',
      ...(endpoint.tls.ca !== undefined ? { ca: endpoint.tls.ca } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      tlsSocket.once('secureConnect', () => resolve());
      tlsSocket.once('error', (e) => reject(new UpstreamError('mysql-upstream-tls', `TLS with the database failed: ${e.message}`, { cause: e })));
    });
    tlsSocket.setNoDelay(true);
    channel.replaceSocket(tlsSocket);
    current = tlsSocket as unknown as Socket;
    secure = true;
  }
  const password = endpoint.password ?? '';
  let plugin: Plugin = isSupported(handshake.authPlugin) ? handshake.authPlugin : 'mysql_native_password';
  let scramble = handshake.scramble;
  seq = await channel.write(
    encodeHandshakeResponse({ capabilities: caps, charset, user: endpoint.user, authResponse: pluginResponse(plugin, password, scramble), database: endpoint.database, authPlugin: plugin }),
    seq,
  );
  for (;;) {
    const p = await expect(channel, 'authentication');
    seq = (p.lastSeq + 1) & 0xff;
    const tag = p.payload[0];
    if (tag === 0x00) return { channel, socket: current, handshake, capabilities: caps, status: parseOk(p.payload).status };
    if (tag === 0xff) {
      const e = parseErr(p.payload);
      throw new UpstreamError('mysql-upstream-auth', `the database refused the gateway's login: ${e.message}`, { detail: { code: e.code, sqlstate: e.sqlstate } });
    }
    if (tag === 0xfe) {
      // Auth switch: the account uses another plugin; answer with a fresh scramble.
      const nul = p.payload.indexOf(0, 1);
      const name = p.payload.subarray(1, nul < 0 ? p.payload.length : nul).toString('utf8');
      if (!isSupported(name)) throw new UpstreamError('mysql-auth-plugin', `the database account uses the ${name} authentication plugin, which the gateway does not support`, { actions: ['Use mysql_native_password or caching_sha2_password for the gateway account.'] });
      plugin = name;
      scramble = nul < 0 ? Buffer.alloc(0) : p.payload.subarray(nul + 1);
      if (scramble[scramble.length - 1] === 0) scramble = scramble.subarray(0, scramble.length - 1);
      seq = await channel.write(pluginResponse(plugin, password, scramble), seq);
      continue;
    }
    if (tag === 0x01 && plugin === 'caching_sha2_password') {
      const status = p.payload[1];
      if (status === 0x03) continue; // fast auth succeeded; the OK follows
      if (status === 0x04) {
        // Full authentication: the clear password, over TLS only; otherwise RSA-encrypted with the server's key.
        if (secure) {
          seq = await channel.write(Buffer.from(`${password}\0`, 'utf8'), seq);
        } else {
          seq = await channel.write(Buffer.from([0x02]), seq);
          const keyPacket = await expect(channel, 'public key exchange');
          seq = (keyPacket.lastSeq + 1) & 0xff;
          const key = keyPacket.payload.subarray(1).toString('latin1');
          const encrypted = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING }, xor(Buffer.from(`${password}\0`, 'utf8'), scramble.subarray(0, 20)));
          seq = await channel.write(encrypted, seq);
        }
        continue;
      }
    }
    throw new ProtocolError(`unexpected packet 0x${tag?.toString(16) ?? '??'} during upstream authentication`);
  }
}

export async function readGreeting(channel: PacketChannel): Promise<ServerHandshake> {
  const first = await expect(channel, 'the greeting');
  if (first.payload[0] === 0xff) {
    const e = parseErr(first.payload);
    throw new UpstreamError('mysql-upstream-refused', `the database refused the connection: ${e.message}`);
  }
  return parseServerHandshake(first.payload);
}
