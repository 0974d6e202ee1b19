/**
 * Shared by the identity-*.test.ts files: a broker started from a full config object (so a test
 * can set identity.oidc, identity.workload and per-identity roles, which startTestBroker does
 * not expose), the real CLI as a subprocess with a private DBGOV_HOME, a CLI device login driven
 * through a real IdP, and a "rogue tunnel" that speaks to the gateway with a hand-made hello.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type RunningBroker } from '../../src/broker/broker.js';
import { configFromObject } from '../../src/broker/config.js';
import { channelBindingOf } from '../../src/auth/credentials.js';
import { ApiClient } from '../../src/cli/api-client.js';
import { connectTunnel, type ConnectRequest, type Connection } from '../../src/cli/connect.js';
import { approveDeviceLogin } from '../../src/demo/form-browser.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { AuditEvent } from '../../src/audit/event.js';
import type { Clock } from '../../src/shared/clock.js';
import { SA_TOKENS, auditEvents, run, testClientKey, type RunResult } from './harness.js';

export const SERVICE_ACCOUNTS = [
  { id: 'ci-bot', token: '${env:T_CI}', groups: ['ci'], kind: 'workload' },
  { id: 'agent-bot', token: '${env:T_AGENT}', groups: ['developers'], kind: 'agent', owner: 'alice@example.com' },
  { id: 'approver-bot', token: '${env:T_APPROVER}', groups: ['approvers'], kind: 'workload' },
  { id: 'approver-bot-2', token: '${env:T_APPROVER2}', groups: ['approvers'], kind: 'workload' },
  { id: 'auditor-bot', token: '${env:T_AUDITOR}', groups: ['auditors'], kind: 'workload' },
  { id: 'admin-bot', token: '${env:T_ADMIN}', groups: ['admins'], kind: 'workload' },
];

export interface IdentityBrokerOptions {
  targets: Record<string, Record<string, unknown>>;
  identity?: Record<string, unknown>;
  policy?: Record<string, unknown>;
  broker?: Record<string, unknown>;
  clock?: Clock;
  /** Reuse a store folder (a broker restarted after a crash). Not removed by close(). */
  dir?: string;
}

export interface IdentityBroker {
  broker: RunningBroker;
  apiUrl: string;
  dir: string;
  client(token?: string): ApiClient;
  connect(token: string, req: ConnectRequest): Promise<Connection>;
  events(filter?: (e: AuditEvent) => boolean): Promise<AuditEvent[]>;
  close(): Promise<void>;
}

export async function startIdentityBroker(o: IdentityBrokerOptions): Promise<IdentityBroker> {
  const ownDir = o.dir === undefined;
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'dbgov-idb-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    T_CI: SA_TOKENS.ci,
    T_AGENT: SA_TOKENS.agent,
    T_APPROVER: SA_TOKENS.approver,
    T_APPROVER2: SA_TOKENS.approver2,
    T_AUDITOR: SA_TOKENS.auditor,
    T_ADMIN: SA_TOKENS.admin,
  };
  const raw = {
    broker: { id: 'idtest', api: '127.0.0.1:0', gateway: '127.0.0.1:0', store: dir, ...(o.broker ?? {}) },
    identity: { serviceAccounts: SERVICE_ACCOUNTS, ...(o.identity ?? {}) },
    targets: o.targets,
    policy: o.policy ?? {},
    masking: {},
  };
  const config = configFromObject(raw, 'identity test dbgov.yaml', dir, env);
  const broker = await startBroker(config, { log: silentLogger, devicePollIntervalSec: 0.1, ...(o.clock ? { clock: o.clock } : {}) });
  const key = await testClientKey();
  const client = (token?: string) => new ApiClient({ broker: broker.apiUrl, ...(token !== undefined ? { token } : {}) });
  return {
    broker,
    apiUrl: broker.apiUrl,
    dir,
    client,
    connect: (token, req) => connectTunnel(client(token), req, key, { pollMs: 100 }),
    events: (filter) => auditEvents(broker, filter),
    async close() {
      await broker.close();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A private CLI home (client key, saved logins), as a developer's laptop or a CI runner has. */
export function cliHome(): { home: string; remove(): void } {
  const home = mkdtempSync(join(tmpdir(), 'dbgov-clihome-'));
  return { home, remove: () => rmSync(home, { recursive: true, force: true }) };
}

/** The real CLI, built in dist (npm run build). DBGOV_TOKEN is unset unless given. */
export function cli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> {
  return run(process.execPath, ['bin/run.js', ...args], { env: { DBGOV_TOKEN: '', DBGOV_ID_TOKEN: '', DBGOV_LOG_LEVEL: 'silent', ...env }, timeoutMs });
}

export interface Envelope<T = Record<string, unknown>> {
  status: number;
  result?: T;
  name?: string;
  message?: string;
  actions?: string[];
}

export function envelope<T = Record<string, unknown>>(r: RunResult): Envelope<T> {
  try {
    return JSON.parse(r.stdout) as Envelope<T>;
  } catch {
    throw new Error(`not a JSON envelope (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/**
 * `dbgov login --no-browser --json` as a subprocess: reads the verification URL it prints on
 * stderr and signs in at the IdP's pages the way a person would.
 */
export function cliDeviceLogin(env: NodeJS.ProcessEnv, email: string, password: string): Promise<RunResult & { browser: Promise<unknown> }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/run.js', 'login', '--no-browser', '--json'], { env: { ...process.env, DBGOV_TOKEN: '', DBGOV_ID_TOKEN: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let browser: Promise<unknown> = Promise.resolve();
    let started = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const url = /open (http\S+)/.exec(stderr)?.[1];
      if (url && !started) {
        started = true;
        browser = approveDeviceLogin(url, email, password).catch((e: unknown) => e);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, browser });
    });
  });
}

/**
 * A hand-made tunnel: a local port whose connections go to the gateway over TLS, starting with
 * whatever hello `makeHello` builds from that TLS connection's channel binding. Lets a test replay
 * a captured credential with another key, or a proof lifted from another connection.
 */
export async function rogueTunnel(gateway: { host: string; port: number }, makeHello: (binding: Buffer) => Buffer): Promise<{ port: number; bindings: Buffer[]; close(): Promise<void> }> {
  const sockets = new Set<Socket | TLSSocket>();
  const bindings: Buffer[] = [];
  const server: Server = createServer((local) => {
    sockets.add(local);
    local.pause();
    const remote = tlsConnect({ host: gateway.host, port: gateway.port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    sockets.add(remote);
    const end = (): void => {
      local.destroy();
      remote.destroy();
    };
    local.on('error', end);
    local.on('close', end);
    remote.on('error', end);
    remote.on('close', end);
    remote.once('secureConnect', () => {
      const binding = channelBindingOf(remote);
      bindings.push(binding);
      remote.write(makeHello(binding));
      local.pipe(remote);
      remote.pipe(local);
      local.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    bindings,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Polls until `fn` returns a truthy value, or fails after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
