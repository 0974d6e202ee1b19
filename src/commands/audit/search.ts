import { Flags } from '@oclif/core';
import type { AuditEvent } from '../../audit/event.js';
import { DbgovCommand } from '../../cli/base-command.js';
import { auditFilterFlags, toAuditQuery } from '../../cli/audit-flags.js';
import { renderTable } from '../../cli/render.js';

export interface AuditSearchResult {
  events: AuditEvent[];
  /** Cursor for the next page; absent on the last page. */
  next?: string;
}

export default class AuditSearch extends DbgovCommand<AuditSearchResult> {
  static override summary = 'Search the audit log: who touched what, when and why.';
  static override description = 'Filters combine with AND. Results come newest first, one page at a time; the last line shows the command for the next page.';
  static override examples = [
    '<%= config.bin %> audit search --identity alice@example.com --since 24h',
    '<%= config.bin %> audit search --target prod --table public.users --column email --since 7d',
    '<%= config.bin %> audit search --kind agent --decision block --json',
  ];

  static override flags = {
    ...auditFilterFlags,
    limit: Flags.integer({ default: 50, min: 1, max: 1000, summary: 'Events per page.' }),
    cursor: Flags.string({ aliases: ['page'], summary: 'Continue from a previous page (the `next` value).' }),
  };

  async run(): Promise<AuditSearchResult> {
    const { flags } = await this.parse(AuditSearch);
    const query = { ...toAuditQuery(flags), limit: flags.limit, cursor: flags.cursor };
    const { client } = await this.session(flags.broker);
    const { events, next } = await client.auditSearch(query);
    const s = this.style;
    if (events.length === 0) {
      this.log('No events match. Widen --since, or drop a filter.');
    } else {
      this.log(
        renderTable(
          events,
          [
            { header: 'TIME', value: (e) => e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z') },
            { header: 'IDENTITY', value: (e) => e.identity?.id ?? '-', shrink: true },
            { header: 'KIND', value: (e) => e.identity?.kind ?? '-' },
            { header: 'EVENT', value: (e) => e.kind },
            { header: 'TARGET', value: (e) => (e.target ? `${e.target}${e.database ? `/${e.database}` : ''}` : '-'), shrink: true },
            {
              header: 'DECISION',
              value: (e) => e.statement?.decision ?? '',
              color: (v) => (v === 'block' || v === 'denied' ? s.bad(v) : v === 'review' ? s.warn(v) : v),
            },
            { header: 'STATEMENT', value: (e) => e.statement?.text ?? detailSummary(e), shrink: true },
          ],
          { width: this.width, style: s },
        ),
      );
    }
    if (next !== undefined) this.log(s.dim(`\nmore: dbgov audit search ${this.argv.filter((a, i, all) => !isCursorArg(a, all[i - 1])).join(' ')} --cursor ${next}`.replace(/ +/g, ' ')));
    return next === undefined ? { events } : { events, next };
  }
}

function isCursorArg(arg: string, previous: string | undefined): boolean {
  return arg === '--cursor' || arg === '--page' || arg.startsWith('--cursor=') || arg.startsWith('--page=') || previous === '--cursor' || previous === '--page';
}

function detailSummary(e: AuditEvent): string {
  if (!e.detail) return '';
  return Object.entries(e.detail)
    .filter(([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}
