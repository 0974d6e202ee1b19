import { Args, Flags } from '@oclif/core';
import type { ApprovalView } from '../broker/api-types.js';
import { DbgovCommand } from '../cli/base-command.js';
import { voteOutcome } from '../cli/request-view.js';

export type DenyResult = ApprovalView;

export default class Deny extends DbgovCommand<DenyResult> {
  static override summary = 'Deny a held statement or an access request.';
  static override description = 'The requester sees your reason, so say what they should do instead. On a terminal dbgov asks for the reason if --reason is missing.';
  static override examples = ['<%= config.bin %> deny 7KQ2MX --reason "add a WHERE clause; this updates every row"'];

  static override args = {
    id: Args.string({ required: true, description: 'Request id, as shown by `dbgov requests`.' }),
  };
  static override flags = {
    reason: Flags.string({ summary: 'Why, for the requester and the audit log.' }),
  };

  async run(): Promise<DenyResult> {
    const { args, flags } = await this.parse(Deny);
    const reason = flags.reason ?? (await this.ask('Why do you deny it? (the requester sees this):', `--reason "why, and what to do instead"`));
    const { client } = await this.session(flags.broker);
    const view = await client.deny(args.id, reason);
    this.log(`${this.style.bad('✖')} ${voteOutcome(view)}`);
    return view;
  }
}
