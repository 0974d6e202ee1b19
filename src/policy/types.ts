/**
 * The policy model: what `compilePolicy` produces from the `policy:` section of dbgov.yaml, the
 * contexts the broker hands in, and the decisions that come out. Pure types.
 */
import type { FunctionRisk, OpaqueReason, RelationAccess, StatementFacts, StatementKind } from '../sql/facts.js';
import type { AccessLevel, Identity, IdentityKind, TargetInfo } from '../shared/types.js';

export const STATEMENT_ACTIONS = ['allow', 'review', 'block'] as const;
export type StatementAction = (typeof STATEMENT_ACTIONS)[number];

export const ACCESS_ACTIONS = ['allow', 'review', 'deny'] as const;
export type AccessAction = (typeof ACCESS_ACTIONS)[number];

/** A compiled glob: `*` any run of characters, `?` one character. `source` is kept for lint and explain. */
export interface Glob {
  source: string;
  re: RegExp;
  /** The pattern has no wildcard: matching is string equality. */
  exact?: string;
}

/** `schema.name`, or just `name` (any schema). */
export interface NamePattern {
  source: string;
  schema?: Glob;
  name: Glob;
}

/** `schema.table.column`, `table.column` or `column`. */
export interface ColumnPattern {
  source: string;
  schema?: Glob;
  table?: Glob;
  column: Glob;
}

export interface IdentityMatch {
  ids?: Glob[];
  groups?: Glob[];
  kinds?: IdentityKind[];
  /** Agents acting for a person: matches that person. Never matches an identity acting for nobody. */
  onBehalfOf?: { ids?: Glob[]; groups?: Glob[] };
}

export interface TargetMatch {
  names?: Glob[];
  /** Every listed label must be present with one of the listed values. */
  labels?: Record<string, Glob[]>;
  protected?: boolean;
}

/** Who, where, as what: shared by statement and access rules. Keys AND together; list items OR. */
export interface ContextMatch {
  identity?: IdentityMatch;
  target?: TargetMatch;
  databases?: Glob[];
  access?: AccessLevel[];
}

export interface FactsMatch {
  kinds?: StatementKind[];
  tags?: Glob[];
  relations?: { names: NamePattern[]; access?: RelationAccess[] };
  columns?: ColumnPattern[];
  functions?: NamePattern[];
  functionRisks?: FunctionRisk[];
  where?: 'missing' | 'present';
  multiStatement?: boolean;
  modifyingCte?: boolean;
  explainAnalyze?: boolean;
  /** true: any opaque reason; a list: one of those. false: fully understood statements only. */
  opaque?: boolean | OpaqueReason[];
  settings?: Glob[];
  predicateOnClassified?: boolean;
  /** true: the statement may change data, schema, privileges or server state. */
  mutating?: boolean;
  /**
   * true: the statement reaches a database other than the one the credential is scoped to. On
   * MySQL a schema is a database, so `mysql.user` or `USE other` leaves the credential's scope.
   */
  otherDatabase?: boolean;
}

export interface StatementMatch extends ContextMatch {
  statement?: FactsMatch;
}

export interface AccessMatch extends ContextMatch {
  /** Any one window must contain `now`. */
  when?: TimeWindow[];
  /** The request must come from one of these networks. */
  sourceCidrs?: Cidr[];
}

export interface TimeWindow {
  source: string;
  /** 0 = Sunday … 6 = Saturday. */
  days: number[];
  /** Minutes since local midnight; `end <= start` wraps past midnight. */
  startMinute: number;
  endMinute: number;
  timezone: string;
}

export interface Cidr {
  source: string;
  family: 'ipv4' | 'ipv6';
  address: string;
  prefix: number;
}

export interface Approvers {
  groups: string[];
  quorum: number;
}

export interface ReviewSpec {
  approvers: Approvers;
  /** How long the statement waits on the wire; 0 fails at once with "approval required". */
  holdMs: number;
  /** How long the request stays open for approvers. */
  expiresMs: number;
  /** After approval, how long the same identity may re-run the same statement once. */
  windowMs: number;
}

/** Where a rule came from: built in and always on, the shipped defaults, or dbgov.yaml. */
export type RuleOrigin = 'builtin' | 'default' | 'config';

export interface StatementRule {
  name: string;
  description: string;
  action: StatementAction;
  message: string;
  hint: string;
  match: StatementMatch;
  except?: StatementMatch;
  review?: ReviewSpec;
  origin: RuleOrigin;
  /** Path of the rule in dbgov.yaml (config rules), for lint and explain. */
  path: (string | number)[];
}

export interface AccessRule {
  name: string;
  description: string;
  action: AccessAction;
  message: string;
  hint: string;
  match: AccessMatch;
  except?: AccessMatch;
  /** A reason must be given, and match this pattern when one is set. */
  reason?: { pattern?: RegExp };
  maxTtlMs?: number;
  review?: { approvers: Approvers; expiresMs: number };
  origin: RuleOrigin;
  path: (string | number)[];
}

export interface Policy {
  /** Config statement rules, in file order. */
  statements: StatementRule[];
  /** Built-in default guardrails for protected targets; empty with `defaults: false`. */
  defaults: StatementRule[];
  /** Config access rules; when empty the built-in access defaults apply. */
  access: AccessRule[];
  /** Used by review rules that name no approvers, and by built-in elevation. */
  approvers: Approvers;
  /** Shown in access denials: how to ask for access (a channel, a ticket queue). */
  accessHelp: string;
  /** Where to tell approvers that a request is waiting. */
  notify: { webhook?: { url: string; secret?: string } };
  file: string;
}

export interface StatementContext {
  identity: Identity;
  target: TargetInfo & { protected: boolean };
  database: string;
  access: AccessLevel;
  /**
   * Classified columns this identity may not see in clear (`schema.table.column`). A predicate on
   * one of them is blocked: `WHERE ssn LIKE '1%'` would reveal the value row by row.
   */
  classifiedColumns?: ReadonlySet<string>;
  /**
   * Statements this session has prepared (SQL PREPARE), by name. EXECUTE is judged by what it
   * runs; an EXECUTE of a name not in here is opaque. Absent means the session tracks nothing.
   */
  prepared?: ReadonlyMap<string, StatementFacts>;
}

export interface AccessContext {
  identity: Identity;
  target: TargetInfo & { protected: boolean };
  database: string;
  access: AccessLevel;
  ttlMs: number;
  reason?: string;
  sourceIp?: string;
  now: number;
}

export interface StatementVerdict {
  action: StatementAction;
  rule: string;
}

export interface StatementDecision {
  action: StatementAction;
  /** Name of the deciding rule, or `default` when nothing matched. */
  rule: string;
  /** Block: starts with `dbgov: blocked`. Review: why approval is needed. Allow: empty. */
  message: string;
  /** For the client's DETAIL field: the rule and where it comes from. */
  detail: string;
  /** What to do next. */
  hint: string;
  review?: ReviewSpec;
  statements: StatementVerdict[];
}

export interface AccessDecision {
  action: AccessAction;
  rule: string;
  message: string;
  hint: string;
  /** The longest credential the deciding rule allows; null when no rule caps it. */
  maxTtlMs: number | null;
  approvers?: Approvers;
  /** Review: how long the access request stays open. */
  expiresMs?: number;
}

export interface TraceEntry {
  /** Statement index in the message. */
  statement: number;
  rule: string;
  origin: RuleOrigin;
  action: StatementAction;
  matched: boolean;
  why: string;
}

export interface Explanation {
  decision: StatementDecision;
  facts: StatementFacts[];
  trace: TraceEntry[];
}

export interface LintFinding {
  level: 'error' | 'warning';
  rule?: string;
  message: string;
  fix: string;
  line?: number;
}

export interface PolicySource {
  file: string;
  lineOf?(path: (string | number)[]): number | undefined;
}
