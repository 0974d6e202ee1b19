/**
 * CLI side of `dbgov login`: the OAuth 2.0 device authorization grant (RFC 8628) against the
 * broker's OIDC issuer, and silent refresh. The tokens are handed to the broker, which verifies
 * the ID token itself (oidc-verify.ts); nothing here is trusted by the broker.
 */
import * as oidc from 'openid-client';
import open from 'open';
import { AuthError, UnreachableError } from '../shared/errors.js';
import { isLoopbackHost } from './oidc-verify.js';

export interface IdpTokens {
  idToken: string;
  accessToken: string;
  refreshToken?: string;
  /** Epoch ms when the access token runs out. */
  expiresAt: number;
}

export interface DevicePrompt {
  verificationUri: string;
  verificationUriComplete?: string;
  userCode: string;
}

export interface IdpClientOptions {
  issuer: string;
  clientId: string;
  signal?: AbortSignal;
}

export interface DeviceLoginOptions extends IdpClientOptions {
  scopes: string[];
  openBrowser: boolean;
  onPrompt(info: DevicePrompt): void;
}

async function discover({ issuer, clientId }: IdpClientOptions): Promise<oidc.Configuration> {
  const url = new URL(issuer);
  try {
    // Plain http only for a loopback issuer (the demo IdP); a remote one must use TLS.
    return await oidc.discovery(url, clientId, undefined, oidc.None(), isLoopbackHost(url) ? { execute: [oidc.allowInsecureRequests] } : undefined);
  } catch (e) {
    throw new UnreachableError('idp_unreachable', `cannot reach the identity provider at ${issuer}: ${(e as Error).message}`, {
      cause: e,
      actions: ['check your network, then run `dbgov login` again', 'run `dbgov whoami` to see which broker you use'],
    });
  }
}

function toTokens(r: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, now: number): IdpTokens {
  if (!r.id_token) {
    throw new AuthError('idp_no_id_token', 'the identity provider returned no ID token', {
      actions: ['ask your administrator to allow the `openid` scope for the dbgov client', 'then run `dbgov login` again'],
    });
  }
  return {
    idToken: r.id_token,
    accessToken: r.access_token,
    ...(r.refresh_token ? { refreshToken: r.refresh_token } : {}),
    expiresAt: now + (r.expiresIn() ?? 3600) * 1000,
  };
}

/** Runs the whole device login; resolves once the user approved in the browser. */
export async function deviceLogin(options: DeviceLoginOptions): Promise<IdpTokens> {
  const config = await discover(options);
  let started: oidc.DeviceAuthorizationResponse;
  try {
    started = await oidc.initiateDeviceAuthorization(config, { scope: options.scopes.join(' ') });
  } catch (e) {
    throw new AuthError('device_login_refused', `the identity provider refused to start a device login: ${(e as Error).message}`, {
      cause: e,
      actions: ['ask your administrator to enable the device flow for the dbgov client'],
    });
  }
  const prompt: DevicePrompt = {
    verificationUri: started.verification_uri,
    userCode: started.user_code,
    ...(started.verification_uri_complete ? { verificationUriComplete: started.verification_uri_complete } : {}),
  };
  options.onPrompt(prompt);
  if (options.openBrowser) {
    // A browser that fails to open is not fatal: the prompt already shows the URL and code.
    await open(prompt.verificationUriComplete ?? prompt.verificationUri).catch(() => undefined);
  }
  try {
    const r = await oidc.pollDeviceAuthorizationGrant(config, started, undefined, options.signal ? { signal: options.signal } : undefined);
    return toTokens(r, Date.now());
  } catch (e) {
    if (e instanceof AuthError) throw e;
    const code = (e as { error?: string }).error;
    const message =
      code === 'expired_token'
        ? 'the login code expired before it was confirmed'
        : code === 'access_denied'
          ? 'the login was denied in the browser'
          : options.signal?.aborted
            ? 'the login was cancelled'
            : `the device login failed: ${(e as Error).message}`;
    throw new AuthError('device_login_failed', message, { cause: e, actions: ['run `dbgov login` again'] });
  }
}

/**
 * Silent refresh at the IdP. A user disabled or removed at the IdP fails here, so the CLI gets no
 * new ID token and therefore no new broker token or credentials.
 */
export async function refreshTokens(options: IdpClientOptions & { refreshToken: string }): Promise<IdpTokens> {
  const config = await discover(options);
  try {
    const r = await oidc.refreshTokenGrant(config, options.refreshToken);
    return toTokens(r, Date.now());
  } catch (e) {
    if (e instanceof AuthError) throw e;
    throw new AuthError('refresh_failed', `your sign-in could not be renewed: ${(e as Error).message}`, {
      cause: e,
      actions: ['run `dbgov login` to sign in again'],
    });
  }
}
