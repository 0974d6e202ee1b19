import { Args } from '@oclif/core';
import type { ServiceAccountView } from '../../../broker/api-types.js';
import { DbgovCommand } from '../../../cli/base-command.js';
import { accountView } from './list.js';

export interface ServiceAccountRevokeResult {
  account: ServiceAccountView;
}

export default class ServiceAccountRevoke extends DbgovCommand<ServiceAccountRevokeResult> {
  static override summary = 'Revoke a service account: its token stops working at once.';
  static override description = 'Pipelines using it fail with exit code 3 from then on. Its past activity stays in the audit log.';
  static override examples = ['<%= config.bin %> admin service-account revoke sa_…'];

  static override args = {
    id: Args.string({ required: true, description: 'Service account id, from `dbgov admin service-account list`.' }),
  };

  async run(): Promise<ServiceAccountRevokeResult> {
    const { args, flags } = await this.parse(ServiceAccountRevoke);
    const { client } = await this.session(flags.broker);
    const account = accountView((await client.revokeServiceAccount(args.id)).account);
    this.log(`${this.style.ok('✔')} revoked service account ${account.name} (${account.id})`);
    return { account };
  }
}
