/**
 * The setting of the masking probe files: a database seeded from a masking corpus, a broker
 * that masks it (target `staging`, any access allowed), a tunnel for the `ci` service account,
 * and a CaptureProxy in front of the tunnel that keeps every byte the client receives.
 */
import type { Connection } from '../../src/cli/connect.js';
import { CaptureProxy } from './capture-proxy.js';
import { SA_TOKENS, createTestDatabase, pgTarget, run, startTestBroker, type RunResult, type TestBroker } from './harness.js';
import { createMysqlDatabase, mysqlTarget } from './mysql-harness.js';

export interface MaskingCorpus {
  schema: string;
  seed: string;
  masking: Record<string, unknown>;
  pii: string[];
}

export interface CapturedTarget {
  /** The seeded database's name. */
  db: string;
  conn: Connection;
  proxy: CaptureProxy;
  close(): Promise<void>;
}

/** `env` is the target's env label (`prod` makes it protected); undefined is `staging`. */
export async function captureTarget(engine: 'postgres' | 'mysql', prefix: string, corpus: MaskingCorpus, env = 'staging'): Promise<CapturedTarget> {
  const setup = `${corpus.schema}\n${corpus.seed}`;
  const db = engine === 'postgres' ? await createTestDatabase(prefix, setup) : await createMysqlDatabase(prefix, setup);
  let tb: TestBroker | undefined;
  let conn: Connection | undefined;
  let proxy: CaptureProxy | undefined;
  const close = async (): Promise<void> => {
    await proxy?.close();
    await conn?.close();
    await tb?.close();
    await db.drop();
  };
  try {
    const target = engine === 'postgres' ? pgTarget(db.name, { env }) : mysqlTarget(db.name, { env });
    tb = await startTestBroker({ targets: { staging: target }, masking: { ...corpus.masking, key: '${env:T_MASK_KEY}' }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'staging', access: 'write' });
    proxy = new CaptureProxy(conn.tunnel.port);
    await proxy.start();
    return { db: db.name, conn, proxy, close };
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
}

/** psql through the capture proxy as the service account, one `-c` per statement; `options` go before them. */
export function psqlThrough(t: CapturedTarget, sql: string[], options: string[] = []): Promise<RunResult> {
  const args = ['-X', '-h', '127.0.0.1', '-p', String(t.proxy.port), '-U', 'ci-bot', '-d', t.db, ...options];
  for (const s of sql) args.push('-c', s);
  return run('psql', args);
}
