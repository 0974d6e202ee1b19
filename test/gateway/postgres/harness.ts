/**
 * Test gateway: a net.Server on port 0 serving each connection with postgresEngine().serve, and
 * statement hooks that record every call. Statements are allowed unless a predicate blocks or
 * holds them; a named column can be masked. Databases are created per test and dropped after.
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ClientError, CopyMaskPlan, MaskPlan, ResultColumn, SessionContext, StatementHandle, StatementHooks, StatementOutcome, StatementRequest, UpstreamEndpoint, Verdict } from '../../../src/gateway/engine.js';
import { CancelRegistry } from '../../../src/gateway/postgres/cancel.js';
import { postgresEngine } from '../../../src/gateway/postgres/engine.js';
import { silentLogger } from '../../../src/shared/logger.js';
import type { DbgovError } from '../../../src/shared/errors.js';
import { decodeFields } from '../../../src/gateway/postgres/protocol/backend.js';
import { FrameReader } from '../../../src/gateway/postgres/protocol/reader.js';
import { startupMessage } from '../../../src/gateway/postgres/protocol/serializer.js';

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;
export const ADMIN = { host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres' };

export const MASKED = Buffer.from('MASKED');

export interface HarnessOptions {
  database: string;
  upstream?: Partial<UpstreamEndpoint>;
  /** Return an error to block the statement. */
  block?: (req: StatementRequest) => ClientError | undefined;
  /** Return a promise of the final decision to hold the statement. */
  hold?: (req: StatementRequest) => Promise<'allow' | ClientError> | undefined;
  /** Result columns with this name are replaced by MASKED. */
  maskColumn?: string;
  /** Make describe/describeCopy answer with a promise (as a broker with async lookups would). */
  asyncDescribe?: boolean;
  /** Fail the executing hook for matching statements. */
  failExecuting?: (sql: string) => boolean;
  /** Offer `executingBatched` (records written at the end of the event-loop turn), as the broker does. */
  batched?: boolean;
  maxMessageBytes?: number;
  identityId?: string;
  opaqueVerdict?: 'allow' | 'block';
  /** A private cancel registry (the default is shared by every engine in the process). */
  cancels?: CancelRegistry;
}

export interface Calls {
  check: (StatementRequest & { id: string })[];
  opaque: { reason: string; detail: string; id: string }[];
  executing: string[];
  completed: { id: string; outcome: StatementOutcome }[];
  describe: { id: string; columns: ResultColumn[] }[];
  describeCopy: { id: string; format: string; columnCount: number }[];
  parameter: [string, string][];
  scrub: string[];
}

export interface Gateway {
  port: number;
  calls: Calls;
  /** SQL of a statement handle id. */
  sqlOf(id: string): string | undefined;
  abortAll(reason: DbgovError): void;
  sessions(): number;
  close(): Promise<void>;
}

export const BLOCKED: ClientError = {
  sqlstate: '42501',
  message: 'dbgov: blocked: DROP TABLE in prod',
  detail: "rule 'no-ddl-in-prod' blocks statements of kind drop",
  hint: 'Ask for an approval with `dbgov request`.',
};

export async function startGateway(opts: HarnessOptions): Promise<Gateway> {
  const engine = postgresEngine({ cancels: opts.cancels });
  const calls: Calls = { check: [], opaque: [], executing: [], completed: [], describe: [], describeCopy: [], parameter: [], scrub: [] };
  const sql = new Map<string, string>();
  let seq = 0;
  const handle = (text: string): StatementHandle => {
    const id = `st${++seq}`;
    sql.set(id, text);
    return { id };
  };
  const decide = (req: StatementRequest): Verdict => {
    const stmt = handle(req.sql);
    const blocked = opts.block?.(req);
    if (blocked !== undefined) return { action: 'block', stmt, error: blocked };
    const held = opts.hold?.(req);
    if (held !== undefined) {
      return {
        action: 'hold',
        stmt,
        notice: `dbgov: waiting for approval ${stmt.id}`,
        decided: held.then((d) => (d === 'allow' ? { action: 'allow', stmt } : { action: 'block', stmt, error: d })),
      };
    }
    return { action: 'allow', stmt };
  };
  const maskPlan = (columns: ResultColumn[]): MaskPlan | null => {
    const hit = columns.filter((c) => c.name === opts.maskColumn);
    if (hit.length === 0) return null;
    return { columns: hit.map((c) => ({ index: c.index, mask: (v: Buffer | null) => (v === null ? null : MASKED) })), maskedColumns: hit.map((c) => c.name) };
  };
  const copyPlan = (): CopyMaskPlan | null => {
    if (opts.maskColumn === undefined) return null;
    // Test plan: masks the second tab-separated field of each text row; rows never straddle chunks in these tests.
    return {
      maskChunk: (chunk) => Buffer.from(chunk.toString('utf8').split('\n').map((line) => line.split('\t').map((f, i) => (i === 1 ? 'MASKED' : f)).join('\t')).join('\n')),
      end: () => Buffer.from('-- end\n'),
      maskedColumns: [opts.maskColumn],
    };
  };
  const hooks: StatementHooks = {
    check(req) {
      const v = decide(req);
      calls.check.push({ ...req, id: v.stmt.id });
      return v;
    },
    opaque(reason, detail) {
      const stmt = handle(`<${reason}>`);
      calls.opaque.push({ reason, detail, id: stmt.id });
      return opts.opaqueVerdict === 'block' ? { action: 'block', stmt, error: { ...BLOCKED, message: `dbgov: blocked: ${reason}` } } : { action: 'allow', stmt };
    },
    executing(stmt) {
      if (opts.failExecuting?.(sql.get(stmt.id) ?? '')) throw Object.assign(new Error('disk full'), { clientError: { sqlstate: '58030', message: 'dbgov: audit log unavailable; statement not run' } });
      calls.executing.push(stmt.id);
    },
    ...(opts.batched
      ? {
          executingBatched(stmt: StatementHandle): Promise<void> {
            return new Promise((resolve, reject) =>
              setImmediate(() => {
                if (opts.failExecuting?.(sql.get(stmt.id) ?? '')) reject(Object.assign(new Error('disk full'), { clientError: { sqlstate: '58030', message: 'dbgov: audit log unavailable; statement not run' } }));
                else {
                  calls.executing.push(stmt.id);
                  resolve();
                }
              }),
            );
          },
        }
      : {}),
    describe(stmt, columns) {
      calls.describe.push({ id: stmt.id, columns });
      const plan = maskPlan(columns);
      return opts.asyncDescribe ? new Promise((r) => setTimeout(() => r(plan), 5)) : plan;
    },
    describeCopy(stmt, format, columnCount) {
      calls.describeCopy.push({ id: stmt.id, format, columnCount });
      const plan = copyPlan();
      return opts.asyncDescribe ? Promise.resolve(plan) : plan;
    },
    completed(stmt, outcome) {
      calls.completed.push({ id: stmt.id, outcome });
    },
    scrub(_stmt, fields) {
      calls.scrub.push(fields.message);
      // Pretend the value 'secret-value' is classified.
      const clean = (s: string | undefined) => s?.replaceAll('secret-value', '[scrubbed]');
      return { message: clean(fields.message) ?? '', detail: clean(fields.detail), hint: clean(fields.hint), where: clean(fields.where) };
    },
    parameter(name, value) {
      calls.parameter.push([name, value]);
    },
  };

  const controllers = new Set<AbortController>();
  const sockets = new Set<Socket>();
  const upstream: UpstreamEndpoint = { host: PG_HOST, port: PG_PORT, database: opts.database, user: 'postgres', tls: { mode: 'disable' }, connectTimeoutMs: 3000, ...opts.upstream };
  const server: Server = createServer((socket) => {
    const ac = new AbortController();
    controllers.add(ac);
    sockets.add(socket);
    const ctx: SessionContext = {
      sessionId: `ses_${randomBytes(4).toString('hex')}`,
      identity: { id: opts.identityId ?? 'alice', kind: 'human', groups: ['dev'], source: 'builtin' },
      target: { name: 'testtarget', engine: 'postgres', labels: { env: 'test' }, database: opts.database },
      database: opts.database,
      access: 'write',
      upstream,
      hooks,
      limits: { maxMessageBytes: opts.maxMessageBytes ?? 16 * 1024 * 1024 },
      signal: ac.signal,
      log: silentLogger,
    };
    void engine.serve(socket, ctx).then(() => {
      controllers.delete(ac);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    calls,
    sqlOf: (id) => sql.get(id),
    abortAll: (reason) => {
      for (const ac of controllers) ac.abort(reason);
    },
    sessions: () => controllers.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A refusing gateway: every connection gets engine.refuse(error). */
export async function startRefuser(error: DbgovError): Promise<{ port: number; close(): Promise<void> }> {
  const engine = postgresEngine();
  const server = createServer((socket) => void engine.refuse(socket, error, silentLogger));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export async function createDatabase(): Promise<string> {
  const name = `dbgov_pg_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client(ADMIN);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return name;
}

export async function dropDatabase(name: string): Promise<void> {
  const admin = new pg.Client(ADMIN);
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** A `pg` client through the gateway. */
export function clientFor(gw: Gateway, database: string, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'whoever', database, ...extra });
}

/** A `pg` client straight to the database, to check server-side state. */
export function directClient(database: string): pg.Client {
  return new pg.Client({ ...ADMIN, database });
}

/** Runs `fn` with a connected client and always ends it. */
export async function withClient<T>(client: pg.Client, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A bare protocol client for framing tests: sends raw bytes, reads whole server messages. */
export class RawClient {
  private readonly reader = new FrameReader(1 << 30);
  private wake: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  static async open(port: number): Promise<RawClient> {
    const socket = netConnect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise((r) => socket.once('connect', r));
    return new RawClient(socket);
  }

  /** Connects and completes startup; returns the messages up to the first ReadyForQuery. */
  static async session(port: number, database?: string): Promise<RawClient> {
    const c = await RawClient.open(port);
    c.send(startupMessage(database === undefined ? [['user', 'raw']] : [['user', 'raw'], ['database', database]]));
    await c.until(0x5a);
    return c;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Messages up to and including the first of type `code`; rejects if the socket closes first. */
  async until(code: number, timeoutMs = 5000, count = 1): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let seen = 0;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let m = this.reader.next(); m !== null; m = this.reader.next()) {
        out.push(Buffer.from(m));
        if (m[0] === code && ++seen === count) return out;
      }
      if (this.closed) throw Object.assign(new Error(`closed before 0x${code.toString(16)}`), { messages: out });
      if (Date.now() > deadline) throw Object.assign(new Error(`timeout waiting for 0x${code.toString(16)}`), { messages: out });
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
    }
  }

  /** All messages until the server closes the connection. */
  async untilClosed(timeoutMs = 5000): Promise<Buffer[]> {
    try {
      await this.until(-1, timeoutMs);
      return [];
    } catch (e) {
      if (!this.closed) throw e;
      return (e as { messages: Buffer[] }).messages;
    }
  }

  end(): void {
    this.socket.destroy();
  }
}

/** Error fields of an ErrorResponse/NoticeResponse, by field code letter. */
export function errorFields(msg: Buffer): Record<string, string> {
  return Object.fromEntries(decodeFields(msg).map(([c, v]) => [String.fromCharCode(c), v]));
}

export const codes = (msgs: Buffer[]): string => msgs.map((m) => String.fromCharCode(m[0])).join('');
