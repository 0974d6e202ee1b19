/**
 * Helpers for the benchmark runner: child processes that are always cleaned up, /proc readings
 * (CPU, RSS), free ports, and a minimal PostgreSQL wire client that streams a result and only
 * counts rows, so the client costs as little CPU as possible on this 2-core machine.
 */
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';

const children = new Set<ChildProcess>();

export interface Child {
  proc: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
}

/** Spawns a tracked child; its output is kept (last 64 kB) for error messages. */
export function startChild(cmd: string, args: string[], opts: SpawnOptions = {}): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-65536)));
  proc.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-65536)));
  proc.on('error', (e) => (err += `\nspawn error: ${e.message}`));
  return { proc, pid: proc.pid ?? -1, stdout: () => out, stderr: () => err };
}

/** Waits for the child's stdout to hold one complete JSON document (pretty-printed is fine). */
export function waitForJson<T>(c: Child, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${what}: no ready JSON within ${timeoutMs} ms; stderr: ${tail(c.stderr())}; stdout: ${tail(c.stdout())}`)), timeoutMs);
    const onData = (): void => {
      const text = c.stdout();
      const start = text.indexOf('{');
      if (start < 0) return;
      try {
        finish(undefined, JSON.parse(text.slice(start)) as T);
      } catch {
        /* not complete yet */
      }
    };
    const onExit = (code: number | null): void => finish(new Error(`${what} exited (code ${code}) before it was ready: ${tail(c.stderr())} ${tail(c.stdout())}`));
    function finish(e?: Error, v?: T): void {
      clearTimeout(timer);
      c.proc.stdout?.off('data', onData);
      c.proc.off('exit', onExit);
      if (e) reject(e);
      else resolve(v as T);
    }
    // Listen after startChild's own listener so the accumulated text includes this chunk.
    c.proc.stdout?.on('data', onData);
    c.proc.on('exit', onExit);
    onData();
  });
}

export function tail(s: string, n = 600): string {
  const t = s.trim();
  return t.length > n ? `…${t.slice(-n)}` : t;
}

/** SIGTERM, then SIGKILL after a grace period. */
export async function stopChild(c: Child | ChildProcess | undefined, graceMs = 5000): Promise<void> {
  const proc = c && 'proc' in c ? c.proc : c;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((p) => stopChild(p)));
}

/** Runs a command to completion with a time limit. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = startChild(cmd, args, { env: { ...process.env, ...(opts.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => c.proc.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    let done = false;
    c.proc.on('close', (code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: c.stdout(), stderr: c.stderr() });
    });
    c.proc.on('error', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code: 127, stdout: '', stderr: c.stderr() });
    });
    if (opts.input !== undefined) c.proc.stdin?.end(opts.input);
    else c.proc.stdin?.end();
  });
}

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin'])) {
    try {
      execFileSync('test', ['-x', `${dir}/${cmd}`]);
      return `${dir}/${cmd}`;
    } catch {
      /* next */
    }
  }
  return undefined;
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** User + system CPU of a process so far, in µs (from /proc/<pid>/stat; clock-tick resolution). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which sits in parentheses and may contain spaces.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1e6) / ticksPerSecond();
}

/** A /proc/<pid>/status memory field in bytes (VmRSS, VmHWM). */
export function procMem(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Samples VmRSS of the given pids every intervalMs; stop() returns each pid's peak. */
export function sampleRss(pids: number[], intervalMs = 100): { stop(): number[] } {
  const peaks = pids.map((p) => procMem(p));
  // A process that has exited reads as NaN: keep the peak seen so far.
  const take = (p: number, i: number): void => {
    const v = procMem(p);
    if (Number.isFinite(v)) peaks[i] = Number.isFinite(peaks[i]) ? Math.max(peaks[i], v) : v;
  };
  const t = setInterval(() => pids.forEach(take), intervalMs);
  return {
    stop() {
      clearInterval(t);
      pids.forEach(take);
      return peaks;
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface StreamResult {
  rows: number;
  bytes: number;
  ms: number;
  error?: string;
}

/**
 * Sends one simple Query on a fresh connection (trust auth: no password) and counts DataRow
 * ('D') and CopyData ('d') messages until ReadyForQuery, discarding the bytes as they arrive.
 * Time is measured from sending the query to ReadyForQuery.
 */
export function pgStream(o: { port: number; user: string; database: string; sql: string; timeoutMs?: number }): Promise<StreamResult> {
  return new Promise((resolve) => {
    const sock = netConnect({ host: '127.0.0.1', port: o.port });
    sock.setNoDelay(true);
    const params = Buffer.from(`user\0${o.user}\0database\0${o.database}\0application_name\0dbgov-bench\0\0`);
    const startup = Buffer.alloc(8 + params.length);
    startup.writeInt32BE(startup.length, 0);
    startup.writeInt32BE(196608, 4);
    params.copy(startup, 8);
    let phase: 'startup' | 'query' = 'startup';
    let rows = 0;
    let bytes = 0;
    let t0 = 0;
    let error: string | undefined;
    let settled = false;
    const header = Buffer.alloc(5);
    let headerFill = 0;
    let type = 0;
    let remaining = 0; // body bytes of the current message still to come
    let body: Buffer[] | null = null; // kept only for small non-row messages
    const timer = setTimeout(() => finish(`timeout after ${o.timeoutMs ?? 600_000} ms`), o.timeoutMs ?? 600_000);

    function finish(err?: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ms = t0 ? performance.now() - t0 : 0;
      const e = err ?? error;
      resolve({ rows, bytes, ms, ...(e ? { error: e } : {}) });
      sock.destroy();
    }

    function onMessage(t: number, b: Buffer | null): void {
      switch (String.fromCharCode(t)) {
        case 'R':
          if (b && b.readInt32BE(0) !== 0) finish(`server asked for authentication (code ${b.readInt32BE(0)}); the bench expects trust`);
          break;
        case 'E':
          error = errorText(b);
          if (phase === 'startup') finish(error);
          break;
        case 'Z':
          if (phase === 'startup') {
            phase = 'query';
            const q = Buffer.from(`${o.sql}\0`);
            const msg = Buffer.alloc(5 + q.length);
            msg[0] = 0x51; // 'Q'
            msg.writeInt32BE(4 + q.length, 1);
            q.copy(msg, 5);
            t0 = performance.now();
            sock.write(msg);
          } else {
            sock.write(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
            finish();
          }
          break;
        default:
          break;
      }
    }

    sock.on('connect', () => sock.write(startup));
    sock.on('error', (e) => finish(e.message));
    sock.on('close', () => finish(phase === 'startup' ? 'connection closed during startup' : settled ? undefined : 'connection closed mid-result'));
    sock.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      let p = 0;
      while (p < chunk.length) {
        if (remaining === 0 && headerFill < 5) {
          const n = Math.min(5 - headerFill, chunk.length - p);
          chunk.copy(header, headerFill, p, p + n);
          headerFill += n;
          p += n;
          if (headerFill < 5) break;
          type = header[0];
          remaining = header.readInt32BE(1) - 4;
          if (type === 0x44 || type === 0x64) rows++;
          body = type === 0x44 || type === 0x64 ? null : [];
          if (remaining === 0) {
            headerFill = 0;
            onMessage(type, Buffer.alloc(0));
            continue;
          }
        }
        const n = Math.min(remaining, chunk.length - p);
        if (body) body.push(chunk.subarray(p, p + n));
        remaining -= n;
        p += n;
        if (remaining === 0) {
          headerFill = 0;
          onMessage(type, body ? Buffer.concat(body) : null);
          body = null;
        }
      }
    });
  });
}

function errorText(b: Buffer | null): string {
  if (!b) return 'error';
  const fields: Record<string, string> = {};
  let p = 0;
  while (p < b.length && b[p] !== 0) {
    const code = String.fromCharCode(b[p]);
    const end = b.indexOf(0, p + 1);
    fields[code] = b.subarray(p + 1, end).toString();
    p = end + 1;
  }
  return `${fields.S ?? 'ERROR'} ${fields.C ?? ''}: ${fields.M ?? ''}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
