import type { AuditEvent, AuditFilter, AuditKind } from './event.js';

/** Matches a table or column name given bare or qualified (`users` matches `public.users`). */
function nameMatches(candidate: string, wanted: string): boolean {
  const c = candidate.toLowerCase();
  return c === wanted || c.endsWith(`.${wanted}`);
}

export interface CompiledFilter {
  (event: AuditEvent): boolean;
}

/**
 * Compiles a filter once for a scan over many events. Time bounds compare ISO strings, which
 * sort like the instants they name (UTC, fixed width), so no Date parsing per event.
 */
export function compileFilter(filter: AuditFilter): CompiledFilter {
  const since = filter.since === undefined ? undefined : new Date(filter.since).toISOString();
  const until = filter.until === undefined ? undefined : new Date(filter.until).toISOString();
  const kinds: Set<AuditKind> | undefined =
    filter.kind === undefined ? undefined : new Set(Array.isArray(filter.kind) ? filter.kind : [filter.kind]);
  const table = filter.table?.toLowerCase();
  const column = filter.column?.toLowerCase();
  const text = filter.text?.toLowerCase();
  return (e) => {
    if (since !== undefined && e.time < since) return false;
    if (until !== undefined && e.time >= until) return false;
    if (kinds && !kinds.has(e.kind)) return false;
    if (filter.identity !== undefined && e.identity?.id !== filter.identity && e.identity?.onBehalfOf?.id !== filter.identity) return false;
    if (filter.identityKind !== undefined && e.identity?.kind !== filter.identityKind) return false;
    if (filter.target !== undefined && e.target !== filter.target) return false;
    if (filter.database !== undefined && e.database !== filter.database) return false;
    if (filter.sessionId !== undefined && e.sessionId !== filter.sessionId) return false;
    if (filter.decision !== undefined && e.statement?.decision !== filter.decision) return false;
    if (table !== undefined && !(e.statement?.tables ?? []).some((t) => nameMatches(t, table))) return false;
    if (column !== undefined && !(e.statement?.maskedColumns ?? []).some((c) => nameMatches(c, column)) && !(e.statement?.unmaskedColumns ?? []).some((c) => nameMatches(c, column))) return false;
    if (text !== undefined) {
      const inText = e.statement?.text.toLowerCase().includes(text) ?? false;
      if (!inText && !(e.detail !== undefined && JSON.stringify(e.detail).toLowerCase().includes(text))) return false;
    }
    return true;
  };
}
