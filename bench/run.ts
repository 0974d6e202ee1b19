/**
 * `npm run bench`: one run, all on this machine, numbers as ratios (the machine is shared and noisy).
 *
 *   1. PostgreSQL path (issue 2): pgbench -S and TPC-B, 8 clients, simple and extended, against
 *      direct, PgBouncer (transaction mode) and dbgov (a broker child process + a tunnel child
 *      process, audit on, default prod policy, masking configured for another table); TPS ratios,
 *      CPU per statement from /proc; a 1-client run for added latency.
 *   2. Memory (issue 2): broker RSS with 200 idle sessions, and peak RSS while streaming ~1 GB.
 *   3. Masking (issue 5): 1M rows with 3 masked columns vs the same shape unmasked, and direct.
 *   4. Analysis + policy cost per statement (issue 4), cached and uncached.
 *   5. Audit (issue 6): bench/audit.ts in a child process (durable appends/s, export RSS).
 *   6. MySQL (issue 7): mysql2 point-select load, direct vs dbgov.
 *
 * Prints a report and writes it to /tmp/bench-results.md. Every child process, database and
 * temporary folder it creates is removed at the end, also on failure or Ctrl-C.
 *
 * Knobs (for a quick try, not for the published numbers): BENCH_PG_RUNS (comma list of
 * "select-only simple", "select-only extended", "TPC-B simple", "TPC-B extended"), BENCH_SECS (pgbench/mysql seconds,
 * default 15), BENCH_ONLY (comma list of: pg,mem,mask,sql,audit,mysql), BENCH_AUDIT_EVENTS, BENCH_PG_RATE
 * (pgbench -R for the 8-client runs: compare CPU per statement between builds at one rate), and
 * BENCH_BROKER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the broker).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { createFactsCache } from '../src/sql/cache.js';
import { analysePostgres, loadSqlParser } from '../src/sql/postgres.js';
import { compilePolicy } from '../src/policy/compile.js';
import { decideStatements } from '../src/policy/decide.js';
import type { StatementContext } from '../src/policy/types.js';
import { cpuMicros, freePort, median, pgStream, procMem, run, sampleRss, sleep, startChild, stopAllChildren, stopChild, tail, waitForJson, which, type Child, type StreamResult } from './util.js';

const HERE = dirname(fileURLToPath(import.meta.url));
// dist/bench/run.js → the package root holds bin/run.js.
const ROOT = resolve(HERE, '..', '..');
const BIN = join(ROOT, 'bin', 'run.js');
const SECS = Number(process.env.BENCH_SECS ?? 15);
const ONLY = new Set((process.env.BENCH_ONLY ?? 'pg,mem,mask,sql,audit,mysql').split(',').map((s) => s.trim()));
const AUDIT_EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 1_000_000);
/** pgbench -R for the 8-client runs: the same statement rate for every path, so CPU per statement compares across builds on a busy machine. */
const PG_RATE = process.env.BENCH_PG_RATE;
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const MY = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
const t00 = performance.now();

// ───────────────────────── report ─────────────────────────
const report: string[] = [];
const summary: { metric: string; measured: string; target: string; met: string }[] = [];
const problems: string[] = [];
const say = (line = ''): void => {
  report.push(line);
  process.stdout.write(`${line}\n`);
};
const progress = (msg: string): void => void process.stderr.write(`[bench ${((performance.now() - t00) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
function table(head: string[], rows: (string | number)[][]): void {
  say(`| ${head.join(' | ')} |`);
  say(`|${head.map(() => '---').join('|')}|`);
  for (const r of rows) say(`| ${r.join(' | ')} |`);
  say();
}
function check(metric: string, value: number, fmt: (v: number) => string, target: string, ok: (v: number) => boolean): void {
  summary.push({ metric, measured: Number.isFinite(value) ? fmt(value) : 'n/a', target, met: Number.isFinite(value) ? (ok(value) ? 'yes' : '**no**') : 'not measured' });
}
/** A reference figure in the summary: what the design itself costs here, not a target. */
function reference(metric: string, value: number, fmt: (v: number) => string): void {
  summary.push({ metric, measured: Number.isFinite(value) ? fmt(value) : 'n/a', target: '(reference)', met: '–' });
}
function problem(section: string, e: unknown): void {
  const msg = `${section}: could not run: ${(e as Error)?.message ?? String(e)}`;
  problems.push(msg);
  say(`> ⚠ ${msg}`);
  say();
}
const f0 = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
const mb = (b: number): string => (Number.isFinite(b) ? `${(b / 1048576).toFixed(0)} MB` : 'n/a');

// ───────────────────────── resources to clean up ─────────────────────────
const uniq = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const PG_DB = `dbgov_bench_${uniq}`;
const MY_DB = `dbgov_bench_${uniq}`;
const work = mkdtempSync(join(tmpdir(), 'dbgov-bench-'));
let pgCreated = false;
let myCreated = false;
let broker: Child | undefined;
let pgTunnel: Child | undefined;
let myTunnel: Child | undefined;
let bouncer: Child | undefined;
/** The floor: a bare TLS tunnel + gateway pair (bench/floor.ts). */
let floorGateway: Child | undefined;
let floorTunnel: Child | undefined;

async function adminPg(sql: string, database = 'postgres'): Promise<pg.QueryResult> {
  const c = new pg.Client({ ...PG, database });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}
async function adminMy(sql: string, database?: string): Promise<void> {
  const c = await mysql.createConnection({ ...MY, ...(database ? { database } : {}), multipleStatements: true });
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await stopChild(pgTunnel).catch(() => undefined);
  await stopChild(myTunnel).catch(() => undefined);
  await stopChild(broker).catch(() => undefined);
  await stopChild(bouncer).catch(() => undefined);
  await stopChild(floorTunnel).catch(() => undefined);
  await stopChild(floorGateway).catch(() => undefined);
  await stopAllChildren().catch(() => undefined);
  if (pgCreated) {
    await adminPg(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${PG_DB}' AND pid <> pg_backend_pid()`).catch(() => undefined);
    await adminPg(`DROP DATABASE IF EXISTS ${PG_DB}`).catch((e: Error) => process.stderr.write(`cleanup: drop ${PG_DB}: ${e.message}\n`));
  }
  if (myCreated) await adminMy(`DROP DATABASE IF EXISTS ${MY_DB}`).catch((e: Error) => process.stderr.write(`cleanup: drop ${MY_DB}: ${e.message}\n`));
  rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ───────────────────────── setup ─────────────────────────
const SA_TOKEN = `bench_${randomBytes(16).toString('hex')}`;
const MASK_KEY = `bench-mask-${randomBytes(12).toString('hex')}`;
const SA_ID = 'bench-bot';

async function setupPostgres(): Promise<void> {
  progress(`creating PostgreSQL database ${PG_DB} and pgbench tables (scale 10)`);
  await adminPg(`CREATE DATABASE ${PG_DB}`);
  pgCreated = true;
  const init = await run('pgbench', ['-i', '-s', '10', '-q', '-h', PG.host, '-p', String(PG.port), '-U', PG.user, PG_DB], { timeoutMs: 180_000 });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${tail(init.stderr)}`);
  if (ONLY.has('mask') || ONLY.has('mem')) {
    progress('creating the 1M-row masking tables');
    // Same data and shape twice: bench_pii has 3 classified columns, bench_plain none.
    await adminPg(
      `CREATE TABLE bench_pii (id int PRIMARY KEY, email text, phone text, ssn text, plan text);
       INSERT INTO bench_pii SELECT g, 'user' || g || '@example.com', '+1 415-555-' || lpad((g % 10000)::text, 4, '0'),
         lpad((g % 900 + 100)::text, 3, '0') || '-45-' || lpad((g % 10000)::text, 4, '0'), CASE WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END
         FROM generate_series(1, 1000000) g;
       CREATE TABLE bench_plain AS SELECT * FROM bench_pii;
       ALTER TABLE bench_plain ADD PRIMARY KEY (id);`,
      PG_DB,
    );
    await adminPg('VACUUM ANALYZE bench_pii', PG_DB);
    await adminPg('VACUUM ANALYZE bench_plain', PG_DB);
  }
}

async function setupMysql(): Promise<void> {
  progress(`creating MariaDB database ${MY_DB}`);
  await adminMy(`CREATE DATABASE ${MY_DB}`);
  myCreated = true;
  await adminMy(
    `CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(100) NOT NULL) ENGINE=InnoDB;
     INSERT INTO kv (id, v) SELECT seq, CONCAT('value-', seq) FROM seq_1_to_100000;`,
    MY_DB,
  );
}

function brokerConfig(): Record<string, unknown> {
  return {
    broker: { id: 'bench', api: '127.0.0.1:0', gateway: '127.0.0.1:0', store: join(work, 'store'), credentialTtl: { default: '2h', max: '2h' } },
    identity: { serviceAccounts: [{ id: SA_ID, token: '${env:BENCH_SA_TOKEN}', groups: ['bench'], kind: 'workload' }] },
    targets: {
      // env: prod → protected: the shipped default guardrails and fail-closed rules are all on.
      bench: { engine: 'postgres', env: 'prod', host: PG.host, port: PG.port, database: PG_DB, user: PG.user },
      ...(ONLY.has('mysql') ? { 'bench-mysql': { engine: 'mysql', env: 'prod', host: MY.host, port: MY.port, database: MY_DB, user: MY.user } } : {}),
    },
    // Writing access rules replaces the default "write on prod needs review"; statement guardrails stay.
    policy: { access: [{ name: 'bench-bot-may-write', action: 'allow', match: { identity: { groups: ['bench'] } } }] },
    masking: {
      key: '${env:BENCH_MASK_KEY}',
      classes: { ssn: { function: 'hash' } },
      columns: { 'public.bench_pii.email': 'email', 'public.bench_pii.phone': 'phone', 'public.bench_pii.ssn': 'ssn' },
    },
  };
}

const cliEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DBGOV_TOKEN: SA_TOKEN, DBGOV_HOME: join(work, 'home'), NO_COLOR: '1' });

async function startBroker(): Promise<{ api: string }> {
  const file = join(work, 'dbgov.yaml');
  writeFileSync(file, JSON.stringify(brokerConfig(), null, 2)); // JSON is YAML
  const nodeArgs = (process.env.BENCH_BROKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  broker = startChild(process.execPath, [...nodeArgs, BIN, 'broker', 'start', '--config', file, '--json'], {
    env: { ...process.env, BENCH_SA_TOKEN: SA_TOKEN, BENCH_MASK_KEY: MASK_KEY },
    cwd: work,
  });
  const ready = await waitForJson<{ result: { api: string } }>(broker, 60_000, 'broker');
  return { api: ready.result.api };
}

interface TunnelInfo {
  port: number;
  user: string;
  database: string;
}
async function openTunnel(api: string, target: string, access: string): Promise<{ child: Child; info: TunnelInfo }> {
  const child = startChild(process.execPath, [BIN, 'connect', target, '--access', access, '--ttl', '2h', '--reason', 'benchmark', '--json'], {
    env: { ...cliEnv(), DBGOV_BROKER: api },
    cwd: work,
  });
  const ready = await waitForJson<{ status: number; result: TunnelInfo; message?: string }>(child, 60_000, `tunnel to ${target}`);
  if (ready.status !== 0) throw new Error(`dbgov connect ${target}: ${JSON.stringify(ready)}`);
  return { child, info: ready.result };
}

async function startPgBouncer(): Promise<{ port: number } | { error: string }> {
  let bin = which('pgbouncer');
  if (!bin) {
    progress('pgbouncer is missing: apt-get install -y pgbouncer');
    let r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'pgbouncer'], { timeoutMs: 300_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.code !== 0) {
      await run('apt-get', ['update'], { timeoutMs: 300_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
      r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'pgbouncer'], { timeoutMs: 300_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
    }
    bin = which('pgbouncer');
    if (!bin) return { error: `apt-get install pgbouncer failed (exit ${r.code}): ${tail(r.stderr, 300)}` };
  }
  const dir = join(work, 'pgbouncer');
  const port = await freePort();
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  chmodSync(work, 0o755);
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'userlist.txt'), `"${PG.user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${PG.host} port=${PG.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      'max_client_conn = 200',
      'default_pool_size = 16',
      'ignore_startup_parameters = extra_float_digits',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  // PgBouncer refuses to run as root; -u drops privileges without forking, so the pid stays ours.
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', join(dir, 'pgbouncer.ini')] : [join(dir, 'pgbouncer.ini')];
  bouncer = startChild(bin, args);
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    if (bouncer.proc.exitCode !== null) return { error: `pgbouncer exited: ${tail(bouncer.stderr(), 300)}` };
    try {
      const c = new pg.Client({ host: '127.0.0.1', port, user: PG.user, database: PG_DB });
      await c.connect();
      await c.query('select 1');
      await c.end();
      return { port };
    } catch {
      /* not up yet */
    }
  }
  return { error: `pgbouncer did not accept connections: ${tail(bouncer.stderr(), 300)}` };
}

// ───────────────────────── 1. PostgreSQL path ─────────────────────────
/** Starts bench/floor.ts as a gateway and a tunnel process, with the broker's gateway certificate. */
async function startFloor(upstream: { host: string; port: number }): Promise<{ port: number } | { error: string }> {
  const script = join(ROOT, 'dist', 'bench', 'floor.js');
  const store = join(work, 'store');
  try {
    floorGateway = startChild(process.execPath, [script, 'gateway', join(store, 'gateway-cert.pem'), join(store, 'gateway-key.pem'), upstream.host, String(upstream.port)]);
    const gw = await waitForJson<{ port: number }>(floorGateway, 10_000, 'floor gateway');
    floorTunnel = startChild(process.execPath, [script, 'tunnel', String(gw.port)]);
    return await waitForJson<{ port: number }>(floorTunnel, 10_000, 'floor tunnel');
  } catch (e) {
    return { error: (e as Error).message };
  }
}

interface PgbenchResult {
  tps: number;
  latMs: number;
  tx: number;
  cpu: Record<string, number>; // µs of CPU per process label during the run
  error?: string;
}

async function pgbench(endpoint: { port: number; user: string }, args: string[], pids: Record<string, number>): Promise<PgbenchResult> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMicros(p)]));
  const r = await run('pgbench', ['-n', '-h', '127.0.0.1', '-p', String(endpoint.port), '-U', endpoint.user, ...args, PG_DB], { timeoutMs: (SECS + 60) * 1000 });
  const cpu = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMicros(p) - before[k]]));
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout)?.[1] ?? NaN);
  const latMs = Number(/latency average = ([\d.]+) ms/.exec(r.stdout)?.[1] ?? NaN);
  const tx = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const error = r.code !== 0 || !Number.isFinite(tps) ? `pgbench exit ${r.code}: ${tail(r.stderr, 400)}` : failed > 0 ? `${failed} failed transactions` : undefined;
  return { tps, latMs, tx, cpu, ...(error ? { error } : {}) };
}

const pgResults: Record<string, { tps?: number; brokerUsPerStmt?: number; bouncerUsPerStmt?: number; ratio?: number; addedUs?: number }> = {};
let bouncerSelectUs = NaN;

async function benchPostgresPath(api: string, tunnel: TunnelInfo): Promise<void> {
  say('## 1. PostgreSQL path (issue 2)');
  say();
  const b = await startPgBouncer();
  let bouncerPort: number | undefined;
  if ('error' in b) problem('PgBouncer', new Error(b.error));
  else bouncerPort = b.port;
  say(
    `pgbench ${SECS} s per run, 8 clients (-c 8 -j 2), -n (no vacuum; the shipped prod guardrails block the TRUNCATE pgbench's vacuum step issues), scale 10. ` +
      `dbgov = tunnel process + broker process (target env prod: default guardrails on, audit on, masking configured for another table), both separate from pgbench. ` +
      `CPU is utime+stime from /proc/<pid>/stat over the run, divided by statements (select-only: 1 per transaction; TPC-B: 7, BEGIN…END).`,
  );
  say();
  const fl = await startFloor(PG);
  let floorPort: number | undefined;
  if ('error' in fl) problem('floor (bare TLS pipe)', new Error(fl.error));
  else floorPort = fl.port;
  say(
    `"floor" is bench/floor.ts: the same two Node.js processes and TLS hop as dbgov (a tunnel, TLS 1.3, a gateway that terminates it and connects upstream) doing nothing else, ` +
      'no preamble, parsing, policy, audit or masking. It is what the design (tunnel + TLS + Node.js broker) costs on this machine before dbgov does any work; its gateway CPU is in the proxy column.',
  );
  say();
  const endpoints: { name: string; port: number; user: string; pids: Record<string, number> }[] = [
    { name: 'direct', port: PG.port, user: PG.user, pids: {} },
    ...(bouncerPort ? [{ name: 'pgbouncer', port: bouncerPort, user: PG.user, pids: { pgbouncer: bouncer!.pid } }] : []),
    ...(floorPort ? [{ name: 'floor', port: floorPort, user: PG.user, pids: { broker: floorGateway!.pid, tunnel: floorTunnel!.pid } }] : []),
    { name: 'dbgov', port: tunnel.port, user: tunnel.user, pids: { broker: broker!.pid, tunnel: pgTunnel!.pid } },
  ];
  // Warm-up through dbgov (first statements pay parser loading and catalog reads).
  await pgbench(endpoints[endpoints.length - 1], ['-S', '-c', '2', '-T', '2'], {});
  const rows: (string | number)[][] = [];
  // BENCH_PG_RUNS narrows the runs for a quick try, e.g. "select-only extended" (not for published numbers).
  const only = process.env.BENCH_PG_RUNS;
  for (const script of [
    { name: 'select-only', args: ['-S'], stmts: 1 },
    { name: 'TPC-B', args: ['-b', 'tpcb-like'], stmts: 7 },
  ]) {
    for (const mode of ['simple', 'extended']) {
      if (only && !only.split(',').some((r) => r.trim() === `${script.name} ${mode}`)) continue;
      await adminPg('VACUUM pgbench_branches, pgbench_tellers', PG_DB).catch(() => undefined);
      let direct = NaN;
      for (const ep of endpoints) {
        progress(`pgbench ${script.name} -M ${mode} via ${ep.name}`);
        const r = await pgbench(ep, [...script.args, '-M', mode, '-c', '8', '-j', '2', '-T', String(SECS), ...(PG_RATE ? ['-R', PG_RATE] : [])], ep.pids);
        if (ep.name === 'direct') direct = r.tps;
        const stmts = r.tx * script.stmts;
        const per = (label: string): number => (ep.pids[label] !== undefined ? r.cpu[label] / stmts : NaN);
        const key = `${script.name} ${mode} ${ep.name}`;
        pgResults[key] = { tps: r.tps, ratio: r.tps / direct, brokerUsPerStmt: per('broker'), bouncerUsPerStmt: per('pgbouncer') };
        if (ep.name === 'pgbouncer' && script.name === 'select-only' && mode === 'simple') bouncerSelectUs = per('pgbouncer');
        const proxyCpu = ep.name === 'pgbouncer' ? per('pgbouncer') : per('broker');
        rows.push([
          script.name,
          mode,
          ep.name,
          f0(r.tps),
          ep.name === 'direct' ? '1.00' : f2(r.tps / direct),
          ep.name === 'direct' ? '–' : f1(proxyCpu),
          ep.name === 'direct' ? '–' : f1(proxyCpu * script.stmts),
          ep.pids.tunnel !== undefined ? f1(per('tunnel')) : '–',
          r.error ? `⚠ ${r.error}` : '',
        ]);
      }
    }
  }
  table(['script', 'mode', 'via', 'TPS', 'ratio to direct', 'proxy CPU µs/stmt (broker or pgbouncer)', 'proxy CPU µs/tx', 'tunnel CPU µs/stmt', 'note'], rows);

  say('1-client latency: pgbench -S -M extended -c 1, ' + `${Math.max(5, Math.round(SECS * 0.67))} s each; "added" = latency average minus direct's.`);
  say();
  const lrows: (string | number)[][] = [];
  let directLat = NaN;
  for (const ep of endpoints) {
    progress(`pgbench 1-client latency via ${ep.name}`);
    const r = await pgbench(ep, ['-S', '-M', 'extended', '-c', '1', '-j', '1', '-T', String(Math.max(5, Math.round(SECS * 0.67)))], ep.pids);
    if (ep.name === 'direct') directLat = r.latMs;
    const added = (r.latMs - directLat) * 1000;
    pgResults[`latency ${ep.name}`] = { addedUs: added };
    lrows.push([ep.name, f0(r.tps), (r.latMs * 1000).toFixed(0), ep.name === 'direct' ? '–' : added.toFixed(0), r.error ? `⚠ ${r.error}` : '']);
  }
  table(['via', 'TPS', 'latency avg µs', 'added µs/stmt', 'note'], lrows);
  await stopChild(bouncer);
  bouncer = undefined;
  await stopChild(floorTunnel);
  await stopChild(floorGateway);
  floorTunnel = floorGateway = undefined;

  const sel = (m: string): number => pgResults[`select-only ${m} dbgov`]?.ratio ?? NaN;
  check('PG select-only 8 clients, dbgov/direct TPS (simple)', sel('simple'), (v) => `${f2(v)}×`, '≥ 0.35×', (v) => v >= 0.35);
  check('PG select-only 8 clients, dbgov/direct TPS (extended)', sel('extended'), (v) => `${f2(v)}×`, '≥ 0.35×', (v) => v >= 0.35);
  for (const m of ['simple', 'extended']) {
    const br = pgResults[`select-only ${m} dbgov`]?.brokerUsPerStmt ?? NaN;
    const bo = pgResults[`select-only ${m} pgbouncer`]?.bouncerUsPerStmt ?? NaN;
    check(`PG broker CPU/stmt vs PgBouncer, select-only ${m}`, br / bo, (v) => `${f2(v)}× (${f1(br)} vs ${f1(bo)} µs)`, '≤ 3×', (v) => v <= 3);
  }
  check('PG added latency at 1 client (dbgov)', pgResults['latency dbgov']?.addedUs ?? NaN, (v) => `${v.toFixed(0)} µs`, '≤ 150 µs', (v) => v <= 150);
  for (const m of ['simple', 'extended']) reference(`PG select-only 8 clients, floor/direct TPS (${m})`, pgResults[`select-only ${m} floor`]?.ratio ?? NaN, (v) => `${f2(v)}×`);
  for (const m of ['simple', 'extended']) {
    const fl = pgResults[`select-only ${m} floor`]?.brokerUsPerStmt ?? NaN;
    const bo = pgResults[`select-only ${m} pgbouncer`]?.bouncerUsPerStmt ?? NaN;
    reference(`PG floor gateway CPU/stmt vs PgBouncer, select-only ${m}`, fl / bo, (v) => `${f2(v)}× (${f1(fl)} vs ${f1(bo)} µs)`);
  }
  reference('PG added latency at 1 client (floor)', pgResults['latency floor']?.addedUs ?? NaN, (v) => `${v.toFixed(0)} µs`);
}

// ───────────────────────── 2. Memory ─────────────────────────
async function benchMemory(tunnel: TunnelInfo): Promise<void> {
  say('## 2. Broker memory (issue 2)');
  say();
  const bpid = broker!.pid;
  const tpid = pgTunnel!.pid;
  const base = procMem(bpid);
  const rows: (string | number)[][] = [['broker before', mb(base), '', '']];

  // 200 idle sessions.
  progress('opening 200 idle sessions through dbgov');
  const clients: pg.Client[] = [];
  let failed = 0;
  let firstErr = '';
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: tunnel.port, user: tunnel.user, database: tunnel.database });
        c.on('error', () => undefined);
        try {
          await c.connect();
          await c.query('select 1');
          clients.push(c);
        } catch (e) {
          failed++;
          firstErr ||= (e as Error).message;
        }
      }),
    );
  }
  await sleep(2000);
  const idleB = procMem(bpid);
  const idleT = procMem(tpid);
  rows.push([`${clients.length} idle sessions open`, mb(idleB), mb(idleT), failed ? `⚠ ${failed} failed to connect: ${firstErr}` : `+${mb(idleB - base)} over before; ${f0((idleB - base) / Math.max(1, clients.length) / 1024)} kB/session`]);
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  // ~1 GB result: 1M rows of 1000 bytes, a simple Query, consumed as it arrives.
  progress('streaming ~1 GB through dbgov');
  const s = sampleRss([bpid, tpid], 100);
  const r = await pgStream({ port: tunnel.port, user: tunnel.user, database: tunnel.database, sql: "select repeat('x', 1000) from generate_series(1, 1000000)" });
  const [bPeak, tPeak] = s.stop();
  rows.push([
    '~1 GB result streamed (peak, sampled every 100 ms)',
    mb(bPeak),
    mb(tPeak),
    r.error ? `⚠ ${r.error}` : `${f0(r.rows)} rows, ${(r.bytes / 1e9).toFixed(2)} GB in ${(r.ms / 1000).toFixed(1)} s (${f0(r.bytes / 1e6 / (r.ms / 1000))} MB/s)`,
  ]);
  check('broker peak RSS streaming a ~1 GB result', r.error ? NaN : bPeak, mb, '< 200 MB', (v) => v < 200 * 1048576);

  table(['state', 'broker RSS', 'tunnel RSS', 'note'], rows);
  check(`broker RSS with 200 idle sessions`, clients.length === 200 ? idleB : NaN, mb, '< 150 MB', (v) => v < 150 * 1048576);
}

// ───────────────────────── 3. Masking ─────────────────────────
async function benchMasking(tunnel: TunnelInfo): Promise<void> {
  say('## 3. Masking throughput (issue 5)');
  say();
  say(
    '1M rows × 5 columns (id, email, phone, ssn, plan) by one simple Query, consumed by a counting wire client. ' +
      'Masked: bench_pii with email (partial), phone (partial), ssn (keyed hash) classified. Off: bench_plain, same data and shape, unclassified. Median of 3 runs, alternating. ' +
      'Broker CPU is per 1M rows.',
  );
  say();
  const bpid = broker!.pid;
  const kinds = [
    { name: 'direct, bench_pii', port: PG.port, user: PG.user, table: 'bench_pii', gw: false },
    { name: 'dbgov, masking off (bench_plain)', port: tunnel.port, user: tunnel.user, table: 'bench_plain', gw: true },
    { name: 'dbgov, 3 columns masked (bench_pii)', port: tunnel.port, user: tunnel.user, table: 'bench_pii', gw: true },
  ];
  const rows: (string | number)[][] = [];
  const rates: Record<string, number> = {};
  for (const form of ['SELECT', 'COPY TO STDOUT']) {
    const res: Record<string, { rate: number[]; cpu: number[]; err?: string }> = {};
    for (let rep = 0; rep < 3; rep++) {
      for (const k of kinds) {
        progress(`masking: ${form} ${k.name} (run ${rep + 1}/3)`);
        const q = `SELECT id, email, phone, ssn, plan FROM ${k.table}`;
        const sql = form === 'SELECT' ? q : `COPY (${q}) TO STDOUT`;
        const c0 = cpuMicros(bpid);
        const r: StreamResult = await pgStream({ port: k.port, user: k.user, database: PG_DB, sql });
        const cpu = cpuMicros(bpid) - c0;
        const e = (res[k.name] ??= { rate: [], cpu: [] });
        if (r.error || r.rows !== 1_000_000) e.err = r.error ?? `${r.rows} rows`;
        e.rate.push(r.rows / (r.ms / 1000));
        e.cpu.push(cpu / 1e6);
      }
    }
    const off = median(res[kinds[1].name].rate);
    for (const k of kinds) {
      const e = res[k.name];
      const rate = median(e.rate);
      rates[`${form} ${k.name}`] = rate;
      rows.push([form, k.name, f0(rate), k.gw ? f2(rate / off) : '–', k.gw ? `${f2(median(e.cpu))} s` : '–', e.err ? `⚠ ${e.err}` : '']);
    }
  }
  table(['form', 'path', 'rows/s', 'ratio to masking off', 'broker CPU per 1M rows', 'note'], rows);
  check('masked rows/s vs masking off (SELECT)', rates[`SELECT ${kinds[2].name}`] / rates[`SELECT ${kinds[1].name}`], (v) => `${f2(v)}×`, '≥ 0.5×', (v) => v >= 0.5);
  check('masked rows/s vs masking off (COPY)', rates[`COPY TO STDOUT ${kinds[2].name}`] / rates[`COPY TO STDOUT ${kinds[1].name}`], (v) => `${f2(v)}×`, '≥ 0.5×', (v) => v >= 0.5);
}

// ───────────────────────── 4. Analysis + policy ─────────────────────────
async function benchAnalysis(): Promise<void> {
  say('## 4. SQL analysis + policy decision per statement (issue 4)');
  say();
  say(
    'In-process, after warm-up: libpg-query analysis (analysePostgres) + decideStatements with the shipped prod policy (built-in + default guardrails) for a write credential. ' +
      'Cached = facts-cache hit (same text) + decision. Not included: per-session name resolution against the catalog (needs a live session).',
  );
  say();
  const statements = [
    'SELECT abalance FROM pgbench_accounts WHERE aid = $1;',
    'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;',
    'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);',
    'SELECT o.id, o.amount, u.email FROM orders o JOIN users u ON u.id = o.user_id WHERE o.status = $1 ORDER BY o.id DESC LIMIT 50',
    "SELECT count(*) FROM events WHERE created_at > now() - interval '1 day' AND kind IN ('a', 'b')",
    'DELETE FROM sessions WHERE expires_at < now()',
    'BEGIN',
  ];
  await loadSqlParser();
  const policy = compilePolicy({});
  const ctx: StatementContext = {
    identity: { id: 'bench-bot', kind: 'workload', groups: ['bench'], source: 'service-account' },
    target: { name: 'bench', engine: 'postgres', labels: { env: 'prod' }, database: 'bench', protected: true },
    database: 'bench',
    access: 'write',
  };
  const full = (sql: string): unknown => decideStatements(policy, ctx, analysePostgres(sql).statements);
  for (let i = 0; i < 20_000; i++) full(statements[i % statements.length]);
  const ROUNDS = 4000;
  const rows: (string | number)[][] = [];
  let worstUncached = 0;
  let worstCached = 0;
  for (const sql of statements) {
    let t = performance.now();
    for (let i = 0; i < ROUNDS; i++) analysePostgres(sql);
    const parseOnly = ((performance.now() - t) * 1000) / ROUNDS;
    t = performance.now();
    let action = '';
    for (let i = 0; i < ROUNDS; i++) action = (decideStatements(policy, ctx, analysePostgres(sql).statements) as { action: string }).action;
    const uncached = ((performance.now() - t) * 1000) / ROUNDS;
    const cache = createFactsCache(1000);
    cache.get(sql, analysePostgres);
    t = performance.now();
    for (let i = 0; i < ROUNDS * 25; i++) decideStatements(policy, ctx, cache.get(sql, analysePostgres).statements);
    const cached = ((performance.now() - t) * 1000) / (ROUNDS * 25);
    worstUncached = Math.max(worstUncached, uncached);
    worstCached = Math.max(worstCached, cached);
    rows.push([`\`${sql.length > 70 ? `${sql.slice(0, 67)}…` : sql}\``, f1(parseOnly), f1(uncached), cached.toFixed(2), action]);
  }
  table(['statement', 'analysis only, uncached µs', 'analysis + policy, uncached µs', 'cached + policy µs', 'decision'], rows);
  check('analysis + policy, cached (worst statement)', worstCached, (v) => `${v.toFixed(2)} µs`, '≤ 5 µs', (v) => v <= 5);
  check('analysis + policy, uncached (worst OLTP statement)', worstUncached, (v) => `${f1(v)} µs`, '≤ 200 µs', (v) => v <= 200);
}

// ───────────────────────── 5. Audit ─────────────────────────
async function benchAudit(): Promise<void> {
  say('## 5. Audit store (issue 6)');
  say();
  say(`bench/audit.ts in its own process: ${f0(AUDIT_EVENTS)} durable appends (group fsync 50 ms, final sync counted), then a jsonl export of all of them.`);
  say();
  progress(`audit: ${AUDIT_EVENTS} appends + export (child process)`);
  const c = startChild(process.execPath, [join(HERE, 'audit.js'), String(AUDIT_EVENTS)]);
  const s = sampleRss([c.pid], 100);
  const code = await new Promise<number>((r) => c.proc.on('close', (x) => r(x ?? -1)));
  const [peakWhole] = s.stop();
  const out = c.stdout();
  for (const line of out.trim().split('\n')) say(`    ${line}`);
  say();
  say(`Peak RSS of the whole child process (sampled from /proc, appends included): ${mb(peakWhole)}.`);
  say();
  if (code !== 0) problem('audit bench', new Error(`exit ${code}: ${tail(c.stderr(), 400)}`));
  const eps = Number(/= (\d+) events\/s/.exec(out)?.[1] ?? NaN);
  const rss = Number(/peak RSS (\d+) MB/.exec(out)?.[1] ?? NaN);
  const exported = Number(/export jsonl: (\d+) events/.exec(out)?.[1] ?? NaN);
  check('audit durable appends/s (embedded store)', eps, (v) => `${f0(v)}/s`, '≥ 20,000/s', (v) => v >= 20_000);
  check(`audit export of ${f0(exported)} events, peak RSS (export phase, reported by bench/audit.ts)`, rss, (v) => `${f0(v)} MB`, '< 200 MB', (v) => v < 200);
}

// ───────────────────────── 6. MySQL ─────────────────────────
async function mysqlLoad(o: { port: number; user: string; database: string; prepared: boolean; secs: number; conns: number }): Promise<{ qps: number; n: number; errors: number; firstErr?: string }> {
  const conns = await Promise.all(Array.from({ length: o.conns }, () => mysql.createConnection({ host: '127.0.0.1', port: o.port, user: o.user, password: '', database: o.database })));
  // Warm the connections (and mysql2's prepared statement cache).
  for (const c of conns) await (o.prepared ? c.execute('SELECT v FROM kv WHERE id = ?', [1]) : c.query('SELECT v FROM kv WHERE id = 1'));
  let n = 0;
  let errors = 0;
  let firstErr: string | undefined;
  const t0 = performance.now();
  const end = t0 + o.secs * 1000;
  await Promise.all(
    conns.map(async (c) => {
      while (performance.now() < end) {
        const id = 1 + Math.floor(Math.random() * 100_000);
        try {
          if (o.prepared) await c.execute('SELECT v FROM kv WHERE id = ?', [id]);
          else await c.query(`SELECT v FROM kv WHERE id = ${id}`);
          n++;
        } catch (e) {
          errors++;
          firstErr ??= (e as Error).message;
          if (errors > 100) break;
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  return { qps: n / secs, n, errors, ...(firstErr ? { firstErr } : {}) };
}

async function benchMysql(tunnel: TunnelInfo): Promise<void> {
  say('## 6. MySQL / MariaDB path (issue 7)');
  say();
  say(`mysql2 in the bench process, 8 connections each looping a point SELECT by primary key on a 100k-row table, ${SECS} s per run. COM_QUERY (text) and COM_STMT_EXECUTE (prepared). dbgov = tunnel + broker (target env prod). "floor" is the bare TLS tunnel + gateway pair of section 1, pointed at MariaDB.`);
  say();
  const rows: (string | number)[][] = [];
  const ratios: Record<string, number> = {};
  const cpuPer: Record<string, number> = {};
  await mysqlLoad({ port: tunnel.port, user: tunnel.user, database: tunnel.database, prepared: false, secs: 2, conns: 2 }); // warm-up
  const fl = await startFloor(MY);
  if ('error' in fl) problem('MySQL floor (bare TLS pipe)', new Error(fl.error));
  const endpoints = [
    { name: 'direct', port: MY.port, user: MY.user, database: MY_DB, pids: {} as Record<string, number> },
    ...('error' in fl ? [] : [{ name: 'floor', port: fl.port, user: MY.user, database: MY_DB, pids: { broker: floorGateway!.pid, tunnel: floorTunnel!.pid } }]),
    { name: 'dbgov', port: tunnel.port, user: tunnel.user, database: tunnel.database, pids: { broker: broker!.pid, tunnel: myTunnel!.pid } },
  ];
  const floorRatios: Record<string, number> = {};
  for (const prepared of [false, true]) {
    const mode = prepared ? 'prepared' : 'text';
    let direct = NaN;
    for (const ep of endpoints) {
      progress(`mysql ${mode} via ${ep.name}`);
      const b0 = ep.pids.broker === undefined ? NaN : cpuMicros(ep.pids.broker);
      const t0 = ep.pids.tunnel === undefined ? NaN : cpuMicros(ep.pids.tunnel);
      const r = await mysqlLoad({ port: ep.port, user: ep.user, database: ep.database, prepared, secs: SECS, conns: 8 });
      const bUs = ep.pids.broker === undefined ? NaN : (cpuMicros(ep.pids.broker) - b0) / r.n;
      const tUs = ep.pids.tunnel === undefined ? NaN : (cpuMicros(ep.pids.tunnel) - t0) / r.n;
      if (ep.name === 'direct') direct = r.qps;
      else if (ep.name === 'floor') floorRatios[mode] = r.qps / direct;
      else {
        ratios[mode] = r.qps / direct;
        cpuPer[mode] = bUs;
      }
      rows.push([mode, ep.name, f0(r.qps), ep.name === 'direct' ? '1.00' : f2(r.qps / direct), ep.name === 'direct' ? '–' : f1(bUs), ep.name === 'direct' ? '–' : f1(tUs), r.errors ? `⚠ ${r.errors} errors: ${r.firstErr}` : '']);
    }
  }
  await stopChild(floorTunnel);
  await stopChild(floorGateway);
  floorTunnel = floorGateway = undefined;
  table(['protocol', 'via', 'statements/s', 'ratio to direct', 'gateway CPU µs/stmt (broker or floor)', 'tunnel CPU µs/stmt', 'note'], rows);
  for (const m of ['text', 'prepared']) reference(`MySQL point-select 8 conns, floor/direct (${m})`, floorRatios[m] ?? NaN, (v) => `${f2(v)}×`);
  check('MySQL point-select 8 conns, dbgov/direct (text)', ratios.text ?? NaN, (v) => `${f2(v)}×`, '≥ 0.35×', (v) => v >= 0.35);
  check('MySQL point-select 8 conns, dbgov/direct (prepared)', ratios.prepared ?? NaN, (v) => `${f2(v)}×`, '≥ 0.35×', (v) => v >= 0.35);
  check(
    'MySQL broker CPU/stmt vs PgBouncer CPU/stmt (PG select-only simple; no MySQL pooler here)',
    (cpuPer.text ?? NaN) / bouncerSelectUs,
    (v) => `${f2(v)}× (${f1(cpuPer.text)} vs ${f1(bouncerSelectUs)} µs)`,
    '≤ 3×',
    (v) => v <= 3,
  );
}

// ───────────────────────── main ─────────────────────────
async function main(): Promise<void> {
  say(`# dbgov benchmark`);
  say();
  say(`${new Date().toISOString()} · ${process.platform} · Node ${process.version} · ${(await import('node:os')).cpus().length} cores (shared) · PostgreSQL and MariaDB on 127.0.0.1. Ratios matter; absolute numbers drift with machine load.`);
  say();
  const needPg = ['pg', 'mem', 'mask'].some((s) => ONLY.has(s));
  const needBroker = needPg || ONLY.has('mysql');
  try {
    if (needPg || ONLY.has('mysql')) await setupPostgres();
  } catch (e) {
    problem('PostgreSQL setup', e);
  }
  try {
    if (ONLY.has('mysql')) await setupMysql();
  } catch (e) {
    problem('MariaDB setup', e);
  }
  let api: string | undefined;
  if (needBroker && pgCreated) {
    try {
      progress('starting the broker (child process)');
      api = (await startBroker()).api;
    } catch (e) {
      problem('broker start', e);
    }
  }
  let pgInfo: TunnelInfo | undefined;
  if (api && needPg) {
    try {
      progress('opening the PostgreSQL tunnel (child process)');
      const t = await openTunnel(api, 'bench', 'write');
      pgTunnel = t.child;
      pgInfo = t.info;
    } catch (e) {
      problem('PostgreSQL tunnel', e);
    }
  }
  const section = async (name: string, enabled: boolean, fn: () => Promise<void>): Promise<void> => {
    if (!enabled) return;
    try {
      await fn();
    } catch (e) {
      problem(name, e);
    }
  };
  // Memory first, on a fresh broker, so the idle-session figure is not inflated by earlier load.
  await section('memory', ONLY.has('mem') && !!pgInfo, () => benchMemory(pgInfo!));
  await section('PostgreSQL path', ONLY.has('pg') && !!pgInfo, () => benchPostgresPath(api!, pgInfo!));
  await section('masking', ONLY.has('mask') && !!pgInfo, () => benchMasking(pgInfo!));
  await section('analysis + policy', ONLY.has('sql'), benchAnalysis);
  await section('MySQL', ONLY.has('mysql') && !!api && myCreated, async () => {
    progress('opening the MySQL tunnel (child process)');
    const t = await openTunnel(api!, 'bench-mysql', 'read');
    myTunnel = t.child;
    await benchMysql(t.info);
  });
  // Last, with the broker and tunnels stopped, so it has the CPUs to itself.
  await stopChild(pgTunnel);
  await stopChild(myTunnel);
  await stopChild(broker);
  await section('audit', ONLY.has('audit'), benchAudit);

  say('## Summary');
  say();
  table(
    ['metric', 'measured', 'target', 'met?'],
    summary.map((s) => [s.metric, s.measured, s.target, s.met]),
  );
  if (problems.length) {
    say('Could not run:');
    for (const p of problems) say(`- ${p}`);
    say();
  }
  say(`Total bench time ${((performance.now() - t00) / 1000).toFixed(0)} s.`);
}

try {
  await main();
} finally {
  await cleanup();
  writeFileSync('/tmp/bench-results.md', `${report.join('\n')}\n`);
  process.stderr.write('report written to /tmp/bench-results.md\n');
}
process.exit(0);
