import { Args, Flags } from '@oclif/core';
import type { ApprovalView } from '../broker/api-types.js';
import { DbgovCommand } from '../cli/base-command.js';
import { voteOutcome } from '../cli/request-view.js';

export type ApproveResult = ApprovalView;

export default class Approve extends DbgovCommand<ApproveResult> {
  static override summary = 'Approve a held statement or an access request.';
  static override description = 'Your vote counts toward the quorum the rule asks for. You cannot approve your own request, nor one made by an agent or service account acting for you.';
  static override examples = ['<%= config.bin %> approve 7KQ2MX', '<%= config.bin %> approve 7KQ2MX --comment "checked with INC-123"'];

  static override args = {
    id: Args.string({ required: true, description: 'Request id, as shown by `dbgov requests`.' }),
  };
  static override flags = {
    comment: Flags.string({ summary: 'Why you approve; kept in the audit log.' }),
  };

  async run(): Promise<ApproveResult> {
    const { args, flags } = await this.parse(Approve);
    const { client } = await this.session(flags.broker);
    const view = await client.approve(args.id, flags.comment);
    this.log(`${this.style.ok('✔')} ${voteOutcome(view)}`);
    return view;
  }
}
