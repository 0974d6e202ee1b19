import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Flags } from '@oclif/core';
import { AUDIT_EXPORT_FORMATS, type AuditExportFormat } from '../../broker/api-types.js';
import { DbgovCommand, fromFileSystemError } from '../../cli/base-command.js';
import { auditFilterFlags, toAuditQuery } from '../../cli/audit-flags.js';
import { Spinner } from '../../cli/render.js';
import { UnreachableError, UsageError, isDbgovError } from '../../shared/errors.js';

export interface AuditExportResult {
  format: AuditExportFormat;
  /** null when written to stdout. */
  file: string | null;
  bytes: number;
  /** Lines written: events for jsonl and ocsf, rows plus the header for csv. */
  lines: number;
}

export default class AuditExport extends DbgovCommand<AuditExportResult> {
  static override summary = 'Export audit events to a file or stdout: jsonl, csv or OCSF.';
  static override description =
    'Streams from the broker to disk in constant memory, so millions of events are fine. The file appears only when the export completed. Check it later, even offline, with `dbgov audit verify --file`.';
  static override examples = [
    '<%= config.bin %> audit export --since 30d --format jsonl --out audit.jsonl',
    '<%= config.bin %> audit export --since 2026-01-01 --until 2026-02-01 --format ocsf --out january.ocsf.jsonl',
    '<%= config.bin %> audit export --since 1h | jq .',
  ];

  static override flags = {
    ...auditFilterFlags,
    format: Flags.string({ options: [...AUDIT_EXPORT_FORMATS], default: 'jsonl', summary: 'jsonl (our events, verifiable), csv, or ocsf (for SIEMs).' }),
    out: Flags.string({ char: 'o', summary: 'Write here instead of stdout.', helpValue: 'FILE' }),
  };

  async run(): Promise<AuditExportResult> {
    const { flags } = await this.parse(AuditExport);
    if (flags.out === undefined && this.jsonEnabled()) {
      throw new UsageError('with --json the export cannot also go to stdout', { actions: ['add --out FILE'] });
    }
    const format = flags.format as AuditExportFormat;
    const query = toAuditQuery(flags);
    const { client } = await this.session(flags.broker);
    const body = await client.auditExport(format, query);

    let bytes = 0;
    let lines = 0;
    const spinner = new Spinner();
    const showProgress = flags.out !== undefined && !this.jsonEnabled();
    if (showProgress) spinner.start('exporting…');
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        spinner.update(`exporting… ${lines.toLocaleString()} lines, ${(bytes / 1_048_576).toFixed(1)} MB`);
        done(null, chunk);
      },
    });

    if (flags.out === undefined) {
      await pipeline(body, count, process.stdout, { end: false });
      return { format, file: null, bytes, lines };
    }
    // Write beside the target and rename at the end: an interrupted export never looks complete.
    const partial = `${flags.out}.partial`;
    try {
      await pipeline(body, count, createWriteStream(partial, { mode: 0o600 }));
      await rename(partial, flags.out);
    } catch (e) {
      await rm(partial, { force: true });
      if (isDbgovError(e)) throw e;
      // The file cannot be written at all: rerunning will not help, the path must change.
      if ((e as NodeJS.ErrnoException).path === partial) throw fromFileSystemError(e, flags.out) ?? e;
      throw new UnreachableError('export_interrupted', `the export from ${client.broker} stopped part way (${(e as Error).message})`, {
        cause: e,
        actions: [`nothing was written to ${flags.out}; run the same command again`],
      });
    } finally {
      spinner.stop();
    }
    if (showProgress) this.log(`${this.style.ok('✔')} exported ${lines.toLocaleString()} lines (${format}, ${bytes.toLocaleString()} bytes) to ${flags.out}`);
    return { format, file: flags.out, bytes, lines };
  }
}
