/** A gateway on port 0 serving mysqlEngine against the local MariaDB, with hooks the test controls. */
import { createServer, type Server, type Socket } from 'node:net';
import type { StatementHooks, Verdict, SessionContext } from '../../../src/gateway/engine.js';
import { mysqlEngine } from '../../../src/gateway/mysql/engine.js';
import { silentLogger } from '../../../src/shared/logger.js';

export const MYSQL = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };

export interface HarnessOptions {
  database: string;
  identityId?: string;
  upstreamPort?: number;
  hooks?: Partial<StatementHooks>;
  maxMessageBytes?: number;
}

export interface Harness {
  port: number;
  checked: string[];
  completed: { id: string; rows: number | null; error?: string }[];
  close(): Promise<void>;
}

let n = 0;
export const allow = (): Verdict => ({ action: 'allow', stmt: { id: `s${++n}` } });

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const checked: string[] = [];
  const completed: Harness['completed'] = [];
  const hooks: StatementHooks = {
    check: (req) => {
      checked.push(req.sql);
      return allow();
    },
    opaque: () => allow(),
    executing: () => undefined,
    describe: () => null,
    describeCopy: () => null,
    completed: (stmt, o) => completed.push({ id: stmt.id, rows: o.rows, ...(o.error ? { error: o.error.message } : {}) }),
    scrub: (_s, f) => f,
    parameter: () => undefined,
    ...opts.hooks,
  };
  if (opts.hooks?.check) {
    const inner = opts.hooks.check;
    hooks.check = (req) => {
      checked.push(req.sql);
      return inner(req);
    };
  }
  const engine = mysqlEngine();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const ctx: SessionContext = {
      sessionId: `ses_${++n}`,
      identity: { id: opts.identityId ?? 'alice', kind: 'human', groups: [], source: 'builtin' },
      target: { name: 'mariadb', engine: 'mysql', labels: { env: 'test' }, database: opts.database },
      database: opts.database,
      access: 'write',
      upstream: { host: MYSQL.host, port: opts.upstreamPort ?? MYSQL.port, database: opts.database, user: MYSQL.user, password: MYSQL.password, tls: { mode: 'disable' }, connectTimeoutMs: 3000 },
      hooks,
      limits: { maxMessageBytes: opts.maxMessageBytes ?? 64 * 1024 * 1024 },
      signal: new AbortController().signal,
      log: silentLogger,
    };
    void engine.serve(socket, ctx);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    checked,
    completed,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
