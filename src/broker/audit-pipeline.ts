/**
 * Everything that happens to the audit log after the fact: one SinkRunner per configured sink,
 * each reading the log from its durable cursor, and the retention timer. None of it is on the
 * statement path: an append only notifies the runners, and a sink that is down keeps its backlog
 * in the log instead of in memory.
 */
import { join } from 'node:path';
import { natsSink } from '../audit/sinks/nats.js';
import { SinkRunner, type SinkTransport } from '../audit/sinks/runner.js';
import { syslogSink } from '../audit/sinks/syslog.js';
import { webhookSink } from '../audit/sinks/webhook.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { EmbeddedStore } from '../store/embedded.js';
import type { AuditConfig, AuditSinkConfig } from './config.js';
import { makeDirSync } from '../shared/dirs.js';

/** How often retention looks for prunable segments; it also runs once at start. */
const RETENTION_CHECK_MS = 60 * 60_000;

export interface AuditPipeline {
  /** Applies the retention policy now (also runs on a timer); resolves with what was pruned. */
  pruneNow(): Promise<{ removedSegments: number; firstSeq: number } | null>;
  stop(): Promise<void>;
}

export function transportFor(sink: AuditSinkConfig): SinkTransport {
  switch (sink.type) {
    case 'webhook':
      return webhookSink({ url: sink.url, secret: sink.secret, timeoutMs: sink.timeoutMs });
    case 'syslog':
      return syslogSink({ host: sink.host, port: sink.port, ...(sink.tls ? { tls: sink.tls } : {}), ...(sink.appName ? { appName: sink.appName } : {}) });
    case 'nats':
      return natsSink({ servers: sink.servers, ...(sink.stream ? { stream: sink.stream } : {}), ...(sink.subjectPrefix ? { subjectPrefix: sink.subjectPrefix } : {}) });
    default: {
      const never: never = sink;
      throw new Error(`unhandled sink type ${String((never as { type: unknown }).type)}`);
    }
  }
}

export function startAuditPipeline(o: { store: EmbeddedStore; config: AuditConfig; log: Logger; clock?: Clock }): AuditPipeline {
  const clock = o.clock ?? systemClock;
  const cursorDir = join(o.store.dir, 'sinks');
  if (o.config.sinks.length > 0) makeDirSync(cursorDir, 0o700);
  const runners = o.config.sinks.map((sink) => {
    const runner = new SinkRunner({
      source: o.store.audit,
      transport: transportFor(sink),
      cursorFile: join(cursorDir, `${sink.name}.cursor.json`),
      ...(sink.batchSize ? { batchSize: sink.batchSize } : {}),
      log: o.log.child({ sink: sink.name }),
    });
    runner.start();
    return runner;
  });

  let pruning: Promise<{ removedSegments: number; firstSeq: number } | null> | undefined;
  const pruneNow = (): Promise<{ removedSegments: number; firstSeq: number } | null> => {
    const keepMs = o.config.retentionMs;
    if (keepMs === null) return Promise.resolve(null);
    // One prune at a time: two would race to delete the same segments.
    pruning ??= o.store.audit
      .prune(clock.now() - keepMs)
      .then((r) => {
        if (r.removedSegments > 0) o.log.info({ ...r, retentionMs: keepMs }, 'audit retention pruned old segments');
        return r;
      })
      .finally(() => {
        pruning = undefined;
      });
    return pruning;
  };
  let stopped = false;
  const pruneQuietly = (): void => {
    if (stopped) return;
    pruneNow().catch((e: unknown) => {
      // Retention failing keeps more than policy says, never less: log it and try at the next tick.
      o.log.error({ err: e }, 'audit retention failed');
    });
  };
  const timer = o.config.retentionMs === null ? undefined : setInterval(pruneQuietly, RETENTION_CHECK_MS).unref();
  if (timer) setImmediate(pruneQuietly);

  return {
    pruneNow,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await pruning?.catch(() => undefined);
      await Promise.all(runners.map((r) => r.stop().catch((e: unknown) => o.log.warn({ err: e }, 'audit sink did not stop cleanly'))));
    },
  };
}
