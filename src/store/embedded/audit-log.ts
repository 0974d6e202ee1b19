/**
 * The embedded audit log: append-only JSONL segment files in `<dir>/segments`, named by the seq
 * of their first event, plus `<dir>/checkpoints.jsonl`.
 *
 * appendSync writes with fs.writeSync, so the record is in the OS page cache before the caller
 * forwards the statement: a killed broker (kill -9) loses nothing. fdatasync runs in groups on a
 * short timer off the hot path (or on every append with `fsync: 'always'`), which bounds what a
 * whole-machine crash can lose.
 */
import { EventEmitter } from 'node:events';
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { GENESIS_HASH, sealEvent } from '../../audit/canonical.js';
import { readLinesBackwardSync } from '../../audit/lines.js';
import { keyIdOf, lastCheckpointRecordSync, publicKeyPemOf, readCheckpointsFile, signClaim, type CheckpointClaim, type CheckpointDetail, type CheckpointRecord } from '../../audit/checkpoint.js';
import { AuditStoreError, AuditWriteError } from '../../audit/errors.js';
import { ExitCodes } from '../../shared/errors.js';
import type { AuditEvent, AuditEventInput, AuditFilter } from '../../audit/event.js';
import { compileFilter } from '../../audit/filter.js';
import type { Clock } from '../../shared/clock.js';
import { newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import type { AuditLog } from '../store.js';
import { firstLineSync, lastCompleteLineSync, readLinesBackward, readLinesForwardFrom } from '../../audit/lines.js';
import { makeDirSync } from '../../shared/dirs.js';

const fdatasyncAsync = promisify(fdatasync);

export interface EmbeddedAuditLogOptions {
  /** Folder holding `segments/` and `checkpoints.jsonl`. */
  dir: string;
  brokerId: string;
  signingKey: KeyObject;
  fsync: 'interval' | 'always';
  fsyncIntervalMs: number;
  /** A signed checkpoint after this many events… */
  checkpointEvery: number;
  /** …or after this long with new events, whichever comes first. */
  checkpointIntervalMs: number;
  /** A new segment starts once the current one reaches this size. */
  segmentBytes: number;
  clock: Clock;
  log: Logger;
}

export const CHECKPOINTS_FILE = 'checkpoints.jsonl';
const SEGMENTS_DIR = 'segments';
const SEG_DIGITS = 20;
/** Byte positions remembered for readers that resume where they stopped (one per sink, a few spare). */
const RESUME_HINTS = 64;

interface Segment {
  firstSeq: number;
  path: string;
}

/** ISO 8601 of a time in ms; a batch's events share one clock reading, so the last is kept. */
let lastIsoMs = Number.NaN;
let lastIso = '';
function isoTime(ms: number): string {
  if (ms !== lastIsoMs) {
    lastIso = new Date(ms).toISOString();
    lastIsoMs = ms;
  }
  return lastIso;
}

/** The line always starts with the seq, so scans can skip lines without parsing them. */
function seqOfLine(line: string): number {
  const m = /^\{"seq":(\d+)/.exec(line);
  if (!m) throw new AuditStoreError(`An audit segment line does not start with its seq: ${line.slice(0, 40)}`);
  return Number(m[1]);
}

function encodeCursor(beforeSeq: number): string {
  return Buffer.from(JSON.stringify({ b: beforeSeq })).toString('base64url');
}

function decodeCursor(cursor: string): number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { b?: unknown };
    if (typeof v.b === 'number' && Number.isInteger(v.b)) return v.b;
  } catch {
    // Falls through to the error below.
  }
  // The caller's mistake (or tampering), not the store's: a 400, not a 500.
  throw new AuditStoreError('The search cursor is not valid. Start again without --cursor.', { exitCode: ExitCodes.usage });
}

export class EmbeddedAuditLog implements AuditLog {
  private readonly opts: EmbeddedAuditLogOptions;
  private readonly segmentsDir: string;
  private readonly keyId: string;
  private readonly appended = new EventEmitter();
  private fd: number;
  private cpFd: number;
  private size: number;
  private seq: number;
  private lastHash: string;
  private segments: Segment[];
  private sinceCheckpoint = 0;
  private dirty = false;
  private syncing: Promise<void> | undefined;
  /** Rotated-out segment fds: synced and closed by the next group sync, never under a running one. */
  private retired: number[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** Events found at open after the last signed checkpoint. */
  private unvouched: { from: number; to: number } | undefined;
  /** Seq of the last line a stream read → where the line after it starts. */
  private readonly resumeHints = new Map<number, { path: string; offset: number }>();

  private constructor(opts: EmbeddedAuditLogOptions) {
    this.opts = opts;
    this.keyId = keyIdOf(createPublicKey(opts.signingKey));
    this.segmentsDir = join(opts.dir, SEGMENTS_DIR);
    makeDirSync(this.segmentsDir);
    this.segments = this.listSegments();
    const tail = this.recoverTail();
    this.checkTailAgainstCheckpoints(tail);
    this.seq = tail.seq;
    this.lastHash = tail.hash;
    if (this.segments.length === 0) this.segments.push(this.segmentFor(this.seq + 1));
    const active = this.segments[this.segments.length - 1];
    this.fd = openSync(active.path, 'a');
    this.size = tail.size;
    this.cpFd = openSync(join(opts.dir, CHECKPOINTS_FILE), 'a');
    this.appended.setMaxListeners(0);
  }

  static open(opts: EmbeddedAuditLogOptions): EmbeddedAuditLog {
    const log = new EmbeddedAuditLog(opts);
    // Events past the last signed checkpoint were vouched for by no one when written: say so, signed,
    // before anything new is chained onto them.
    if (log.unvouched !== undefined) log.checkpoint('recovery', undefined, log.unvouched);
    if (opts.fsync === 'interval') log.timers.push(setInterval(() => void log.groupSync(), opts.fsyncIntervalMs).unref());
    log.timers.push(
      setInterval(() => {
        if (log.sinceCheckpoint > 0) log.checkpointQuietly('interval');
      }, opts.checkpointIntervalMs).unref(),
    );
    return log;
  }

  publicKeyPem(): string {
    return publicKeyPemOf(this.opts.signingKey);
  }

  get publicKeyId(): string {
    return this.keyId;
  }

  /** Seq of the newest event (0 when empty). */
  get lastSeq(): number {
    return this.seq;
  }

  get checkpointsPath(): string {
    return join(this.opts.dir, CHECKPOINTS_FILE);
  }

  /** The signed checkpoints written so far: online verify needs them to see a cut tail. */
  checkpoints(): Promise<CheckpointRecord[]> {
    return readCheckpointsFile(this.checkpointsPath);
  }

  appendSync(input: AuditEventInput): AuditEvent {
    return this.appendManySync([input])[0];
  }

  /** Several events in one write (group commit): all are written, or none and it throws. */
  appendManySync(inputs: AuditEventInput[]): AuditEvent[] {
    if (this.closed) throw new AuditWriteError('The audit log is closed; the broker is shutting down.');
    const events = this.writeEvents(inputs);
    this.sinceCheckpoint += events.length;
    if (this.sinceCheckpoint >= this.opts.checkpointEvery) this.checkpointQuietly('count');
    return events;
  }

  /** Appends a signed checkpoint over everything written so far. */
  checkpoint(reason: CheckpointDetail['reason'], start?: CheckpointClaim['start'], recovered?: CheckpointClaim['recovered']): AuditEvent | undefined {
    if (this.seq === 0) return undefined;
    const claim: CheckpointClaim = {
      seq: this.seq,
      hash: this.lastHash,
      broker: this.opts.brokerId,
      time: new Date(this.opts.clock.now()).toISOString(),
      keyId: this.keyId,
      ...(start ? { start } : {}),
      ...(recovered ? { recovered } : {}),
    };
    const detail: CheckpointDetail = { reason, claim, signature: signClaim(claim, this.opts.signingKey) };
    const [event] = this.writeEvents([{ kind: 'checkpoint', identity: null, target: null, database: null, sessionId: null, detail: { ...detail } }]);
    this.sinceCheckpoint = 0;
    const record: CheckpointRecord = { ...claim, signature: detail.signature, eventSeq: event.seq, eventHash: event.hash };
    writeSync(this.cpFd, JSON.stringify(record) + '\n');
    if (this.opts.fsync === 'always') fdatasyncSync(this.cpFd);
    return event;
  }

  async search(filter: AuditFilter, page: { limit: number; cursor?: string }): Promise<{ events: AuditEvent[]; next?: string }> {
    const before = page.cursor === undefined ? Number.POSITIVE_INFINITY : decodeCursor(page.cursor);
    const match = compileFilter(filter);
    const events: AuditEvent[] = [];
    const limit = Math.max(1, page.limit);
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i];
      if (seg.firstSeq >= before) continue;
      try {
        for await (const line of readLinesBackward(seg.path)) {
          if (seqOfLine(line) >= before) continue;
          const e = JSON.parse(line) as AuditEvent;
          if (!match(e)) continue;
          events.push(e);
          if (events.length === limit) return { events, next: encodeCursor(e.seq) };
        }
      } catch (e) {
        // Pruned while we were reading: older segments are gone too, so the page ends here.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
        throw e;
      }
    }
    return { events };
  }

  stream(filter: AuditFilter): AsyncIterable<AuditEvent> {
    return this.streamAfter(0, filter);
  }

  /** Oldest-first from the event after `afterSeq`: sinks resume from their cursor with this. */
  async *streamAfter(afterSeq: number, filter: AuditFilter = {}): AsyncGenerator<AuditEvent> {
    const match = compileFilter(filter);
    const segments = [...this.segments];
    let startIdx = 0;
    for (let i = 0; i < segments.length; i++) if (segments[i].firstSeq <= afterSeq + 1) startIdx = i;
    // A tailing reader (a sink) resumes at the byte where its last pass stopped instead of
    // rescanning the active segment from its start on every pass.
    const hint = this.resumeHints.get(afterSeq);
    let offset = hint !== undefined && hint.path === segments[startIdx]?.path ? hint.offset : 0;
    let last: { seq: number; path: string; offset: number } | undefined;
    try {
      for (let i = startIdx; i < segments.length; i++) {
        const path = segments[i].path;
        try {
          for await (const [line, end] of readLinesForwardFrom(path, offset)) {
            const seq = seqOfLine(line);
            last = { seq, path, offset: end };
            if (seq <= afterSeq) continue;
            const e = JSON.parse(line) as AuditEvent;
            if (match(e)) yield e;
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw e;
        } finally {
          offset = 0;
        }
      }
    } finally {
      if (last !== undefined) {
        this.resumeHints.set(last.seq, { path: last.path, offset: last.offset });
        if (this.resumeHints.size > RESUME_HINTS) this.resumeHints.delete(this.resumeHints.keys().next().value as number);
      }
    }
  }

  /** Calls `listener` after each write with the newest seq. Returns an unsubscribe function. */
  onAppend(listener: (lastSeq: number) => void): () => void {
    this.appended.on('append', listener);
    return () => this.appended.off('append', listener);
  }

  /**
   * Removes whole segments whose events are all older than `olderThan` (never the one being
   * written), then records a `retention.pruned` event and a signed checkpoint naming the new first
   * event, so the shortened chain still verifies.
   */
  async prune(olderThan: number): Promise<{ removedSegments: number; firstSeq: number }> {
    const cutoff = new Date(olderThan).toISOString();
    const removable: Segment[] = [];
    for (let i = 0; i < this.segments.length - 1; i++) {
      const last = lastCompleteLineSync(this.segments[i].path).line;
      const lastTime = last === undefined ? '' : (JSON.parse(last) as AuditEvent).time;
      if (lastTime >= cutoff) break;
      removable.push(this.segments[i]);
    }
    const firstRemaining = this.segments[removable.length];
    const firstLine = firstLineSync(firstRemaining.path);
    if (removable.length === 0 || firstLine === undefined) return { removedSegments: 0, firstSeq: this.segments[0].firstSeq };
    const head = JSON.parse(firstLine) as AuditEvent;
    for (const seg of removable) unlinkSync(seg.path);
    this.segments = this.segments.slice(removable.length);
    this.appendSync({
      kind: 'retention.pruned',
      identity: null,
      target: null,
      database: null,
      sessionId: null,
      detail: { olderThan: cutoff, removedSegments: removable.length, firstSeq: head.seq },
    });
    this.checkpoint('retention', { seq: head.seq, prevHash: head.prevHash });
    await this.sync();
    return { removedSegments: removable.length, firstSeq: head.seq };
  }

  async sync(): Promise<void> {
    while (this.syncing) await this.syncing;
    this.dirty = true;
    await this.groupSync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    if (this.sinceCheckpoint > 0) this.checkpointQuietly('close');
    await this.sync();
    this.closed = true;
    closeSync(this.fd);
    closeSync(this.cpFd);
    this.appended.removeAllListeners();
  }

  private checkpointQuietly(reason: CheckpointDetail['reason']): void {
    try {
      this.checkpoint(reason);
    } catch (e) {
      // The events themselves are written; a missed checkpoint is retried at the next trigger.
      this.opts.log.error({ err: e }, 'audit checkpoint failed');
    }
  }

  private writeEvents(inputs: AuditEventInput[]): AuditEvent[] {
    let seq = this.seq;
    let prevHash = this.lastHash;
    const events: AuditEvent[] = [];
    let text = '';
    const now = this.opts.clock.now();
    for (const input of inputs) {
      seq += 1;
      const event: Omit<AuditEvent, 'hash'> & { hash?: string } = {
        seq,
        id: newId('evt'),
        time: isoTime(input.at ?? now),
        kind: input.kind,
        broker: this.opts.brokerId,
        identity: input.identity,
        target: input.target,
        database: input.database,
        sessionId: input.sessionId,
        ...(input.access !== undefined ? { access: input.access } : {}),
        ...(input.statement !== undefined ? { statement: input.statement } : {}),
        ...(input.detail !== undefined ? { detail: input.detail } : {}),
        prevHash,
      };
      const sealed = sealEvent(event);
      event.hash = sealed.hash;
      prevHash = sealed.hash;
      text += sealed.line + '\n';
      events.push(event as AuditEvent);
    }
    const buf = Buffer.from(text);
    let written = 0;
    try {
      while (written < buf.length) written += writeSync(this.fd, buf, written, buf.length - written);
      if (this.opts.fsync === 'always') fdatasyncSync(this.fd);
    } catch (e) {
      // Roll back a partial write so the file never holds a torn record ahead of the next one.
      try {
        ftruncateSync(this.fd, this.size);
      } catch (truncErr) {
        this.opts.log.error({ err: truncErr }, 'could not roll back a partial audit write');
      }
      throw new AuditWriteError(`The audit record could not be written: ${(e as Error).message}`, { cause: e });
    }
    this.size += buf.length;
    this.seq = seq;
    this.lastHash = prevHash;
    this.dirty = true;
    if (this.size >= this.opts.segmentBytes) this.rotate();
    this.appended.emit('append', seq);
    return events;
  }

  private rotate(): void {
    const seg = this.segmentFor(this.seq + 1);
    const fd = openSync(seg.path, 'a');
    this.retired.push(this.fd);
    this.fd = fd;
    this.size = 0;
    this.segments.push(seg);
  }

  private async groupSync(): Promise<void> {
    if (this.syncing || !this.dirty || this.closed) return;
    this.dirty = false;
    const retired = this.retired;
    this.retired = [];
    const run = async () => {
      try {
        await Promise.all([this.fd, this.cpFd, ...retired].map((fd) => fdatasyncAsync(fd)));
      } catch (e) {
        // Linux may drop the dirty pages after a failed fsync, so a retry could falsely succeed; say so loudly.
        this.opts.log.error({ err: e }, 'audit fsync failed: recent records may not survive a machine crash');
      } finally {
        for (const fd of retired) closeSync(fd);
      }
    };
    this.syncing = run().finally(() => {
      this.syncing = undefined;
    });
    await this.syncing;
  }

  private segmentFor(firstSeq: number): Segment {
    return { firstSeq, path: join(this.segmentsDir, `${String(firstSeq).padStart(SEG_DIGITS, '0')}.jsonl`) };
  }

  private listSegments(): Segment[] {
    return readdirSync(this.segmentsDir)
      .filter((n) => /^\d+\.jsonl$/.test(n))
      .map((n) => ({ firstSeq: Number(n.slice(0, -'.jsonl'.length)), path: join(this.segmentsDir, n) }))
      .sort((a, b) => a.firstSeq - b.firstSeq);
  }

  /**
   * Refuses to write on from a chain its own signed checkpoints contradict: segments cut short or
   * swapped for an older copy (the checkpoints file vouches for events past the end), or a tail
   * rewritten after the last checkpoint. Chaining on would reuse those seqs and sign a checkpoint
   * over the altered history, turning a detectable cut into a log that looks whole.
   */
  private checkTailAgainstCheckpoints(tail: { seq: number; hash: string }): void {
    const last = lastCheckpointRecordSync(join(this.opts.dir, CHECKPOINTS_FILE));
    const from = (last?.eventSeq ?? this.segments[0]?.firstSeq - 1) + 1;
    if (Number.isSafeInteger(from) && tail.seq >= from) this.unvouched = { from, to: tail.seq };
    if (last === undefined) return;
    const actions = [
      `keep a copy of ${this.opts.dir} as evidence, then run \`dbgov audit verify --file <each segment> --checkpoints ${join(this.opts.dir, CHECKPOINTS_FILE)}\` to see what is missing`,
      'restore the segments from a backup or a sink copy (webhook, syslog, NATS); the broker will not write on from an altered chain',
    ];
    if (last.eventSeq > tail.seq) {
      throw new AuditStoreError(
        `The audit log ends at event ${tail.seq}, but its signed checkpoint of ${last.time} vouches for events up to ${last.eventSeq}: segments were cut or replaced by an older copy` +
          (this.opts.fsync === 'interval' ? ' (or the machine lost power before they reached the disk)' : '') +
          '.',
        { actions },
      );
    }
    const hash = tail.seq === last.eventSeq ? tail.hash : this.hashOfSync(last.eventSeq);
    if (hash !== last.eventHash) {
      throw new AuditStoreError(`Audit event ${last.eventSeq} is not the checkpoint the checkpoints file recorded at ${last.time}: the log was rewritten.`, { actions });
    }
  }

  /** Hash of the event at `seq` (read backwards from the tail: it follows the last checkpoint). */
  private hashOfSync(seq: number): string | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      if (this.segments[i].firstSeq > seq) continue;
      for (const line of readLinesBackwardSync(this.segments[i].path)) {
        const at = seqOfLine(line);
        if (at === seq) return (JSON.parse(line) as AuditEvent).hash;
        if (at < seq) return undefined;
      }
      return undefined;
    }
    return undefined;
  }

  /** Finds the chain head on disk and cuts a torn last record left by a machine crash. */
  private recoverTail(): { seq: number; hash: string; size: number } {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i];
      const { line, validLength, size } = lastCompleteLineSync(seg.path);
      if (validLength < size) {
        this.opts.log.warn({ segment: seg.path, bytes: size - validLength }, 'cutting a torn audit record left by a crash');
        const fd = openSync(seg.path, 'r+');
        try {
          ftruncateSync(fd, validLength);
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
      if (line === undefined) {
        if (i === this.segments.length - 1) continue;
        throw new AuditStoreError(`Audit segment ${seg.path} is empty but newer segments exist.`);
      }
      let last: AuditEvent;
      try {
        last = JSON.parse(line) as AuditEvent;
      } catch (e) {
        throw new AuditStoreError(`The last audit record in ${seg.path} is not valid JSON; run \`dbgov audit verify\`.`, { cause: e });
      }
      const activeSize = i === this.segments.length - 1 ? validLength : 0;
      if (i !== this.segments.length - 1) {
        // Newer segments are empty: keep writing into the newest, which must start after `last`.
        this.segments = this.segments.slice(0, i + 1).concat(this.segments.slice(i + 1).filter((s) => s.firstSeq === last.seq + 1));
        if (this.segments[this.segments.length - 1].firstSeq !== last.seq + 1) this.segments.push(this.segmentFor(last.seq + 1));
      }
      return { seq: last.seq, hash: last.hash, size: activeSize };
    }
    const firstSeq = this.segments[0]?.firstSeq ?? 1;
    return { seq: firstSeq - 1, hash: GENESIS_HASH, size: 0 };
  }
}
