/**
 * Which broker a command talks to, and as whom. DBGOV_TOKEN (a service account) wins over a
 * saved login so that CI needs no login step; --broker wins over DBGOV_BROKER, which wins over
 * the broker of the last login.
 */
import { systemClock, type Clock } from '../shared/clock.js';
import { AuthError, UnreachableError, UsageError } from '../shared/errors.js';
import type { IdpTokens } from '../auth/device-login.js';
import { ApiClient, assertBrokerUrl } from './api-client.js';
import { loginStore, type LoginStore, type SavedLogin } from './login-store.js';
import { relativeTime } from './render.js';

/** Renews IdP tokens with the refresh token; the auth module's refreshTokens by default. */
export type IdpRefresher = (idp: NonNullable<SavedLogin['idp']>) => Promise<IdpTokens>;

export type TokenSource = 'service-account' | 'login' | 'none';

export interface BrokerSession {
  broker: string;
  source: TokenSource;
  login: SavedLogin | undefined;
  client: ApiClient;
}

export interface SessionDeps {
  env: NodeJS.ProcessEnv;
  store: LoginStore;
  clock: Clock;
  refreshIdp?: IdpRefresher;
}

export function defaultSessionDeps(env: NodeJS.ProcessEnv = process.env): SessionDeps {
  return { env, store: loginStore(env), clock: systemClock, refreshIdp: refreshWithIdp };
}

/** Loaded on first use: the OIDC client is only needed when a login has to be renewed. */
const refreshWithIdp: IdpRefresher = async ({ issuer, clientId, tokens }) => {
  const { refreshTokens } = await import('../auth/device-login.js');
  return refreshTokens({ issuer, clientId, refreshToken: tokens.refreshToken ?? '' });
};

/** A token this close to expiry is treated as expired, so it does not die mid-request. */
const EXPIRY_MARGIN_MS = 30_000;

export async function resolveBroker(flag: string | undefined, deps: SessionDeps): Promise<string> {
  const broker = flag ?? nonEmpty(deps.env.DBGOV_BROKER) ?? (await deps.store.lastBroker());
  if (broker === undefined) {
    throw new UsageError('dbgov does not know which broker to talk to', {
      actions: [
        'set DBGOV_BROKER to the broker API address, e.g. export DBGOV_BROKER=http://127.0.0.1:7080',
        'or pass --broker URL, or log in once with `dbgov login --broker URL`',
        'no broker yet? `dbgov demo` runs one locally',
      ],
    });
  }
  assertBrokerUrl(broker);
  return broker;
}

/** The command that logs in to this broker, spelled so that it works when pasted. */
export function loginCommand(broker: string, deps: SessionDeps): string {
  return nonEmpty(deps.env.DBGOV_BROKER) === broker ? 'dbgov login' : `dbgov login --broker ${broker}`;
}

export interface ResolveOptions {
  broker?: string;
  /** false for commands that work without credentials (login, logout). */
  requireAuth?: boolean;
}

export async function resolveSession(options: ResolveOptions, deps: SessionDeps): Promise<BrokerSession> {
  const broker = await resolveBroker(options.broker, deps);
  const envToken = nonEmpty(deps.env.DBGOV_TOKEN);
  if (envToken !== undefined) {
    return {
      broker,
      source: 'service-account',
      login: undefined,
      client: new ApiClient({
        broker,
        token: envToken,
        authActions: [
          'check DBGOV_TOKEN: the token may be mistyped, expired or revoked',
          'an admin can issue a new service-account token with `dbgov admin service-account create NAME`',
          'to use your own login instead, unset DBGOV_TOKEN and run `dbgov login`',
        ],
      }),
    };
  }

  const login = await deps.store.load(broker);
  const relogin = `run \`${loginCommand(broker, deps)}\``;
  if (login === undefined) {
    if (options.requireAuth === false) return { broker, source: 'none', login: undefined, client: new ApiClient({ broker }) };
    // A pipeline that set DBGOV_ID_TOKEN has one step left: the exchange that `login --workload` does.
    const workload = nonEmpty(deps.env.DBGOV_ID_TOKEN) !== undefined;
    throw new AuthError('not_logged_in', `you are not logged in to the broker at ${broker}`, {
      actions: workload
        ? [`DBGOV_ID_TOKEN is set: run \`${loginCommand(broker, deps)} --workload\` once in this job to exchange it, then this command again`]
        : [relogin, 'in CI or for an agent, set DBGOV_TOKEN to a service-account token instead'],
    });
  }

  let current = login;
  const refresh = async (): Promise<string | undefined> => {
    const renewed = await refreshLogin(current, deps);
    if (renewed === undefined) return undefined;
    current = renewed;
    return renewed.brokerAccessToken;
  };

  let token: string | undefined = login.brokerAccessToken;
  if (login.expiresAt - EXPIRY_MARGIN_MS <= deps.clock.now()) {
    token = await refresh();
    if (token === undefined && options.requireAuth !== false) {
      throw new AuthError('login_expired', `your login to ${broker} expired ${relativeTime(login.expiresAt, deps.clock.now())}`, {
        actions: [relogin],
        detail: { expiresAt: new Date(login.expiresAt).toISOString() },
      });
    }
  }
  return {
    broker,
    source: 'login',
    login: current,
    client: new ApiClient({ broker, token, refresh, authActions: [relogin] }),
  };
}

/**
 * Renews the IdP tokens and trades the new ID token for a broker token. A refused refresh means
 * "log in again", so it returns undefined rather than throwing: the caller names the command.
 */
async function refreshLogin(login: SavedLogin, deps: SessionDeps): Promise<SavedLogin | undefined> {
  if (deps.refreshIdp === undefined || login.idp?.tokens.refreshToken === undefined) return undefined;
  try {
    const tokens = await deps.refreshIdp(login.idp);
    const exchanged = await new ApiClient({ broker: login.brokerUrl }).exchange({ grant: 'oidc', idToken: tokens.idToken, accessToken: tokens.accessToken });
    const renewed: SavedLogin = {
      brokerUrl: login.brokerUrl,
      brokerAccessToken: exchanged.accessToken,
      expiresAt: exchanged.expiresAt,
      identity: exchanged.identity,
      // Some IdPs rotate refresh tokens and some do not: keep the old one unless a new one came.
      idp: { ...login.idp, tokens: { ...tokens, refreshToken: tokens.refreshToken ?? login.idp.tokens.refreshToken } },
    };
    await deps.store.save(renewed);
    return renewed;
  } catch (e) {
    // A broker that is down is not an expired login: say what is really wrong.
    if (e instanceof UnreachableError) throw e;
    return undefined;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
