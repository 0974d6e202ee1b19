import type { ServiceAccountView } from '../../../broker/api-types.js';
import { DbgovCommand } from '../../../cli/base-command.js';
import { relativeTime, renderTable } from '../../../cli/render.js';

/**
 * The broker's view of an account, whatever shape this broker version sends: older brokers send
 * the stored record (no `name`, epoch-ms times), which the table and the JSON result must not
 * turn into "undefined" or a crash.
 */
export function accountView(a: ServiceAccountView | (Omit<ServiceAccountView, 'name' | 'createdAt' | 'revokedAt'> & { name?: string; createdAt: string | number; revokedAt?: string | number | null })): ServiceAccountView {
  const iso = (t: string | number): string => (typeof t === 'number' ? new Date(t).toISOString() : t);
  return {
    id: a.id,
    name: a.name ?? a.id,
    groups: a.groups,
    kind: a.kind,
    createdAt: iso(a.createdAt),
    ...(a.revokedAt !== undefined && a.revokedAt !== null ? { revokedAt: iso(a.revokedAt) } : {}),
  };
}

export interface ServiceAccountListResult {
  accounts: ServiceAccountView[];
}

export default class ServiceAccountList extends DbgovCommand<ServiceAccountListResult> {
  static override summary = 'List service accounts.';
  static override examples = ['<%= config.bin %> admin service-account list'];

  async run(): Promise<ServiceAccountListResult> {
    const { flags } = await this.parse(ServiceAccountList);
    const { client } = await this.session(flags.broker);
    const accounts = (await client.serviceAccounts()).accounts.map(accountView);
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
