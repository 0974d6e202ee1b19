/**
 * NATS JetStream sink: publishes each event to `<subjectPrefix>.<kind>` and waits for the
 * stream's ack. The event id is the message id, so JetStream drops the duplicates that
 * at-least-once redelivery sends inside its dedup window. Creates the stream if missing.
 */
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { SinkTransport } from './runner.js';

export interface NatsSinkOptions {
  servers: string | string[];
  stream?: string;
  subjectPrefix?: string;
}

export function natsSink(opts: NatsSinkOptions): SinkTransport {
  const stream = opts.stream ?? 'DBGOV_AUDIT';
  const prefix = opts.subjectPrefix ?? 'dbgov.audit';
  let conn: { nc: NatsConnection; js: JetStreamClient } | undefined;

  const open = async () => {
    const nc = await connect({ servers: opts.servers, reconnect: false });
    try {
      const jsm = await jetstreamManager(nc);
      try {
        await jsm.streams.info(stream);
      } catch {
        await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
      }
      return { nc, js: jetstream(nc) };
    } catch (e) {
      await nc.close();
      throw e;
    }
  };

  return {
    name: `nats ${stream}`,
    async deliver(events) {
      if (conn?.nc.isClosed()) conn = undefined;
      conn ??= await open();
      const { js } = conn;
      try {
        await Promise.all(events.map((e) => js.publish(`${prefix}.${e.kind}`, JSON.stringify(e), { msgID: e.id })));
      } catch (e) {
        const c = conn;
        conn = undefined;
        await c.nc.close().catch(() => undefined);
        throw e;
      }
    },
    async close() {
      await conn?.nc.close();
      conn = undefined;
    },
  };
}
