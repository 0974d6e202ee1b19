/**
 * startBroker: one process with the HTTP API, the gateway listener, the store, the engines and,
 * when configured, the built-in identity provider. `dbgov broker start` and `dbgov demo` both
 * run this; tests run it in-process on port 0.
 */
import { loadOrCreateBrokerKey } from '../auth/broker-tokens.js';
import { startBuiltinIdp, BUILTIN_SCOPES, type BuiltinIdp } from '../auth/builtin-idp.js';
import { createOidcVerifier } from '../auth/oidc-verify.js';
import { serviceAccountsFromConfig } from '../auth/service-accounts.js';
import { createWorkloadVerifier } from '../auth/workload.js';
import { postgresEngine } from '../gateway/postgres/engine.js';
import { mysqlEngine } from '../gateway/mysql/engine.js';
import { compileMasking } from '../masking/config.js';
import { withStatisticsSamples } from '../masking/statistics.js';
import { compilePolicy } from '../policy/compile.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { analysePostgres, loadSqlParser, postgresSessionAnalyser } from '../sql/postgres.js';
import { createShapeAnalyser } from '../sql/postgres/normalise.js';
import { rootLogger, type Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import { auditConfigOf, type DbgovConfig, type TargetConfig } from './config.js';
import { ConfigError } from '../shared/errors.js';
import { startAuditPipeline } from './audit-pipeline.js';
import { BrokerCore } from './core.js';
import { GatewayListener } from './gateway-listener.js';
import { loadGatewayTls } from './gateway-tls.js';
import { buildApi } from './http.js';
import { notifyApprovers } from './approval-webhook.js';
import { PostgresRoleManager, engineRoleManager } from './roles.js';
import { MysqlRoleManager } from './mysql-roles.js';
import { TargetRuntime, type TargetCatalog } from './target-runtime.js';
import { postgresTargetCatalog } from './pg-catalog.js';
import { mysqlTargetCatalog } from './mysql-catalog.js';
import { mysqlAnalyser } from './mysql-analyser.js';

export interface BrokerOptions {
  log?: Logger;
  /** Replaces how a target's catalog is read (the demo reads its in-process PGlite directly). */
  catalogFor?: (name: string, t: TargetConfig) => TargetCatalog | null;
  /** Test hook: the built-in IdP's device poll interval. */
  devicePollIntervalSec?: number;
  /** Test hook: the clock credential checks use. */
  clock?: Clock;
}

export interface RunningBroker {
  apiUrl: string;
  gateway: { host: string; port: number };
  core: BrokerCore;
  idp: BuiltinIdp | null;
  /** Reloads every target's catalog now (after out-of-band DDL; otherwise it happens within 15 s). */
  refreshCatalogs(): Promise<void>;
  close(): Promise<void>;
}

const FACTS_CACHE_ENTRIES = 10_000;

/** A store folder the broker cannot create or write is a config problem: name the line and the fix. */
function storeFolderError(e: unknown, dir: string, config: DbgovConfig): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === undefined || !['ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'EEXIST', 'ENOENT', 'ENOSPC'].includes(code)) return e;
  return new ConfigError(config.source.file, config.source.lineOf(['broker', 'store']), `cannot use ${dir} as the store folder (${code})`, 'set broker.store to a folder the broker can create and write, e.g. ./dbgov-data, or fix its permissions', { cause: e });
}

export async function startBroker(config: DbgovConfig, opts: BrokerOptions = {}): Promise<RunningBroker> {
  const log = opts.log ?? rootLogger();
  await loadSqlParser();
  const policy = compilePolicy(config.policy, { file: config.source.file, lineOf: (p) => config.source.lineOf(['policy', ...p]) });
  const masking = compileMasking(withStatisticsSamples(config.masking), { file: config.source.file, lineOf: (p) => config.source.lineOf(['masking', ...p]) });

  const dir = config.broker.store.dir;
  const audit = auditConfigOf(config);
  const store = await openEmbeddedStore({
    dir,
    brokerId: config.broker.id,
    fsync: audit.fsync,
    ...(audit.signingKey ? { signingKey: audit.signingKey } : {}),
    ...(audit.checkpointEvery !== undefined ? { checkpointEvery: audit.checkpointEvery } : {}),
    ...(audit.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: audit.checkpointIntervalMs } : {}),
    log: log.child({ component: 'store' }),
  }).catch((e: unknown) => {
    throw storeFolderError(e, dir, config);
  });
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => store.close()];
  try {
    // Sinks and retention read the log after the fact; stopped before the store closes.
    const auditPipeline = startAuditPipeline({ store, config: audit, log: log.child({ component: 'audit' }) });
    cleanups.push(() => auditPipeline.stop());
    const brokerKey = await loadOrCreateBrokerKey(dir);
    const tls = await loadGatewayTls(dir, config.broker.tls);

    let idp: BuiltinIdp | null = null;
    let oidc: ConstructorParameters<typeof BrokerCore>[0]['oidc'] = null;
    if (config.identity.builtin) {
      idp = await startBuiltinIdp({ host: config.broker.api.host, port: config.identity.builtin.port, users: config.identity.builtin.users, ...(opts.devicePollIntervalSec !== undefined ? { devicePollIntervalSec: opts.devicePollIntervalSec } : {}) });
      cleanups.push(() => idp?.close());
      oidc = { issuer: idp.issuer, clientId: idp.clientId, scopes: [...BUILTIN_SCOPES], verifier: createOidcVerifier({ issuer: idp.issuer, clientId: idp.clientId }) };
    } else if (config.identity.oidc) {
      const o = config.identity.oidc;
      oidc = { issuer: o.issuer, clientId: o.clientId, scopes: o.scopes, verifier: createOidcVerifier({ issuer: o.issuer, clientId: o.clientId, groupsClaim: o.groupsClaim, ...(o.allowedDomains.length ? { allowedEmailDomains: o.allowedDomains } : {}) }) };
    }
    const workload = config.identity.workload.length ? createWorkloadVerifier(config.identity.workload) : null;

    // By exact text, and by shape for texts with inlined values (src/sql/postgres/normalise.ts).
    const analysePg = postgresSessionAnalyser(createShapeAnalyser(analysePostgres, FACTS_CACHE_ENTRIES));
    const targets = new Map<string, TargetRuntime>();
    for (const [name, t] of Object.entries(config.targets)) {
      const catalog = opts.catalogFor ? opts.catalogFor(name, t) : t.engine === 'postgres' ? postgresTargetCatalog(t, log) : mysqlTargetCatalog(t, log);
      const analyse = t.engine === 'postgres' ? analysePg : mysqlAnalyser(catalog, FACTS_CACHE_ENTRIES);
      const rt = new TargetRuntime({ name, config: t, analyse, catalog, masking, log: log.child({ target: name }) });
      targets.set(name, rt);
      cleanups.push(() => rt.close());
    }
    await Promise.all([...targets.values()].map((t) => t.start()));

    const roles = engineRoleManager(config.targets, {
      postgres: new PostgresRoleManager(config.targets, store, log),
      mysql: new MysqlRoleManager(config.targets, store, log),
    });
    const swept = await roles.sweep().catch((e: unknown) => {
      log.warn({ err: e }, 'leftover role sweep failed');
      return 0;
    });
    if (swept) log.info({ swept }, 'removed database roles left by an earlier broker');

    // One instance per engine: the PostgreSQL engine's cancel registry must see every session.
    const engines = { postgres: postgresEngine(), mysql: mysqlEngine() };
    const core = new BrokerCore({
      config,
      store,
      brokerKey,
      tls,
      policy,
      engines,
      targets,
      oidc,
      workload,
      configServiceAccounts: serviceAccountsFromConfig(config.identity.serviceAccounts, Date.now()),
      roles,
      log,
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    cleanups.push(() => core.close());
    store.audit.appendSync({ kind: 'policy.loaded', identity: null, target: null, database: null, sessionId: null, detail: { file: config.source.file, rules: policy.statements.length, defaults: policy.defaults.length, access: policy.access.length } });

    const gateway = new GatewayListener({
      tls,
      engines,
      authorize: (hello, binding, remote) => core.authorize(hello, binding, remote),
      refused: (err, remote, engine) => core.refused(err, remote, engine),
      log: log.child({ component: 'gateway' }),
    });
    const gw = await gateway.listen(config.broker.gateway.host, config.broker.gateway.port).catch((e: unknown) => {
      throw listenError(e, config, 'gateway');
    });
    cleanups.push(() => gateway.close());
    core.gatewayAddress = gw;

    const api = buildApi(core, log.child({ component: 'api' }));
    await api.listen({ host: config.broker.api.host, port: config.broker.api.port }).catch((e: unknown) => {
      throw listenError(e, config, 'api');
    });
    cleanups.push(() => api.close());
    const addr = api.server.address();
    const apiPort = typeof addr === 'object' && addr ? addr.port : config.broker.api.port;
    const apiUrl = `http://${config.broker.api.host.includes(':') ? `[${config.broker.api.host}]` : config.broker.api.host}:${apiPort}`;
    const webhook = policy.notify.webhook;
    if (webhook) core.approvals.onRequest = (r) => notifyApprovers(webhook, r, apiUrl, log.child({ component: 'approval-webhook' }));
    log.info({ api: apiUrl, gateway: gw }, 'broker started');

    return {
      apiUrl,
      gateway: gw,
      core,
      idp,
      refreshCatalogs: async () => {
        for (const t of targets.values()) {
          t.schemaChanged();
          await t.settled();
        }
      },
      close: async () => {
        for (const c of cleanups.reverse()) {
          try {
            await c();
          } catch (e) {
            log.warn({ err: e }, 'shutdown step failed');
          }
        }
      },
    };
  } catch (e) {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    throw e;
  }
}

/** A port that cannot be bound is a configuration problem: name the key, its line and the fix. */
function listenError(e: unknown, config: DbgovConfig, key: 'api' | 'gateway'): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const addr = `${config.broker[key].host}:${config.broker[key].port}`;
  const problem = code === 'EADDRINUSE' ? `broker.${key} ${addr} is already in use` : code === 'EADDRNOTAVAIL' ? `broker.${key} ${addr} is not an address of this machine` : code === 'EACCES' ? `broker.${key} ${addr} needs privileges to listen on` : undefined;
  if (!problem) return e;
  return new ConfigError(config.source.file, config.source.lineOf(['broker', key]), problem, `stop the process using it, or set broker.${key} to a free host:port`);
}
