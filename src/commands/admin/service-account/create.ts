import { Args, Flags } from '@oclif/core';
import type { CreateServiceAccountResponse } from '../../../broker/api-types.js';
import { DbgovCommand } from '../../../cli/base-command.js';
import { accountView } from './list.js';

export type ServiceAccountCreateResult = CreateServiceAccountResponse;

export default class ServiceAccountCreate extends DbgovCommand<ServiceAccountCreateResult> {
  static override summary = 'Create a service account for a pipeline or an agent, and print its token once.';
  static override description =
    'The broker keeps only a hash of the token: copy it into your CI secret store now. The pipeline then sets DBGOV_TOKEN and needs no login.';
  static override examples = ['<%= config.bin %> admin service-account create ci-deploy --groups ci,deploy --kind workload'];

  static override args = {
    name: Args.string({ required: true, description: 'A name people recognise in the audit log, e.g. ci-deploy.' }),
  };
  static override flags = {
    groups: Flags.string({ summary: 'Comma-separated groups that policy matches on.', default: '', helpValue: 'a,b' }),
    kind: Flags.string({ options: ['workload', 'agent'], default: 'workload', summary: 'workload for pipelines, agent for AI agents.' }),
  };

  async run(): Promise<ServiceAccountCreateResult> {
    const { args, flags } = await this.parse(ServiceAccountCreate);
    const { client } = await this.session(flags.broker);
    const groups = flags.groups.split(',').map((g) => g.trim()).filter((g) => g !== '');
    const res = await client.createServiceAccount({ name: args.name, groups, kind: flags.kind as 'workload' | 'agent' });
    const created = { account: accountView(res.account), token: res.token };
    this.warn('this token is shown only once and cannot be retrieved later: store it in your secret manager now');
    const s = this.style;
    this.log(`${s.ok('✔')} created service account ${s.bold(created.account.name)} (${created.account.id}, ${created.account.kind}; groups: ${groups.join(', ') || 'none'})`);
    this.log(`\n  ${created.token}\n`);
    this.log(s.dim(`use it with: DBGOV_TOKEN=<token> dbgov whoami`));
    return created;
  }
}
