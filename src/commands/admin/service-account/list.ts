import type { ServiceAccountView } from '../../../broker/api-types.js';
import { DbgovCommand } from '../../../cli/base-command.js';
import { relativeTime, renderTable } from '../../../cli/render.js';

export interface ServiceAccountListResult {
  accounts: ServiceAccountView[];
}

export default class ServiceAccountList extends DbgovCommand<ServiceAccountListResult> {
  static override summary = 'List service accounts.';
  static override examples = ['<%= config.bin %> admin service-account list'];

  async run(): Promise<ServiceAccountListResult> {
    const { flags } = await this.parse(ServiceAccountList);
    const { client } = await this.session(flags.broker);
    const { accounts } = await client.serviceAccounts();
    if (accounts.length === 0) {
      this.log('No service accounts. Create one with `dbgov admin service-account create NAME --groups …`.');
      return { accounts };
    }
    const now = Date.now();
    const s = this.style;
    this.log(
      renderTable(
        accounts,
        [
          { header: 'ID', value: (a) => a.id },
          { header: 'NAME', value: (a) => a.name },
          { header: 'KIND', value: (a) => a.kind },
          { header: 'GROUPS', value: (a) => a.groups.join(', '), shrink: true },
          { header: 'CREATED', value: (a) => relativeTime(Date.parse(a.createdAt), now) },
          { header: 'STATUS', value: (a) => (a.revokedAt ? 'revoked' : 'active'), color: (v) => (v === 'active' ? s.ok(v) : s.dim(v)) },
        ],
        { width: this.width, style: s },
      ),
    );
    return { accounts };
  }
}
