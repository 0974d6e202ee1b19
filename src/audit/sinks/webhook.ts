/**
 * Webhook sink: POSTs batches as `{"events":[…]}`. The receiver authenticates them with
 * `X-Dbgov-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` and rejects stale
 * `X-Dbgov-Timestamp` values, which stops replays of a captured batch.
 */
import { createHmac } from 'node:crypto';
import { UnreachableError } from '../../shared/errors.js';
import type { AuditEvent } from '../event.js';
import type { SinkTransport } from './runner.js';

export interface WebhookSinkOptions {
  url: string;
  secret: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export function webhookSink(opts: WebhookSinkOptions): SinkTransport {
  return {
    name: `webhook ${new URL(opts.url).host}`,
    async deliver(events: AuditEvent[]) {
      const body = JSON.stringify({ events });
      const timestamp = String(Math.floor(Date.now() / 1000));
      const res = await fetch(opts.url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json',
          'x-dbgov-timestamp': timestamp,
          'x-dbgov-signature': webhookSignature(opts.secret, timestamp, body),
          ...opts.headers,
        },
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new UnreachableError('sink.webhook', `The audit webhook answered ${res.status}.`);
    },
  };
}
