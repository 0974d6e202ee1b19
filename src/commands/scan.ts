import { Args, Flags } from '@oclif/core';
import pg from 'pg';
import { DbgovCommand } from '../cli/base-command.js';
import { connectTunnel, loadClientKey } from '../cli/connect.js';
import { renderTable, Spinner } from '../cli/render.js';
import { scanDatabase, type ScanResult } from '../masking/scan.js';
import { DbgovError, ExitCodes, UsageError } from '../shared/errors.js';

export default class Scan extends DbgovCommand<ScanResult & { target: string; database: string }> {
  static override summary = 'Find columns that look like PII or secrets, and print masking config to review.';
  static override description = `Samples a bounded number of rows per table in a read-only transaction, through the same governed path as every other query (it is audited, and columns already classified come back masked), and combines column names with content detectors: email, phone, SSN, card numbers (Luhn), IBAN, IP addresses, JWTs, API keys and other secrets. Only counts are reported, never values.

Prints YAML for the masking.columns section of dbgov.yaml, or --json.`;
  static override examples = ['<%= config.bin %> scan prod', '<%= config.bin %> scan prod --sample 500 --schema public --json'];
  static override args = { target: Args.string({ required: true, description: 'target name' }) };
  static override flags = {
    database: Flags.string({ char: 'd', summary: 'Database (default: the target\'s).' }),
    sample: Flags.integer({ summary: 'Rows sampled per table.', default: 200, min: 1, max: 100_000 }),
    schema: Flags.string({ summary: 'Only this schema (repeatable).', multiple: true }),
    'min-confidence': Flags.string({ summary: 'Drop candidates below this confidence (0..1).', default: '0.5' }),
  };

  async run(): Promise<ScanResult & { target: string; database: string }> {
    const { args, flags } = await this.parse(Scan);
    const minConfidence = Number(flags['min-confidence']);
    if (!(minConfidence >= 0 && minConfidence <= 1)) throw new UsageError('--min-confidence must be between 0 and 1');
    const session = await this.session(flags.broker);
    const key = await loadClientKey();
    const conn = await connectTunnel(session.client, { target: args.target, access: 'read', reason: 'dbgov scan', ...(flags.database ? { database: flags.database } : {}) }, key);
    const spinner = new Spinner(process.stderr);
    try {
      if (conn.credential.engine !== 'postgres') throw new DbgovError('scan-engine', `dbgov scan reads PostgreSQL targets; ${args.target} is ${conn.credential.engine}`, { exitCode: ExitCodes.usage, actions: ['classify MySQL columns by hand in masking.columns for now'] });
      const client = new pg.Client({ host: '127.0.0.1', port: conn.tunnel.port, user: conn.credential.identity.id, database: conn.credential.database });
      client.on('error', () => undefined);
      await client.connect();
      try {
        spinner.start('scanning…');
        const result = await scanDatabase(client, {
          sampleRows: flags.sample,
          minConfidence,
          ...(flags.schema ? { schemas: flags.schema } : {}),
          onProgress: (p) => spinner.update(`scanning ${p.table} (${p.done}/${p.total})`),
        });
        spinner.stop();
        if (!this.jsonEnabled()) {
          const s = this.style;
          if (result.candidates.length === 0) this.log(`${s.ok('✔')} no candidate PII columns found in ${result.tables} tables`);
          else {
            process.stdout.write(
              renderTable(result.candidates, [
                { header: 'COLUMN', value: (c) => `${c.schema}.${c.table}.${c.column}` },
                { header: 'CLASS', value: (c) => c.class },
                { header: 'CONFIDENCE', value: (c) => c.confidence.toFixed(2) },
                { header: 'EVIDENCE', value: (c) => [c.evidence.name ? `name:${c.evidence.name}` : '', ...Object.entries(c.evidence.hits).map(([k, v]) => `${k}:${v}/${c.evidence.nonNull}`)].filter(Boolean).join(' ') },
              ], { width: this.width }),
            );
            this.log('');
            this.log(s.dim('# review, then paste under masking: in dbgov.yaml'));
            this.log(result.yaml);
          }
          for (const sk of result.skipped) this.warn(`skipped ${sk.table}: ${sk.reason}`);
        }
        return { ...result, target: args.target, database: conn.credential.database };
      } finally {
        await client.end().catch(() => undefined);
      }
    } finally {
      spinner.stop();
      await conn.close();
    }
  }
}
