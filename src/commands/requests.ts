import { setTimeout as sleep } from 'node:timers/promises';
import { Flags } from '@oclif/core';
import type { ApprovalView } from '../broker/api-types.js';
import { DbgovCommand } from '../cli/base-command.js';
import { formatRequest } from '../cli/request-view.js';
import type { ApiClient } from '../cli/api-client.js';
import { UsageError } from '../shared/errors.js';

export interface RequestsResult {
  requests: ApprovalView[];
}

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'all'] as const;
const WATCH_INTERVAL_MS = 2_000;

export default class Requests extends DbgovCommand<RequestsResult> {
  static override summary = 'List approval requests: held statements and access elevation.';
  static override description =
    'Shows who asks, for what, on which target and why, with the SQL (literals hidden unless policy allows), the tables, the estimated rows and the votes so far. --watch redraws every 2 seconds until Ctrl-C.';
  static override examples = ['<%= config.bin %> requests', '<%= config.bin %> requests --watch', '<%= config.bin %> requests --status all --json'];

  static override flags = {
    status: Flags.string({ options: [...STATUSES], default: 'pending', summary: 'Which requests to show.' }),
    watch: Flags.boolean({ char: 'w', summary: 'Keep watching: redraw every 2 seconds until Ctrl-C.' }),
  };

  async run(): Promise<RequestsResult> {
    const { flags } = await this.parse(Requests);
    if (flags.watch && this.jsonEnabled()) {
      throw new UsageError('--watch is for a person at a terminal and cannot be combined with --json', {
        actions: ['poll `dbgov requests --json` from your script instead'],
      });
    }
    const { client } = await this.session(flags.broker);
    const status = flags.status === 'all' ? undefined : flags.status;
    if (!flags.watch) {
      const { requests } = await client.requests(status);
      this.show(requests);
      return { requests };
    }
    return this.watch(client, status);
  }

  private show(requests: ApprovalView[]): void {
    const now = Date.now();
    if (requests.length === 0) this.log(this.style.dim('No requests.'));
    else this.log(requests.map((r) => formatRequest(r, now, this.style)).join('\n\n'));
  }

  /** On a terminal the screen is redrawn; piped, only new or changed requests are printed. */
  private async watch(client: ApiClient, status: string | undefined): Promise<RequestsResult> {
    const stop = new AbortController();
    const onSigint = (): void => stop.abort();
    process.once('SIGINT', onSigint);
    const redraw = process.stdout.isTTY === true;
    const printed = new Map<string, string>();
    let last: ApprovalView[] = [];
    try {
      while (!stop.signal.aborted) {
        last = (await client.requests(status)).requests;
        if (redraw) {
          process.stdout.write('\x1b[2J\x1b[H');
          this.log(this.style.dim(`dbgov requests --watch · ${new Date().toLocaleTimeString()} · Ctrl-C to stop\n`));
          this.show(last);
        } else {
          for (const r of last) {
            const key = `${r.status}:${r.votes.length}`;
            if (printed.get(r.id) === key) continue;
            printed.set(r.id, key);
            this.log(`${formatRequest(r, Date.now(), this.style)}\n`);
          }
        }
        await sleep(WATCH_INTERVAL_MS, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    return { requests: last };
  }
}
