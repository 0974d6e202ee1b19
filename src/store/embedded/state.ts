/**
 * Broker state (credentials, approval requests, service accounts, database roles, token
 * revocations) held in memory and made durable by an append-only journal, `<dir>/state.jsonl`,
 * replayed at open. Each change is one line; the last line for a key wins. When the journal grows
 * well past the live records it is rewritten as a snapshot (write to a temp file, fsync, rename),
 * so replay stays short.
 */
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AuditStoreError } from '../../audit/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ApprovalRequest, CredentialRecord, DbRoleRecord, ServiceAccountRecord, TokenRevocationRecord } from '../store.js';

export type StateChange =
  | { t: 'credential'; v: CredentialRecord }
  | { t: 'request'; v: ApprovalRequest }
  | { t: 'serviceAccount'; v: ServiceAccountRecord }
  | { t: 'dbRole'; v: DbRoleRecord }
  | { t: 'tokenRevocation'; v: TokenRevocationRecord };

export const STATE_FILE = 'state.jsonl';
const COMPACT_MIN_LINES = 10_000;

function dbRoleKey(r: DbRoleRecord): string {
  return `${r.target}\u0000${r.role}`;
}

export class StateJournal {
  readonly credentials = new Map<string, CredentialRecord>();
  readonly requests = new Map<string, ApprovalRequest>();
  readonly serviceAccounts = new Map<string, ServiceAccountRecord>();
  readonly dbRoles = new Map<string, DbRoleRecord>();
  readonly tokenRevocations = new Map<string, TokenRevocationRecord>();
  private readonly path: string;
  private readonly log: Logger;
  private fd: number;
  private lines = 0;

  constructor(dir: string, log: Logger) {
    this.path = join(dir, STATE_FILE);
    this.log = log;
    if (existsSync(this.path)) this.replay();
    this.fd = openSync(this.path, 'a');
  }

  /**
   * Applies and persists a change. State changes are rare next to statements (a connect, a vote),
   * and a lost revocation or approval would be a security bug, so each is fsynced before returning.
   */
  apply(change: StateChange): void {
    writeSync(this.fd, JSON.stringify(change) + '\n');
    fdatasyncSync(this.fd);
    this.lines += 1;
    this.applyInMemory(change);
    if (this.lines > COMPACT_MIN_LINES && this.lines > 4 * this.liveRecords()) this.compact();
  }

  close(): void {
    closeSync(this.fd);
  }

  private liveRecords(): number {
    return this.credentials.size + this.requests.size + this.serviceAccounts.size + this.dbRoles.size + this.tokenRevocations.size;
  }

  private applyInMemory(c: StateChange): void {
    switch (c.t) {
      case 'credential':
        this.credentials.set(c.v.id, c.v);
        break;
      case 'request':
        this.requests.set(c.v.id, c.v);
        break;
      case 'serviceAccount':
        this.serviceAccounts.set(c.v.id, c.v);
        break;
      case 'dbRole':
        this.dbRoles.set(dbRoleKey(c.v), c.v);
        break;
      case 'tokenRevocation':
        this.tokenRevocations.set(c.v.identity, c.v);
        break;
      default: {
        const never: never = c;
        throw new AuditStoreError(`Unknown state change ${JSON.stringify(never)}`);
      }
    }
  }

  private replay(): void {
    const text = readFileSync(this.path, 'utf8');
    const rows = text.split('\n');
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (!row) continue;
      try {
        this.applyInMemory(JSON.parse(row) as StateChange);
        this.lines += 1;
      } catch (e) {
        // Only the last line can be torn (a machine crash mid-write); anything earlier is corruption.
        if (i >= rows.length - 2) {
          this.log.warn({ file: this.path }, 'ignoring a torn last line in the state journal');
          continue;
        }
        throw new AuditStoreError(`${this.path}:${i + 1}: the state journal is corrupt.`, { cause: e });
      }
    }
  }

  private compact(): void {
    const tmp = `${this.path}.compact`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      const all: StateChange[] = [
        ...[...this.credentials.values()].map((v) => ({ t: 'credential', v }) as const),
        ...[...this.requests.values()].map((v) => ({ t: 'request', v }) as const),
        ...[...this.serviceAccounts.values()].map((v) => ({ t: 'serviceAccount', v }) as const),
        ...[...this.dbRoles.values()].map((v) => ({ t: 'dbRole', v }) as const),
        ...[...this.tokenRevocations.values()].map((v) => ({ t: 'tokenRevocation', v }) as const),
      ];
      writeSync(fd, all.map((c) => JSON.stringify(c) + '\n').join(''));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.lines = this.liveRecords();
    this.log.info({ records: this.lines }, 'state journal compacted');
  }
}
