import { Flags } from '@oclif/core';
import type { RevokeResponse } from '../broker/api-types.js';
import { DbgovCommand } from '../cli/base-command.js';
import { UsageError } from '../shared/errors.js';

export type RevokeResult = RevokeResponse;

export default class Revoke extends DbgovCommand<RevokeResult> {
  static override summary = 'End access now: a session, a credential, or everything an identity holds.';
  static override description =
    'Revoked credentials stop working for new connections at once, and live sessions using them are closed within seconds. Find ids with `dbgov sessions`.';
  static override examples = [
    '<%= config.bin %> revoke --session ses_…',
    '<%= config.bin %> revoke --identity alice@example.com',
    '<%= config.bin %> revoke --credential cred_…',
  ];

  static override flags = {
    session: Flags.string({ summary: 'End this live session.', helpValue: 'ID' }),
    identity: Flags.string({ summary: 'Revoke every credential and session of this identity.', helpValue: 'ID' }),
    credential: Flags.string({ summary: 'Revoke this credential and end its sessions.', helpValue: 'ID' }),
  };

  async run(): Promise<RevokeResult> {
    const { flags } = await this.parse(Revoke);
    if (flags.session === undefined && flags.identity === undefined && flags.credential === undefined) {
      throw new UsageError('say what to revoke', {
        actions: ['pass --session ID, --identity ID or --credential ID (see `dbgov sessions` for ids)'],
      });
    }
    const { client } = await this.session(flags.broker);
    const result = await client.revoke({ sessionId: flags.session, identity: flags.identity, credentialId: flags.credential });
    const s = this.style;
    if (result.credentials.length === 0 && result.sessions.length === 0) {
      this.warn('nothing matched: no live credential or session was revoked');
    } else {
      this.log(`${s.ok('✔')} revoked ${plural(result.credentials.length, 'credential')}, ended ${plural(result.sessions.length, 'session')}`);
      for (const id of result.sessions) this.log(s.dim(`  session ${id}`));
    }
    return result;
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
