/**
 * `dbgov policy lint`: schema and compile errors, plus rules that can never decide anything
 * (shadowed by an earlier or more severe rule whose match is at least as broad, or matching
 * nothing at all) and review rules that fall back to the default approver group.
 */
import { ConfigError } from '../shared/errors.js';
import { BUILTIN_RULES } from './builtin.js';
import { compilePolicy, schemaErrors, type RawPolicy } from './compile.js';
import { severity } from './decide.js';
import type { AccessAction, AccessMatch, ColumnPattern, ContextMatch, FactsMatch, Glob, IdentityMatch, LintFinding, NamePattern, Policy, PolicySource, StatementMatch, TargetMatch } from './types.js';

const ACCESS_SEVERITY: Record<AccessAction, number> = { allow: 0, review: 1, deny: 2 };

export function lintPolicy(raw: unknown, source: PolicySource = { file: 'dbgov.yaml' }): LintFinding[] {
  const schema = schemaErrors(raw ?? {}, source, true);
  if (schema.length) return schema.map(fromConfigError);
  let policy: Policy;
  try {
    policy = compilePolicy(raw, source);
  } catch (e) {
    if (e instanceof ConfigError) return [fromConfigError(e)];
    throw e;
  }
  const rawPolicy = (raw ?? {}) as RawPolicy;
  const at = (path: (string | number)[]): { line?: number } => {
    const line = source.lineOf?.(path);
    return line === undefined ? {} : { line };
  };
  const findings: LintFinding[] = [];

  const ordered = [...BUILTIN_RULES, ...policy.statements, ...policy.defaults];
  policy.statements.forEach((rule, i) => {
    const empty = emptyReason(rule.match);
    if (empty) findings.push({ level: 'warning', rule: rule.name, message: `rule ${rule.name} matches no statement: ${empty}`, fix: 'fix the match, or delete the rule', ...at(rule.path) });
    const position = BUILTIN_RULES.length + i;
    const shadow = ordered.find((other, j) => other !== rule && !other.except && (severity(other.action) > severity(rule.action) || (severity(other.action) === severity(rule.action) && j < position)) && statementCovers(other.match, rule.match));
    if (shadow) {
      findings.push({
        level: 'warning',
        rule: rule.name,
        message: `rule ${rule.name} never decides: ${shadow.origin === 'config' ? 'rule' : `${shadow.origin} rule`} ${shadow.name} (${shadow.action}) matches everything it matches`,
        fix: shadow.origin === 'default' ? `exempt these identities with defaults: { except: … }, or delete rule ${rule.name}` : `narrow or delete rule ${rule.name}, or narrow ${shadow.name}`,
        ...at(rule.path),
      });
    }
    if (rule.action === 'review' && !rawPolicy.statements?.[i]?.review?.approvers && !rawPolicy.approvers) {
      findings.push({ level: 'warning', rule: rule.name, message: `review rule ${rule.name} names no approver groups; it falls back to group ${policy.approvers.groups.join(', ')}`, fix: 'add review: { approvers: { groups: [your-approvers], quorum: 2 } }', ...at(rule.path) });
    }
  });

  policy.access.forEach((rule, i) => {
    const empty = emptyReason(rule.match);
    if (empty) findings.push({ level: 'warning', rule: rule.name, message: `access rule ${rule.name} matches no request: ${empty}`, fix: 'fix the match, or delete the rule', ...at(rule.path) });
    const shadow = policy.access.find(
      (other, j) => j !== i && !other.except && !other.reason && (ACCESS_SEVERITY[other.action] > ACCESS_SEVERITY[rule.action] || (ACCESS_SEVERITY[other.action] === ACCESS_SEVERITY[rule.action] && j < i)) && accessCovers(other.match, rule.match),
    );
    if (shadow) findings.push({ level: 'warning', rule: rule.name, message: `access rule ${rule.name} never decides: rule ${shadow.name} (${shadow.action}) matches every request it matches`, fix: `narrow or delete rule ${rule.name}`, ...at(rule.path) });
    if (rule.action === 'review' && !rawPolicy.access?.[i]?.approvers && !rawPolicy.approvers) {
      findings.push({ level: 'warning', rule: rule.name, message: `review rule ${rule.name} names no approver groups; it falls back to group ${policy.approvers.groups.join(', ')}`, fix: 'add approvers: { groups: [your-approvers] }', ...at(rule.path) });
    }
    if (rule.action === 'deny' && rule.reason) findings.push({ level: 'warning', rule: rule.name, message: `access rule ${rule.name} denies, so its reason requirement has no effect`, fix: 'remove reason:, or make the rule allow or review', ...at(rule.path) });
  });
  return findings;
}

function fromConfigError(e: ConfigError): LintFinding {
  return { level: 'error', message: e.message, fix: e.fix, ...(e.line === undefined ? {} : { line: e.line }) };
}

const PROTECTED_ENVS = ['prod', 'production'];

/** Why a match can never hold, or undefined. */
function emptyReason(m: StatementMatch | AccessMatch): string | undefined {
  const lists: [string, unknown[] | undefined][] = [
    ['identity.ids', m.identity?.ids],
    ['identity.groups', m.identity?.groups],
    ['identity.kinds', m.identity?.kinds],
    ['target.names', m.target?.names],
    ['databases', m.databases],
    ['access', m.access],
  ];
  if ('statement' in m && m.statement) {
    const s = m.statement;
    lists.push(['statement.kinds', s.kinds], ['statement.tags', s.tags], ['statement.relations.names', s.relations?.names], ['statement.columns', s.columns], ['statement.functions', s.functions], ['statement.functionRisks', s.functionRisks], ['statement.settings', s.settings]);
    if (s.where && s.kinds && !s.kinds.some((k) => k === 'update' || k === 'delete' || k === 'merge')) return `where: ${s.where} only applies to update, delete and merge, and kinds are [${s.kinds.join(', ')}]`;
    if (s.opaque === false && s.kinds?.every((k) => k === 'unknown' || k === 'do')) return 'kinds unknown/do are never fully understood, and opaque is false';
  }
  const emptyList = lists.find(([, v]) => v !== undefined && v.length === 0);
  if (emptyList) return `${emptyList[0]} is an empty list`;
  if (m.identity?.onBehalfOf && m.identity.kinds && !m.identity.kinds.includes('agent')) return 'only agents act on behalf of someone, and identity.kinds excludes agent';
  const env = m.target?.labels?.env;
  if (m.target?.protected === false && env && env.every((g) => PROTECTED_ENVS.includes(g.source.toLowerCase()))) return `env ${env.map((g) => g.source).join('/')} is always protected, and target.protected is false`;
  if ('when' in m && m.when?.some((w) => w.days.length === 0)) return 'a time window has no days';
  return undefined;
}

// ---- coverage: does match A hold whenever match B holds? (sound, not complete) -------------

function globsCover(a: Glob[] | undefined, b: Glob[] | undefined): boolean {
  if (!a) return true;
  if (!b) return false;
  return b.every((g) => a.some((x) => x.re.test(g.source)));
}

function subset<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  if (!a) return true;
  if (!b) return false;
  return b.every((x) => a.includes(x));
}

function sameValue<T>(a: T | undefined, b: T | undefined): boolean {
  return a === undefined || a === b;
}

function patternsCover<T>(a: T[] | undefined, b: T[] | undefined, covers: (x: T, y: T) => boolean): boolean {
  if (!a) return true;
  if (!b) return false;
  return b.every((y) => a.some((x) => covers(x, y)));
}

const globCovers = (x: Glob | undefined, y: Glob | undefined): boolean => x === undefined || (y !== undefined && x.re.test(y.source));

function namePatternCovers(x: NamePattern, y: NamePattern): boolean {
  return globCovers(x.schema, y.schema) && globCovers(x.name, y.name);
}

function columnPatternCovers(x: ColumnPattern, y: ColumnPattern): boolean {
  return globCovers(x.schema, y.schema) && globCovers(x.table, y.table) && globCovers(x.column, y.column);
}

function identityCovers(a: IdentityMatch | undefined, b: IdentityMatch | undefined): boolean {
  if (!a) return true;
  if (!b) return false;
  if (a.onBehalfOf && !(b.onBehalfOf && globsCover(a.onBehalfOf.ids, b.onBehalfOf.ids) && globsCover(a.onBehalfOf.groups, b.onBehalfOf.groups))) return false;
  return globsCover(a.ids, b.ids) && globsCover(a.groups, b.groups) && subset(a.kinds, b.kinds);
}

function targetCovers(a: TargetMatch | undefined, b: TargetMatch | undefined): boolean {
  if (!a) return true;
  if (!b) return false;
  if (!globsCover(a.names, b.names)) return false;
  for (const [key, values] of Object.entries(a.labels ?? {})) if (!globsCover(values, b.labels?.[key])) return false;
  if (a.protected === undefined || a.protected === b.protected) return true;
  // env prod/production is protected whatever the flag says.
  const env = b.labels?.env;
  return a.protected && env !== undefined && env.every((g) => PROTECTED_ENVS.includes(g.source.toLowerCase()));
}

function contextCovers(a: ContextMatch, b: ContextMatch): boolean {
  return identityCovers(a.identity, b.identity) && targetCovers(a.target, b.target) && globsCover(a.databases, b.databases) && subset(a.access, b.access);
}

function factsCover(a: FactsMatch | undefined, b: FactsMatch | undefined): boolean {
  if (!a) return true;
  if (!b) return false;
  const opaqueCovers = a.opaque === undefined || a.opaque === b.opaque || (a.opaque === true && Array.isArray(b.opaque) && b.opaque.length > 0) || (Array.isArray(a.opaque) && Array.isArray(b.opaque) && subset(a.opaque, b.opaque));
  const relationsCover = !a.relations || (b.relations !== undefined && patternsCover(a.relations.names, b.relations.names, namePatternCovers) && subset(a.relations.access, b.relations.access));
  return (
    subset(a.kinds, b.kinds) &&
    globsCover(a.tags, b.tags) &&
    relationsCover &&
    patternsCover(a.columns, b.columns, columnPatternCovers) &&
    patternsCover(a.functions, b.functions, namePatternCovers) &&
    subset(a.functionRisks, b.functionRisks) &&
    globsCover(a.settings, b.settings) &&
    sameValue(a.where, b.where) &&
    sameValue(a.multiStatement, b.multiStatement) &&
    sameValue(a.modifyingCte, b.modifyingCte) &&
    sameValue(a.explainAnalyze, b.explainAnalyze) &&
    sameValue(a.predicateOnClassified, b.predicateOnClassified) &&
    sameValue(a.mutating, b.mutating) &&
    sameValue(a.otherDatabase, b.otherDatabase) &&
    opaqueCovers
  );
}

function statementCovers(a: StatementMatch, b: StatementMatch): boolean {
  return contextCovers(a, b) && factsCover(a.statement, b.statement);
}

function accessCovers(a: AccessMatch, b: AccessMatch): boolean {
  const windows = !a.when || (b.when !== undefined && b.when.every((w) => a.when?.some((x) => x.source === w.source)));
  const cidrs = !a.sourceCidrs || (b.sourceCidrs !== undefined && b.sourceCidrs.every((c) => a.sourceCidrs?.some((x) => x.source === c.source)));
  return contextCovers(a, b) && windows && cidrs;
}
