import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { verifyAudit, type VerifyResult } from '../../audit/verify.js';
import { DbgovCommand } from '../../cli/base-command.js';
import { Spinner } from '../../cli/render.js';
import { DbgovError, UsageError } from '../../shared/errors.js';

export interface AuditVerifyResult extends VerifyResult {
  source: string;
}

const SHOWN_PROBLEMS = 20;

export default class AuditVerify extends DbgovCommand<AuditVerifyResult> {
  static override summary = 'Prove the audit log was not altered: edits, deletions, reordering, a cut tail.';
  static override description = [
    'With --file it checks an exported jsonl file offline: it needs only the file and the public key, no broker.',
    'Without --file it streams the whole log from the broker and checks it with the key the broker publishes.',
    'Exit code 0 means every event is intact; otherwise each problem is listed with the event it concerns.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> audit verify --file audit.jsonl --public-key audit-public.pem',
    '<%= config.bin %> audit verify --file audit.jsonl --public-key audit-public.pem --checkpoints checkpoints.jsonl',
    '<%= config.bin %> audit verify',
  ];

  static override flags = {
    file: Flags.string({ char: 'f', summary: 'An exported jsonl file to check offline.', helpValue: 'FILE' }),
    'public-key': Flags.string({ summary: 'The audit public key: a PEM string or a file holding one. Default: ask the broker.', helpValue: 'PEM|FILE' }),
    checkpoints: Flags.string({ summary: "The broker's checkpoints file, to detect a cut tail in a file (online: the broker's own, by default).", helpValue: 'FILE' }),
  };

  async run(): Promise<AuditVerifyResult> {
    const { flags } = await this.parse(AuditVerify);
    const publicKeyPem = flags['public-key'] !== undefined ? await readPem(flags['public-key']) : undefined;
    const spinner = new Spinner();
    let result: VerifyResult;
    let source: string;
    if (flags.file !== undefined) {
      source = flags.file;
      const pem = publicKeyPem ?? (await this.brokerKey(flags.broker, 'checking an exported file offline needs the audit public key'));
      spinner.start(`verifying ${flags.file}…`);
      result = await verifyAudit(flags.file, { publicKeyPem: pem, checkpoints: flags.checkpoints }).finally(() => spinner.stop());
    } else {
      const { client } = await this.session(flags.broker);
      source = client.broker;
      const pem = publicKeyPem ?? (await client.auditPublicKey()).publicKeyPem;
      spinner.start(`verifying the audit log of ${client.broker}…`);
      // The broker's own checkpoints (fetched before the events, so the events reach at least as
      // far): without them a tail cut after the last checkpoint event the chain still holds passes.
      const checkpoints = flags.checkpoints ?? (await client.auditCheckpoints()).checkpoints;
      // The whole log, so a missing head is a problem too, not just the start of a range.
      result = await verifyAudit(client.auditEvents({ whole: true }), { publicKeyPem: pem, checkpoints, complete: true }).finally(() => spinner.stop());
    }

    const s = this.style;
    if (!result.ok) {
      for (const p of result.problems.slice(0, SHOWN_PROBLEMS)) this.logToStderr(`${s.bad('✖')} ${p.kind}: ${p.message}`);
      if (result.problems.length > SHOWN_PROBLEMS) this.logToStderr(s.dim(`… and ${result.problems.length - SHOWN_PROBLEMS} more (see --json)`));
      const first = result.problems[0];
      throw new DbgovError('audit_verify_failed', `the audit log from ${source} does not verify: ${result.problems.length} problem(s); first: ${first?.message ?? 'unknown'}`, {
        actions: [
          'treat the log as tampered with from the first event named above',
          'compare with an earlier export or the sink copies (webhook, syslog, NATS) to see what was changed',
        ],
        detail: { problems: result.problems.slice(0, SHOWN_PROBLEMS) },
      });
    }
    this.log(`${s.ok('✔')} the audit log verifies: ${result.events.toLocaleString()} events (seq ${result.firstSeq ?? '-'}…${result.lastSeq ?? '-'}), ${result.checkpoints} signed checkpoints`);
    for (const r of result.recovered) {
      const span = r.from === r.to ? `event ${r.from}` : `events ${r.from}–${r.to}`;
      this.warn(`${span} came after the last signed checkpoint when the broker restarted: written before a crash, or appended while it was down by someone without the key; compare them with a sink copy (webhook, syslog, NATS)`);
    }
    if (result.unsignedTail > 0) {
      this.warn(`the last ${result.unsignedTail} events come after the last signed checkpoint: they are chained but not yet signed, so a cut there shows only with --checkpoints`);
    }
    return { ...result, source };
  }

  private async brokerKey(broker: string | undefined, why: string): Promise<string> {
    try {
      const { client } = await this.session(broker);
      return (await client.auditPublicKey()).publicKeyPem;
    } catch (e) {
      throw new UsageError(`${why}, and it could not be fetched from a broker: ${(e as Error).message}`, {
        actions: ['pass --public-key with the PEM file your broker admin published', 'online, `dbgov audit verify` without --file checks the broker log directly'],
      });
    }
  }
}

async function readPem(value: string): Promise<string> {
  if (value.includes('-----BEGIN')) return value;
  try {
    return await readFile(value, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the public key file ${value}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      actions: ['pass --public-key with a PEM file path, or the PEM text itself'],
    });
  }
}
