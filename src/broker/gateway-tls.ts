/**
 * TLS material for the gateway listener. Configured cert/key are used as given; otherwise a
 * self-signed pair is generated once in the store folder (0600) and the CLI pins its SHA-256
 * fingerprint, which it learns from the broker API (`/v1/info`).
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirSync } from '../shared/dirs.js';

export interface GatewayTls {
  cert: string;
  key: string;
  /** Upper-case hex with colons, as X509Certificate.fingerprint256 prints it. */
  fingerprint256: string;
}

export async function loadGatewayTls(dir: string, configured?: { cert: string; key: string }): Promise<GatewayTls> {
  if (configured) return { ...configured, fingerprint256: new X509Certificate(configured.cert).fingerprint256 };
  makeDirSync(dir, 0o700);
  const certPath = join(dir, 'gateway-cert.pem');
  const keyPath = join(dir, 'gateway-key.pem');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    // Loaded only here, on a broker's first start: its X.509 stack is ~3 MB of heap for good.
    const { generate } = await import('selfsigned');
    const pems = await generate([{ name: 'commonName', value: 'dbgov-gateway' }], {
      keySize: 2048,
      days: 825,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
    } as Parameters<typeof generate>[1]);
    writeFileSync(keyPath, pems.private, { mode: 0o600 });
    writeFileSync(certPath, pems.cert, { mode: 0o644 });
  }
  const cert = readFileSync(certPath, 'utf8');
  return { cert, key: readFileSync(keyPath, 'utf8'), fingerprint256: new X509Certificate(cert).fingerprint256 };
}
