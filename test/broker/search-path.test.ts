import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createdView, setSearchPath, type SessionState, newSessionState } from '../../src/broker/statement-hooks.js';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';

const fresh = (): SessionState => newSessionState();

test('a SET search_path keeps the paths before it as candidates until one is certain', () => {
  const s = fresh();
  setSearchPath(s, ['look', 'public']);
  assert.deepEqual(s.searchPath, ['look', 'public']);
  assert.deepEqual(s.pastSearchPaths, [null], 'the default may come back with a ROLLBACK');
  const k1 = s.pathKey;
  setSearchPath(s, ['other']);
  assert.deepEqual(s.pastSearchPaths, [null, ['look', 'public']]);
  assert.notEqual(s.pathKey, k1, 'cache keys change with the candidates');
  setSearchPath(s, ['look', 'public']);
  assert.deepEqual(s.pastSearchPaths, [null, ['other']], 'the current path is never also a past one');
  setSearchPath(s, ['x'], true);
  assert.deepEqual(s.pastSearchPaths, [], 'a path the server reported is the only one');
  assert.equal(s.pathKey, 'x');
});

test('views created in a session are remembered with the relations they read', async () => {
  await loadSqlParser();
  const [f] = analysePostgres('CREATE VIEW Zz AS SELECT * FROM public.model_weights w JOIN other o ON o.id = w.id').statements;
  const v = createdView(f)!;
  assert.equal(v.name, 'zz');
  assert.deepEqual(v.reads.map((r) => `${r.schema ?? ''}.${r.name}`).sort(), ['.other', 'public.model_weights']);
  assert.equal(createdView(analysePostgres('CREATE TABLE t (id int)').statements[0]), undefined);
});

test('before the catalog has loaded, a write whose WHERE only tests one column counts as unbounded', async () => {
  await loadSqlParser();
  const { TargetRuntime } = await import('../../src/broker/target-runtime.js');
  const { compileMasking } = await import('../../src/masking/config.js');
  const { rootLogger } = await import('../../src/shared/logger.js');
  const catalog = { loaded: () => false, resolveRelation: () => undefined, isBaseTable: () => true, refresh: async () => undefined } as unknown as ConstructorParameters<typeof TargetRuntime>[0]['catalog'];
  const rt = new TargetRuntime({ name: 'prod', config: {} as never, analyse: () => ({ statements: [] }), catalog, masking: compileMasking({}), log: rootLogger() });
  const resolve = (sql: string): boolean | null => rt.resolve(analysePostgres(sql).statements, fresh())[0].hasWhere;
  assert.equal(resolve('DELETE FROM orders WHERE id IS NOT NULL'), false, 'id may be the key: no bound until the catalog says otherwise');
  assert.equal(resolve('UPDATE orders SET flag = false WHERE orders IS DISTINCT FROM NULL'), false);
  assert.equal(resolve('UPDATE orders SET flag = false WHERE flag'), true, 'on PostgreSQL a boolean column tested alone is a filter');
  assert.equal(resolve('DELETE FROM orders WHERE id = 3'), true);
  assert.equal(resolve('SELECT * FROM orders WHERE id IS NOT NULL'), null);
});

test('a write whose WHERE only tests one column of a relation the catalog does not have counts as unbounded', async () => {
  await loadSqlParser();
  const { TargetRuntime } = await import('../../src/broker/target-runtime.js');
  const { compileMasking } = await import('../../src/masking/config.js');
  const { rootLogger } = await import('../../src/shared/logger.js');
  // Loaded, with `orders` (key id) but not `fresh_t` (created a moment ago, or caught mid-migration).
  const catalog = {
    loaded: () => true,
    resolveRelation: (r: { name: string }) => (r.name === 'orders' ? { schema: 'public', name: 'orders', oid: 1 } : undefined),
    isBaseTable: () => true,
    refresh: async () => undefined,
    relations: () => [],
    knowsRelation: (r: { resolved?: { oid?: number } }) => r.resolved?.oid !== undefined,
    keyColumn: (r: { name: string }, c: string) => r.name === 'orders' && c === 'id',
    columnsOf: () => [{ attnum: 1, name: 'id' }, { attnum: 2, name: 'note' }],
  } as unknown as ConstructorParameters<typeof TargetRuntime>[0]['catalog'];
  const rt = new TargetRuntime({ name: 'prod', config: {} as never, analyse: () => ({ statements: [] }), catalog, masking: compileMasking({}), log: rootLogger() });
  const resolve = (sql: string): boolean | null => rt.resolve(analysePostgres(sql).statements, fresh())[0].hasWhere;
  assert.equal(resolve('DELETE FROM orders WHERE note IS NOT NULL'), true, 'a nullable column of a known table is a filter');
  assert.equal(resolve('DELETE FROM orders WHERE id IS NOT NULL'), false, 'the key holds for every row');
  assert.equal(resolve('DELETE FROM fresh_t WHERE note IS NOT NULL'), false, 'unknown relation: fail closed');
  assert.equal(resolve('DELETE FROM fresh_t WHERE note = 1'), true);
});
