/**
 * `policy:` section of dbgov.yaml → a compiled Policy. Every problem is a ConfigError naming the
 * file, the line and the fix. Paths given to `lineOf` start at the document root (`policy`, …).
 */
import { isIP } from 'node:net';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ConfigError } from '../shared/errors.js';
import { parseDuration } from '../shared/clock.js';
import type { FunctionRisk, OpaqueReason, RelationAccess, StatementKind } from '../sql/facts.js';
import type { AccessLevel, IdentityKind } from '../shared/types.js';
import { defaultRules } from './builtin.js';
import { compileColumnPattern, compileGlob, compileNamePattern } from './match.js';
import { policyJsonSchema } from './schema.js';
import type {
  AccessAction,
  AccessMatch,
  AccessRule,
  Approvers,
  Cidr,
  ContextMatch,
  FactsMatch,
  IdentityMatch,
  Policy,
  PolicySource,
  ReviewSpec,
  StatementAction,
  StatementMatch,
  StatementRule,
  TimeWindow,
} from './types.js';

type Path = (string | number)[];
type Duration = number | string;

interface RawIdentity {
  ids?: string[];
  groups?: string[];
  kinds?: IdentityKind[];
  onBehalfOf?: { ids?: string[]; groups?: string[] };
}
interface RawContext {
  identity?: RawIdentity;
  target?: { names?: string[]; labels?: Record<string, string | string[]>; protected?: boolean };
  databases?: string[];
  access?: AccessLevel[];
}
interface RawFacts {
  kinds?: StatementKind[];
  tags?: string[];
  relations?: { names: string[]; access?: RelationAccess[] };
  columns?: string[];
  functions?: string[];
  functionRisks?: FunctionRisk[];
  where?: 'missing' | 'present';
  multiStatement?: boolean;
  modifyingCte?: boolean;
  explainAnalyze?: boolean;
  opaque?: boolean | OpaqueReason[];
  settings?: string[];
  predicateOnClassified?: boolean;
  mutating?: boolean;
  otherDatabase?: boolean;
}
interface RawApprovers {
  groups?: string[];
  quorum?: number;
}
interface RawStatementRule {
  name: string;
  description?: string;
  match?: RawContext & { statement?: RawFacts };
  except?: RawContext & { statement?: RawFacts };
  action: StatementAction;
  message?: string;
  hint?: string;
  review?: { approvers?: RawApprovers; expires?: Duration; hold?: Duration; window?: Duration };
}
interface RawAccessRule {
  name: string;
  description?: string;
  match?: RawContext & { when?: { days?: string[]; hours?: string; timezone: string }[]; sourceCidrs?: string[] };
  except?: RawContext;
  action: AccessAction;
  message?: string;
  hint?: string;
  reason?: { pattern?: string };
  maxTtl?: Duration;
  approvers?: RawApprovers;
  expires?: Duration;
}
export interface RawPolicy {
  defaults?: boolean | { except?: { identity?: RawIdentity } };
  approvers?: RawApprovers;
  accessHelp?: string;
  notify?: { webhook?: { url: string; secret?: string } };
  statements?: RawStatementRule[];
  access?: RawAccessRule[];
}

export const DEFAULT_APPROVERS: Approvers = { groups: ['dbgov-approvers'], quorum: 1 };
const DEFAULT_HOLD_MS = 120_000;
const DEFAULT_EXPIRES_MS = 3_600_000;
const DEFAULT_WINDOW_MS = 900_000;
const DEFAULT_ACCESS_HELP = 'ask a dbgov admin to add an access rule for you in dbgov.yaml';

let validator: ValidateFunction | undefined;
let lintValidator: ValidateFunction | undefined;

/** Schema problems, as ConfigErrors; `all` returns every one (lint) instead of the first. */
export function schemaErrors(raw: unknown, source: PolicySource, all: boolean): ConfigError[] {
  const v = all ? (lintValidator ??= new Ajv({ allErrors: true, strict: false }).compile(policyJsonSchema)) : (validator ??= new Ajv({ strict: false }).compile(policyJsonSchema));
  if (v(raw)) return [];
  return (v.errors ?? []).filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'if').map((e) => schemaError(e, source));
}

function schemaError(err: ErrorObject, source: PolicySource): ConfigError {
  const path: Path = ['policy', ...err.instancePath.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')))];
  const where = path.join('.');
  const line = source.lineOf?.(path);
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return new ConfigError(source.file, source.lineOf?.([...path, key]) ?? line, `unknown key "${key}" in ${where}`, 'remove it or check its spelling against schema/policy.schema.json');
    }
    case 'required':
      return new ConfigError(source.file, line, `${where} is missing "${String(params.missingProperty)}"`, `add ${String(params.missingProperty)}: … under ${where}`);
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).join(', ');
      return new ConfigError(source.file, line, `${where} must be one of ${allowed}`, `change it to one of: ${allowed}`);
    }
    case 'type':
      return new ConfigError(source.file, line, `${where} must be ${String(params.type)}`, `write ${where} as a ${String(params.type) === 'object' ? 'mapping (key: value lines)' : String(params.type)}`);
    default:
      return new ConfigError(source.file, line, `${where} ${err.message ?? 'is not valid'}`, `fix ${where} (see schema/policy.schema.json)`);
  }
}

export function compilePolicy(raw: unknown, source: PolicySource = { file: 'dbgov.yaml' }): Policy {
  const body = raw ?? {};
  const first = schemaErrors(body, source, false)[0];
  if (first) throw first;
  return new Compiler(source).policy(body as RawPolicy);
}

class Compiler {
  constructor(private readonly source: PolicySource) {}

  error(path: Path, problem: string, fix: string): ConfigError {
    const full = ['policy', ...path];
    return new ConfigError(this.source.file, this.source.lineOf?.(full), `${full.join('.')}: ${problem}`, fix);
  }

  policy(raw: RawPolicy): Policy {
    const approvers = this.approvers(raw.approvers, ['approvers']) ?? DEFAULT_APPROVERS;
    const names = new Set<string>();
    const unique = (name: string, path: Path): void => {
      if (names.has(name)) throw this.error([...path, 'name'], `rule name "${name}" is used twice`, 'give each rule its own name');
      names.add(name);
    };
    const statements = (raw.statements ?? []).map((r, i) => {
      unique(r.name, ['statements', i]);
      return this.statementRule(r, ['statements', i], approvers);
    });
    const access = (raw.access ?? []).map((r, i) => {
      unique(r.name, ['access', i]);
      return this.accessRule(r, ['access', i], approvers);
    });
    const d = raw.defaults ?? true;
    const defaults = d === false ? [] : defaultRules(d === true || !d.except?.identity ? undefined : this.identity(d.except.identity));
    return { statements, defaults, access, approvers, accessHelp: raw.accessHelp ?? DEFAULT_ACCESS_HELP, notify: raw.notify ?? {}, file: this.source.file };
  }

  approvers(raw: RawApprovers | undefined, path: Path): Approvers | undefined {
    if (!raw) return undefined;
    if (!raw.groups?.length) throw this.error(path, 'approvers name no groups', 'add groups: [your-approver-group]');
    return { groups: raw.groups, quorum: raw.quorum ?? 1 };
  }

  duration(value: Duration | undefined, fallback: number, path: Path): number {
    if (value === undefined) return fallback;
    if (typeof value === 'number') return Math.round(value * 1000);
    const ms = parseDuration(value);
    if (ms === undefined) throw this.error(path, `"${value}" is not a duration`, 'write it like 90s, 30m, 8h or 7d');
    return ms;
  }

  identity(raw: RawIdentity): IdentityMatch {
    return {
      ...(raw.ids ? { ids: raw.ids.map(compileGlob) } : {}),
      ...(raw.groups ? { groups: raw.groups.map(compileGlob) } : {}),
      ...(raw.kinds ? { kinds: raw.kinds } : {}),
      ...(raw.onBehalfOf
        ? { onBehalfOf: { ...(raw.onBehalfOf.ids ? { ids: raw.onBehalfOf.ids.map(compileGlob) } : {}), ...(raw.onBehalfOf.groups ? { groups: raw.onBehalfOf.groups.map(compileGlob) } : {}) } }
        : {}),
    };
  }

  context(raw: RawContext | undefined): ContextMatch {
    if (!raw) return {};
    const t = raw.target;
    return {
      ...(raw.identity ? { identity: this.identity(raw.identity) } : {}),
      ...(t
        ? {
            target: {
              ...(t.names ? { names: t.names.map(compileGlob) } : {}),
              ...(t.labels ? { labels: Object.fromEntries(Object.entries(t.labels).map(([k, v]) => [k, (Array.isArray(v) ? v : [v]).map(compileGlob)])) } : {}),
              ...(t.protected !== undefined ? { protected: t.protected } : {}),
            },
          }
        : {}),
      ...(raw.databases ? { databases: raw.databases.map(compileGlob) } : {}),
      ...(raw.access ? { access: raw.access } : {}),
    };
  }

  facts(raw: RawFacts): FactsMatch {
    const { tags, relations, columns, functions, settings, ...plain } = raw;
    return {
      ...plain,
      ...(tags ? { tags: tags.map((t) => compileGlob(t.toUpperCase())) } : {}),
      ...(relations ? { relations: { names: relations.names.map(compileNamePattern), ...(relations.access ? { access: relations.access } : {}) } } : {}),
      ...(columns ? { columns: columns.map(compileColumnPattern) } : {}),
      ...(functions ? { functions: functions.map(compileNamePattern) } : {}),
      ...(settings ? { settings: settings.map((s) => compileGlob(s.toLowerCase())) } : {}),
    };
  }

  statementMatch(raw: (RawContext & { statement?: RawFacts }) | undefined): StatementMatch {
    return { ...this.context(raw), ...(raw?.statement ? { statement: this.facts(raw.statement) } : {}) };
  }

  statementRule(raw: RawStatementRule, path: Path, fallback: Approvers): StatementRule {
    if (raw.review && raw.action !== 'review') throw this.error([...path, 'review'], `rule "${raw.name}" has review settings but action ${raw.action}`, 'set action: review, or remove the review block');
    let review: ReviewSpec | undefined;
    if (raw.action === 'review') {
      const r = raw.review ?? {};
      review = {
        approvers: this.approvers(r.approvers, [...path, 'review', 'approvers']) ?? fallback,
        holdMs: this.duration(r.hold, DEFAULT_HOLD_MS, [...path, 'review', 'hold']),
        expiresMs: this.duration(r.expires, DEFAULT_EXPIRES_MS, [...path, 'review', 'expires']),
        windowMs: this.duration(r.window, DEFAULT_WINDOW_MS, [...path, 'review', 'window']),
      };
    }
    return {
      name: raw.name,
      description: raw.description ?? '',
      action: raw.action,
      message: raw.message ?? defaultStatementMessage(raw.action, raw.name),
      hint: raw.hint ?? defaultStatementHint(raw.action, raw.name),
      match: this.statementMatch(raw.match),
      ...(raw.except ? { except: this.statementMatch(raw.except) } : {}),
      ...(review ? { review } : {}),
      origin: 'config',
      path: ['policy', ...path],
    };
  }

  accessRule(raw: RawAccessRule, path: Path, fallback: Approvers): AccessRule {
    if ((raw.approvers || raw.expires !== undefined) && raw.action !== 'review') {
      throw this.error([...path, raw.approvers ? 'approvers' : 'expires'], `rule "${raw.name}" names approvers but its action is ${raw.action}`, 'set action: review, or remove approvers/expires');
    }
    const match: AccessMatch = {
      ...this.context(raw.match),
      ...(raw.match?.when ? { when: raw.match.when.map((w, i) => this.window(w, [...path, 'match', 'when', i])) } : {}),
      ...(raw.match?.sourceCidrs ? { sourceCidrs: raw.match.sourceCidrs.map((c, i) => this.cidr(c, [...path, 'match', 'sourceCidrs', i])) } : {}),
    };
    let pattern: RegExp | undefined;
    if (raw.reason?.pattern !== undefined) {
      try {
        pattern = new RegExp(raw.reason.pattern);
      } catch (e) {
        throw this.error([...path, 'reason', 'pattern'], `not a valid regular expression: ${(e as Error).message}`, 'fix the pattern, e.g. "^(INC|CHG)-\\\\d+"');
      }
    }
    return {
      name: raw.name,
      description: raw.description ?? '',
      action: raw.action,
      message: raw.message ?? '',
      hint: raw.hint ?? '',
      match,
      ...(raw.except ? { except: this.context(raw.except) } : {}),
      ...(raw.reason ? { reason: pattern ? { pattern } : {} } : {}),
      ...(raw.maxTtl !== undefined ? { maxTtlMs: this.duration(raw.maxTtl, 0, [...path, 'maxTtl']) } : {}),
      ...(raw.action === 'review'
        ? { review: { approvers: this.approvers(raw.approvers, [...path, 'approvers']) ?? fallback, expiresMs: this.duration(raw.expires, DEFAULT_EXPIRES_MS, [...path, 'expires']) } }
        : {}),
      origin: 'config',
      path: ['policy', ...path],
    };
  }

  window(raw: { days?: string[]; hours?: string; timezone: string }, path: Path): TimeWindow {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: raw.timezone });
    } catch {
      throw this.error([...path, 'timezone'], `unknown time zone "${raw.timezone}"`, 'use an IANA name such as UTC, Europe/Paris or America/New_York');
    }
    const days = (raw.days ?? ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']).map((d) => ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].indexOf(d));
    let startMinute = 0;
    let endMinute = 0;
    if (raw.hours) {
      const m = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})$/.exec(raw.hours);
      const nums = m ? m.slice(1).map(Number) : [];
      if (!m || nums[0] > 24 || nums[2] > 24 || nums[1] > 59 || nums[3] > 59) throw this.error([...path, 'hours'], `"${raw.hours}" is not a time range`, 'write it as HH:MM-HH:MM, e.g. 09:00-18:00');
      startMinute = nums[0] * 60 + nums[1];
      endMinute = nums[2] * 60 + nums[3];
    }
    return { source: `${(raw.days ?? ['every day']).join(',')} ${raw.hours ?? 'all day'} ${raw.timezone}`, days, startMinute, endMinute, timezone: raw.timezone };
  }

  cidr(source: string, path: Path): Cidr {
    const [address, bits, extra] = source.split('/');
    const version = isIP(address ?? '');
    const family = version === 6 ? 'ipv6' : 'ipv4';
    const max = version === 6 ? 128 : 32;
    const prefix = bits === undefined ? max : Number(bits);
    if (version === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw this.error(path, `"${source}" is not a network address`, 'write it like 10.0.0.0/8 or 2001:db8::/32');
    }
    return { source, family, address, prefix };
  }
}

function defaultStatementMessage(action: StatementAction, name: string): string {
  switch (action) {
    case 'block':
      return `the statement matches rule ${name}`;
    case 'review':
      return `rule ${name} needs an approver to look at this statement`;
    case 'allow':
      return '';
    default: {
      const never: never = action;
      return never;
    }
  }
}

function defaultStatementHint(action: StatementAction, name: string): string {
  switch (action) {
    case 'block':
      return `see why with dbgov policy explain <target> --sql "…"; ask a dbgov admin about rule ${name}`;
    case 'review':
      return 'an approver runs: dbgov approve <id>';
    case 'allow':
      return '';
    default: {
      const never: never = action;
      return never;
    }
  }
}
