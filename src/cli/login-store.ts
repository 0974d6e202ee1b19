/**
 * Saved logins, one per broker URL, as the CLI commands see them: the auth module's token store
 * (keychain, else a 0600 file under DBGOV_HOME) plus a note of the last broker logged in to, which
 * is the default when neither --broker nor DBGOV_BROKER is set.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dbgovHome, normalizeBrokerUrl, type StoredLogin, type TokenStore } from '../auth/token-store.js';
import { makeDir } from '../shared/dirs.js';

export type SavedLogin = StoredLogin;

export interface LoginStore {
  load(broker: string): Promise<SavedLogin | undefined>;
  save(login: SavedLogin): Promise<void>;
  /** True when there was a login to remove. */
  remove(broker: string): Promise<boolean>;
  lastBroker(): Promise<string | undefined>;
}

const LAST_BROKER_FILE = 'last-broker';

export function loginStore(env: NodeJS.ProcessEnv = process.env): LoginStore {
  // Opened on first use: the keychain binding is native code that most commands never need.
  let opened: Promise<TokenStore> | undefined;
  const tokens = (): Promise<TokenStore> => (opened ??= import('../auth/token-store.js').then((m) => m.openTokenStore({ env })));
  const lastFile = join(dbgovHome(env), LAST_BROKER_FILE);
  const readLast = async (): Promise<string | undefined> => {
    try {
      return (await readFile(lastFile, 'utf8')).trim() || undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  };
  return {
    load: async (broker) => (await tokens()).load(broker),
    async save(login) {
      await (await tokens()).save(login);
      await makeDir(dbgovHome(env), 0o700);
      await writeFile(lastFile, `${normalizeBrokerUrl(login.brokerUrl)}\n`, { mode: 0o600 });
    },
    async remove(broker) {
      const removed = await (await tokens()).remove(broker);
      if ((await readLast()) === normalizeBrokerUrl(broker)) await rm(lastFile, { force: true });
      return removed;
    },
    lastBroker: readLast,
  };
}
