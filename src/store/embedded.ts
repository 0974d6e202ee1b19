/**
 * The embedded store, the default: everything in one local folder, no outside service and no
 * native module. Layout:
 *
 *   <dir>/segments/*.jsonl        audit log segments (hash-chained events)
 *   <dir>/checkpoints.jsonl       signed checkpoints (reveal a truncated tail)
 *   <dir>/audit-signing-key.pem   Ed25519 key, 0600, generated once unless one is configured
 *   <dir>/state.jsonl             journal of credentials, requests, service accounts, db roles
 *   <dir>/broker.lock             pid of the broker using the folder
 */
import type { KeyObject } from 'node:crypto';
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SIGNING_KEY_FILE, loadOrCreateSigningKey } from '../audit/checkpoint.js';
import { AuditStoreError } from '../audit/errors.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { NotFoundError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { EmbeddedAuditLog } from './embedded/audit-log.js';
import { StateJournal } from './embedded/state.js';
import type { ApprovalRequest, CredentialRecord, DbRoleRecord, RequestStatus, ServiceAccountRecord, Store } from './store.js';
import { makeDirSync } from '../shared/dirs.js';

export interface EmbeddedStoreOptions {
  dir: string;
  brokerId: string;
  /** Ed25519 private key for checkpoints; generated once and kept in the folder when absent. */
  signingKey?: KeyObject;
  fsync: 'interval' | 'always';
  /** Group fsync period (default 50 ms). */
  fsyncIntervalMs?: number;
  /** Signed checkpoint every N events (default 10 000)… */
  checkpointEvery?: number;
  /** …or every T ms when there are new events (default 60 s). */
  checkpointIntervalMs?: number;
  /** Segment size before rotation (default 64 MiB). */
  segmentBytes?: number;
  clock?: Clock;
  log: Logger;
}

export interface EmbeddedStore extends Store {
  readonly kind: 'embedded';
  readonly audit: EmbeddedAuditLog;
  readonly dir: string;
  /** PEM (SPKI) of the checkpoint-signing public key, as `GET /v1/audit/public-key` publishes it. */
  publicKeyPem(): string;
}

type ChangeListener = (change: { type: 'request' | 'credential'; id: string }) => void;

const LOCK_FILE = 'broker.lock';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Two brokers appending to one folder would fork the chain; the second one must not start. */
function takeLock(dir: string): string {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return path;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new AuditStoreError(`The store folder ${dir} is in use by process ${pid}.`, {
          actions: [`Stop the broker with pid ${pid}, or give this broker its own store folder.`],
        });
      }
      // Left behind by a killed broker.
      unlinkSync(path);
    }
  }
  throw new AuditStoreError(`Could not lock the store folder ${dir}.`);
}

export async function openEmbeddedStore(opts: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  makeDirSync(opts.dir, 0o700);
  const lockPath = takeLock(opts.dir);
  const clock = opts.clock ?? systemClock;
  let audit: EmbeddedAuditLog;
  try {
    const signingKey = opts.signingKey ?? loadOrCreateSigningKey(join(opts.dir, SIGNING_KEY_FILE));
    audit = EmbeddedAuditLog.open({
      dir: opts.dir,
      brokerId: opts.brokerId,
      signingKey,
      fsync: opts.fsync,
      fsyncIntervalMs: opts.fsyncIntervalMs ?? 50,
      checkpointEvery: opts.checkpointEvery ?? 10_000,
      checkpointIntervalMs: opts.checkpointIntervalMs ?? 60_000,
      segmentBytes: opts.segmentBytes ?? 64 * 1024 * 1024,
      clock,
      log: opts.log,
    });
  } catch (e) {
    // A log refused at open leaves the folder as it was, free for the next try once it is restored.
    unlinkSync(lockPath);
    throw e;
  }
  const state = new StateJournal(opts.dir, opts.log);
  const listeners = new Set<ChangeListener>();
  const notify = (type: 'request' | 'credential', id: string) => {
    for (const l of listeners) {
      queueMicrotask(() => {
        try {
          l({ type, id });
        } catch (e) {
          opts.log.error({ err: e }, 'store watch listener failed');
        }
      });
    }
  };
  // Records are copied in and out so a caller mutating its object cannot change stored state.
  const copy = <T>(v: T): T => structuredClone(v);

  const store: EmbeddedStore = {
    kind: 'embedded',
    audit,
    dir: opts.dir,
    publicKeyPem: () => audit.publicKeyPem(),

    async putCredential(c: CredentialRecord) {
      state.apply({ t: 'credential', v: copy(c) });
      notify('credential', c.id);
    },
    async getCredential(id: string) {
      const c = state.credentials.get(id);
      return c && copy(c);
    },
    async revokeCredentials(by, actor, at) {
      if (by.credentialId === undefined && by.identity === undefined) return [];
      const revoked: CredentialRecord[] = [];
      for (const c of state.credentials.values()) {
        if (c.revokedAt !== undefined) continue;
        if (by.credentialId !== undefined && c.id !== by.credentialId) continue;
        if (by.identity !== undefined && c.identity.id !== by.identity) continue;
        revoked.push({ ...copy(c), revokedAt: at, revokedBy: actor });
      }
      for (const c of revoked) {
        state.apply({ t: 'credential', v: c });
        notify('credential', c.id);
      }
      return revoked.map(copy);
    },

    async putRequest(r: ApprovalRequest) {
      state.apply({ t: 'request', v: copy(r) });
      notify('request', r.id);
    },
    async getRequest(id: string) {
      const r = state.requests.get(id);
      return r && copy(r);
    },
    async listRequests(filter: { status?: RequestStatus; type?: ApprovalRequest['type'] }) {
      return [...state.requests.values()]
        .filter((r) => (filter.status === undefined || r.status === filter.status) && (filter.type === undefined || r.type === filter.type))
        .sort((a, b) => a.createdAt - b.createdAt)
        .map(copy);
    },
    // Atomic within the process: read, apply and write happen in one synchronous turn.
    async updateRequest(id, fn) {
      const current = state.requests.get(id);
      if (!current) throw new NotFoundError('request.not-found', `No approval request ${id}.`, { actions: ['List open requests with `dbgov requests`.'] });
      const next = fn(copy(current));
      if (next.id !== id) throw new AuditStoreError(`updateRequest must not change the id (${id} → ${next.id}).`);
      state.apply({ t: 'request', v: copy(next) });
      notify('request', id);
      return copy(next);
    },

    async revokeTokens(identity: string, at: number, actor: string) {
      // Never move the floor back: a late, older revocation must not re-enable tokens.
      const prev = state.tokenRevocations.get(identity);
      if (prev && prev.revokedAt >= at) return;
      state.apply({ t: 'tokenRevocation', v: { identity, revokedAt: at, revokedBy: actor } });
    },
    async tokensRevokedAt(identity: string) {
      return state.tokenRevocations.get(identity)?.revokedAt;
    },

    async putServiceAccount(a: ServiceAccountRecord) {
      state.apply({ t: 'serviceAccount', v: copy(a) });
    },
    async listServiceAccounts() {
      return [...state.serviceAccounts.values()].map(copy);
    },
    async findServiceAccountByTokenHash(hash: string) {
      for (const a of state.serviceAccounts.values()) if (a.tokenHash === hash) return copy(a);
      return undefined;
    },

    async putDbRole(r: DbRoleRecord) {
      state.apply({ t: 'dbRole', v: copy(r) });
    },
    async listDbRoles(filter: { target?: string; live?: boolean }) {
      return [...state.dbRoles.values()]
        .filter((r) => filter.target === undefined || r.target === filter.target)
        .filter((r) => filter.live === undefined || (r.droppedAt === undefined) === filter.live)
        .map(copy);
    },

    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      listeners.clear();
      await audit.close();
      state.close();
      try {
        unlinkSync(lockPath);
      } catch {
        // Already gone: nothing to release.
      }
    },
  };
  return store;
}
