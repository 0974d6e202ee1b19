/**
 * Helpers for the audit end-to-end tests: a real broker with an `audit:` section (in-process or
 * as a child process), the real CLI as a subprocess, and waiting for the log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AuditEvent } from '../../src/audit/event.js';
import { startBroker, type RunningBroker } from '../../src/broker/broker.js';
import { configFromObject } from '../../src/broker/config.js';
import { ApiClient } from '../../src/cli/api-client.js';
import { connectTunnel, type ConnectRequest, type Connection } from '../../src/cli/connect.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { EmbeddedStore } from '../../src/store/embedded.js';
import { SA_TOKENS, run, testClientKey } from './harness.js';

export const CLI = resolve(process.cwd(), 'bin/run.js');

/** The service accounts every audit test broker has (tokens from SA_TOKENS through env refs). */
export const SERVICE_ACCOUNTS = [
  { id: 'ci-bot', token: '${env:T_CI}', groups: ['ci'], kind: 'workload' },
  { id: 'agent-bot', token: '${env:T_AGENT}', groups: ['developers'], kind: 'agent', owner: 'alice@example.com' },
  { id: 'approver-bot', token: '${env:T_APPROVER}', groups: ['approvers'], kind: 'workload' },
  { id: 'auditor-bot', token: '${env:T_AUDITOR}', groups: ['auditors'], kind: 'workload' },
  { id: 'admin-bot', token: '${env:T_ADMIN}', groups: ['admins'], kind: 'workload' },
];

export const SA_ENV: NodeJS.ProcessEnv = {
  T_CI: SA_TOKENS.ci,
  T_AGENT: SA_TOKENS.agent,
  T_APPROVER: SA_TOKENS.approver,
  T_AUDITOR: SA_TOKENS.auditor,
  T_ADMIN: SA_TOKENS.admin,
  T_MASK_KEY: 'test-mask-key-0123456789abcdef',
};

export interface AuditBroker {
  broker: RunningBroker;
  apiUrl: string;
  dir: string;
  store: EmbeddedStore;
  connect(token: string, req: ConnectRequest): Promise<Connection>;
  client(token: string): ApiClient;
  /** Every event in the log, oldest first. */
  events(): Promise<AuditEvent[]>;
  close(opts?: { keepDir?: boolean }): Promise<void>;
}

export async function startAuditBroker(o: {
  dir?: string;
  targets: Record<string, Record<string, unknown>>;
  policy?: Record<string, unknown>;
  masking?: Record<string, unknown>;
  audit?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}): Promise<AuditBroker> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'dbgov-audit-e2e-'));
  const raw = {
    broker: { id: 'audit-e2e', api: '127.0.0.1:0', gateway: '127.0.0.1:0', store: dir },
    identity: { serviceAccounts: SERVICE_ACCOUNTS },
    targets: o.targets,
    policy: o.policy ?? {},
    masking: o.masking ?? {},
    ...(o.audit ? { audit: o.audit } : {}),
  };
  const config = configFromObject(raw, 'audit-e2e dbgov.yaml', dir, { ...process.env, ...SA_ENV, ...(o.env ?? {}) });
  const broker = await startBroker(config, { log: silentLogger });
  const key = await testClientKey();
  const store = broker.core.store;
  const client = (token: string) => new ApiClient({ broker: broker.apiUrl, token });
  return {
    broker,
    apiUrl: broker.apiUrl,
    dir,
    store,
    client,
    connect: (token, req) => connectTunnel(client(token), req, key, { pollMs: 100 }),
    async events() {
      const out: AuditEvent[] = [];
      for await (const e of store.audit.stream({})) out.push(e);
      return out;
    },
    async close(opts = {}) {
      await broker.close();
      if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The --json envelope, when stdout holds one. */
  json: { status: number; result?: unknown; name?: string; message?: string; actions?: string[] } | undefined;
}

/** Runs the built CLI (`npm run build` first) as `auditor-bot` unless another token is given. */
export async function cli(apiUrl: string, args: string[], token = SA_TOKENS.auditor): Promise<CliResult> {
  const home = mkdtempSync(join(tmpdir(), 'dbgov-cli-home-'));
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { DBGOV_BROKER: apiUrl, DBGOV_TOKEN: token, DBGOV_HOME: home, NO_COLOR: '1' }, timeoutMs: 120_000 });
    let json: CliResult['json'];
    try {
      json = JSON.parse(r.stdout) as CliResult['json'];
    } catch {
      json = undefined;
    }
    return { ...r, json };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ChildBroker {
  child: ChildProcess;
  apiUrl: string;
  stderr(): string;
}

/** `dbgov broker start --config … --json` in a child process; resolves on its ready envelope. */
export function startChildBroker(configFile: string, env: NodeJS.ProcessEnv): Promise<ChildBroker> {
  const child = spawn(process.execPath, [CLI, 'broker', 'start', '--config', configFile, '--json'], {
    env: { ...process.env, ...env, DBGOV_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker did not start: ${err}`));
    }, 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before it was ready: ${out}${err}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const ready = JSON.parse(out) as { status: number; result: { api: string } };
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolveReady({ child, apiUrl: ready.result.api, stderr: () => err });
      } catch {
        // The envelope is still arriving.
      }
    });
  });
}
