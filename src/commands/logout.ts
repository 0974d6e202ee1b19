import { DbgovCommand } from '../cli/base-command.js';
import { resolveBroker } from '../cli/session.js';

export interface LogoutResult {
  broker: string;
  removed: boolean;
}

export default class Logout extends DbgovCommand<LogoutResult> {
  static override summary = 'Forget the saved login for a broker.';
  static override description = 'Removes the saved tokens from this machine. Credentials already issued still run out at their expiry; use `dbgov revoke` to end them now.';
  static override examples = ['<%= config.bin %> logout'];

  async run(): Promise<LogoutResult> {
    const { flags } = await this.parse(Logout);
    const deps = this.sessionDeps();
    const broker = await resolveBroker(flags.broker, deps);
    const removed = await deps.store.remove(broker);
    if (removed) this.log(`${this.style.ok('✔')} logged out of ${broker}`);
    else this.warn(`you were not logged in to ${broker}; nothing to do`);
    if (deps.env.DBGOV_TOKEN) this.warn('DBGOV_TOKEN is still set, so commands keep acting as that service account');
    return { broker, removed };
  }
}
