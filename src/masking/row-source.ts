/**
 * Which query a result's rows come from. FETCH returns the rows of a DECLAREd cursor and
 * EXECUTE those of a PREPAREd statement, so their results are masked by that query's lineage.
 * A cursor or prepared statement the gateway never saw declared (one opened inside a function,
 * or prepared by dynamic SQL) has rows of unknown origin: its relations are reported as
 * unknown, so every derived column is masked (fail closed).
 */
import type { RelationRef, StatementFacts } from '../sql/facts.js';

export interface RowSources {
  prepared: ReadonlyMap<string, StatementFacts>;
  cursors: ReadonlyMap<string, StatementFacts>;
}

const UNKNOWN_ROWS = 'unknown-row-source';

export function rowSource(facts: StatementFacts[], known: RowSources): StatementFacts[] {
  return facts.map((f) => {
    const name = f.cursor && (f.cursor.op === 'fetch' || f.cursor.op === 'move') ? f.cursor.name : f.execute?.name;
    if (name === undefined) return f;
    const source = f.cursor ? known.cursors.get(name) : known.prepared.get(name);
    if (source) return source;
    return unknownRows(f, name);
  });
}

/** The facts of a statement whose rows come from somewhere unknown: every column is masked. */
export function unknownRows(f: StatementFacts, name: string): StatementFacts {
  return { ...f, relations: [{ name: '*', access: 'read' as const, via: UNKNOWN_ROWS }], lineage: undefined, opaque: { reason: 'unresolved-relation' as const, detail: `rows of ${name}` } };
}

/**
 * Relations for a mask plan; undefined (assume the worst) when the rows' origin is unknown.
 * A statement the analyser could not fully understand (a parse failure the server accepts, a
 * statement type without a rule, dynamic SQL) lists only what it saw, not what the server reads:
 * taken as complete, its derived columns would pass in clear as "touching nothing classified".
 */
export function planRelations(facts: StatementFacts[]): RelationRef[] | undefined {
  if (facts.some((f) => f.opaque !== undefined)) return undefined;
  const rels = facts.flatMap((f) => f.relations);
  return rels.some((r) => r.via === UNKNOWN_ROWS) ? undefined : rels;
}
