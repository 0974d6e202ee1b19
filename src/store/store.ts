/**
 * The store: one interface, two implementations. `embedded` keeps everything in a local folder
 * (the default, no outside service); `postgres` shares state between brokers that scale out.
 * The broker only ever talks to this interface.
 */
import type { AuditEvent, AuditEventInput, AuditFilter } from '../audit/event.js';
import type { AccessLevel, Identity } from '../shared/types.js';

export interface AuditLog {
  /**
   * Appends and returns the event with id, seq and hash assigned. On return the record has been
   * written to the OS (it survives kill -9 of the broker); fsync happens in groups on a short
   * interval (or on every append with `fsync: always`). Throws if the record cannot be written:
   * the caller must then refuse the statement.
   */
  appendSync(input: AuditEventInput): AuditEvent;
  /** Pages newest-first. `cursor` is opaque, from the previous page. */
  search(filter: AuditFilter, page: { limit: number; cursor?: string }): Promise<{ events: AuditEvent[]; next?: string }>;
  /** Oldest-first stream for export and verify; constant memory. */
  stream(filter: AuditFilter): AsyncIterable<AuditEvent>;
  /** Forces buffered data to disk now (shutdown, tests). */
  sync(): Promise<void>;
}

export interface CredentialRecord {
  id: string;
  identity: Identity;
  target: string;
  database: string;
  access: AccessLevel;
  /** SHA-256 thumbprint (RFC 7638) of the public key the CLI holds; proofs must verify with it. */
  keyThumbprint: string;
  reason?: string;
  issuedAt: number;
  expiresAt: number;
  revokedAt?: number;
  revokedBy?: string;
}

export type RequestStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'used' | 'cancelled';

/** A statement held for review, or a just-in-time access elevation. */
export interface ApprovalRequest {
  id: string;
  type: 'statement' | 'access';
  status: RequestStatus;
  requester: Identity;
  target: string;
  database: string;
  reason?: string;
  sessionId?: string;
  /** Statement requests: redacted text, fingerprint, the exact text's hash (to match a re-run). */
  statement?: { text: string; fingerprint: string; sqlHash: string; kind: string; tables: string[]; estimatedRows?: number | null };
  /** Access requests: what was asked. */
  access?: { level: AccessLevel; ttlMs: number };
  rule: string;
  approvers: { groups: string[]; quorum: number };
  /** `person`: the owner of a service identity that voted; quorum counts people, not identities. */
  votes: { identity: string; person?: string; decision: 'approve' | 'deny'; comment?: string; at: number }[];
  createdAt: number;
  expiresAt: number;
  decidedAt?: number;
  /** Approved statements may be re-run once by the same identity until then. */
  windowEndsAt?: number;
}

export interface ServiceAccountRecord {
  id: string;
  /** SHA-256 of the token; the token itself is shown once and never stored. */
  tokenHash: string;
  groups: string[];
  kind: 'workload' | 'agent';
  owner?: string;
  createdAt: number;
  revokedAt?: number;
  /** From dbgov.yaml (read-only here) or created through the API. */
  origin: 'config' | 'api';
}

/** `dbgov revoke --identity`: the identity's broker logins issued until then no longer work. */
export interface TokenRevocationRecord {
  identity: string;
  /** Broker tokens issued at or before this instant (epoch ms) are refused. */
  revokedAt: number;
  revokedBy: string;
}

/** A short-lived database role created for one identity and session. */
export interface DbRoleRecord {
  target: string;
  role: string;
  identity: string;
  sessionId: string;
  createdAt: number;
  expiresAt: number;
  droppedAt?: number;
}

export interface Store {
  readonly kind: 'embedded' | 'postgres';
  readonly audit: AuditLog;

  putCredential(c: CredentialRecord): Promise<void>;
  getCredential(id: string): Promise<CredentialRecord | undefined>;
  /** Revokes by credential id, identity id or session id; returns the credentials revoked. */
  revokeCredentials(by: { credentialId?: string; identity?: string }, actor: string, at: number): Promise<CredentialRecord[]>;

  /**
   * Broker access tokens of `identity` issued at or before `at` stop working (revoking an identity
   * must also stop a stolen login from minting new credentials). Later logins are not affected.
   */
  revokeTokens(identity: string, at: number, actor: string): Promise<void>;
  /** When `identity`'s broker tokens were last revoked, if ever. */
  tokensRevokedAt(identity: string): Promise<number | undefined>;

  putRequest(r: ApprovalRequest): Promise<void>;
  getRequest(id: string): Promise<ApprovalRequest | undefined>;
  listRequests(filter: { status?: RequestStatus; type?: ApprovalRequest['type'] }): Promise<ApprovalRequest[]>;
  /**
   * Compare-and-set update: applies `fn` to the current record and stores the result atomically
   * (two approvers on two brokers must not lose a vote).
   */
  updateRequest(id: string, fn: (r: ApprovalRequest) => ApprovalRequest): Promise<ApprovalRequest>;

  putServiceAccount(a: ServiceAccountRecord): Promise<void>;
  listServiceAccounts(): Promise<ServiceAccountRecord[]>;
  findServiceAccountByTokenHash(hash: string): Promise<ServiceAccountRecord | undefined>;

  putDbRole(r: DbRoleRecord): Promise<void>;
  listDbRoles(filter: { target?: string; live?: boolean }): Promise<DbRoleRecord[]>;

  /** Notifies about changes made by any broker sharing this store (approvals, revocations). */
  watch(listener: (change: { type: 'request' | 'credential'; id: string }) => void): () => void;

  close(): Promise<void>;
}
