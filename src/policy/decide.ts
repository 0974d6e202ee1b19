/**
 * Statement decisions. Every rule that matches a statement is a candidate and the most severe
 * action wins (block > review > allow), the earliest rule on a tie; across the statements of one
 * message, the most severe statement decides. So no allow rule can outvote a block, and a
 * harmless first statement cannot carry a harmful second one through.
 */
import type { StatementFacts } from '../sql/facts.js';
import { BUILTIN_RULES, defaultAccessRules } from './builtin.js';
import { accessMatches, contextMatches, identityMatches, statementMatches, type Certainty, type Check } from './match.js';
import type { AccessAction, AccessContext, AccessDecision, AccessRule, Policy, StatementAction, StatementContext, StatementDecision, StatementRule, TraceEntry } from './types.js';

const SEVERITY: Record<StatementAction, number> = { allow: 0, review: 1, block: 2 };

export function severity(action: StatementAction): number {
  return SEVERITY[action];
}

/** Every rule in evaluation order: built-in, then dbgov.yaml, then the shipped defaults. */
function statementRules(policy: Policy): StatementRule[] {
  return [...BUILTIN_RULES, ...policy.statements, ...policy.defaults];
}

function ruleMatches(rule: StatementRule, ctx: StatementContext, f: StatementFacts, explain = false): Check {
  // Allow rules count only what a statement certainly is; block/review what it may be.
  const certainty: Certainty = rule.action === 'allow' ? 'must' : 'may';
  const m = statementMatches(rule.match, f, ctx, certainty, explain);
  if (!m.ok || !rule.except) return m;
  // An exemption must certainly apply: uncertainty never loosens a block or review.
  const e = statementMatches(rule.except, f, ctx, certainty === 'may' ? 'must' : 'may', explain);
  return e.ok ? { ok: false, why: `excepted: ${e.why}` } : m;
}

/**
 * What to judge for one statement: itself, what a PREPARE prepares, and what an EXECUTE runs.
 * An EXECUTE of a name this session never prepared is opaque (it would run unseen SQL).
 */
function judged(f: StatementFacts, ctx: StatementContext): StatementFacts[] {
  const out = [f];
  if (f.prepare) out.push({ ...f.prepare.inner, multiStatement: f.multiStatement });
  if (f.execute) {
    const inner = ctx.prepared?.get(f.execute.name);
    out.push(
      inner
        ? { ...inner, multiStatement: f.multiStatement }
        : { ...f, execute: undefined, opaque: f.opaque ?? { reason: 'unprepared-execute', detail: `EXECUTE ${f.execute.name}: never seen prepared in this session` } },
    );
  }
  return out;
}

interface Winner {
  rule: StatementRule;
  facts: StatementFacts;
}

function decideOne(rules: StatementRule[], ctx: StatementContext, f: StatementFacts, index: number, trace: TraceEntry[] | undefined): Winner | undefined {
  let best: Winner | undefined;
  for (const part of judged(f, ctx)) {
    for (const rule of rules) {
      const c = ruleMatches(rule, ctx, part, trace !== undefined);
      trace?.push({ statement: index, rule: rule.name, origin: rule.origin, action: rule.action, matched: c.ok, why: part === f ? c.why : `(inner ${part.tag}) ${c.why}` });
      if (c.ok && (!best || SEVERITY[rule.action] > SEVERITY[best.rule.action])) best = { rule, facts: part };
    }
  }
  return best;
}

function origin(rule: StatementRule, policy: Policy): string {
  switch (rule.origin) {
    case 'builtin':
      return 'built in; cannot be turned off on protected targets';
    case 'default':
      return 'dbgov default guardrail for protected targets';
    case 'config':
      return `in ${policy.file}`;
    default: {
      const never: never = rule.origin;
      return never;
    }
  }
}

export function evaluateStatements(policy: Policy, ctx: StatementContext, facts: StatementFacts[], trace?: TraceEntry[]): StatementDecision {
  const rules = statementRules(policy);
  // `PREPARE p AS …; EXECUTE p` in one message: the EXECUTE runs what the PREPARE before it saw.
  let session = ctx;
  const winners = facts.map((f, i) => {
    const w = decideOne(rules, session, f, i, trace);
    if (f.prepare) session = { ...session, prepared: new Map([...(session.prepared ?? []), [f.prepare.name, f.prepare.inner]]) };
    return w;
  });
  const statements = winners.map((w) => ({ action: w?.rule.action ?? 'allow', rule: w?.rule.name ?? 'default' }));
  let top: { w: Winner; index: number } | undefined;
  winners.forEach((w, index) => {
    if (w && (!top || SEVERITY[w.rule.action] > SEVERITY[top.w.rule.action])) top = { w, index };
  });
  if (!top) return { action: 'allow', rule: 'default', message: '', detail: '', hint: '', statements };
  const { rule, facts: decidingFacts } = top.w;
  const where = facts.length > 1 ? `; statement ${top.index + 1} of ${facts.length}` : '';
  const detail = `rule ${rule.name} (${origin(rule, policy)})${where}`;
  switch (rule.action) {
    case 'allow':
      return { action: 'allow', rule: rule.name, message: '', detail, hint: '', statements };
    case 'review':
      return { action: 'review', rule: rule.name, message: rule.message, detail, hint: rule.hint, ...(rule.review ? { review: rule.review } : {}), statements };
    case 'block': {
      const why = decidingFacts.opaque ? ` (${decidingFacts.opaque.reason}: ${decidingFacts.opaque.detail})` : '';
      return { action: 'block', rule: rule.name, message: `dbgov: blocked: ${rule.message}${why}`, detail, hint: rule.hint, statements };
    }
    default: {
      const never: never = rule.action;
      return never;
    }
  }
}

/** The decision for one protocol message (all its statements). Pure; microseconds. */
export function decideStatements(policy: Policy, ctx: StatementContext, facts: StatementFacts[]): StatementDecision {
  return evaluateStatements(policy, ctx, facts);
}

// ---- access ---------------------------------------------------------------------------

/*
 * Contextual access, checked before a credential is issued. Every matching rule is a candidate;
 * the most severe wins (deny > review > allow), the earliest on a tie. When dbgov.yaml writes
 * access rules, a request no rule matches is denied; when it writes none, the built-in defaults
 * apply (see defaultAccessRules).
 */

const ACCESS_SEVERITY: Record<AccessAction, number> = { allow: 0, review: 1, deny: 2 };

function accessRules(policy: Policy): AccessRule[] {
  return policy.access.length ? policy.access : defaultAccessRules(policy.approvers);
}

interface Candidate {
  rule: AccessRule;
  action: AccessAction;
  message: string;
  hint: string;
}

function reasonProblem(rule: AccessRule, reason: string | undefined): string | undefined {
  if (!rule.reason) return undefined;
  const text = reason?.trim() ?? '';
  if (!text) return 'a reason is required';
  if (rule.reason.pattern && !rule.reason.pattern.test(text)) return `the reason "${text}" does not match ${String(rule.reason.pattern)}`;
  return undefined;
}

function candidate(rule: AccessRule, ctx: AccessContext, help: string): Candidate {
  const what = `${ctx.access} access to ${ctx.target.name}`;
  // A reason requirement guards a grant: without a valid reason the grant turns into a refusal.
  const problem = rule.action === 'deny' ? undefined : reasonProblem(rule, ctx.reason);
  if (problem) {
    return {
      rule,
      action: 'deny',
      message: `dbgov: access denied: rule ${rule.name} grants ${what} only with a reason: ${problem}`,
      hint: `give the ticket: dbgov connect ${ctx.target.name} --access ${ctx.access} --reason ${rule.reason?.pattern ? '<ticket matching the pattern>' : '<ticket>'}`,
    };
  }
  switch (rule.action) {
    case 'allow':
      return { rule, action: 'allow', message: '', hint: '' };
    case 'review':
      return { rule, action: 'review', message: rule.message || `${what} needs approval (rule ${rule.name})`, hint: rule.hint || 'an approver runs: dbgov approve <id>' };
    case 'deny':
      return { rule, action: 'deny', message: `dbgov: access denied: ${rule.message || `rule ${rule.name} denies ${what}`}`, hint: rule.hint || help };
    default: {
      const never: never = rule.action;
      return never;
    }
  }
}

export function decideAccess(policy: Policy, ctx: AccessContext): AccessDecision {
  const rules = accessRules(policy);
  const candidates: Candidate[] = [];
  const nearMisses: string[] = [];
  for (const rule of rules) {
    const m = accessMatches(rule.match, ctx);
    const excepted = m.ok && rule.except !== undefined && contextMatches(rule.except, ctx).ok;
    if (m.ok && !excepted) candidates.push(candidate(rule, ctx, policy.accessHelp));
    else if (!excepted && rule.action !== 'deny' && (!rule.match.identity || identityMatches(rule.match.identity, ctx.identity).ok)) {
      // The rules that apply to this person but not to this request tell them what they can do.
      nearMisses.push(`rule ${rule.name} applies to you, but ${m.why}`);
    }
  }
  if (candidates.length === 0) {
    const near = nearMisses.length ? ` (${nearMisses.join('; ')})` : '';
    return {
      action: 'deny',
      rule: 'default',
      message: `dbgov: access denied: no access rule gives ${ctx.identity.id} ${ctx.access} access to ${ctx.target.name}${near}`,
      hint: policy.accessHelp,
      maxTtlMs: null,
    };
  }
  let top = candidates[0];
  for (const c of candidates) if (ACCESS_SEVERITY[c.action] > ACCESS_SEVERITY[top.action]) top = c;
  // Every grant that applies caps the credential: the shortest cap wins.
  const caps = candidates.filter((c) => c.action !== 'deny' && c.rule.maxTtlMs !== undefined).map((c) => c.rule.maxTtlMs as number);
  const maxTtlMs = caps.length ? Math.min(...caps) : null;
  return {
    action: top.action,
    rule: top.rule.name,
    message: top.message,
    hint: top.hint,
    maxTtlMs,
    ...(top.action === 'review' && top.rule.review ? { approvers: top.rule.review.approvers, expiresMs: top.rule.review.expiresMs } : {}),
  };
}
