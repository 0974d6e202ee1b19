import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newSessionState, type SessionState } from '../../src/broker/statement-hooks.js';
import { TargetRuntime } from '../../src/broker/target-runtime.js';
import type { LiveSession } from '../../src/broker/sessions.js';
import type { MaskPlan, ResultColumn } from '../../src/gateway/engine.js';
import { compileMasking } from '../../src/masking/config.js';
import { PgType } from '../../src/masking/functions.js';
import { rootLogger } from '../../src/shared/logger.js';
import { analyseMysql } from '../../src/sql/mysql/analyse.js';

const fresh = (): SessionState => newSessionState();
const session = { identity: { id: 'dev', kind: 'human', groups: ['dev'] } } as unknown as LiveSession;
const masking = compileMasking({ key: 'result-lineage-test-key', columns: { '*.users.email': 'email', '*.users.full_name': 'name' } });
const rt = new TargetRuntime({ name: 'staging', config: {} as never, analyse: () => ({ statements: [] }), catalog: null, masking, log: rootLogger() });
/** Expression columns: the server names no table for them, only lineage can tell. */
const derived = (...names: string[]): ResultColumn[] => names.map((name, index) => ({ index, name, orgSchema: '', orgTable: '', orgName: '', typeId: PgType.text, format: 0 }));
const masked = (sql: string, columns: ResultColumn[]): number[] => {
  const facts = analyseMysql(sql, { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' }).statements;
  const plan = rt.maskPlan(session, facts, columns, fresh()) as MaskPlan | null;
  return (plan?.columns ?? []).map((c) => c.index);
};

test('a result of a multi-statement message is masked for every statement it may come from', () => {
  // Both statements return one column: the second result must not borrow the constant's lineage.
  assert.deepEqual(masked("SELECT 'x' AS a; SELECT UPPER(full_name) FROM users", derived('UPPER(full_name)')), [0]);
  assert.deepEqual(masked('SELECT CONCAT(plan) FROM users; SELECT CONCAT(email) FROM users', derived('x')), [0]);
  assert.deepEqual(masked("SET @a = 1; SELECT 'x' AS a, 'y' AS b; SELECT LOWER(email), id FROM users", derived('LOWER(email)', 'id')), [0]);
});

test('statements that return no rows lend nothing, and one statement keeps its own lineage', () => {
  assert.deepEqual(masked("SET @a = 1; SELECT UPPER(plan), 'x' FROM users", derived('UPPER(plan)', 'x')), []);
  assert.deepEqual(masked('SELECT UPPER(email), UPPER(plan) FROM users', derived('a', 'b')), [0]);
  // A result of two columns can only come from the statement that returns two.
  assert.deepEqual(masked('SELECT id FROM users; SELECT id, plan FROM users', derived('id', 'plan')), []);
  // Of the same width, it may come from either: a position is masked if it is classified in any.
  assert.deepEqual(masked('SELECT id, email FROM users; SELECT id, plan FROM users', derived('id', 'plan')), [1]);
});
