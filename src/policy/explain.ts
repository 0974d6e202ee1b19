/**
 * `dbgov policy explain`: the decision for some SQL, the facts it was made from, and every rule
 * considered with why it did or did not match. Offline and pure.
 */
import type { MessageAnalysis } from '../sql/facts.js';
import { evaluateStatements } from './decide.js';
import type { Explanation, Policy, StatementContext, TraceEntry } from './types.js';

export function explain(policy: Policy, ctx: StatementContext, sql: string, analyse: (sql: string) => MessageAnalysis): Explanation {
  const facts = analyse(sql).statements;
  const trace: TraceEntry[] = [];
  const decision = evaluateStatements(policy, ctx, facts, trace);
  return { decision, facts, trace };
}
