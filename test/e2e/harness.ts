/**
 * End-to-end harness: a real broker in-process (port 0, temp store), the real PostgreSQL on
 * this machine behind it, and real tunnels with real clients. Each test database has a unique
 * name and is dropped afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { deviceLogin } from '../../src/auth/device-login.js';
import { openTokenStore, type ClientKey } from '../../src/auth/token-store.js';
import { startBroker, type RunningBroker } from '../../src/broker/broker.js';
import { configFromObject } from '../../src/broker/config.js';
import { ApiClient } from '../../src/cli/api-client.js';
import { connectTunnel, type ConnectRequest, type Connection } from '../../src/cli/connect.js';
import { approveDeviceLogin } from '../../src/demo/form-browser.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { AuditEvent } from '../../src/audit/event.js';
import type { Clock } from '../../src/shared/clock.js';

export const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };

export async function adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<pg.QueryResult<T>> {
  const c = new pg.Client({ ...PG, database });
  await c.connect();
  try {
    return await c.query<T>(sql, params);
  } finally {
    await c.end();
  }
}

export interface TestDatabase {
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix: string, setup?: string): Promise<TestDatabase> {
  const name = `dbgov_${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  if (setup) await adminQuery(setup, [], name);
  return {
    name,
    drop: async () => {
      await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);
      await adminQuery(`DROP DATABASE IF EXISTS ${name}`);
    },
  };
}

export const SA_TOKENS = {
  ci: `ci_${randomBytes(16).toString('hex')}`,
  agent: `ag_${randomBytes(16).toString('hex')}`,
  approver: `ap_${randomBytes(16).toString('hex')}`,
  approver2: `ap2_${randomBytes(16).toString('hex')}`,
  auditor: `au_${randomBytes(16).toString('hex')}`,
  admin: `ad_${randomBytes(16).toString('hex')}`,
};

export const HUMANS = [
  { id: 'alice', email: 'alice@example.com', name: 'Alice', password: 'alice-pw', groups: ['developers'] },
  { id: 'bob', email: 'bob@example.com', name: 'Bob', password: 'bob-pw', groups: ['approvers'] },
  { id: 'carol', email: 'carol@example.com', name: 'Carol', password: 'carol-pw', groups: ['approvers'] },
  { id: 'dave', email: 'dave@example.com', name: 'Dave', password: 'dave-pw', groups: ['auditors'] },
];

export interface TestBrokerOptions {
  targets: Record<string, Record<string, unknown>>;
  policy?: Record<string, unknown>;
  masking?: Record<string, unknown>;
  broker?: Record<string, unknown>;
  builtinIdp?: boolean;
  /** Users of the built-in IdP (default HUMANS). */
  humans?: typeof HUMANS;
  clock?: Clock;
}

export interface TestBroker {
  broker: RunningBroker;
  apiUrl: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  client(token: string): ApiClient;
  /** A real device login through the built-in IdP, exchanged at the broker. */
  loginHuman(email: string): Promise<string>;
  connect(token: string, req: ConnectRequest): Promise<Connection>;
  events(filter?: (e: AuditEvent) => boolean): Promise<AuditEvent[]>;
  close(): Promise<void>;
}

let keyPromise: Promise<ClientKey> | undefined;
/** One CLI key per test process, in a private DBGOV_HOME. */
export function testClientKey(): Promise<ClientKey> {
  keyPromise ??= (async () => {
    const home = mkdtempSync(join(tmpdir(), 'dbgov-home-'));
    return (await openTokenStore({ env: { ...process.env, DBGOV_HOME: home }, backend: 'file' })).loadOrCreateClientKey();
  })();
  return keyPromise;
}

export async function startTestBroker(o: TestBrokerOptions): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'dbgov-broker-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    T_CI: SA_TOKENS.ci,
    T_AGENT: SA_TOKENS.agent,
    T_APPROVER: SA_TOKENS.approver,
    T_APPROVER2: SA_TOKENS.approver2,
    T_AUDITOR: SA_TOKENS.auditor,
    T_ADMIN: SA_TOKENS.admin,
    T_MASK_KEY: 'test-mask-key-0123456789abcdef',
  };
  const raw = {
    broker: { id: 'test', api: '127.0.0.1:0', gateway: '127.0.0.1:0', store: dir, ...(o.broker ?? {}) },
    identity: {
      serviceAccounts: [
        { id: 'ci-bot', token: '${env:T_CI}', groups: ['ci'], kind: 'workload' },
        { id: 'agent-bot', token: '${env:T_AGENT}', groups: ['developers'], kind: 'agent', owner: 'alice@example.com' },
        { id: 'approver-bot', token: '${env:T_APPROVER}', groups: ['approvers'], kind: 'workload' },
        { id: 'approver-bot-2', token: '${env:T_APPROVER2}', groups: ['approvers'], kind: 'workload' },
        { id: 'auditor-bot', token: '${env:T_AUDITOR}', groups: ['auditors'], kind: 'workload' },
        { id: 'admin-bot', token: '${env:T_ADMIN}', groups: ['admins'], kind: 'workload' },
      ],
      ...(o.builtinIdp ? { builtin: { users: o.humans ?? HUMANS } } : {}),
    },
    targets: o.targets,
    policy: o.policy ?? {},
    masking: o.masking ?? {},
  };
  const config = configFromObject(raw, 'test dbgov.yaml', dir, env);
  const broker = await startBroker(config, { log: silentLogger, devicePollIntervalSec: 0.1, ...(o.clock ? { clock: o.clock } : {}) });
  const key = await testClientKey();
  const client = (token: string) => new ApiClient({ broker: broker.apiUrl, token });
  return {
    broker,
    apiUrl: broker.apiUrl,
    dir,
    env,
    client,
    async loginHuman(email) {
      const user = (o.humans ?? HUMANS).find((h) => h.email === email);
      if (!user || !broker.idp) throw new Error(`no test user ${email}`);
      const tokens = await deviceLogin({
        issuer: broker.idp.issuer,
        clientId: broker.idp.clientId,
        scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
        openBrowser: false,
        onPrompt: (p) => void approveDeviceLogin(p.verificationUriComplete ?? p.verificationUri, user.email, user.password),
      });
      const ex = await new ApiClient({ broker: broker.apiUrl }).exchange({ grant: 'oidc', idToken: tokens.idToken, accessToken: tokens.accessToken });
      return ex.accessToken;
    },
    connect: (token, req) => connectTunnel(client(token), req, key, { pollMs: 100 }),
    events: (filter) => auditEvents(broker, filter),
    async close() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every audit event the broker has written so far (synced first), optionally filtered. */
export async function auditEvents(broker: RunningBroker, filter?: (e: AuditEvent) => boolean): Promise<AuditEvent[]> {
  await broker.core.store.audit.sync();
  const out: AuditEvent[] = [];
  for await (const e of broker.core.store.audit.stream({})) if (!filter || filter(e)) out.push(e);
  return out;
}

export function pgTarget(database: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'postgres', env: 'prod', host: PG.host, port: PG.port, database, user: PG.user, ...extra };
}

/** A pg client through a tunnel. */
export async function tunnelClient(conn: Connection, opts: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: conn.tunnel.port, user: conn.credential.identity.id, database: conn.credential.database, ...opts });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a real command (psql, pgbench, the CLI) with a time limit. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...(opts.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

export function psqlArgs(conn: Connection, ...args: string[]): string[] {
  return ['-X', '-v', 'ON_ERROR_STOP=0', '-h', '127.0.0.1', '-p', String(conn.tunnel.port), '-U', conn.credential.identity.id, '-d', conn.credential.database, ...args];
}
