/**
 * What `dbgov connect`, `dbgov exec` and `dbgov demo` share: get a short-lived credential
 * (waiting for a just-in-time approval when policy asks for one), open the local tunnel with
 * the key the CLI holds, and follow the live activity of its sessions.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { ClientKey } from '../auth/token-store.js';
import type { AccessPending, ActivityEvent, CredentialResponse } from '../broker/api-types.js';
import { CommandFailedError, DeniedError } from '../shared/errors.js';
import type { AccessLevel } from '../shared/types.js';
import { openTunnel, type Tunnel } from '../tunnel/tunnel.js';
import type { ApiClient } from './api-client.js';

export const CLI_VERSION = '0.1.0';

export interface ConnectRequest {
  target: string;
  database?: string;
  access?: AccessLevel;
  ttlSeconds?: number;
  reason?: string;
  agent?: string;
  port?: number;
}

export interface Connection {
  tunnel: Tunnel;
  credential: CredentialResponse['credential'];
  gateway: CredentialResponse['gateway'];
  close(): Promise<void>;
}

export async function loadClientKey(env: NodeJS.ProcessEnv = process.env): Promise<ClientKey> {
  const { openTokenStore } = await import('../auth/token-store.js');
  return (await openTokenStore({ env })).loadOrCreateClientKey();
}

/**
 * Issues the credential. A 202 means an access request was opened: `onPending` is told once,
 * then the request is polled until approvers decide (or `signal` aborts).
 */
export async function obtainCredential(
  client: ApiClient,
  req: ConnectRequest,
  key: ClientKey,
  hooks: { onPending?(p: AccessPending): void; pollMs?: number; signal?: AbortSignal } = {},
): Promise<CredentialResponse> {
  const body = {
    target: req.target,
    ...(req.database ? { database: req.database } : {}),
    ...(req.access ? { access: req.access } : {}),
    ...(req.ttlSeconds ? { ttlSeconds: req.ttlSeconds } : {}),
    ...(req.reason ? { reason: req.reason } : {}),
    ...(req.agent ? { agent: req.agent } : {}),
    publicKey: key.publicJwk as Record<string, unknown>,
  };
  let out = await client.requestCredential(body);
  if (out.status === 'issued') return out;
  hooks.onPending?.(out);
  const requestId = out.requestId;
  for (;;) {
    if (hooks.signal?.aborted) throw new DeniedError('access-pending', `dbgov: stopped waiting for approval of request ${requestId}`, { actions: [`an approver can still run \`dbgov approve ${requestId}\`; then run the same connect again`] });
    await new Promise((r) => setTimeout(r, hooks.pollMs ?? 2000));
    const st = await client.accessRequest(requestId);
    if (st.status === 'issued') return st;
    if (st.status === 'pending') continue;
    if (st.status === 'denied' || st.status === 'expired') {
      throw new DeniedError(`access-${st.status}`, `dbgov: access request ${requestId} was ${st.status}`, { actions: ['ask again with a reason: `dbgov connect … --reason TICKET-123`'] });
    }
    // Approved: spend the approval on a credential for exactly what was asked.
    out = await client.requestCredential({ ...body, requestId });
    if (out.status === 'issued') return out;
  }
}

export async function connectTunnel(client: ApiClient, req: ConnectRequest, key: ClientKey, hooks: Parameters<typeof obtainCredential>[3] = {}): Promise<Connection> {
  const issued = await obtainCredential(client, req, key, hooks);
  const tunnel = await openTunnel({
    gateway: issued.gateway,
    credential: { id: issued.credential.id, token: issued.credential.token },
    key: { privateKey: key.privateKey, publicJwk: key.publicJwk as Record<string, unknown> },
    ...(req.port !== undefined ? { port: req.port } : {}),
    clientVersion: CLI_VERSION,
  });
  return { tunnel, credential: issued.credential, gateway: issued.gateway, close: () => tunnel.close() };
}

/** Follows the broker's live activity for one credential (server-sent events). */
export async function followActivity(client: ApiClient, credentialId: string, onEvent: (e: ActivityEvent) => void, signal: AbortSignal): Promise<void> {
  try {
    for await (const e of client.activity(credentialId, signal)) onEvent(e);
  } catch (e) {
    // The live view is a convenience: losing it must never end the tunnel.
    if (!signal.aborted) throw e;
  }
}

/** Environment for `--exec` and the connection lines printed to the user. */
export function connectionInfo(engine: 'postgres' | 'mysql', port: number, user: string, database: string) {
  const host = '127.0.0.1';
  if (engine === 'postgres') {
    return {
      host,
      port,
      user,
      database,
      url: `postgres://${encodeURIComponent(user)}@${host}:${port}/${encodeURIComponent(database)}?sslmode=disable`,
      command: `psql "host=${host} port=${port} user=${user} dbname=${database} sslmode=disable"`,
      env: { PGHOST: host, PGPORT: String(port), PGUSER: user, PGDATABASE: database, PGSSLMODE: 'disable' },
    };
  }
  return {
    host,
    port,
    user,
    database,
    url: `mysql://${encodeURIComponent(user)}@${host}:${port}/${encodeURIComponent(database)}`,
    command: `mysql -h ${host} -P ${port} -u ${user} ${database}`,
    env: { MYSQL_HOST: host, MYSQL_TCP_PORT: String(port), MYSQL_PWD: '', DBGOV_MYSQL_USER: user, DBGOV_MYSQL_DATABASE: database },
  };
}

/**
 * `--exec`: runs the user's command with the connection's environment and resolves with its
 * exit code (127 when it cannot be started, 128 + the signal number when killed), as a shell
 * would. With --json the command's stdout goes to stderr: stdout carries one envelope only.
 */
export function runCommand(command: string[], env: NodeJS.ProcessEnv, onSpawnError: (e: Error) => void, options: { json?: boolean } = {}): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { stdio: ['inherit', options.json ? process.stderr : 'inherit', 'inherit'], env: { ...process.env, ...env } });
    child.on('error', (e) => {
      onSpawnError(e);
      resolve(127);
    });
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + (osConstants.signals[sig] ?? 0) : 1)));
  });
}

/**
 * The --exec contract: dbgov exits with the command's exit code. A failed command is a failure
 * envelope (status = that code), not a success envelope next to a non-zero exit.
 */
export function execOutcome(command: string[], code: number): void {
  if (code === 0) return;
  throw new CommandFailedError(command[0], code);
}
