import type { SessionView } from '../broker/api-types.js';
import { DbgovCommand } from '../cli/base-command.js';
import { relativeTime, renderTable } from '../cli/render.js';

export interface SessionsResult {
  sessions: SessionView[];
}

export default class Sessions extends DbgovCommand<SessionsResult> {
  static override summary = 'List live database sessions through the broker.';
  static override description = 'Shows who is connected where right now. End one with `dbgov revoke --session ID`.';
  static override examples = ['<%= config.bin %> sessions'];

  async run(): Promise<SessionsResult> {
    const { flags } = await this.parse(Sessions);
    const { client } = await this.session(flags.broker);
    const { sessions } = await client.sessions();
    if (sessions.length === 0) {
      this.log('No live sessions.');
      return { sessions };
    }
    const now = Date.now();
    this.log(
      renderTable(
        sessions,
        [
          { header: 'ID', value: (x) => x.id },
          { header: 'IDENTITY', value: (x) => x.identity.id, shrink: true },
          { header: 'KIND', value: (x) => x.identity.kind },
          { header: 'TARGET', value: (x) => `${x.target}/${x.database}`, shrink: true },
          { header: 'STARTED', value: (x) => relativeTime(Date.parse(x.startedAt), now) },
          { header: 'STATEMENTS', value: (x) => String(x.statements), align: 'right' },
          { header: 'CLIENT', value: (x) => x.client, shrink: true },
        ],
        { width: this.width, style: this.style },
      ),
    );
    return { sessions };
  }
}
