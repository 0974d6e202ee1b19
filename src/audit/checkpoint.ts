/**
 * Signed checkpoints. A checkpoint is an Ed25519 signature over the position and hash of the
 * last event before it: that hash covers every earlier event through the chain, so a valid
 * signature vouches for the whole prefix. Checkpoints are written twice: as `checkpoint` events
 * in the chain (an export carries them, so verify needs only the file and the public key) and in
 * a separate checkpoints file, which is what reveals a truncated tail.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { readLinesBackwardSync } from './lines.js';
import { createInterface } from 'node:readline';
import { canonicalJson } from './canonical.js';
import type { AuditEvent } from './event.js';

/** What a checkpoint signs. */
export interface CheckpointClaim {
  /** The last event the signature vouches for, and its hash. */
  seq: number;
  hash: string;
  broker: string;
  /** ISO time the checkpoint was made. */
  time: string;
  keyId: string;
  /** Retention marker: the log now starts at this event, whose prevHash is given. */
  start?: { seq: number; prevHash: string };
  /**
   * Recovery marker: at start, the broker found these events after the last checkpoint it had
   * signed. It did not vouch for them when they were written: a crash leaves such events, and so
   * does someone appending without the key while the broker was down.
   */
  recovered?: { from: number; to: number };
}

/** `detail` of a `checkpoint` event. */
export interface CheckpointDetail {
  reason: 'count' | 'interval' | 'close' | 'export' | 'retention' | 'recovery';
  claim: CheckpointClaim;
  signature: string;
}

/** One line of the checkpoints file: the claim, its signature, and the checkpoint event itself. */
export interface CheckpointRecord extends CheckpointClaim {
  signature: string;
  eventSeq: number;
  eventHash: string;
}

export const SIGNING_KEY_FILE = 'audit-signing-key.pem';

export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function publicKeyPemOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * Loads the signing key from `path`, or generates one and stores it there with mode 0600. Generated
 * once: a new key on every start would make older checkpoints unverifiable with the published key.
 */
export function loadOrCreateSigningKey(path: string): KeyObject {
  try {
    return createPrivateKey(readFileSync(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  return privateKey;
}

export function signClaim(claim: CheckpointClaim, privateKey: KeyObject): string {
  return sign(null, Buffer.from(canonicalJson(claim)), privateKey).toString('base64');
}

export function verifyClaim(claim: CheckpointClaim, signature: string, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(canonicalJson(claim)), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

export function checkpointDetailOf(event: AuditEvent): CheckpointDetail | undefined {
  if (event.kind !== 'checkpoint') return undefined;
  const d = event.detail as Partial<CheckpointDetail> | undefined;
  if (!d || typeof d.signature !== 'string' || typeof d.claim !== 'object' || d.claim === null) return undefined;
  return d as CheckpointDetail;
}

/** Reads a checkpoints file (one JSON record per line). Unparseable lines are skipped. */
export async function readCheckpointsFile(path: string): Promise<CheckpointRecord[]> {
  const out: CheckpointRecord[] = [];
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as CheckpointRecord);
    } catch {
      // A torn last line after a machine crash; the records before it still count.
    }
  }
  return out;
}

/** The newest record of a checkpoints file that parses (none when the file is absent). */
export function lastCheckpointRecordSync(path: string): CheckpointRecord | undefined {
  try {
    for (const line of readLinesBackwardSync(path)) {
      try {
        const r = JSON.parse(line) as Partial<CheckpointRecord>;
        if (typeof r.eventSeq === 'number' && typeof r.eventHash === 'string') return r as CheckpointRecord;
      } catch {
        // A torn line; an older record still counts.
      }
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return undefined;
}
