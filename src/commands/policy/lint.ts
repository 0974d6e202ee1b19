import { Flags } from '@oclif/core';
import { DbgovCommand } from '../../cli/base-command.js';
import { loadConfig } from '../../broker/config.js';
import { lintPolicy } from '../../policy/lint.js';
import type { LintFinding } from '../../policy/types.js';
import { compileMasking } from '../../masking/config.js';
import { DbgovError, ExitCodes } from '../../shared/errors.js';

export interface LintResult {
  file: string;
  findings: LintFinding[];
}

export default class PolicyLint extends DbgovCommand<LintResult> {
  static override summary = 'Check dbgov.yaml: schema, policy rules and masking. Exits 6 on errors.';
  static override examples = ['<%= config.bin %> policy lint', '<%= config.bin %> policy lint --config deploy/dbgov.yaml --json'];
  static override flags = {
    config: Flags.string({ char: 'c', summary: 'Path to dbgov.yaml.', default: 'dbgov.yaml', env: 'DBGOV_CONFIG' }),
  };

  async run(): Promise<LintResult> {
    const { flags } = await this.parse(PolicyLint);
    // Schema and secret errors throw a ConfigError naming the file and line.
    // Offline: secrets are not needed to judge rules, so a missing one is a warning, not a failure.
    const config = loadConfig(flags.config, process.env, { offline: true });
    if (config.unresolved?.length) this.warn(`secrets not available here, checked with placeholders (the broker needs them): ${config.unresolved.join(', ')}`);
    compileMasking(config.masking, { file: config.source.file, lineOf: (p) => config.source.lineOf(['masking', ...p]) });
    const findings = lintPolicy(config.policy, { file: config.source.file, lineOf: (p) => config.source.lineOf(['policy', ...p]) });
    const errors = findings.filter((f) => f.level === 'error');
    if (!this.jsonEnabled()) {
      for (const f of findings) {
        const where = `${config.source.file}${f.line ? `:${f.line}` : ''}`;
        this.log(`${f.level === 'error' ? this.style.bad('error') : this.style.warn('warning')} ${where}${f.rule ? ` (${f.rule})` : ''}: ${f.message}`);
        this.log(this.style.dim(`  fix: ${f.fix}`));
      }
      if (findings.length === 0) this.log(`${this.style.ok('✔')} ${config.source.file}: no problems`);
    }
    if (errors.length > 0) {
      throw new DbgovError('policy-lint', `${config.source.file}: ${errors.length} policy error${errors.length === 1 ? '' : 's'}`, { exitCode: ExitCodes.config, actions: errors.map((e) => `${e.line ? `line ${e.line}: ` : ''}${e.fix}`) });
    }
    return { file: config.source.file, findings };
  }
}
