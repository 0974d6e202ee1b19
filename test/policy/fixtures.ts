/** Hand-built statement facts and contexts for policy tests (no parser needed). */
import type { StatementFacts } from '../../src/sql/facts.js';
import type { Identity } from '../../src/shared/types.js';
import type { AccessContext, StatementContext } from '../../src/policy/types.js';

export function facts(p: Partial<StatementFacts> = {}): StatementFacts {
  return {
    kind: 'select',
    tag: 'SELECT',
    text: 'select 1',
    redacted: 'select $1',
    fingerprint: 'fp',
    relations: [],
    functions: [],
    hasWhere: null,
    modifyingCte: false,
    multiStatement: false,
    ...p,
  };
}

export const dev: Identity = { id: 'dev@example.com', kind: 'human', groups: ['devs'], source: 'oidc' };
export const dba: Identity = { id: 'dba@example.com', kind: 'human', groups: ['dba', 'dbgov-approvers'], source: 'oidc' };
export const agent: Identity = { id: 'agent-1', kind: 'agent', groups: ['agents'], source: 'service-account', onBehalfOf: { id: dev.id, kind: 'human', groups: dev.groups } };

export const prod: StatementContext['target'] = { name: 'prod', engine: 'postgres', labels: { env: 'prod', team: 'payments' }, database: 'app', protected: true };
export const staging: StatementContext['target'] = { name: 'staging', engine: 'postgres', labels: { env: 'staging' }, database: 'app', protected: false };

export function ctx(p: Partial<StatementContext> = {}): StatementContext {
  return { identity: dev, target: prod, database: 'app', access: 'write', ...p };
}

export function accessCtx(p: Partial<AccessContext> = {}): AccessContext {
  return { identity: dev, target: prod, database: 'app', access: 'read', ttlMs: 3_600_000, now: Date.UTC(2025, 0, 6, 10, 0), ...p };
}
