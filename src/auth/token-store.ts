/**
 * CLI side: where `dbgov login` keeps its tokens (per broker URL) and the Ed25519 key that
 * credentials are bound to. The OS keychain when one works; otherwise a 0600 JSON file under
 * $DBGOV_HOME (default ~/.config/dbgov). DBGOV_HOME set means "use this folder", so tests and
 * CI never touch the user's keychain.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Entry } from '@napi-rs/keyring';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { UsageError } from '../shared/errors.js';
import type { Identity } from '../shared/types.js';
import type { IdpTokens } from './device-login.js';
import { makeDir } from '../shared/dirs.js';

export interface StoredLogin {
  brokerUrl: string;
  brokerAccessToken: string;
  /** Epoch ms when the broker access token runs out. */
  expiresAt: number;
  identity: Identity;
  /** Absent for workload and service-account logins, which have no IdP session to refresh. */
  idp?: { issuer: string; clientId: string; tokens: IdpTokens };
}

export interface ClientKey {
  publicJwk: JWK;
  privateKey: KeyObject;
  /** RFC 7638 SHA-256 thumbprint: what credentials name in `cnf.jkt`. */
  thumbprint: string;
}

export interface TokenStore {
  readonly backend: 'keychain' | 'file';
  /** The file used by the file backend (for `dbgov whoami` and error messages). */
  readonly location: string;
  load(brokerUrl: string): Promise<StoredLogin | undefined>;
  save(login: StoredLogin): Promise<void>;
  remove(brokerUrl: string): Promise<boolean>;
  loadOrCreateClientKey(): Promise<ClientKey>;
}

export interface TokenStoreOptions {
  env?: NodeJS.ProcessEnv;
  /** Force a backend; by default the keychain is used only if DBGOV_HOME is unset and it passes a probe. */
  backend?: 'keychain' | 'file';
}

const SERVICE = 'dbgov';
const CLIENT_KEY_ACCOUNT = 'client-key';
const FILE_NAME = 'credentials.json';

export function dbgovHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.DBGOV_HOME || join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'dbgov');
}

/** One key per broker, whatever trailing slash or path case the user typed. */
export function normalizeBrokerUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

export async function openTokenStore(options: TokenStoreOptions = {}): Promise<TokenStore> {
  const env = options.env ?? process.env;
  const file = join(dbgovHome(env), FILE_NAME);
  const backend = options.backend ?? (env.DBGOV_HOME ? 'file' : keychainWorks() ? 'keychain' : 'file');
  const slots: Slots = backend === 'keychain' ? keychainSlots() : fileSlots(file);
  return {
    backend,
    location: backend === 'keychain' ? `OS keychain (service "${SERVICE}")` : file,
    async load(brokerUrl) {
      const raw = await slots.get(normalizeBrokerUrl(brokerUrl));
      return raw === undefined ? undefined : (JSON.parse(raw) as StoredLogin);
    },
    async save(login) {
      const key = normalizeBrokerUrl(login.brokerUrl);
      await slots.set(key, JSON.stringify({ ...login, brokerUrl: key }));
    },
    remove: (brokerUrl) => slots.delete(normalizeBrokerUrl(brokerUrl)),
    async loadOrCreateClientKey() {
      const raw = await slots.get(CLIENT_KEY_ACCOUNT);
      if (raw !== undefined) return clientKeyFrom(createPrivateKey({ key: JSON.parse(raw) as JsonWebKey, format: 'jwk' }));
      const privateKey = generateKeyPairSync('ed25519').privateKey;
      await slots.set(CLIENT_KEY_ACCOUNT, JSON.stringify(privateKey.export({ format: 'jwk' })));
      return clientKeyFrom(privateKey);
    },
  };
}

async function clientKeyFrom(privateKey: KeyObject): Promise<ClientKey> {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const publicJwk: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x as string };
  return { publicJwk, privateKey, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

interface Slots {
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string): Promise<void>;
  delete(name: string): Promise<boolean>;
}

/** Writes, reads back and deletes a random value: a keychain that cannot round-trip is not used. */
function keychainWorks(): boolean {
  try {
    const entry = new Entry(SERVICE, `probe-${process.pid}`);
    const value = randomBytes(8).toString('hex');
    entry.setPassword(value);
    const ok = entry.getPassword() === value;
    entry.deletePassword();
    return ok;
  } catch {
    return false;
  }
}

function keychainSlots(): Slots {
  return {
    get: async (name) => new Entry(SERVICE, name).getPassword() ?? undefined,
    set: async (name, value) => new Entry(SERVICE, name).setPassword(value),
    delete: async (name) => {
      try {
        return new Entry(SERVICE, name).deletePassword();
      } catch {
        return false;
      }
    },
  };
}

function fileSlots(file: string): Slots {
  const dir = join(file, '..');
  const read = async (): Promise<Record<string, string>> => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    // Tokens readable by other local users would let them act as this user: tighten first.
    if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
    try {
      return JSON.parse(text) as Record<string, string>;
    } catch (e) {
      throw new UsageError(`${file} is not valid JSON`, { cause: e, actions: [`delete ${file}, then run \`dbgov login\``] });
    }
  };
  const write = async (data: Record<string, string>): Promise<void> => {
    await makeDir(dir, 0o700);
    // Write a private temp file and rename it, so a crash never leaves a half-written or world-readable file.
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, file);
  };
  return {
    get: async (name) => (await read())[name],
    set: async (name, value) => write({ ...(await read()), [name]: value }),
    delete: async (name) => {
      const data = await read();
      if (!(name in data)) return false;
      delete data[name];
      await write(data);
      return true;
    },
  };
}
