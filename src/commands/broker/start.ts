import { Flags } from '@oclif/core';
import { pino } from 'pino';
import { DbgovCommand } from '../../cli/base-command.js';
import { startBroker } from '../../broker/broker.js';
import { loadConfig } from '../../broker/config.js';
import { setRootLogger } from '../../shared/logger.js';

export interface BrokerStartResult {
  api: string;
  gateway: string;
  store: string;
  targets: string[];
}

export default class BrokerStart extends DbgovCommand<BrokerStartResult> {
  static override summary = 'Run the broker: the HTTP API and the gateway that tunnels connect to.';
  static override description = 'Reads dbgov.yaml (or --config), checks it, and serves until SIGINT/SIGTERM. With --json it prints one ready line with the addresses, for scripts that start it in the background.';
  static override examples = ['<%= config.bin %> broker start --config /etc/dbgov/dbgov.yaml', 'DBGOV_LOG_LEVEL=debug <%= config.bin %> broker start'];
  static override flags = {
    config: Flags.string({ char: 'c', summary: 'Path to dbgov.yaml.', default: 'dbgov.yaml', env: 'DBGOV_CONFIG' }),
  };

  async run(): Promise<BrokerStartResult> {
    const { flags } = await this.parse(BrokerStart);
    const config = loadConfig(flags.config);
    // The broker is a service: it logs JSON lines to stderr at info unless told otherwise.
    setRootLogger(pino({ level: process.env.DBGOV_LOG_LEVEL ?? 'info', base: { app: 'dbgov-broker', broker: config.broker.id } }, pino.destination({ fd: 2, sync: false })));
    const broker = await startBroker(config);
    const result: BrokerStartResult = {
      api: broker.apiUrl,
      gateway: `${broker.gateway.host}:${broker.gateway.port}`,
      store: config.broker.store.kind === 'embedded' ? config.broker.store.dir : config.broker.store.url.replace(/:[^:@/]*@/, ':****@'),
      targets: Object.keys(config.targets),
    };
    if (this.jsonEnabled()) this.logJson(this.toSuccessJson(result));
    else {
      this.log(`${this.style.ok('✔')} dbgov broker ${config.broker.id === 'broker' ? '' : `${config.broker.id} `}is up`);
      this.log(`  api      ${result.api}   (export DBGOV_BROKER=${result.api})`);
      this.log(`  gateway  ${result.gateway}`);
      this.log(`  store    ${result.store}`);
      this.log(`  targets  ${result.targets.join(', ')}`);
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await broker.close();
    if (this.jsonEnabled()) this.exit(0);
    return result;
  }
}
