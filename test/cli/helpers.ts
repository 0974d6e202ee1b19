/**
 * Test helpers for CLI commands: a real HTTP server standing in for the broker (fake broker:
 * for CLI-rendering and contract tests only; end-to-end tests use the real broker) and a runner
 * that calls `Cmd.run(argv)` with a controlled environment while capturing stdout and stderr.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';

export interface FakeRequest {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: unknown;
}
export interface FakeReply {
  status?: number;
  body?: unknown;
  /** Sent as is instead of JSON. */
  raw?: string | Readable;
  contentType?: string;
}
export type FakeHandler = (req: FakeRequest) => FakeReply | Promise<FakeReply>;

export interface FakeBroker {
  url: string;
  seen: FakeRequest[];
  close(): Promise<void>;
}

/** Routes are `METHOD /path` (no query string). Unknown routes answer 404 in the API's error shape. */
export async function startFakeBroker(routes: Record<string, FakeHandler>): Promise<FakeBroker> {
  const seen: FakeRequest[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const request: FakeRequest = { method: req.method ?? 'GET', url, headers: req.headers, body: text ? JSON.parse(text) : undefined };
    seen.push(request);
    const handler = routes[`${request.method} ${url.pathname}`];
    const reply: FakeReply = handler
      ? await handler(request)
      : { status: 404, body: { error: { code: 'not_found', message: `no route ${url.pathname}`, actions: [] } } };
    res.statusCode = reply.status ?? 200;
    if (reply.raw !== undefined) {
      res.setHeader('content-type', reply.contentType ?? 'text/plain');
      if (typeof reply.raw === 'string') res.end(reply.raw);
      else reply.raw.pipe(res);
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(reply.body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An address where nothing listens: a server bound to port 0 and closed again. */
export async function deadBrokerUrl(): Promise<string> {
  const b = await startFakeBroker({});
  await b.close();
  return b.url;
}

export function apiError(status: number, code: string, message: string, actions: string[] = []): FakeReply {
  return { status, body: { error: { code, message, actions } } };
}

/** The package root, found from this file whether it runs from test/ (tsx) or dist/test/. */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'bin', 'run.js'))) dir = dirname(dir);
  return dir;
})();

export async function tempHome(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'dbgov-cli-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface RunOutcome<R> {
  result: R | undefined;
  error: (Error & { exitCode?: number; actions?: string[]; code?: string }) | undefined;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when --json was given. */
  json: any;
}

interface Runnable<R> {
  run(argv: string[], opts?: string): Promise<R>;
}

const ENV_KEYS = ['DBGOV_BROKER', 'DBGOV_TOKEN', 'DBGOV_HOME', 'DBGOV_ID_TOKEN', 'NO_COLOR'] as const;

/** Runs a command in-process with exactly the given DBGOV_* environment, capturing its output. */
export async function runCommand<R>(cmd: Runnable<R>, argv: string[], env: Partial<Record<(typeof ENV_KEYS)[number], string>> = {}): Promise<RunOutcome<R>> {
  const saved = ENV_KEYS.map((k) => [k, process.env[k]] as const);
  for (const k of ENV_KEYS) delete process.env[k];
  Object.assign(process.env, env);
  const out: string[] = [];
  const err: string[] = [];
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  // The test runner reports to its parent through stdout as binary (v8-serialized) chunks while a
  // test runs; commands write text. Capture the text, let the runner's bytes through.
  const capture = (sink: string[], original: typeof process.stdout.write) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk !== 'string') return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
      sink.push(chunk);
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = capture(out, writeOut);
  process.stderr.write = capture(err, writeErr);
  let result: R | undefined;
  let error: RunOutcome<R>['error'];
  try {
    result = await cmd.run(argv, repoRoot);
  } catch (e) {
    error = e as RunOutcome<R>['error'];
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const stdout = out.join('');
  let json: unknown;
  if (argv.includes('--json')) json = JSON.parse(stdout);
  return { result, error, stdout, stderr: err.join(''), json };
}
