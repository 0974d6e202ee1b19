/**
 * The PostgreSQL wire engine: client startup (no password asked: the broker already checked
 * the dbgov credential), the upstream session, cancel routing, then the statement path in
 * PostgresSession.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DbgovError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { Engine, SessionContext } from '../engine.js';
import { CancelRegistry, sendCancel } from './cancel.js';
import { pgEncodingUnsafe } from '../../shared/client-encodings.js';
import { ENCODING_UNSUPPORTED } from './encoding.js';
import { decodeParameterStatus } from './protocol/backend.js';
import { FrameReader } from './protocol/reader.js';
import * as ser from './protocol/serializer.js';
import { PostgresSession } from './session.js';
import { readStartup } from './startup.js';
import { startupSettings } from './startup-settings.js';
import { connectUpstream, UpstreamConnectError } from './upstream.js';

/** How long refuse() waits for the client's startup packet before just closing. */
const REFUSE_TIMEOUT_MS = 5_000;

export interface PostgresEngineOptions {
  /** Cancel keys are looked up across sessions; engines in one process share one registry by default. */
  cancels?: CancelRegistry;
}

const sharedCancels = new CancelRegistry();

export function postgresEngine(options: PostgresEngineOptions = {}): Engine {
  const cancels = options.cancels ?? sharedCancels;
  return {
    name: 'postgres',
    async serve(client, ctx) {
      try {
        await serveSession(client, ctx, cancels);
      } catch (err) {
        ctx.log.error({ err }, 'postgres session failed');
        client.destroy();
      }
    },
    async refuse(client, error, log) {
      try {
        await refuseSession(client, error, log);
      } catch (err) {
        log.debug({ err }, 'refusing a postgres client failed');
        client.destroy();
      }
    },
  };
}

async function serveSession(client: Duplex, ctx: SessionContext, cancels: CancelRegistry): Promise<void> {
  client.on('error', (err) => ctx.log.debug({ err }, 'client socket error'));
  noDelay(client);
  const reader = new FrameReader(ctx.limits.maxMessageBytes);
  let first;
  try {
    first = await readStartup(client, reader);
  } catch (err) {
    return fatal(client, '08P01', `dbgov: protocol error: ${(err as Error).message}`, 'Connect with a PostgreSQL client (protocol 3.0).');
  }
  if (first === null) return void client.destroy();
  if (first.kind === 'cancel') {
    const target = cancels.lookup(first.pid, first.key, ctx.identity.id);
    if (target !== undefined) await sendCancel(target, ctx.log);
    // Like PostgreSQL, say nothing either way: an answer would let keys be probed.
    return void client.end();
  }
  const requested = first.params.get('database') ?? '';
  // A credential is scoped to one database; any other name would reach data it does not cover.
  if (requested !== '' && requested !== ctx.database) {
    return fatal(client, '28000', `dbgov: this credential is for database ${ctx.database}, not ${requested}`, `Run \`dbgov connect ${ctx.target.name} --database ${requested}\` to get a credential for ${requested}, or connect to ${ctx.database}.`);
  }
  // What the broker is told is what the server is sent: the settings as the server will apply
  // them (`-c SEARCH-PATH=…` in options, a `Search_Path` field, the last of several), not the raw
  // fields, or names would resolve under one search_path in policy and another in the server.
  const { settings, dropped } = startupSettings(first.params);
  if (dropped.length > 0) ctx.log.info({ names: dropped }, 'startup parameters not forwarded upstream');
  for (const [name, value] of settings) ctx.hooks.parameter(name, value);
  if (ctx.signal.aborted) {
    const reason: unknown = ctx.signal.reason;
    const text = reason instanceof Error ? reason.message : 'credential no longer valid';
    return fatal(client, '57P01', text.startsWith('dbgov:') ? text : `dbgov: session ended: ${text}`, 'Run `dbgov connect` again.');
  }

  let upstream;
  try {
    upstream = await connectUpstream(ctx.upstream, [...settings]);
  } catch (err) {
    const e = err instanceof UpstreamConnectError ? err : undefined;
    ctx.log.warn({ err }, 'upstream session failed');
    return fatal(client, e?.sqlstate ?? '08006', e?.message ?? 'dbgov: upstream connection failed', e?.actions.join(' ') ?? 'Try again; the broker log has the details.');
  }
  if (client.destroyed) return void upstream.socket.destroy();

  const key = cancels.register({ upstream: ctx.upstream, pid: upstream.pid, key: upstream.key, identityId: ctx.identity.id });
  const parts: Buffer[] = [ser.authenticationOk()];
  for (const msg of upstream.parameters) {
    const { name, value } = decodeParameterStatus(msg);
    // The server's word on the encoding counts (a startup parameter, options, ALTER ROLE … SET).
    if (name === 'client_encoding' && pgEncodingUnsafe(value)) {
      upstream.socket.destroy();
      cancels.unregister(key.pid, key.key);
      return fatal(client, ENCODING_UNSUPPORTED.sqlstate, ENCODING_UNSUPPORTED.message(value), ENCODING_UNSUPPORTED.hint);
    }
    ctx.hooks.parameter(name, value);
    parts.push(msg);
  }
  // The server's word on the path names resolve under, when no ParameterStatus carried it.
  if (upstream.searchPath !== undefined) ctx.hooks.parameter('search_path', upstream.searchPath);
  parts.push(ser.backendKeyData(key.pid, key.key), ser.readyForQuery(upstream.status));
  client.write(Buffer.concat(parts));
  ctx.onUpstreamReady?.({ backendPid: upstream.pid, serverVersion: upstream.serverVersion });
  await new PostgresSession(client, ctx, upstream, reader, key, cancels).run();
}

async function refuseSession(client: Duplex, error: DbgovError, log: Logger): Promise<void> {
  client.on('error', (err) => log.debug({ err }, 'client socket error while refusing'));
  noDelay(client);
  let first;
  try {
    first = await readStartup(client, new FrameReader(0), REFUSE_TIMEOUT_MS);
  } catch {
    return void client.destroy();
  }
  if (first === null || first.kind === 'cancel') return void client.end();
  await fatal(client, '28000', error.message, error.actions.join(' '));
}

function fatal(client: Duplex, sqlstate: string, message: string, hint: string): Promise<void> {
  return new Promise((resolve) => {
    const msg = ser.errorResponse({ severity: 'FATAL', sqlstate, message, ...(hint === '' ? {} : { hint }) });
    client.end(msg, () => resolve());
    client.once('close', () => resolve());
    setTimeout(() => {
      client.destroy();
      resolve();
    }, 2_000).unref();
  });
}

function noDelay(client: Duplex): void {
  const s = client as Partial<Socket>;
  if (typeof s.setNoDelay === 'function') s.setNoDelay(true);
}
