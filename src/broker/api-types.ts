/**
 * The broker's HTTP API (v1): request and response bodies. The CLI (src/cli/api-client.ts) and
 * the server (src/broker/http.ts) both code against these types.
 *
 * Auth: `Authorization: Bearer <token>` where token is a broker access token (from
 * /v1/auth/exchange) or a service-account token (DBGOV_TOKEN). Errors are
 * `{ error: { code, message, actions } }` with a 4xx/5xx status.
 *
 *   GET  /v1/info                          → InfoResponse            (no auth)
 *   POST /v1/auth/exchange                 ExchangeRequest → ExchangeResponse (no auth)
 *   GET  /v1/whoami                        → WhoamiResponse
 *   GET  /v1/targets                       → TargetsResponse
 *   POST /v1/credentials                   CredentialRequest → CredentialResponse (201) | AccessPending (202)
 *   GET  /v1/access-requests/:id           → AccessPending | CredentialResponse (once approved)
 *   POST /v1/revoke                        RevokeRequest → RevokeResponse
 *   GET  /v1/activity?credential=ID        → text/event-stream of ActivityEvent (the tunnel's live view)
 *   GET  /v1/requests?status=pending       → RequestsResponse
 *   GET  /v1/requests/:id                  → ApprovalView
 *   POST /v1/requests/:id/approve          { comment? } → ApprovalView
 *   POST /v1/requests/:id/deny             { reason } → ApprovalView
 *   GET  /v1/audit/events?…filters&limit&cursor → AuditSearchResponse
 *   GET  /v1/audit/export?format=jsonl|csv|ocsf&since&until → streamed body
 *   GET  /v1/audit/report?format=md|html|json&since&until → report body
 *   GET  /v1/audit/public-key              → { publicKeyPem, keyId }
 *   GET  /v1/audit/checkpoints             → AuditCheckpointsResponse (auditors)
 *   GET  /v1/sessions                      → SessionsResponse
 *   POST /v1/service-accounts              { name, groups, kind } → { account, token }
 *   GET  /v1/service-accounts              → { accounts }
 *   DELETE /v1/service-accounts/:id        → { account }
 *   GET  /healthz                          → { ok: true }
 *   GET  /metrics                          → Prometheus text (auditors and admins; see metrics.ts)
 */
import type { CheckpointRecord } from '../audit/checkpoint.js';
import type { AuditEvent } from '../audit/event.js';
import type { AccessLevel, EngineName, Identity, IdentityKind } from '../shared/types.js';

export interface ApiError {
  error: { code: string; message: string; actions: string[] };
}

export interface InfoResponse {
  version: string;
  brokerId: string;
  /** The OIDC issuer the CLI does device login against, and the public client to use. */
  oidc: { issuer: string; clientId: string; scopes: string[] } | null;
  /** Where tunnels connect, and the SHA-256 fingerprint of the gateway's TLS certificate to pin. */
  gateway: { host: string; port: number; certFingerprint256: string };
  auditPublicKeyPem: string;
}

export type ExchangeRequest =
  | { grant: 'oidc'; idToken: string; accessToken?: string }
  | { grant: 'workload'; idToken: string };

export interface ExchangeResponse {
  accessToken: string;
  expiresAt: number;
  identity: Identity;
}

export interface WhoamiResponse {
  identity: Identity;
  expiresAt: number | null;
}

export interface TargetView {
  name: string;
  engine: EngineName;
  labels: Record<string, string>;
  database: string;
  /** Access levels this identity may ask for, and whether each needs approval. */
  access: { level: AccessLevel; allowed: boolean; requiresApproval: boolean; rule: string | null }[];
}
export interface TargetsResponse {
  targets: TargetView[];
}

export interface CredentialRequest {
  target: string;
  database?: string;
  access?: AccessLevel;
  ttlSeconds?: number;
  reason?: string;
  /** Public JWK (Ed25519, `kty: OKP`) of the key the CLI holds. */
  publicKey: Record<string, unknown>;
  /** Start an agent session acting for the caller. */
  agent?: string;
  /** Just-in-time elevation: the approved access request this credential spends. */
  requestId?: string;
}

export interface CredentialView {
  id: string;
  token: string;
  target: string;
  engine: EngineName;
  database: string;
  access: AccessLevel;
  identity: Identity;
  expiresAt: number;
}
export interface CredentialResponse {
  status: 'issued';
  credential: CredentialView;
  gateway: InfoResponse['gateway'];
}
export interface AccessPending {
  status: 'pending' | 'denied' | 'expired';
  requestId: string;
  rule: string;
  message: string;
}

export interface RevokeRequest {
  credentialId?: string;
  identity?: string;
  sessionId?: string;
}
export interface RevokeResponse {
  credentials: string[];
  sessions: string[];
}

/** One line of the tunnel's live view. */
export interface ActivityEvent {
  time: string;
  sessionId: string;
  type: 'session.start' | 'session.end' | 'statement' | 'held' | 'refused';
  decision?: 'allow' | 'block' | 'review' | 'approved' | 'denied' | 'timeout';
  statementKind?: string;
  rows?: number | null;
  durationMs?: number | null;
  message?: string;
  requestId?: string;
  maskedColumns?: string[];
}

export interface ApprovalView {
  id: string;
  type: 'statement' | 'access';
  status: string;
  requester: { id: string; kind: IdentityKind; groups: string[]; onBehalfOf?: { id: string } };
  target: string;
  database: string;
  reason?: string;
  sql?: string;
  tables?: string[];
  statementKind?: string;
  estimatedRows?: number | null;
  access?: { level: AccessLevel; ttlMs: number };
  rule: string;
  approvers: { groups: string[]; quorum: number };
  votes: { identity: string; decision: 'approve' | 'deny'; comment?: string; at: string }[];
  createdAt: string;
  expiresAt: string;
}
export interface RequestsResponse {
  requests: ApprovalView[];
}

export interface AuditSearchResponse {
  events: AuditEvent[];
  next?: string;
}

export interface SessionView {
  id: string;
  identity: { id: string; kind: IdentityKind };
  target: string;
  database: string;
  credentialId: string;
  startedAt: string;
  statements: number;
  client: string;
}
export interface SessionsResponse {
  sessions: SessionView[];
}

/** A service account as the API shows it. The token is never shown again after creation. */
export interface ServiceAccountView {
  id: string;
  name: string;
  groups: string[];
  kind: 'workload' | 'agent';
  createdAt: string;
  revokedAt?: string | null;
}
export interface CreateServiceAccountRequest {
  name: string;
  groups: string[];
  kind: 'workload' | 'agent';
}
export interface CreateServiceAccountResponse {
  account: ServiceAccountView;
  /** Shown once; the broker stores only its hash. */
  token: string;
}
export interface ServiceAccountsResponse {
  accounts: ServiceAccountView[];
}
export interface ServiceAccountRevokeResponse {
  account: ServiceAccountView;
}

export interface AuditPublicKeyResponse {
  publicKeyPem: string;
  keyId: string;
}

export interface AuditCheckpointsResponse {
  checkpoints: CheckpointRecord[];
}

export const AUDIT_EXPORT_FORMATS = ['jsonl', 'csv', 'ocsf'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

/**
 * Query string of GET /v1/audit/events, /v1/audit/export and /v1/audit/report: the AuditFilter
 * fields (session id as `session`, `kind` comma-separated), times on the wire as ISO 8601 (the
 * client converts these epoch-ms values), plus paging.
 */
export interface AuditQuery {
  identity?: string;
  identityKind?: IdentityKind;
  target?: string;
  database?: string;
  table?: string;
  column?: string;
  decision?: string;
  kind?: string[];
  session?: string;
  since?: number;
  until?: number;
  text?: string;
  limit?: number;
  cursor?: string;
  /**
   * The whole log or nothing (`dbgov audit verify`): for anyone but an auditor the broker narrows
   * a query to their own events, and a narrowed log reads as one with events cut out.
   */
  whole?: boolean;
}

export const AUDIT_REPORT_FORMATS = ['md', 'html', 'json'] as const;
export type AuditReportFormat = (typeof AUDIT_REPORT_FORMATS)[number];
