import { Args, Flags } from '@oclif/core';
import { DbgovCommand } from '../../cli/base-command.js';
import { loadConfig } from '../../broker/config.js';
import { targetInfo } from '../../broker/access.js';
import { compilePolicy } from '../../policy/compile.js';
import { explain } from '../../policy/explain.js';
import type { Explanation } from '../../policy/types.js';
import { analysePostgres, loadSqlParser } from '../../sql/postgres.js';
import { analyseMysql } from '../../sql/mysql/analyse.js';
import { NotFoundError, UsageError } from '../../shared/errors.js';
import { ACCESS_LEVELS, IDENTITY_KINDS, type AccessLevel, type IdentityKind } from '../../shared/types.js';

export default class PolicyExplain extends DbgovCommand<Explanation> {
  static override summary = 'Show the decision for some SQL, the rule that decided, and the statement facts. Offline.';
  static override examples = [
    '<%= config.bin %> policy explain prod --sql "DELETE FROM users"',
    '<%= config.bin %> policy explain prod --sql "UPDATE model_weights SET w = 0 WHERE id = 1" --as alice --groups developers --json',
  ];
  static override args = { target: Args.string({ required: true, description: 'target name from dbgov.yaml' }) };
  static override flags = {
    config: Flags.string({ char: 'c', summary: 'Path to dbgov.yaml.', default: 'dbgov.yaml', env: 'DBGOV_CONFIG' }),
    sql: Flags.string({ summary: 'The SQL to judge.', required: true }),
    as: Flags.string({ summary: 'Identity id to judge it for.', default: 'someone' }),
    groups: Flags.string({ summary: 'Comma-separated groups of that identity.', default: '' }),
    kind: Flags.string({ summary: 'Identity kind.', options: [...IDENTITY_KINDS], default: 'human' }),
    access: Flags.string({ summary: 'Access level of the session.', options: [...ACCESS_LEVELS], default: 'write' }),
    database: Flags.string({ summary: 'Database (default: the target\'s).' }),
  };

  async run(): Promise<Explanation> {
    const { args, flags } = await this.parse(PolicyExplain);
    // Offline: secrets are not needed to judge rules, so a missing one is a warning, not a failure.
    const config = loadConfig(flags.config, process.env, { offline: true });
    if (config.unresolved?.length) this.warn(`secrets not available here, checked with placeholders (the broker needs them): ${config.unresolved.join(', ')}`);
    const t = config.targets[args.target];
    if (!t) throw new NotFoundError('target-not-found', `no target "${args.target}" in ${flags.config}`, { actions: [`targets there: ${Object.keys(config.targets).join(', ')}`] });
    if (!flags.sql.trim()) throw new UsageError('--sql is empty');
    const policy = compilePolicy(config.policy, { file: config.source.file, lineOf: (p) => config.source.lineOf(['policy', ...p]) });
    await loadSqlParser();
    const analyse = t.engine === 'postgres' ? analysePostgres : (sql: string) => analyseMysql(sql, { serverVersion: 101100, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false } });
    const groups = flags.groups.split(',').map((g) => g.trim()).filter(Boolean);
    const out = explain(
      policy,
      { identity: { id: flags.as, kind: flags.kind as IdentityKind, groups, source: 'builtin' }, target: targetInfo(args.target, t), database: flags.database ?? t.database, access: flags.access as AccessLevel },
      flags.sql,
      analyse,
    );
    if (!this.jsonEnabled()) {
      const s = this.style;
      const d = out.decision;
      const mark = d.action === 'allow' ? s.ok('✔ allow') : d.action === 'review' ? s.warn('⏸ review') : s.bad('✖ block');
      this.log(`${mark}  rule ${s.bold(d.rule)}`);
      if (d.message) this.log(`  ${d.message}`);
      if (d.hint) this.log(s.dim(`  hint: ${d.hint}`));
      for (const [i, f] of out.facts.entries()) {
        const rels = f.relations.map((r) => `${r.schema ? `${r.schema}.` : ''}${r.name}(${r.access})`).join(', ');
        this.log(`  [${i + 1}] ${f.tag} kind=${f.kind}${rels ? ` relations=${rels}` : ''}${f.functions.length ? ` functions=${f.functions.map((x) => `${x.name}${x.risks.length ? `[${x.risks.join('|')}]` : ''}`).join(',')}` : ''}${f.hasWhere === false ? ' where=missing' : ''}${f.opaque ? ` opaque=${f.opaque.reason}` : ''}`);
      }
      for (const tr of out.trace.filter((x) => x.matched)) this.log(s.dim(`  matched ${tr.rule} (${tr.origin}) → ${tr.action}: ${tr.why}`));
    }
    return out;
  }
}
