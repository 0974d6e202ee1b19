/**
 * `dbgov demo`: everything in one process, no outside service. An embedded PostgreSQL seeded
 * with PII and model weights, the built-in IdP with three demo users, a broker on an embedded
 * store with guardrails, an approval rule and masking, the developer logged in through the real
 * device flow, and a tunnel ready for psql.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceLogin } from '../auth/device-login.js';
import type { ClientKey } from '../auth/token-store.js';
import type { ExchangeResponse } from '../broker/api-types.js';
import { startBroker, type RunningBroker } from '../broker/broker.js';
import { configFromObject } from '../broker/config.js';
import { ApiClient } from '../cli/api-client.js';
import { connectTunnel, type Connection } from '../cli/connect.js';
import type { Logger } from '../shared/logger.js';
import { startDemoDatabase, type DemoDatabase } from './database.js';
import { approveDeviceLogin } from './form-browser.js';

export const DEMO_TARGET = 'demo';
const DEMO_CREDENTIAL_TTL = '8h';

export const DEMO_PEOPLE = [
  { id: 'dev', email: 'dev@example.com', name: 'Demo Developer', password: 'dev', groups: ['developers'] },
  { id: 'approver', email: 'approver@example.com', name: 'Demo Approver', password: 'approver', groups: ['approvers'] },
  { id: 'auditor', email: 'auditor@example.com', name: 'Demo Auditor', password: 'auditor', groups: ['auditors'] },
] as const;

export interface Demo {
  broker: RunningBroker;
  db: DemoDatabase;
  connection: Connection;
  /** Broker access tokens from real device logins, usable as DBGOV_TOKEN in other terminals. */
  tokens: { developer: ExchangeResponse; approver: ExchangeResponse; auditor: ExchangeResponse };
  dataDir: string;
  close(): Promise<void>;
}

export function demoConfig(db: DemoDatabase, dataDir: string, apiPort: number) {
  return {
    // A demo is left running for a while: its tunnel must not die at the 30m default credential life.
    broker: { id: 'demo', api: `127.0.0.1:${apiPort}`, gateway: '127.0.0.1:0', store: dataDir, approvalHold: '10m', credentialTtl: { default: DEMO_CREDENTIAL_TTL, max: DEMO_CREDENTIAL_TTL } },
    identity: { builtin: { users: DEMO_PEOPLE.map((p) => ({ ...p, groups: [...p.groups] })) } },
    targets: {
      [DEMO_TARGET]: { engine: 'postgres', env: 'prod', labels: { team: 'ml-platform' }, host: db.host, port: db.port, database: db.database, user: db.user },
    },
    policy: {
      approvers: { groups: ['approvers'], quorum: 1 },
      accessHelp: 'in the demo, developers may connect with --access write',
      statements: [
        {
          name: 'model-weights-need-review',
          description: 'Model weights feed production inference: every change gets a second pair of eyes.',
          match: { statement: { relations: { names: ['public.model_weights', 'model_weights'], access: ['write'] } } },
          action: 'review',
          message: 'changes to model weights are held for an approver',
          review: { approvers: { groups: ['approvers'], quorum: 1 }, hold: '10m', expires: '1h' },
        },
      ],
      access: [
        { name: 'developers-write-demo', match: { identity: { groups: ['developers'] } }, action: 'allow', maxTtl: '8h' },
        { name: 'approvers-and-auditors-read', match: { identity: { groups: ['approvers', 'auditors'] }, access: ['read'] }, action: 'allow' },
      ],
    },
    masking: {
      key: '${env:DBGOV_DEMO_MASK_KEY}',
      columns: {
        'public.users.full_name': 'name',
        'public.users.email': 'email',
        'public.users.phone': 'phone',
        'public.users.ssn': 'ssn',
        'public.users.card_number': { class: 'card', function: 'hash' },
        'public.users.address': 'address',
        'public.users.api_token': 'secret',
      },
    },
  };
}

async function loginAs(api: ApiClient, issuer: string, clientId: string, scopes: string[], person: (typeof DEMO_PEOPLE)[number]): Promise<ExchangeResponse> {
  const tokens = await deviceLogin({
    issuer,
    clientId,
    scopes,
    openBrowser: false,
    // The demo stands in for the person at the browser: the same pages, the same device flow.
    onPrompt: (p) => {
      void approveDeviceLogin(p.verificationUriComplete ?? p.verificationUri, person.email, person.password);
    },
  });
  return api.exchange({ grant: 'oidc', idToken: tokens.idToken, accessToken: tokens.accessToken });
}

export async function startDemo(opts: { apiPort?: number; tunnelPort?: number; log: Logger; key: ClientKey; dataDir?: string }): Promise<Demo> {
  const db = await startDemoDatabase();
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'dbgov-demo-'));
  const ownsDir = opts.dataDir === undefined;
  const cleanup: (() => Promise<unknown>)[] = [() => db.close()];
  try {
    // The masking key is a secret, so the config reads it from the environment like any other.
    const env = { ...process.env, DBGOV_DEMO_MASK_KEY: process.env.DBGOV_DEMO_MASK_KEY ?? randomBytes(24).toString('hex') };
    const config = configFromObject(demoConfig(db, dataDir, opts.apiPort ?? 0), 'dbgov demo (built-in config)', dataDir, env);
    const broker = await startBroker(config, { log: opts.log, devicePollIntervalSec: 0.2 });
    cleanup.unshift(() => broker.close());
    const info = await new ApiClient({ broker: broker.apiUrl }).info();
    if (!info.oidc) throw new Error('demo broker has no IdP');
    const anon = new ApiClient({ broker: broker.apiUrl });
    const [developer, approver, auditor] = await Promise.all(DEMO_PEOPLE.map((p) => loginAs(anon, info.oidc!.issuer, info.oidc!.clientId, info.oidc!.scopes, p)));
    const devClient = new ApiClient({ broker: broker.apiUrl, token: developer.accessToken });
    const connection = await connectTunnel(devClient, { target: DEMO_TARGET, access: 'write', reason: 'dbgov demo', ...(opts.tunnelPort ? { port: opts.tunnelPort } : {}) }, opts.key);
    cleanup.unshift(() => connection.close());
    return {
      broker,
      db,
      connection,
      tokens: { developer, approver, auditor },
      dataDir,
      close: async () => {
        for (const c of cleanup) await c().catch(() => undefined);
        if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const c of cleanup) await c().catch(() => undefined);
    if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
}
