/**
 * Offline verification of an audit log or an exported JSONL file. Needs only the events and the
 * public key: checkpoint events travel inside the chain. Checkpoints from the broker's
 * checkpoints file (or the last one it published) additionally reveal a truncated tail, since
 * they vouch for events that must be present.
 *
 * Runs in constant memory: it keeps a bounded window of recent hashes, not the whole log.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readLinesForward } from './lines.js';
import { GENESIS_HASH, eventHash } from './canonical.js';
import { checkpointDetailOf, readCheckpointsFile, verifyClaim, type CheckpointRecord } from './checkpoint.js';
import type { AuditEvent } from './event.js';

export const PROBLEM_KINDS = ['edited', 'deleted', 'reordered', 'truncated', 'bad-signature', 'bad-link'] as const;
export type ProblemKind = (typeof PROBLEM_KINDS)[number];

export interface VerifyProblem {
  seq: number | null;
  id: string | null;
  kind: ProblemKind;
  message: string;
}

export interface VerifyOptions {
  publicKeyPem: string;
  /** The broker's checkpoints: records, or the path of a checkpoints.jsonl file. */
  checkpoints?: CheckpointRecord[] | string;
  /**
   * The source claims to be the whole log (not a time-range export): then a head that is not seq 1
   * must be vouched for by a signed retention checkpoint.
   */
  complete?: boolean;
}

export interface VerifyResult {
  ok: boolean;
  events: number;
  /** Valid signed checkpoints found in the chain. */
  checkpoints: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** Events after the last valid signed checkpoint: only external checkpoints protect these. */
  unsignedTail: number;
  /**
   * Spans a broker found unsigned when it restarted (signed recovery checkpoints): written before a
   * crash, or appended by someone without the key while it was down. Compare them with a sink copy.
   */
  recovered: { from: number; to: number }[];
  problems: VerifyProblem[];
}

const RECENT_WINDOW = 4096;

async function* eventsFromFile(path: string, problems: VerifyProblem[]): AsyncGenerator<AuditEvent> {
  let n = 0;
  for await (const line of readLinesForward(path)) {
    n += 1;
    if (!line.trim()) continue;
    try {
      yield JSON.parse(line) as AuditEvent;
    } catch {
      problems.push({ seq: null, id: null, kind: 'edited', message: `Line ${n} is not a valid JSON event.` });
    }
  }
}

interface SeenEvent {
  hash: string;
  id: string;
  selfOk: boolean;
}

export async function verifyAudit(source: AsyncIterable<AuditEvent> | string, opts: VerifyOptions): Promise<VerifyResult> {
  const publicKey: KeyObject = createPublicKey(opts.publicKeyPem);
  const problems: VerifyProblem[] = [];
  const external = opts.checkpoints === undefined ? [] : typeof opts.checkpoints === 'string' ? await readCheckpointsFile(opts.checkpoints) : opts.checkpoints;
  const externalBySeq = new Map<number, CheckpointRecord>();
  const externalByEventSeq = new Map<number, CheckpointRecord>();
  for (const cp of external) {
    externalBySeq.set(cp.seq, cp);
    externalByEventSeq.set(cp.eventSeq, cp);
  }

  const recent = new Map<number, SeenEvent>();
  const missing: { from: number; to: number }[] = [];
  const retentionStarts: { seq: number; prevHash: string }[] = [];
  const recovered: { from: number; to: number }[] = [];
  let head: AuditEvent | undefined;
  let prevSeq = 0;
  let maxSeq = 0;
  let count = 0;
  let validCheckpoints = 0;
  let sinceCheckpoint = 0;

  const events = typeof source === 'string' ? eventsFromFile(source, problems) : source;
  for await (const e of events) {
    count += 1;
    sinceCheckpoint += 1;
    const selfOk = eventHash(e) === e.hash;
    if (!selfOk) problems.push({ seq: e.seq, id: e.id, kind: 'edited', message: `Event ${e.seq} (${e.id}) was changed: its content no longer matches its hash.` });

    if (head === undefined) {
      head = e;
      if (e.seq === 1 && e.prevHash !== GENESIS_HASH) problems.push({ seq: 1, id: e.id, kind: 'bad-link', message: 'The first event does not start from the genesis hash.' });
    } else if (e.seq <= maxSeq) {
      const gap = missing.findIndex((m) => e.seq >= m.from && e.seq <= m.to);
      if (gap !== -1) {
        // It was counted as missing when a later event showed up first: it is out of place, not gone.
        const m = missing[gap];
        missing.splice(gap, 1, ...[{ from: m.from, to: e.seq - 1 }, { from: e.seq + 1, to: m.to }].filter((r) => r.from <= r.to));
        problems.push({ seq: e.seq, id: e.id, kind: 'reordered', message: `Event ${e.seq} (${e.id}) appears after event ${prevSeq}: events were reordered.` });
      } else {
        problems.push({ seq: e.seq, id: e.id, kind: 'reordered', message: `Event ${e.seq} (${e.id}) appears again or out of order after event ${prevSeq}.` });
      }
    } else if (e.seq > maxSeq + 1) {
      missing.push({ from: maxSeq + 1, to: e.seq - 1 });
    }

    const before = recent.get(e.seq - 1);
    if (before !== undefined && e.prevHash !== before.hash && selfOk) {
      problems.push(
        before.selfOk
          ? { seq: e.seq - 1, id: before.id, kind: 'edited', message: `Event ${e.seq - 1} (${before.id}) was changed and its hash recomputed: event ${e.seq} no longer links to it.` }
          : { seq: e.seq, id: e.id, kind: 'bad-link', message: `Event ${e.seq} (${e.id}) does not link to event ${e.seq - 1}.` },
      );
    }

    if (e.kind === 'checkpoint') {
      const detail = checkpointDetailOf(e);
      if (!detail || !verifyClaim(detail.claim, detail.signature, publicKey)) {
        problems.push({ seq: e.seq, id: e.id, kind: 'bad-signature', message: `Checkpoint ${e.seq} (${e.id}) has no valid signature for this public key.` });
      } else {
        validCheckpoints += 1;
        sinceCheckpoint = 0;
        const vouched = recent.get(detail.claim.seq);
        if (vouched !== undefined && vouched.hash !== detail.claim.hash) {
          problems.push({
            seq: detail.claim.seq,
            id: vouched.id,
            kind: 'edited',
            message: `Events up to ${detail.claim.seq} were altered after checkpoint ${e.seq} signed them (the chain was rewritten).`,
          });
        }
        if (detail.claim.start) retentionStarts.push(detail.claim.start);
        if (detail.claim.recovered) recovered.push(detail.claim.recovered);
      }
    }

    const ext = externalBySeq.get(e.seq);
    if (ext !== undefined && ext.hash !== e.hash) {
      problems.push({ seq: e.seq, id: e.id, kind: 'edited', message: `Event ${e.seq} (${e.id}) differs from what the checkpoint of ${ext.time} vouched for.` });
    }
    const extEvent = externalByEventSeq.get(e.seq);
    if (extEvent !== undefined && extEvent.eventHash !== e.hash) {
      problems.push({ seq: e.seq, id: e.id, kind: 'edited', message: `Checkpoint event ${e.seq} (${e.id}) differs from the one in the checkpoints file.` });
    }

    recent.set(e.seq, { hash: e.hash, id: e.id, selfOk });
    if (recent.size > RECENT_WINDOW) recent.delete(recent.keys().next().value as number);
    prevSeq = e.seq;
    if (e.seq > maxSeq) maxSeq = e.seq;
  }

  for (const m of missing) {
    const span = m.from === m.to ? `Event ${m.from} is` : `Events ${m.from}–${m.to} are`;
    problems.push({ seq: m.from, id: null, kind: 'deleted', message: `${span} missing: the chain skips from ${m.from - 1} to ${m.to + 1}.` });
  }

  if (head !== undefined && head.seq > 1 && opts.complete) {
    const vouched = retentionStarts.some((s) => s.seq === head!.seq && s.prevHash === head!.prevHash);
    if (!vouched) {
      const span = head.seq === 2 ? 'Event 1 is' : `Events 1–${head.seq - 1} are`;
      problems.push({
        seq: 1,
        id: null,
        kind: 'deleted',
        message: `${span} missing: the log starts at event ${head.seq}, and no signed retention checkpoint accounts for that.`,
      });
    }
  }

  let latestExternal: CheckpointRecord | undefined;
  for (const cp of external) {
    const { signature, eventSeq: _s, eventHash: _h, ...claim } = cp;
    if (!verifyClaim(claim, signature, publicKey)) {
      problems.push({ seq: cp.seq, id: null, kind: 'bad-signature', message: `The checkpoints file entry for event ${cp.seq} has no valid signature.` });
      continue;
    }
    if (latestExternal === undefined || cp.eventSeq > latestExternal.eventSeq) latestExternal = cp;
  }
  if (latestExternal !== undefined && latestExternal.eventSeq > maxSeq) {
    problems.push({
      seq: maxSeq + 1,
      id: null,
      kind: 'truncated',
      message: `The log ends at event ${maxSeq}, but a signed checkpoint of ${latestExternal.time} vouches for events up to ${latestExternal.eventSeq}: the tail was cut.`,
    });
  }

  problems.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  return {
    ok: problems.length === 0,
    events: count,
    checkpoints: validCheckpoints,
    firstSeq: head?.seq ?? null,
    lastSeq: count === 0 ? null : maxSeq,
    unsignedTail: sinceCheckpoint,
    recovered,
    problems,
  };
}
