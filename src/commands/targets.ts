import type { TargetView } from '../broker/api-types.js';
import { DbgovCommand } from '../cli/base-command.js';
import { renderTable } from '../cli/render.js';

export interface TargetsResult {
  targets: TargetView[];
}

/** `read, write (approval)`: what you may ask for, and what needs someone else's yes. */
export function accessSummary(target: TargetView): string {
  const allowed = target.access.filter((a) => a.allowed);
  if (allowed.length === 0) return 'none';
  return allowed.map((a) => (a.requiresApproval ? `${a.level} (approval)` : a.level)).join(', ');
}

export default class Targets extends DbgovCommand<TargetsResult> {
  static override summary = 'List the databases you may connect to.';
  static override description = 'Shows each target with its engine, environment, database and the access levels policy lets you ask for. Levels marked (approval) need an approver first.';
  static override examples = ['<%= config.bin %> targets', '<%= config.bin %> targets --json'];

  async run(): Promise<TargetsResult> {
    const { flags } = await this.parse(Targets);
    const { client } = await this.session(flags.broker);
    const { targets } = await client.targets();
    const s = this.style;
    if (targets.length === 0) {
      this.log('No targets are visible to you. Ask your dbgov admin which groups grant access, then check `dbgov whoami`.');
      return { targets };
    }
    this.log(
      renderTable(
        targets,
        [
          { header: 'NAME', value: (t) => t.name },
          { header: 'ENGINE', value: (t) => t.engine },
          { header: 'ENV', value: (t) => t.labels.env ?? t.name, color: (v) => (v === 'prod' || v === 'production' ? s.warn(v) : v) },
          { header: 'DATABASE', value: (t) => t.database, shrink: true },
          { header: 'ACCESS', value: accessSummary, shrink: true, color: (v) => (v === 'none' ? s.dim(v) : v) },
        ],
        { width: this.width, style: s },
      ),
    );
    this.log(s.dim('\nconnect with: dbgov connect <name>'));
    return { targets };
  }
}
