/**
 * Drives one sink: reads the audit log after the fact, from a durable cursor, and hands batches
 * to a transport. Never on the hot path: appends only emit a notification. Delivery is at least
 * once: the cursor file advances after the transport accepted a batch, so a crash in between
 * resends that batch. A transport that fails is retried with exponential backoff while its
 * backlog stays in the log, where it drains from once the destination is back.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Logger } from '../../shared/logger.js';
import type { AuditEvent } from '../event.js';

export interface SinkTransport {
  readonly name: string;
  /** Resolves once the destination accepted every event in the batch; throws otherwise. */
  deliver(events: AuditEvent[]): Promise<void>;
  close?(): Promise<void>;
}

/** What a sink reads from: the embedded audit log provides this. */
export interface TailSource {
  readonly lastSeq: number;
  streamAfter(afterSeq: number): AsyncIterable<AuditEvent>;
  onAppend(listener: (lastSeq: number) => void): () => void;
}

export interface SinkRunnerOptions {
  source: TailSource;
  transport: SinkTransport;
  /** JSON file holding the last delivered seq. */
  cursorFile: string;
  batchSize?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Pause after each pass so appends batch up (default 50 ms). */
  lingerMs?: number;
  log: Logger;
}

export class SinkRunner {
  private readonly opts: Required<Omit<SinkRunnerOptions, 'log'>> & { log: Logger };
  private delivered: number;
  private stopped = true;
  private wake: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private failures = 0;
  private backingOff = false;

  constructor(opts: SinkRunnerOptions) {
    this.opts = { batchSize: 200, minBackoffMs: 200, maxBackoffMs: 30_000, lingerMs: 50, ...opts };
    this.delivered = readCursor(opts.cursorFile);
  }

  /** Seq of the last event the destination accepted. */
  get cursor(): number {
    return this.delivered;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // During a backoff an append must not cut the wait short: with a sink down, every statement
    // would otherwise trigger a reconnect attempt.
    this.unsubscribe = this.opts.source.onAppend(() => {
      if (!this.backingOff) this.wake?.();
    });
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.wake?.();
    await this.loopDone;
    await this.opts.transport.close?.();
  }

  private sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      const self = this;
      function done() {
        if (timer) clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /** Sleeps `ms`, woken early only by stop(). */
  private async pause(ms: number): Promise<void> {
    this.backingOff = true;
    try {
      await this.sleep(ms);
    } finally {
      this.backingOff = false;
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.opts.source.lastSeq <= this.delivered) {
        await this.sleep(undefined);
        continue;
      }
      try {
        let batch: AuditEvent[] = [];
        for await (const e of this.opts.source.streamAfter(this.delivered)) {
          batch.push(e);
          if (batch.length >= this.opts.batchSize) {
            await this.ship(batch);
            batch = [];
            if (this.stopped) break;
          }
        }
        if (batch.length > 0 && !this.stopped) await this.ship(batch);
        this.failures = 0;
        // Let appends accumulate for a moment, so a busy log ships full batches instead of one
        // read pass per statement.
        if (!this.stopped && this.opts.lingerMs > 0) await this.pause(this.opts.lingerMs);
      } catch (e) {
        this.failures += 1;
        const wait = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** (this.failures - 1));
        this.opts.log.warn({ err: e, sink: this.opts.transport.name, retryInMs: wait, backlogFrom: this.delivered + 1 }, 'audit sink delivery failed; will retry');
        if (!this.stopped) await this.pause(wait);
      }
    }
  }

  private async ship(batch: AuditEvent[]): Promise<void> {
    await this.opts.transport.deliver(batch);
    this.delivered = batch[batch.length - 1].seq;
    const tmp = `${this.opts.cursorFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ seq: this.delivered }));
    renameSync(tmp, this.opts.cursorFile);
  }
}

function readCursor(path: string): number {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as { seq?: unknown };
    return typeof v.seq === 'number' ? v.seq : 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}
