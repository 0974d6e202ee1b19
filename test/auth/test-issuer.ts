/**
 * A real JWT issuer for tests: discovery and JWKS over HTTP on port 0, plus a signer. Used where
 * a test needs tokens oidc-provider will not mint (expired, other audiences, CI-style claims).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TestIssuer {
  issuer: string;
  jwksUri: string;
  /** Signs with the issuer's key unless `key` (an attacker's key) is given. */
  sign(claims: JWTPayload, opts?: { key?: CryptoKey; kid?: string; alg?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startTestIssuer(opts: { alg?: 'ES256' | 'RS256'; path?: string; discovery?: boolean } = {}): Promise<TestIssuer> {
  const alg = opts.alg ?? 'ES256';
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = 'test-key-1';
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  let issuer = '';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const base = opts.path ?? '';
    if (path === `${base}/.well-known/openid-configuration` && opts.discovery !== false) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: [alg] }));
    } else if (path === `${base}/jwks`) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}${opts.path ?? ''}`;
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    sign: (claims, o = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? alg, kid: o.kid ?? kid, typ: 'JWT' }).sign(o.key ?? privateKey),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);
