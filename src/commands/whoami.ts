import type { Identity } from '../shared/types.js';
import { DbgovCommand } from '../cli/base-command.js';
import { relativeTime } from '../cli/render.js';
import type { TokenSource } from '../cli/session.js';

export interface WhoamiResult {
  broker: string;
  source: TokenSource;
  identity: Identity;
  /** ISO 8601; null for tokens that do not expire (service accounts). */
  expiresAt: string | null;
}

export default class Whoami extends DbgovCommand<WhoamiResult> {
  static override summary = 'Show who the broker thinks you are.';
  static override description =
    'Asks the broker, so it reflects what policy sees: identity, kind (human, workload, agent), groups and when the login expires. Uses DBGOV_TOKEN when set.';
  static override examples = ['<%= config.bin %> whoami', 'DBGOV_TOKEN=… <%= config.bin %> whoami --json'];

  async run(): Promise<WhoamiResult> {
    const { flags } = await this.parse(Whoami);
    const session = await this.session(flags.broker);
    const { identity, expiresAt } = await session.client.whoami();
    const s = this.style;
    this.log(`${s.bold(identity.email ?? identity.id)} ${s.dim(`(${identity.kind}, via ${identity.source})`)}`);
    if (identity.name) this.log(`name:    ${identity.name}`);
    this.log(`id:      ${identity.id}`);
    this.log(`groups:  ${identity.groups.length ? identity.groups.join(', ') : s.dim('none')}`);
    if (identity.onBehalfOf) this.log(`for:     ${identity.onBehalfOf.id} (${identity.onBehalfOf.kind})`);
    this.log(`broker:  ${session.broker}${session.source === 'service-account' ? s.dim(' (DBGOV_TOKEN)') : ''}`);
    if (expiresAt !== null) this.log(`expires: ${relativeTime(expiresAt, Date.now())}`);
    return { broker: session.broker, source: session.source, identity, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() };
  }
}
