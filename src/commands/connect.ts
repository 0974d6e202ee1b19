import { Args, Flags } from '@oclif/core';
import { DbgovCommand } from '../cli/base-command.js';
import { connectionInfo, connectTunnel, execOutcome, followActivity, loadClientKey, runCommand } from '../cli/connect.js';
import { formatActivity, Spinner } from '../cli/render.js';
import { parseDuration } from '../shared/clock.js';
import { UsageError } from '../shared/errors.js';
import { ACCESS_LEVELS, type AccessLevel } from '../shared/types.js';

export interface ConnectResult {
  target: string;
  engine: 'postgres' | 'mysql';
  host: string;
  port: number;
  user: string;
  database: string;
  url: string;
  command: string;
  credentialId: string;
  expiresAt: string;
  exitCode?: number;
}

export default class Connect extends DbgovCommand<ConnectResult> {
  static override summary = 'Open a governed tunnel to a target: any client can then connect to 127.0.0.1.';
  static override description = `Gets a short-lived credential for you, this target, one database and one access level, bound to a key only this machine holds. Then it listens on 127.0.0.1 and shows each statement's decision as it flows. Ctrl-C closes it.

With --exec, it runs a command with PGHOST/PGPORT/PGUSER/PGDATABASE (or the MySQL equivalents) set and exits with that command's exit code: this is how CI uses it.`;
  static override examples = [
    '<%= config.bin %> connect prod',
    '<%= config.bin %> connect prod --database analytics --ttl 1h --reason "INC-123 investigate"',
    '<%= config.bin %> connect prod --access write --reason INC-123',
    '<%= config.bin %> connect prod --exec -- psql -c "select count(*) from users"',
  ];
  static override strict = false;
  static override args = { target: Args.string({ required: true, description: 'target name (see `dbgov targets`)' }) };
  static override flags = {
    database: Flags.string({ char: 'd', summary: 'Database to scope the credential to (default: the target\'s).' }),
    port: Flags.integer({ char: 'p', summary: 'Local port (default: a free one).', min: 0, max: 65535 }),
    ttl: Flags.string({ summary: 'Credential lifetime, e.g. 30m, 1h (capped by policy).' }),
    reason: Flags.string({ summary: 'Why you need access; policy may require a ticket id.' }),
    access: Flags.string({ summary: 'Access level.', options: [...ACCESS_LEVELS], default: 'read' }),
    agent: Flags.string({ summary: 'Start an agent session acting on your behalf (recorded as kind agent).' }),
    exec: Flags.boolean({ summary: 'Run the command after -- through the tunnel, then exit with its exit code.' }),
  };

  async run(): Promise<ConnectResult> {
    const { args, flags } = await this.parse(Connect);
    // Everything after `--` is the user's command, verbatim.
    const dashes = this.argv.indexOf('--');
    const command = flags.exec && dashes >= 0 ? this.argv.slice(dashes + 1) : [];
    if (flags.exec && command.length === 0) throw new UsageError('--exec needs a command after --', { actions: ['e.g. dbgov connect prod --exec -- psql -c "select 1"'] });
    const ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl);
    if (flags.ttl !== undefined && !ttlMs) throw new UsageError(`--ttl must be a duration like 30m or 2h, got "${flags.ttl}"`);

    const session = await this.session(flags.broker);
    const key = await loadClientKey();
    const spinner = new Spinner(process.stderr);
    const conn = await connectTunnel(
      session.client,
      {
        target: args.target,
        ...(flags.database ? { database: flags.database } : {}),
        access: flags.access as AccessLevel,
        ...(ttlMs ? { ttlSeconds: Math.round(ttlMs / 1000) } : {}),
        ...(flags.reason ? { reason: flags.reason } : {}),
        ...(flags.agent ? { agent: flags.agent } : {}),
        ...(flags.port !== undefined ? { port: flags.port } : {}),
      },
      key,
      {
        onPending: (p) => {
          const line = `${p.message}: an approver runs \`dbgov approve ${p.requestId}\``;
          if (process.stderr.isTTY) spinner.start(line);
          else process.stderr.write(`${line}\n`);
        },
      },
    ).finally(() => spinner.stop());

    const cred = conn.credential;
    const info = connectionInfo(cred.engine, conn.tunnel.port, cred.identity.id, cred.database);
    const result: ConnectResult = {
      target: cred.target,
      engine: cred.engine,
      host: info.host,
      port: info.port,
      user: info.user,
      database: info.database,
      url: info.url,
      command: info.command,
      credentialId: cred.id,
      expiresAt: new Date(cred.expiresAt).toISOString(),
    };
    conn.tunnel.on('connection-error', (e: Error) => process.stderr.write(`${this.style.bad('✖')} ${e.message}\n`));

    if (flags.exec) {
      const code = await runCommand(command, info.env, (e) => process.stderr.write(`${this.style.bad('✖')} cannot run ${command[0]}: ${e.message}\n`), { json: this.jsonEnabled() });
      await conn.close();
      execOutcome(command, code);
      result.exitCode = code;
      return result;
    }

    const stop = new AbortController();
    if (this.jsonEnabled()) {
      this.logJson(this.toSuccessJson(result));
    } else {
      const s = this.style;
      this.log(`${s.ok('✔')} tunnel to ${s.bold(cred.target)} (${cred.engine}) as ${cred.identity.id}, ${cred.access} access, until ${new Date(cred.expiresAt).toLocaleTimeString()}`);
      this.log(`  host ${info.host}  port ${info.port}  user ${info.user}  database ${info.database}`);
      this.log(`  url  ${info.url}`);
      this.log(`  run  ${info.command}`);
      this.log(s.dim('  Ctrl-C closes the tunnel. Live activity:'));
      void followActivity(session.client, cred.id, (e) => this.log(`  ${formatActivity(e, s)}`), stop.signal).catch((e: unknown) => this.warn(`live activity unavailable: ${(e as Error).message}`));
    }
    await new Promise<void>((resolve) => {
      const done = (): void => resolve();
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
      // The credential ends the tunnel's usefulness; close it with a clear line rather than fail later.
      const t = setTimeout(done, Math.max(0, cred.expiresAt - Date.now()));
      t.unref();
    });
    stop.abort();
    await conn.close();
    if (!this.jsonEnabled()) this.log(this.style.dim('tunnel closed'));
    if (this.jsonEnabled()) this.exit(0);
    return result;
  }
}
