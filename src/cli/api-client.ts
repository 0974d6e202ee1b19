/**
 * Typed client for the broker HTTP API (src/broker/api-types.ts). Every failure leaves here as a
 * DbgovError whose class carries the CLI exit code, so commands never look at HTTP statuses.
 */
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type {
  AccessPending,
  ActivityEvent,
  ApiError,
  ApprovalView,
  AuditCheckpointsResponse,
  AuditExportFormat,
  AuditPublicKeyResponse,
  AuditQuery,
  AuditReportFormat,
  AuditSearchResponse,
  CreateServiceAccountRequest,
  CreateServiceAccountResponse,
  CredentialRequest,
  CredentialResponse,
  ExchangeRequest,
  ExchangeResponse,
  InfoResponse,
  RequestsResponse,
  RevokeRequest,
  RevokeResponse,
  ServiceAccountRevokeResponse,
  ServiceAccountsResponse,
  SessionsResponse,
  TargetsResponse,
  WhoamiResponse,
} from '../broker/api-types.js';
import type { AuditEvent } from '../audit/event.js';
import {
  AuthError,
  DbgovError,
  DeniedError,
  ExitCodes,
  NotFoundError,
  UnreachableError,
  UpstreamError,
  UsageError,
} from '../shared/errors.js';

export interface ApiClientOptions {
  /** Base URL, e.g. http://127.0.0.1:7080. */
  broker: string;
  token?: string;
  /**
   * Called once when the broker rejects the token as expired or invalid. Returns a fresh broker
   * token (after an IdP refresh and /v1/auth/exchange), or undefined when none can be had.
   */
  refresh?: () => Promise<string | undefined>;
  /** What to tell the user when the broker rejects the token; depends on where it came from. */
  authActions?: string[];
  /** Time allowed until response headers arrive. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;

type Method = 'GET' | 'POST' | 'DELETE';

interface CallOptions {
  body?: unknown;
  query?: Record<string, string | number | string[] | undefined>;
  auth?: boolean;
  signal?: AbortSignal;
  accept?: string;
}

export class ApiClient {
  readonly broker: string;
  private token: string | undefined;
  private readonly refresh: ApiClientOptions['refresh'];
  private readonly authActions: string[];
  private readonly ownAuthActions: boolean;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    assertBrokerUrl(options.broker);
    this.broker = options.broker.replace(/\/+$/, '');
    this.token = options.token;
    this.refresh = options.refresh;
    this.authActions = options.authActions ?? ['run `dbgov login`'];
    this.ownAuthActions = options.authActions !== undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  info(): Promise<InfoResponse> {
    return this.json('GET', '/v1/info', { auth: false });
  }
  exchange(request: ExchangeRequest): Promise<ExchangeResponse> {
    return this.json('POST', '/v1/auth/exchange', { auth: false, body: request });
  }
  whoami(): Promise<WhoamiResponse> {
    return this.json('GET', '/v1/whoami');
  }
  targets(): Promise<TargetsResponse> {
    return this.json('GET', '/v1/targets');
  }
  /** 201 → issued; 202 → pending approval (poll accessRequest). */
  requestCredential(request: CredentialRequest): Promise<CredentialResponse | AccessPending> {
    return this.json('POST', '/v1/credentials', { body: request });
  }
  accessRequest(id: string): Promise<CredentialResponse | AccessPending> {
    return this.json('GET', `/v1/access-requests/${encodeURIComponent(id)}`);
  }
  revoke(request: RevokeRequest): Promise<RevokeResponse> {
    return this.json('POST', '/v1/revoke', { body: request });
  }
  requests(status?: string): Promise<RequestsResponse> {
    return this.json('GET', '/v1/requests', { query: { status } });
  }
  request(id: string): Promise<ApprovalView> {
    return this.json('GET', `/v1/requests/${encodeURIComponent(id)}`);
  }
  approve(id: string, comment?: string): Promise<ApprovalView> {
    return this.json('POST', `/v1/requests/${encodeURIComponent(id)}/approve`, { body: comment === undefined ? {} : { comment } });
  }
  deny(id: string, reason: string): Promise<ApprovalView> {
    return this.json('POST', `/v1/requests/${encodeURIComponent(id)}/deny`, { body: { reason } });
  }
  auditSearch(query: AuditQuery): Promise<AuditSearchResponse> {
    return this.json('GET', '/v1/audit/events', { query: auditQueryString(query) });
  }
  /** The report as the broker renders it (it holds the store and checks the auditor group). */
  async auditReport(format: AuditReportFormat, query: Pick<AuditQuery, 'since' | 'until'>): Promise<string> {
    return (await this.send('GET', '/v1/audit/report', { query: { ...auditQueryString(query), format }, accept: '*/*' })).text();
  }
  auditPublicKey(): Promise<AuditPublicKeyResponse> {
    return this.json('GET', '/v1/audit/public-key');
  }
  auditCheckpoints(): Promise<AuditCheckpointsResponse> {
    return this.json('GET', '/v1/audit/checkpoints');
  }
  sessions(): Promise<SessionsResponse> {
    return this.json('GET', '/v1/sessions');
  }
  createServiceAccount(request: CreateServiceAccountRequest): Promise<CreateServiceAccountResponse> {
    return this.json('POST', '/v1/service-accounts', { body: request });
  }
  serviceAccounts(): Promise<ServiceAccountsResponse> {
    return this.json('GET', '/v1/service-accounts');
  }
  revokeServiceAccount(id: string): Promise<ServiceAccountRevokeResponse> {
    return this.json('DELETE', `/v1/service-accounts/${encodeURIComponent(id)}`);
  }

  /** The export body as a Node stream, so callers can pipe millions of events in constant memory. */
  async auditExport(format: AuditExportFormat, query: AuditQuery, signal?: AbortSignal): Promise<Readable> {
    const res = await this.send('GET', '/v1/audit/export', { query: { ...auditQueryString(query), format }, signal });
    if (!res.body) return Readable.from([]);
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }

  /** The export in jsonl, parsed one event at a time: for verify and reports, in constant memory. */
  async *auditEvents(query: AuditQuery, signal?: AbortSignal): AsyncGenerator<AuditEvent> {
    const body = await this.auditExport('jsonl', query, signal);
    for await (const line of createInterface({ input: body, crlfDelay: Infinity })) {
      if (line.trim() !== '') yield JSON.parse(line) as AuditEvent;
    }
  }

  /** The tunnel's live view: server-sent events, one ActivityEvent per `data:` record. */
  async *activity(credentialId: string, signal?: AbortSignal): AsyncGenerator<ActivityEvent> {
    const res = await this.send('GET', '/v1/activity', { query: { credential: credentialId }, signal, accept: 'text/event-stream' });
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffered.search(/\r?\n\r?\n/)) !== -1) {
        const record = buffered.slice(0, end);
        buffered = buffered.slice(end).replace(/^\r?\n\r?\n/, '');
        const data = record
          .split(/\r?\n/)
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, ''))
          .join('\n');
        if (data) yield JSON.parse(data) as ActivityEvent;
      }
    }
  }

  private async json<T>(method: Method, path: string, options: CallOptions = {}): Promise<T> {
    const res = await this.send(method, path, options);
    return (await res.json()) as T;
  }

  private async send(method: Method, path: string, options: CallOptions = {}): Promise<Response> {
    let res = await this.fetchOnce(method, path, options);
    // One silent retry after a refresh: an expired login should not cost the user a command.
    if (res.status === 401 && options.auth !== false && this.token !== undefined && this.refresh) {
      const fresh = await this.refresh();
      if (fresh !== undefined) {
        this.token = fresh;
        await res.body?.cancel();
        res = await this.fetchOnce(method, path, options);
      }
    }
    if (!res.ok) throw await this.toError(res);
    return res;
  }

  private async fetchOnce(method: Method, path: string, options: CallOptions): Promise<Response> {
    const url = new URL(this.broker + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, v);
      else url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.auth !== false && this.token !== undefined) headers.authorization = `Bearer ${this.token}`;

    // The timeout covers reaching the broker and getting headers; a long export body may take minutes.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
    try {
      return await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal,
      });
    } catch (e) {
      if (options.signal?.aborted) throw e;
      throw this.unreachable(timeout.signal.aborted ? `no answer within ${Math.round(this.timeoutMs / 1000)}s` : describeNetworkError(e), e);
    } finally {
      clearTimeout(timer);
    }
  }

  private unreachable(why: string, cause: unknown): UnreachableError {
    return new UnreachableError('unreachable', `dbgov: cannot reach the broker at ${this.broker} (${why})`, {
      cause,
      actions: [
        'check DBGOV_BROKER or --broker: it must be the broker API address, e.g. http://127.0.0.1:7080',
        'start a broker with `dbgov broker start --config dbgov.yaml`, or try everything locally with `dbgov demo`',
      ],
    });
  }

  private async toError(res: Response): Promise<DbgovError> {
    const text = await res.text().catch(() => '');
    let body: ApiError['error'] | undefined;
    try {
      body = (JSON.parse(text) as Partial<ApiError>).error;
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null || typeof body.message !== 'string') {
      // Not the broker's error shape: DBGOV_BROKER points at something else (the gateway port,
      // the IdP, a path under the API, a proxy page). Say so instead of "404 Not Found".
      return new UnreachableError('not_a_broker', `dbgov: ${this.broker} answered ${`${res.status} ${res.statusText}`.trim()}, which is not an answer of the dbgov broker API`, {
        actions: [
          'check DBGOV_BROKER or --broker: it must be the API address `dbgov broker start` prints (its `api` line), with no path, e.g. http://127.0.0.1:7080',
          'the gateway address (where tunnels connect) and the identity provider are not it',
        ],
        detail: { status: res.status },
      });
    }
    const code = body.code ?? `http_${res.status}`;
    const message = body.message;
    const actions = body.actions ?? [];
    const detail = { status: res.status };
    switch (res.status) {
      case 400:
      case 422:
        return new UsageError(message, { actions, detail });
      case 401:
        // The CLI knows where the token came from; the broker does not, and its generic advice
        // can be wrong: "run dbgov login" does nothing while DBGOV_TOKEN is set, since it wins.
        return new AuthError(code, message, { actions: this.ownAuthActions ? this.authActions : [...actions, ...this.authActions.filter((a) => !actions.includes(a))], detail });
      case 403:
        return new DeniedError(code, message, { actions, detail });
      case 404:
        return new NotFoundError(code, message, { actions, detail });
      case 409:
        return new DbgovError(code, message, { exitCode: ExitCodes.conflict, actions, detail });
      case 408:
      case 504:
        return new DbgovError(code, message, { exitCode: ExitCodes.timeout, actions, detail });
      case 502:
        return new UpstreamError(code, message, { actions, detail });
      case 503:
        return new UnreachableError(code, message, { actions, detail });
      default:
        return new DbgovError(code, message, { actions, detail });
    }
  }
}

/** Times go as ISO 8601: the broker also reads durations there, so a bare epoch number would be misread. */
function auditQueryString(query: AuditQuery): Record<string, string | number | undefined> {
  const { since, until, kind, whole, ...rest } = query;
  return {
    ...rest,
    whole: whole ? '1' : undefined,
    since: since === undefined ? undefined : new Date(since).toISOString(),
    until: until === undefined ? undefined : new Date(until).toISOString(),
    kind: kind?.join(','),
  };
}

export function assertBrokerUrl(broker: string): void {
  if (!URL.canParse(broker) || !/^https?:$/.test(new URL(broker).protocol)) {
    throw new UsageError(`"${broker}" is not a broker address`, {
      actions: ['set DBGOV_BROKER or --broker to the broker API URL, e.g. http://127.0.0.1:7080'],
    });
  }
}

function describeNetworkError(e: unknown): string {
  const cause = (e as { cause?: { code?: string } } | undefined)?.cause;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused: nothing is listening there';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    case 'ECONNRESET':
      return 'the connection was reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'the connection timed out';
    default:
      return cause?.code ?? (e instanceof Error ? e.message : String(e));
  }
}
