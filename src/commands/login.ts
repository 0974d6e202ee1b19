import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { DbgovCommand } from '../cli/base-command.js';
import type { SavedLogin } from '../cli/login-store.js';
import { Spinner, relativeTime } from '../cli/render.js';
import { resolveBroker } from '../cli/session.js';
import { ApiClient } from '../cli/api-client.js';
import { AuthError, UsageError } from '../shared/errors.js';
import type { Identity } from '../shared/types.js';

export interface LoginResult {
  broker: string;
  method: 'device' | 'workload';
  identity: Identity;
  expiresAt: string;
}

export default class Login extends DbgovCommand<LoginResult> {
  static override summary = 'Sign in to a dbgov broker.';
  static override description = [
    'People sign in with their company SSO through a device login: dbgov opens the browser (or prints the URL and code with --no-browser) and waits for you to confirm.',
    'Pipelines sign in with an OIDC token from their platform (GitHub Actions, Kubernetes): --workload --id-token-file F, or DBGOV_ID_TOKEN. This never prompts.',
    'Service accounts need no login at all: set DBGOV_TOKEN.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> login --broker https://dbgov.example.com',
    '<%= config.bin %> login --no-browser',
    '<%= config.bin %> login --workload --id-token-file /var/run/secrets/tokens/dbgov',
  ];

  static override flags = {
    browser: Flags.boolean({ default: true, allowNo: true, summary: 'Open the browser for you; --no-browser prints the URL and code instead.' }),
    workload: Flags.boolean({ summary: 'Sign in as a pipeline or workload with an OIDC ID token, never prompting.' }),
    'id-token-file': Flags.string({ summary: 'File holding the workload OIDC ID token (default: DBGOV_ID_TOKEN).', helpValue: 'FILE' }),
  };

  async run(): Promise<LoginResult> {
    const { flags } = await this.parse(Login);
    const deps = this.sessionDeps();
    const broker = await resolveBroker(flags.broker, deps);
    const client = new ApiClient({ broker });
    const envIdToken = deps.env.DBGOV_ID_TOKEN?.trim() || undefined;

    let saved: SavedLogin;
    let method: LoginResult['method'];
    if (flags.workload || flags['id-token-file'] !== undefined || envIdToken !== undefined) {
      method = 'workload';
      const idToken = flags['id-token-file'] !== undefined ? (await readTokenFile(flags['id-token-file'])) : envIdToken;
      if (idToken === undefined) {
        throw new UsageError('--workload needs an OIDC ID token, and none was given', {
          actions: ['pass --id-token-file FILE, or set DBGOV_ID_TOKEN to the token your CI platform issued'],
        });
      }
      const exchanged = await client.exchange({ grant: 'workload', idToken });
      saved = { brokerUrl: broker, brokerAccessToken: exchanged.accessToken, expiresAt: exchanged.expiresAt, identity: exchanged.identity };
    } else {
      method = 'device';
      saved = await this.deviceLogin(client, broker, flags.browser);
    }
    await deps.store.save(saved);

    const s = this.style;
    const who = saved.identity.email ?? saved.identity.id;
    this.log(`${s.ok('✔')} logged in to ${broker} as ${s.bold(who)} ${s.dim(`(${saved.identity.kind}; groups: ${saved.identity.groups.join(', ') || 'none'})`)}`);
    this.log(s.dim(`  login expires ${relativeTime(saved.expiresAt, Date.now())}; next: \`dbgov targets\``));
    return { broker, method, identity: saved.identity, expiresAt: new Date(saved.expiresAt).toISOString() };
  }

  private async deviceLogin(client: ApiClient, broker: string, openBrowser: boolean): Promise<SavedLogin> {
    const info = await client.info();
    if (info.oidc === null) {
      throw new AuthError('no_identity_provider', `the broker at ${broker} has no identity provider for people to sign in with`, {
        actions: ['pipelines and agents: set DBGOV_TOKEN to a service-account token, or use `dbgov login --workload`', 'ask the broker admin to configure `identity` in dbgov.yaml'],
      });
    }
    const { deviceLogin } = await import('../auth/device-login.js');
    const spinner = new Spinner();
    // The code goes to stderr so that --json output on stdout stays one envelope.
    const tokens = await deviceLogin({
      issuer: info.oidc.issuer,
      clientId: info.oidc.clientId,
      scopes: info.oidc.scopes,
      openBrowser: openBrowser && process.stdout.isTTY === true,
      onPrompt: (p) => {
        process.stderr.write(`To sign in, open ${p.verificationUriComplete ?? p.verificationUri}\nand confirm the code ${this.style.bold(p.userCode)}\n`);
        spinner.start('waiting for you to confirm in the browser…');
      },
    }).finally(() => spinner.stop());
    const exchanged = await client.exchange({ grant: 'oidc', idToken: tokens.idToken, accessToken: tokens.accessToken });
    return {
      brokerUrl: broker,
      brokerAccessToken: exchanged.accessToken,
      expiresAt: exchanged.expiresAt,
      identity: exchanged.identity,
      idp: { issuer: info.oidc.issuer, clientId: info.oidc.clientId, tokens },
    };
  }
}

async function readTokenFile(path: string): Promise<string> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token === '') throw new UsageError(`the ID token file ${path} is empty`, { actions: ['check that your CI step wrote the token before `dbgov login` runs'] });
    return token;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read the ID token file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      actions: ['check the path passed to --id-token-file'],
    });
  }
}
