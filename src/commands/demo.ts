import { Flags } from '@oclif/core';
import { DbgovCommand } from '../cli/base-command.js';
import { connectionInfo, execOutcome, followActivity, loadClientKey, runCommand } from '../cli/connect.js';
import { ApiClient } from '../cli/api-client.js';
import { formatActivity } from '../cli/render.js';
import { startDemo } from '../demo/demo.js';
import { rootLogger } from '../shared/logger.js';

export interface DemoResult {
  broker: string;
  gateway: string;
  target: string;
  host: string;
  port: number;
  user: string;
  database: string;
  url: string;
  command: string;
  tokens: { developer: string; approver: string; auditor: string };
  exitCode?: number;
}

export default class Demo extends DbgovCommand<DemoResult> {
  static override summary = 'Run everything locally: broker, IdP, embedded PostgreSQL with PII, and a tunnel. No outside service.';
  static override description = `Starts an embedded PostgreSQL (PGlite) seeded with a users table full of PII and a model_weights table, a built-in OIDC provider with three users (dev, approver, auditor), and a broker with guardrails, an approval rule and masking. Logs the developer in through the device flow, opens a tunnel and tells you what to type. Ctrl-C stops it all.

With --exec, runs a command with PGHOST/PGPORT/PGUSER/PGDATABASE, DBGOV_BROKER and the demo tokens set, then exits with its exit code.`;
  static override examples = ['<%= config.bin %> demo', '<%= config.bin %> demo --exec -- psql -c "select email from users limit 3"'];
  static override strict = false;
  static override flags = {
    'api-port': Flags.integer({ summary: 'Port for the broker API (default: a free one).', min: 0, max: 65535, default: 0 }),
    port: Flags.integer({ summary: 'Local tunnel port (default: a free one).', min: 0, max: 65535 }),
    exec: Flags.boolean({ summary: 'Run the command after -- against the demo, then exit with its code.' }),
  };

  async run(): Promise<DemoResult> {
    const { flags } = await this.parse(Demo);
    const dashes = this.argv.indexOf('--');
    const command = flags.exec && dashes >= 0 ? this.argv.slice(dashes + 1) : [];
    if (!this.jsonEnabled() && !flags.exec) this.log(this.style.dim('starting the dbgov demo: embedded PostgreSQL, identity provider, broker…'));
    const key = await loadClientKey();
    const demo = await startDemo({ apiPort: flags['api-port'], tunnelPort: flags.port, log: rootLogger(), key });
    const cred = demo.connection.credential;
    const info = connectionInfo('postgres', demo.connection.tunnel.port, cred.identity.id, cred.database);
    const result: DemoResult = {
      broker: demo.broker.apiUrl,
      gateway: `${demo.broker.gateway.host}:${demo.broker.gateway.port}`,
      target: cred.target,
      host: info.host,
      port: info.port,
      user: info.user,
      database: info.database,
      url: info.url,
      command: info.command,
      tokens: { developer: demo.tokens.developer.accessToken, approver: demo.tokens.approver.accessToken, auditor: demo.tokens.auditor.accessToken },
    };

    if (flags.exec) {
      const env = { ...info.env, DBGOV_BROKER: demo.broker.apiUrl, DBGOV_DEMO_APPROVER_TOKEN: result.tokens.approver, DBGOV_DEMO_AUDITOR_TOKEN: result.tokens.auditor, DBGOV_DEMO_DEVELOPER_TOKEN: result.tokens.developer };
      const code = await runCommand(command.length ? command : ['true'], env, (e) => process.stderr.write(`${this.style.bad('✖')} cannot run ${command[0]}: ${e.message}\n`), { json: this.jsonEnabled() });
      await demo.close();
      execOutcome(command, code);
      result.exitCode = code;
      return result;
    }

    const stop = new AbortController();
    if (this.jsonEnabled()) this.logJson(this.toSuccessJson(result));
    else {
      const s = this.style;
      const b = demo.broker.apiUrl;
      this.log(`${s.ok('✔')} dbgov demo is running. You are ${s.bold('dev@example.com')} (group developers), connected to target ${s.bold('demo')} (env prod).`);
      this.log('');
      this.log(`  Connect:   ${s.accent(info.command)}`);
      this.log(`             ${info.url}`);
      this.log('');
      this.log('  Try:');
      this.log(`    SELECT id, full_name, email, ssn, card_number FROM users LIMIT 5;   ${s.dim('-- PII comes back masked')}`);
      this.log(`    SELECT upper(email) || ' ' || phone AS contact FROM users LIMIT 3; ${s.dim('-- reshaping does not unmask')}`);
      this.log(`    DROP TABLE users;                                                 ${s.dim('-- blocked in prod')}`);
      this.log(`    DELETE FROM orders;                                               ${s.dim('-- blocked: no WHERE')}`);
      this.log(`    UPDATE model_weights SET weights = '{0,0,0,0}' WHERE id = 1;       ${s.dim('-- held for approval')}`);
      this.log('');
      this.log('  Approve from another terminal (as approver@example.com):');
      this.log(`    export DBGOV_BROKER=${b}`);
      this.log(`    export DBGOV_TOKEN=${result.tokens.approver}`);
      this.log('    dbgov requests            # see what is waiting, with the SQL and the tables');
      this.log('    dbgov approve <id>        # the held UPDATE then runs');
      this.log('');
      this.log(`  Audit (as auditor@example.com): DBGOV_BROKER=${b} DBGOV_TOKEN=${result.tokens.auditor} dbgov audit search --since 1h`);
      this.log(s.dim(`  (or log in yourself: dbgov login --broker ${b}, users dev/approver/auditor, password = user name)`));
      this.log('');
      this.log(s.dim('  Ctrl-C stops the demo. Live activity:'));
      const client = new ApiClient({ broker: demo.broker.apiUrl, token: demo.tokens.developer.accessToken });
      void followActivity(client, cred.id, (e) => this.log(`  ${formatActivity(e, s)}`), stop.signal).catch(() => undefined);
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    stop.abort();
    await demo.close();
    if (this.jsonEnabled()) this.exit(0);
    return result;
  }
}
