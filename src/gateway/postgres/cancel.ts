/**
 * Query cancellation. Clients only ever see gateway-issued (pid, key) pairs; the registry maps
 * them to the upstream's real ones, so a client can neither learn nor guess a real backend key.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Logger } from '../../shared/logger.js';
import type { UpstreamEndpoint } from '../engine.js';
import * as ser from './protocol/serializer.js';
import { openSocket } from './upstream.js';

export interface CancelTarget {
  upstream: UpstreamEndpoint;
  pid: number;
  key: number;
  /** Only this identity may cancel the session's queries. */
  identityId: string;
}

export class CancelRegistry {
  private readonly entries = new Map<string, CancelTarget>();

  /** Issues a fresh gateway (pid, key) for one session. */
  register(target: CancelTarget): { pid: number; key: number } {
    for (;;) {
      const pid = randomInt(1, 0x7fffffff);
      const key = randomBytes(4).readInt32BE(0);
      const id = slot(pid, key);
      if (this.entries.has(id)) continue;
      this.entries.set(id, target);
      return { pid, key };
    }
  }

  unregister(pid: number, key: number): void {
    this.entries.delete(slot(pid, key));
  }

  /** The session's target, only for the identity that owns it. */
  lookup(pid: number, key: number, identityId: string): CancelTarget | undefined {
    const target = this.entries.get(slot(pid, key));
    // Another user's credential must not cancel this user's queries, even with the right key.
    if (target === undefined || target.identityId !== identityId) return undefined;
    return target;
  }

  get size(): number {
    return this.entries.size;
  }
}

const slot = (pid: number, key: number): string => `${pid}:${key}`;

/** Sends the real CancelRequest upstream. Best effort, like libpq: failures are only logged. */
export async function sendCancel(target: CancelTarget, log: Logger): Promise<void> {
  try {
    const socket = await openSocket(target.upstream, AbortSignal.timeout(target.upstream.connectTimeoutMs));
    socket.on('error', () => socket.destroy());
    // The server closes the connection once it has read the request; waiting for that makes
    // the cancel observable to whoever awaits this.
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end(ser.cancelRequest(target.pid, target.key));
    });
  } catch (err) {
    log.warn({ err }, 'cancel request to upstream failed');
  }
}
