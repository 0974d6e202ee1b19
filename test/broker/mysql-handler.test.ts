import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SessionState } from '../../src/broker/statement-hooks.js';
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
const fresh = (): SessionState => ({ searchPath: null, pastSearchPaths: [], searchPathComputed: false, searchPathUnsettled: false, searchPathSet: false, pathKey: '', createdViews: new Map(), prepared: new Map(), params: new Map(), tempTables: new Set(), cursors: new Map() });

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
