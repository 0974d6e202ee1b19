/**
 * Syslog sink: RFC 5424 messages over TCP with octet-counting framing (RFC 6587 §3.4.1), or over
 * TLS (RFC 5425). Facility 13 (log audit); severity warning for refused statements, else info.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { UnreachableError } from '../../shared/errors.js';
import type { AuditEvent } from '../event.js';
import type { SinkTransport } from './runner.js';

export interface SyslogSinkOptions {
  host: string;
  port: number;
  /** TLS options; omit for plain TCP. */
  tls?: ConnectionOptions;
  appName?: string;
  hostname?: string;
}

const FACILITY_LOG_AUDIT = 13;
const SEVERITY = { warning: 4, info: 6 } as const;
/** Private enterprise number reserved for documentation (RFC 5612), used for the SD-ID. */
const SD_ID = 'dbgov@32473';

function sdEscape(v: string): string {
  return v.replace(/["\\\]]/g, (c) => `\\${c}`);
}

export function formatSyslog(e: AuditEvent, host: string, app: string): string {
  const refused = e.statement && ['block', 'denied', 'timeout'].includes(e.statement.decision);
  const pri = FACILITY_LOG_AUDIT * 8 + (refused || e.kind === 'login.failed' || e.kind === 'session.refused' || e.kind === 'api.refused' ? SEVERITY.warning : SEVERITY.info);
  const msgId = e.kind.slice(0, 32);
  const sd = `[${SD_ID} seq="${e.seq}" id="${sdEscape(e.id)}" hash="${e.hash}"${e.identity ? ` identity="${sdEscape(e.identity.id)}"` : ''}]`;
  // The BOM marks MSG as UTF-8, as RFC 5424 §6.4 asks.
  return `<${pri}>1 ${e.time} ${host} ${app} - ${msgId} ${sd} \uFEFF${JSON.stringify(e)}`;
}

export function syslogSink(opts: SyslogSinkOptions): SinkTransport {
  const host = (opts.hostname ?? hostname()).replace(/\s/g, '') || '-';
  const app = opts.appName ?? 'dbgov';
  let socket: Socket | undefined;

  const open = () =>
    new Promise<Socket>((resolve, reject) => {
      const s = opts.tls ? tlsConnect({ host: opts.host, port: opts.port, ...opts.tls }) : tcpConnect({ host: opts.host, port: opts.port });
      const onError = (err: Error) => reject(new UnreachableError('sink.syslog', `Cannot reach syslog at ${opts.host}:${opts.port}: ${err.message}`, { cause: err }));
      s.once('error', onError);
      s.once(opts.tls ? 'secureConnect' : 'connect', () => {
        s.off('error', onError);
        // A later failure only drops the socket; the next delivery reconnects and resends.
        s.on('error', () => s.destroy());
        s.on('close', () => {
          if (socket === s) socket = undefined;
        });
        resolve(s);
      });
    });

  return {
    name: `syslog ${opts.host}:${opts.port}`,
    async deliver(events) {
      socket ??= await open();
      const s = socket;
      const frames = events.map((e) => {
        const msg = formatSyslog(e, host, app);
        return `${Buffer.byteLength(msg)} ${msg}`;
      });
      await new Promise<void>((resolve, reject) => {
        s.write(frames.join(''), (err) => (err ? reject(err) : resolve()));
      });
      if (s.destroyed) throw new UnreachableError('sink.syslog', 'The syslog connection closed during delivery.');
    },
    async close() {
      socket?.end();
      socket = undefined;
    },
  };
}
