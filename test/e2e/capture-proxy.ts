/**
 * What the client really receives: a TCP proxy in front of a tunnel that keeps every byte sent
 * back, and a check that none of them carries a seeded PII value (in any case, or reversed, or
 * as the raw bytes of a hex-seeded value). Shared by the PostgreSQL and MySQL masking corpora.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

export class CaptureProxy {
  private server!: Server;
  private chunks: Buffer[] = [];
  port = 0;
  constructor(private readonly upstreamPort: number) {}
  async start(): Promise<void> {
    this.server = createServer((client: Socket) => {
      const up = netConnect(this.upstreamPort, '127.0.0.1');
      client.pipe(up);
      up.on('data', (d: Buffer) => {
        this.chunks.push(Buffer.from(d));
        client.write(d);
      });
      up.on('end', () => client.end());
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
      client.on('close', () => up.destroy());
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
  }
  take(): Buffer {
    const b = Buffer.concat(this.chunks);
    this.chunks = [];
    return b;
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

function forms(value: string): string[] {
  const rev = [...value].reverse().join('');
  return [...new Set([value, value.toUpperCase(), value.toLowerCase(), rev, rev.toUpperCase()])];
}

/** The forms of `pii` values found in `bytes`; empty when nothing leaked. */
export function leaks(pii: readonly string[], bytes: Buffer): string[] {
  const text = bytes.toString('latin1');
  const utf = bytes.toString('utf8');
  const out: string[] = [];
  for (const v of pii) {
    // Binary COPY and bytea carry raw bytes: look for the value's bytes as well as its text.
    const hex = /^[0-9a-f]{32}$/.test(v) ? Buffer.from(v, 'hex').toString('latin1') : undefined;
    for (const f of forms(v)) {
      if (utf.includes(f) || text.includes(f) || (hex && text.includes(hex))) out.push(f);
    }
  }
  return [...new Set(out)];
}
