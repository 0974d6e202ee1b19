import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newSessionState, type SessionState } from '../../src/broker/statement-hooks.js';
import { TargetRuntime } from '../../src/broker/target-runtime.js';
import { compileMasking } from '../../src/masking/config.js';
import { rootLogger } from '../../src/shared/logger.js';
import { analyseMysql } from '../../src/sql/mysql/analyse.js';

const analyse = (sql: string) => analyseMysql(sql, { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' }).statements;
const predicates = (sql: string, state?: SessionState): string[] => {
  const rt = new TargetRuntime({ name: 'staging', config: {} as never, analyse: () => ({ statements: [] }), catalog: null, masking: compileMasking({}), log: rootLogger() });
  const facts = state ? rt.resolve(analyse(sql), state) : analyse(sql);
  return (facts[0].predicateColumns ?? []).map((p) => `${p.schema ?? ''}.${p.table}.${p.column}`).sort();
};
const fresh = (): SessionState => newSessionState();

test('a HANDLER READ filters rows as a WHERE does', () => {
  assert.deepEqual(predicates("HANDLER users READ FIRST WHERE ssn = '1'"), ['app.users.ssn']);
  // A key lookup compares the index's columns, which only the catalog knows: any column of the table.
  assert.deepEqual(predicates("HANDLER users READ email = ('a@b.c')"), ['app.users.*']);
  assert.deepEqual(predicates('HANDLER users READ `PRIMARY` >= (2) LIMIT 1'), ['app.users.*']);
  assert.deepEqual(predicates('HANDLER users READ NEXT'), []);
});

test('the filter of a HANDLER opened under an alias is on the table it was opened on', () => {
  const state = fresh();
  state.cursors.set('h', analyse('HANDLER users OPEN AS h')[0]);
  assert.deepEqual(predicates("HANDLER h READ FIRST WHERE ssn LIKE '1%'", state), ['app.users.ssn']);
  // Never opened in this session: the table is unknown, so it may be any.
  assert.deepEqual(predicates("HANDLER g READ FIRST WHERE ssn LIKE '1%'", fresh()), ['.*.ssn']);
});

test('an EXECUTE of a prepared SET sql_mode makes the rest of its message unknown', () => {
  const rt = new TargetRuntime({ name: 'staging', config: {} as never, analyse: () => ({ statements: [] }), catalog: null, masking: compileMasking({}), log: rootLogger() });
  const sql = "PREPARE s FROM 'SET sql_mode = ''NO_BACKSLASH_ESCAPES'''; EXECUTE s; SELECT 'a\\'; DELETE FROM orders; -- '";
  const facts = rt.resolve(analyse(sql), fresh());
  assert.deepEqual(facts.map((f) => f.opaque !== undefined), [false, false, true]);
  // Prepared in an earlier message: the session remembers it.
  const state = fresh();
  state.prepared.set('s', analyse("SET sql_mode = 'ANSI_QUOTES'")[0]);
  assert.deepEqual(rt.resolve(analyse('EXECUTE s; SELECT "full_name" FROM users'), state).map((f) => f.opaque !== undefined), [false, true]);
  assert.deepEqual(rt.resolve(analyse('EXECUTE s'), state).map((f) => f.opaque !== undefined), [false]);
});

test('an EXECUTE changes the settings its prepared statement sets', async () => {
  const { settingsOf } = await import('../../src/broker/statement-hooks.js');
  const state = fresh();
  state.prepared.set('s', analyse("SET sql_mode = 'ANSI_QUOTES'")[0]);
  assert.deepEqual(settingsOf(state, analyse('EXECUTE s')[0]).map((s) => `${s.name}=${s.value}`), ['sql_mode=ANSI_QUOTES']);
  assert.deepEqual(settingsOf(state, analyse('EXECUTE t')[0]), []);
});

test('the settings of a message count what its EXECUTEs run, prepared by the session or earlier in the message', async () => {
  const { settingsIn } = await import('../../src/broker/statement-hooks.js');
  const state = fresh();
  // The check of a message comes before its PREPAREs are remembered: the one in the message counts.
  const names = (sql: string): string[][] => settingsIn(state, analyse(sql)).map((ss) => ss.map((s) => `${s.name}=${s.value}`));
  assert.deepEqual(names("PREPARE s FROM 'SET NAMES gbk'; EXECUTE s"), [[], ['names=gbk']]);
  // An EXECUTE before the PREPARE runs what the session had under that name, not the new text.
  state.prepared.set('s', analyse("SET sql_mode = 'ANSI_QUOTES'")[0]);
  assert.deepEqual(names("EXECUTE s; PREPARE s FROM 'SET NAMES gbk'"), [['sql_mode=ANSI_QUOTES'], []]);
  // Either may be what runs (on PostgreSQL a second PREPARE of a name fails): both count.
  assert.deepEqual(names("PREPARE s FROM 'SET NAMES gbk'; EXECUTE s"), [[], ['names=gbk', 'sql_mode=ANSI_QUOTES']]);
  assert.deepEqual(names('SELECT 1'), [[]]);
});
