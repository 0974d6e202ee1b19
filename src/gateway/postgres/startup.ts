/**
 * The client's startup phase: answers SSLRequest and GSSENCRequest with 'N' (the link from the
 * tunnel is already TLS) and returns the StartupMessage or CancelRequest that follows.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import type { Duplex } from 'node:stream';
import { ProtocolError } from '../../shared/errors.js';
import { decodeStartup, type StartupPacket } from './protocol/frontend.js';
import type { FrameReader } from './protocol/reader.js';

/** How long a client may take to send its startup packet. */
export const STARTUP_TIMEOUT_MS = 15_000;
/** SSLRequest and GSSENCRequest may each come once before the StartupMessage. */
const MAX_NEGOTIATIONS = 2;
const DECLINE = Buffer.from('N');

export type FirstPacket = Exclude<StartupPacket, { kind: 'ssl' | 'gssenc' }>;

/**
 * Resolves with the packet, or null when the client went away or took too long. Leaves the
 * client paused, with any later bytes in `reader`, for the session to resume.
 */
export function readStartup(client: Duplex, reader: FrameReader, timeoutMs = STARTUP_TIMEOUT_MS): Promise<FirstPacket | null> {
  return new Promise((resolve, reject) => {
    let negotiations = 0;
    const finish = (result: FirstPacket | null, err?: unknown): void => {
      clearTimeout(timer);
      client.pause();
      client.off('data', onData);
      client.off('close', onClose);
      client.off('end', onClose);
      if (err === undefined) resolve(result);
      else reject(err);
    };
    const step = (): void => {
      try {
        for (;;) {
          const raw = reader.nextStartup();
          if (raw === null) return;
          const packet = decodeStartup(raw);
          if (packet.kind === 'ssl' || packet.kind === 'gssenc') {
            // A client looping on negotiation requests is not a PostgreSQL client.
            if (++negotiations > MAX_NEGOTIATIONS) throw new ProtocolError('too many encryption requests');
            client.write(DECLINE);
            continue;
          }
          return finish(packet);
        }
      } catch (err) {
        finish(null, err);
      }
    };
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      step();
    };
    const onClose = (): void => finish(null);
    const timer = setTimeout(() => finish(null), timeoutMs);
    client.on('data', onData);
    client.once('close', onClose);
    client.once('end', onClose);
    client.resume();
    step();
  });
}
