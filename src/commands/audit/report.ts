import { writeFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { AUDIT_REPORT_FORMATS, type AuditReportFormat } from '../../broker/api-types.js';
import { DbgovCommand } from '../../cli/base-command.js';
import { Spinner } from '../../cli/render.js';
import { checkRange, parseTimeFlag, timeFlag } from '../../cli/time-flags.js';

export interface AuditReportResult {
  format: AuditReportFormat;
  since: string;
  until: string;
  file: string | null;
  /** The report itself when not written to a file; parsed for --format json. */
  report: unknown;
}

export default class AuditReportCmd extends DbgovCommand<AuditReportResult> {
  static override summary = 'Summarize a period for an access review: who accessed what, masking, blocks, approvals.';
  static override description = 'Ready for a SOC 2 or GDPR access review. The HTML report is one self-contained file with charts. Needs the auditor group.';
  static override examples = ['<%= config.bin %> audit report --since 30d --format html --out review.html', '<%= config.bin %> audit report --since 2026-01-01 --until 2026-04-01 --format md'];

  static override flags = {
    since: timeFlag({ summary: 'Start of the period (default 30d).' }),
    until: timeFlag({ summary: 'End of the period (default now).' }),
    format: Flags.string({ options: [...AUDIT_REPORT_FORMATS], default: 'md', summary: 'Markdown, HTML with charts, or JSON.' }),
    out: Flags.string({ char: 'o', summary: 'Write here instead of stdout.', helpValue: 'FILE' }),
  };

  async run(): Promise<AuditReportResult> {
    const { flags } = await this.parse(AuditReportCmd);
    const now = Date.now();
    const since = flags.since ?? parseTimeFlag('30d', now);
    const until = flags.until ?? now;
    checkRange(since, until);
    const format = flags.format as AuditReportFormat;
    const { client } = await this.session(flags.broker);
    const spinner = new Spinner();
    spinner.start('building the report…');
    const text = await client.auditReport(format, { since, until }).finally(() => spinner.stop());
    const range = { format, since: new Date(since).toISOString(), until: new Date(until).toISOString() };
    if (flags.out !== undefined) {
      await writeFile(flags.out, text);
      this.log(`${this.style.ok('✔')} wrote the ${format} report to ${flags.out}`);
      return { ...range, file: flags.out, report: null };
    }
    this.log(text.trimEnd());
    return { ...range, file: null, report: format === 'json' ? (JSON.parse(text) as unknown) : text };
  }
}
