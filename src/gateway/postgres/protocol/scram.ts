/**
 * SCRAM-SHA-256 client (RFC 5802, RFC 7677) as PostgreSQL speaks it: no channel binding, the
 * user name is taken from the startup packet, so the client-first message sends an empty one.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { UpstreamError } from '../../../shared/errors.js';

const pbkdf2Async = promisify(pbkdf2);
export const SCRAM_MECHANISM = 'SCRAM-SHA-256';
/** gs2 header for "client does not support channel binding". */
const GS2_HEADER = 'n,,';

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();

function scramError(problem: string): UpstreamError {
  return new UpstreamError('upstream-auth', `dbgov: upstream SCRAM authentication failed: ${problem}`, {
    actions: ['Check the target user and password in dbgov.yaml, then restart the broker.'],
  });
}

export class ScramClient {
  private readonly nonce: string;
  private readonly clientFirstBare: string;
  private serverSignature: Buffer | undefined;

  constructor(private readonly password: string, nonce = randomBytes(18).toString('base64')) {
    this.nonce = nonce;
    this.clientFirstBare = `n=,r=${this.nonce}`;
  }

  clientFirst(): Buffer {
    return Buffer.from(GS2_HEADER + this.clientFirstBare);
  }

  /** Answers server-first with client-final (carrying the proof). */
  async clientFinal(serverFirst: string): Promise<Buffer> {
    const attrs = parseAttributes(serverFirst);
    const serverNonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    // A server nonce that does not extend ours would let a replayed exchange through.
    if (serverNonce === undefined || !serverNonce.startsWith(this.nonce) || serverNonce.length === this.nonce.length) throw scramError('the server nonce does not extend the client nonce');
    if (salt === undefined || !Number.isInteger(iterations) || iterations < 1) throw scramError('malformed server-first message');
    const salted = await pbkdf2Async(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${serverNonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.allocUnsafe(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ signature[i];
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Checks server-final: a server that cannot prove it knows the password is not our database. */
  verifyServerFinal(serverFinal: string): void {
    const attrs = parseAttributes(serverFinal);
    const error = attrs.get('e');
    if (error !== undefined) throw scramError(`the server said ${error}`);
    const v = attrs.get('v');
    if (this.serverSignature === undefined || v === undefined) throw scramError('missing server signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.serverSignature.length || !timingSafeEqual(got, this.serverSignature)) throw scramError('the server signature does not match');
  }
}

function parseAttributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}
