/**
 * A built-in OpenID Provider (oidc-provider 9) for `dbgov demo` and tests: device flow (RFC 8628)
 * for a public CLI client, rotating refresh tokens, a `groups` claim in the ID token, and plain
 * HTML login / confirmation pages that a browser, or a test with a cookie jar, can complete.
 * It runs on its own loopback HTTP server; it is not meant to face the internet.
 */
import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InteractionDetails, KoaContextLike } from 'oidc-provider';
import { UsageError } from '../shared/errors.js';

export interface BuiltinUser {
  id: string;
  email: string;
  name: string;
  password: string;
  groups: string[];
}

export interface BuiltinIdpOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  users: BuiltinUser[];
  clientId?: string;
  /** oidc-provider sends no `interval`; clients then poll every 5 s. Tests set 1 or less. */
  devicePollIntervalSec?: number;
}

export interface BuiltinIdp {
  issuer: string;
  clientId: string;
  close(): Promise<void>;
  disableUser(id: string): void;
  enableUser(id: string): void;
  setUserGroups(id: string, groups: string[]): void;
}

export const DEMO_USERS: readonly BuiltinUser[] = [
  { id: 'dev', email: 'dev@example.com', name: 'Demo Developer', password: 'dev', groups: ['developers'] },
  { id: 'approver', email: 'approver@example.com', name: 'Demo Approver', password: 'approver', groups: ['approvers'] },
  { id: 'auditor', email: 'auditor@example.com', name: 'Demo Auditor', password: 'auditor', groups: ['auditors'] },
];

export const BUILTIN_SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'] as const;

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * In-memory state is what we want: the built-in IdP lives and dies with one process. Subclassing
 * only stops oidc-provider from warning about its own adapter on every `dbgov demo`.
 */
async function loadProvider() {
  // oidc-provider warns at import that it wants Node 22; it runs correctly on Node 20 (measured),
  // and that one line would only confuse a user running `dbgov demo`. Every other warning passes.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
    warn(...args);
  };
  try {
    const [{ default: Provider }, { default: MemoryAdapter }] = await Promise.all([import('oidc-provider'), import('oidc-provider/lib/adapters/memory_adapter.js')]);
    return { Provider, ProcessMemoryAdapter: class ProcessMemoryAdapter extends MemoryAdapter {} };
  } finally {
    console.warn = warn;
  }
}

interface UserState extends BuiltinUser {
  disabled: boolean;
}

export async function startBuiltinIdp(options: BuiltinIdpOptions): Promise<BuiltinIdp> {
  const host = options.host ?? '127.0.0.1';
  const clientId = options.clientId ?? 'dbgov-cli';
  const users = new Map<string, UserState>();
  for (const u of options.users) users.set(u.id, { ...u, groups: [...u.groups], disabled: false });

  // The issuer must contain the real port, so listen first and build the provider after.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const { Provider, ProcessMemoryAdapter } = await loadProvider();
  const provider = new Provider(issuer, {
    adapter: ProcessMemoryAdapter,
    clients: [
      {
        client_id: clientId,
        client_name: 'dbgov CLI',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [{ ...signingKey, kid: randomBytes(8).toString('hex'), alg: 'ES256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: [...BUILTIN_SCOPES],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // The broker reads email and groups from the ID token itself, not from userinfo.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      deviceFlow: { enabled: true, userCodeInputSource, userCodeConfirmSource, successSource },
    },
    // A disabled user has no account: oidc-provider then refuses device-code and refresh grants.
    findAccount: async (_ctx: unknown, sub: string) => {
      const user = users.get(sub);
      if (!user || user.disabled) return undefined;
      return {
        accountId: sub,
        claims: async () => ({ sub, email: user.email, email_verified: true, name: user.name, groups: [...user.groups] }),
      };
    },
    rotateRefreshToken: true,
    interactions: { url: async (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    ttl: { DeviceCode: 600, IdToken: 3600, AccessToken: 3600, RefreshToken: 14 * 24 * 3600, Session: 3600, Interaction: 600, Grant: 14 * 24 * 3600 },
    renderError: async (ctx: { type: string; body: string }, out: Record<string, string>) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<p class="error">${escapeHtml(out.error ?? 'error')}: ${escapeHtml(out.error_description ?? '')}</p>`);
    },
  });
  const interval = options.devicePollIntervalSec;
  if (interval !== undefined) {
    provider.use(async (ctx: KoaContextLike, next) => {
      await next();
      if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        (ctx.body as Record<string, unknown>).interval = interval;
      }
    });
  }

  const attempts = loginAttempts();
  const oidc = provider.callback();
  handler = (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec(url.pathname);
    if (!m) {
      oidc(req, res);
      return;
    }
    const isLoginPost = m[2] === '/login' && req.method === 'POST';
    handleInteraction(req, res, isLoginPost).catch((e: unknown) => {
      if (res.headersSent) return;
      res.statusCode = 400;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(page('Sign-in error', `<p class="error">${escapeHtml(e instanceof Error ? e.message : String(e))}</p>`));
    });
  };

  async function handleInteraction(req: IncomingMessage, res: ServerResponse, isLoginPost: boolean): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      if (!isLoginPost) {
        sendHtml(res, 200, loginPage(details.uid));
        return;
      }
      const form = new URLSearchParams(await readBody(req));
      const email = (form.get('email') ?? '').trim().toLowerCase();
      // Anyone can start a device login and reach this form: without a cap, a password is one
      // loop away. The lock holds even for the right password, so a guess cannot be confirmed.
      if (attempts.locked(email)) {
        sendHtml(res, 429, loginPage(details.uid, `Too many failed sign-ins for this account. Wait ${Math.ceil(LOGIN_LOCK_MS / 60_000)} minutes, or ask your administrator.`, email));
        return;
      }
      const user = [...users.values()].find((u) => u.email.toLowerCase() === email);
      // Compare even when the user is unknown, so response time does not reveal which emails exist.
      const passwordOk = safeEqual(form.get('password') ?? '', user?.password ?? randomBytes(16).toString('hex'));
      if (!user || !passwordOk) {
        attempts.fail(email);
        sendHtml(res, 401, loginPage(details.uid, 'Wrong email or password.', email));
        return;
      }
      attempts.clear(email);
      // A disabled user must not get a session, even with the right password.
      if (user.disabled) {
        sendHtml(res, 403, loginPage(details.uid, 'This account is disabled. Ask your administrator.', email));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'consent') {
      // The CLI is a first-party client and the user already confirmed the device code.
      await provider.interactionFinished(req, res, { consent: { grantId: await grantFor(details) } }, { mergeWithLastSubmission: true });
      return;
    }
    sendHtml(res, 400, page('Sign-in error', `<p class="error">Unsupported step: ${escapeHtml(details.prompt.name)}</p>`));
  }

  async function grantFor(details: InteractionDetails): Promise<string> {
    const accountId = details.session?.accountId;
    if (!accountId) throw new UsageError('the sign-in session has no account; start the login again');
    const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ?? new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    return grant.save();
  }

  function user(id: string): UserState {
    const u = users.get(id);
    if (!u) throw new UsageError(`no built-in IdP user "${id}"`, { actions: [`use one of: ${[...users.keys()].join(', ')}`] });
    return u;
  }

  return {
    issuer,
    clientId,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
    disableUser: (id) => {
      user(id).disabled = true;
    },
    enableUser: (id) => {
      user(id).disabled = false;
    },
    setUserGroups: (id, groups) => {
      user(id).groups = [...groups];
    },
  };
}

/** Failed sign-ins allowed per email within LOGIN_LOCK_MS before that email is locked for the rest of it. */
export const MAX_LOGIN_FAILURES = 5;
export const LOGIN_LOCK_MS = 15 * 60_000;
const MAX_TRACKED_EMAILS = 10_000;

/** Failed sign-ins per email, in a sliding window; unknown emails count too (no enumeration). */
function loginAttempts(now: () => number = Date.now) {
  const failures = new Map<string, number[]>();
  const recent = (email: string): number[] => (failures.get(email) ?? []).filter((t) => now() - t < LOGIN_LOCK_MS);
  return {
    locked: (email: string): boolean => recent(email).length >= MAX_LOGIN_FAILURES,
    fail(email: string): void {
      // Random emails must not grow the map without bound: drop windows that ran out first.
      if (failures.size >= MAX_TRACKED_EMAILS) {
        for (const [k, v] of failures) if (v.every((t) => now() - t >= LOGIN_LOCK_MS)) failures.delete(k);
        if (failures.size >= MAX_TRACKED_EMAILS) failures.delete(failures.keys().next().value as string);
      }
      failures.set(email, [...recent(email), now()]);
    },
    clear: (email: string): void => void failures.delete(email),
  };
}

function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // A login form is tiny; refuse to buffer anything larger.
    if (size > 16 * 1024) throw new UsageError('login form too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(html);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}input,button{display:block;width:100%;margin:.5rem 0;padding:.5rem;font-size:1rem}.error{color:#b00020}code{font-size:1.5rem}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function loginPage(uid: string, error?: string, email = ''): string {
  return page(
    'Sign in to dbgov',
    `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="email" name="email" placeholder="Email" value="${escapeHtml(email)}" autofocus required>
<input type="password" name="password" placeholder="Password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

async function userCodeInputSource(ctx: { body: string }, form: string, _out: unknown, err?: { name?: string; userCode?: string }): Promise<void> {
  const msg = err ? '<p class="error">That code did not work. Check it and try again.</p>' : '<p>Enter the code shown in your terminal.</p>';
  ctx.body = page('Device login', `${msg}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
}

async function userCodeConfirmSource(ctx: { body: string }, form: string, _client: unknown, _deviceInfo: unknown, userCode: string): Promise<void> {
  ctx.body = page(
    'Confirm device login',
    `<p>Check that your terminal shows this code:</p><p><code>${escapeHtml(userCode)}</code></p>
<p>If you did not run <code>dbgov login</code>, close this page.</p>
${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`,
  );
}

async function successSource(ctx: { body: string }): Promise<void> {
  ctx.body = page('Signed in', '<p id="dbgov-login-success">You are signed in. You can close this page and return to your terminal.</p>');
}
