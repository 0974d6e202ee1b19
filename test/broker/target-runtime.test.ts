import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { newSessionState, setSearchPath, type SessionState } from '../../src/broker/statement-hooks.js';
import type { LiveSession } from '../../src/broker/sessions.js';
import { TargetRuntime } from '../../src/broker/target-runtime.js';
import type { MaskPlan, ResultColumn } from '../../src/gateway/engine.js';
import { compileMasking } from '../../src/masking/config.js';
import { rootLogger } from '../../src/shared/logger.js';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';
import { resolveTestedColumns } from '../../src/sql/lineage.js';
import type { StatementFacts } from '../../src/sql/facts.js';

const fresh = (): SessionState => newSessionState();
const session = { id: 's1', identity: { id: 'dev', kind: 'human', groups: [] }, target: 'staging', database: 'app', access: 'write' } as unknown as LiveSession;
const masking = () => compileMasking({ key: 'k-0123456789abcdef0123', columns: { 'public.users.full_name': 'name' } });
type Catalog = ConstructorParameters<typeof TargetRuntime>[0]['catalog'];
const runtime = (catalog: Catalog) => new TargetRuntime({ name: 'staging', config: {} as never, analyse: () => ({ statements: [] }), catalog, masking: masking(), log: rootLogger() });

before(loadSqlParser);

test('a result of a multi-statement message is masked by every statement it may come from', () => {
  const rt = runtime(null);
  const facts = analysePostgres('SELECT upper(plan) FROM users; SELECT upper(full_name) FROM users').statements;
  const col: ResultColumn = { index: 0, name: 'upper', tableOid: 0, attnum: 0, typeId: 25, format: 0 };
  const plan = rt.maskPlan(session, facts, [col], fresh()) as MaskPlan | null;
  // The engine does not say which statement a RowDescription belongs to: upper(full_name) may be this one.
  assert.deepEqual(plan?.maskedColumns, ['upper (*.users.full_name)']);
  // A statement without lineage that may still return rows (CALL with INOUT parameters): unknown.
  const call = rt.maskPlan(session, analysePostgres("SELECT 'a' AS x; CALL p(NULL)").statements, [{ ...col, name: 'x' }], fresh()) as MaskPlan | null;
  assert.equal(call?.columns.length, 1);
  // Statements that return no rows do not count: BEGIN; SELECT …; COMMIT is judged by the SELECT.
  assert.equal(rt.maskPlan(session, analysePostgres('BEGIN; SELECT upper(plan) FROM users; COMMIT').statements, [col], fresh()), null);
  // A single statement is judged by its own lineage.
  assert.equal(rt.maskPlan(session, analysePostgres('SELECT upper(plan) FROM users').statements, [col], fresh()), null);
});

test('operators and casts: what the catalog says they run is judged as a call', () => {
  const base = { loaded: () => true, resolveRelation: () => undefined, isBaseTable: () => true, refresh: async () => undefined, relations: () => [] };
  const rt = runtime({
    ...base,
    implicitCallFunctions: (call: { name: string }) => (call.name === '<<<' ? [{ schema: 'pg_catalog', name: 'lo_import', risks: ['file'] }] : call.name === '#!#' ? 'unknown' : []),
  } as unknown as Catalog);
  const resolve = (sql: string) => rt.resolve(analysePostgres(sql).statements, fresh())[0]!;
  assert.deepEqual(resolve("SELECT <<< '/etc/passwd'").functions.map((f) => `${f.name}:${f.risks.join(',')}`), ['lo_import:file']);
  assert.equal(resolve('SELECT 1 OPERATOR(pg_temp.#!#) 1').opaque?.reason, 'opaque-function');
  assert.equal(resolve('SELECT 1 + 1, 2::text').opaque, undefined);
});

test('a transform name the catalog says may reach a user function, or a cast to a type the session shadowed, tests its argument', () => {
  const base = { loaded: () => true, resolveRelation: () => undefined, isBaseTable: () => true, refresh: async () => undefined, relations: () => [] };
  const rt = runtime({
    ...base,
    // md5 has a user overload on the path (public.md5(varchar)); upper is only pg_catalog's.
    resolveTestedColumns: (f: StatementFacts, _p: string[] | null, shadowed: (schema: string | undefined, name: string) => boolean) =>
      resolveTestedColumns(f, (c) => (c.kind === 'function' ? c.name === 'md5' : c.kind === 'cast' && shadowed(c.schema, c.name))),
  } as unknown as Catalog);
  const tested = (sql: string, state = fresh()) => rt.resolve(analysePostgres(sql).statements, state).flatMap((f) => (f.predicateColumns ?? []).map((c) => `${c.table}.${c.column}`));
  assert.deepEqual(tested('SELECT md5(full_name::varchar) FROM users'), ['users.full_name']);
  assert.deepEqual(tested('SELECT upper(full_name), full_name::text FROM users'), []);
  // A temp domain named text (with a CHECK that errs by the value), made earlier in the message or the session.
  assert.deepEqual(tested("CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (VALUE NOT LIKE 'A%'); SELECT full_name::text FROM users"), ['users.full_name']);
  const state = fresh();
  state.typesChanged.add('text');
  assert.deepEqual(tested('SELECT full_name::text FROM users', state), ['users.full_name']);
  assert.deepEqual(tested('SELECT full_name::pg_catalog.text FROM users', state), []);
});

test('a column masked as tokens (hash) takes only its own kind of values, as they are: a chosen one would read back as a comparable token', () => {
  const flow = (sources: { schema: string; table: string; column: string }[], direct: boolean) => [
    { dest: { schema: 'public', table: 'users' }, column: 'card', created: false, value: { index: 0, name: 'card', sources, opaque: false, direct } },
  ];
  let flows = flow([], false);
  const catalog = {
    loaded: () => true,
    resolveRelation: (r: { name: string }) => ({ schema: 'public', name: r.name, oid: 1 }),
    isBaseTable: () => true,
    refresh: async () => undefined,
    relations: () => [],
    columnsOf: () => [{ attnum: 1, name: 'id' }, { attnum: 2, name: 'card' }],
    resolveWriteFlows: () => flows,
  } as unknown as Catalog;
  const rt = new TargetRuntime({ name: 'staging', config: {} as never, analyse: () => ({ statements: [] }), catalog, masking: compileMasking({ key: 'k-0123456789abcdef0123', classes: { card: { function: 'hash' } }, columns: { 'public.users.card': 'card', 'public.orders.card': 'card' } }), log: rootLogger() });
  const preflight = (sql: string) => rt.preflight(session, analysePostgres(sql).statements, fresh())?.message ?? null;
  assert.match(preflight("UPDATE users SET card = '4111 1111 1111 1111' WHERE id = 2") ?? '', /values of your choosing into public\.users\.card/);
  flows = flow([{ schema: 'public', table: 'users', column: 'card' }], false);
  assert.match(preflight("UPDATE users SET card = left(card, 4) || '' WHERE id = 2") ?? '', /masked for you as tokens/);
  flows = flow([{ schema: 'public', table: 'orders', column: 'card' }], true);
  assert.equal(preflight('UPDATE users u SET card = o.card FROM orders o WHERE o.user_id = u.id'), null);
  // COPY FROM writes what the client sends.
  assert.match(preflight('COPY users FROM STDIN') ?? '', /masked for you as tokens/);
  assert.match(preflight('COPY users (id, card) FROM STDIN') ?? '', /masked for you as tokens/);
  assert.equal(preflight('COPY users (id) FROM STDIN'), null);
});

test('errors of the statements that run deferred constraint checks are scrubbed: they quote what earlier ones wrote', () => {
  const rt = runtime(null);
  const detail = 'Key (full_name)=(Alice Liddell) already exists.';
  const scrub = (sql: string) => rt.scrub(session, analysePostgres(sql).statements, { message: 'duplicate key value violates unique constraint "uxn"', detail }).detail;
  for (const sql of ['COMMIT', 'END', "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", 'SET CONSTRAINTS ALL IMMEDIATE']) assert.equal(scrub(sql), 'Key (full_name)=(****) already exists.', sql);
  assert.equal(scrub('ROLLBACK'), detail);
});

test('a write joining a base table, bounded only by bare names that are none of the target\'s columns, has no WHERE', () => {
  const catalog = {
    loaded: () => true,
    resolveRelation: (r: { name: string }) => ({ schema: 'public', name: r.name, oid: r.name === 'orders' ? 1 : 2 }),
    isBaseTable: () => true,
    refresh: async () => undefined,
    relations: () => [],
    knowsRelation: () => true,
    keyColumn: () => false,
    columnsOf: (oid: number) => (oid === 1 ? [{ attnum: 1, name: 'id' }, { attnum: 2, name: 'user_id' }, { attnum: 3, name: 'status' }] : [{ attnum: 1, name: 'id' }, { attnum: 2, name: 'email' }]),
  } as unknown as Catalog;
  const rt = runtime(catalog);
  const hasWhere = (sql: string) => rt.resolve(analysePostgres(sql).statements, fresh())[0]!.hasWhere;
  assert.equal(hasWhere("DELETE FROM orders USING users WHERE email = 'x'"), false);
  assert.equal(hasWhere("UPDATE orders SET status = 'y' FROM users WHERE email LIKE '%'"), false);
  assert.equal(hasWhere("DELETE FROM orders USING users WHERE user_id = users.id AND email = 'x'"), true);
  assert.equal(hasWhere("DELETE FROM orders USING users WHERE status = 'x'"), true);
});

test("other sessions' statement texts (pg_stat_get_activity) are rows of unknown origin while data is masked", () => {
  const rt = runtime(null);
  const col: ResultColumn = { index: 0, name: 'query', tableOid: 0, attnum: 0, typeId: 25, format: 0 };
  for (const sql of ['SELECT query FROM pg_stat_get_activity(NULL)', 'SELECT pg_catalog.pg_stat_get_backend_activity(1) AS query']) {
    const plan = rt.maskPlan(session, analysePostgres(sql).statements, [col], fresh()) as MaskPlan | null;
    assert.equal(plan?.columns.length, 1, sql);
  }
  assert.equal(rt.maskPlan(session, analysePostgres('SELECT now()::text AS query').statements, [col], fresh()), null);
});

test('a call of a user function that may keep its argument is refused while data is masked', () => {
  const base = { loaded: () => true, resolveRelation: () => undefined, isBaseTable: () => true, refresh: async () => undefined, relations: () => [], resolveWriteFlows: () => [] };
  const rt = runtime({
    ...base,
    functionBodies: (fn: { name: string }) => (fn.name === 'keeps' ? { stores: true, reads: [] } : fn.name === 'pure' ? { stores: false, reads: [] } : undefined),
  } as unknown as Catalog);
  const preflight = (sql: string) => rt.preflight(session, analysePostgres(sql).statements, fresh());
  assert.match(preflight('SELECT public.keeps(full_name) FROM users')?.message ?? '', /can keep the values/);
  assert.equal(preflight('SELECT public.pure(full_name) FROM users'), null);
  assert.equal(preflight('SELECT upper(full_name) FROM users'), null);
});

test('a catalog reload asked for while one runs runs again after it (its snapshot may predate the change)', async () => {
  let calls = 0;
  const catalog = { loaded: () => true, resolveRelation: () => undefined, isBaseTable: () => true, relations: () => [], refresh: () => (calls++, new Promise<void>((r) => setTimeout(r, 200))) } as unknown as Catalog;
  const rt = runtime(catalog);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  rt.schemaChanged();
  await sleep(80); // the first reload runs
  rt.schemaChanged(); // a DDL that committed after that reload read its snapshot
  await sleep(80);
  await rt.settled();
  assert.equal(calls, 2);
});

test('a view column named by RowDescription, without lineage, is of unknown origin', () => {
  const catalog = { loaded: () => false, resolveRelation: () => undefined, isBaseTable: (oid: number) => oid !== 99, relations: () => [], refresh: async () => undefined, columnOf: () => ({ schema: 'public', table: 'v', column: 'n' }) } as unknown as Catalog;
  const rt = runtime(catalog);
  const state = fresh();
  state.createdViews.set('v', []);
  const col: ResultColumn = { index: 0, name: 'n', tableOid: 99, attnum: 2, typeId: 25, format: 0 };
  const plan = rt.maskPlan(session, analysePostgres('SELECT n FROM v').statements, [col], state) as MaskPlan | null;
  assert.equal(plan?.columns.length, 1, 'the view may compute n from a classified column');
});

test('after a rename in the session (or earlier in the message), a write through a renamed name is opaque', () => {
  const catalog = { loaded: () => true, resolveRelation: (r: { name: string }) => ({ schema: 'public', name: r.name, oid: r.name === 'zz' ? 2 : 1 }), isBaseTable: () => true, relations: () => [], refresh: async () => undefined, knowsRelation: () => true, keyColumn: () => false, columnsOf: () => [{ attnum: 1, name: 'id' }] } as unknown as Catalog;
  const rt = runtime(catalog);
  const resolve = (sql: string, state = fresh()) => rt.resolve(analysePostgres(sql).statements, state);
  // Two renames swap orders in under the name of a table whose id is no key; the catalog cannot see it.
  const out = resolve('ALTER TABLE zz RENAME TO zz_old; ALTER TABLE orders RENAME TO zz; DELETE FROM zz WHERE id IS NOT NULL');
  assert.equal(out[0]?.opaque, undefined);
  assert.equal(out[2]?.opaque?.reason, 'unresolved-relation');
  const state = fresh();
  state.renamed.add('*');
  assert.equal(resolve("UPDATE zp2.model_weights SET w = 0 WHERE id = 1", state)[0]?.opaque?.reason, 'unresolved-relation');
  assert.equal(resolve('SELECT 1', state)[0]?.opaque, undefined);
});

test('LISTEN is refused while classified data is masked: payloads reach the client unmasked', () => {
  const rt = runtime(null);
  assert.match(rt.preflight(session, analysePostgres('LISTEN users_changed').statements, fresh())?.message ?? '', /notifications carry/);
  assert.equal(rt.preflight(session, analysePostgres('UNLISTEN *').statements, fresh()), null);
  const unmasked = new TargetRuntime({ name: 'staging', config: {} as never, analyse: () => ({ statements: [] }), catalog: null, masking: compileMasking({}), log: rootLogger() });
  assert.equal(unmasked.preflight(session, analysePostgres('LISTEN users_changed').statements, fresh()), null);
});

test('a column type change overwrites unless the catalog proves it keeps every value', () => {
  const types: Record<string, { schema: string; name: string; typmod: number }> = {
    status: { schema: 'pg_catalog', name: 'text', typmod: -1 },
    code: { schema: 'pg_catalog', name: 'varchar', typmod: 5 + 4 },
    total: { schema: 'pg_catalog', name: 'numeric', typmod: -1 },
    qty: { schema: 'pg_catalog', name: 'int4', typmod: -1 },
    at: { schema: 'pg_catalog', name: 'timestamp', typmod: -1 },
    email: { schema: 'public', name: 'email_address', typmod: -1 },
  };
  let loaded = true;
  const catalog = {
    loaded: () => loaded,
    resolveRelation: (r: { name: string }) => (r.name === 'orders' ? { schema: 'public', name: 'orders', oid: 1 } : undefined),
    isBaseTable: () => true,
    relations: () => [],
    refresh: async () => undefined,
    columnType: (oid: number, column: string) => (oid === 1 ? types[column] : undefined),
  } as unknown as Catalog;
  const rt = runtime(catalog);
  const actions = (sql: string, state = fresh()) => rt.resolve(analysePostgres(sql).statements, state).map((f) => f.actions ?? []);
  const OVERWRITE = ['ALTER TABLE OVERWRITE COLUMN'];
  // Widenings of the column's current type: nothing overwritten.
  for (const sql of ['ALTER TABLE orders ALTER COLUMN code TYPE varchar(10)', 'ALTER TABLE orders ALTER COLUMN code TYPE text', 'ALTER TABLE orders ALTER COLUMN status TYPE varchar', 'ALTER TABLE orders ALTER COLUMN qty TYPE bigint', 'ALTER TABLE orders ALTER COLUMN qty TYPE bigint USING qty', 'ALTER TABLE orders ALTER COLUMN status TYPE pg_catalog.text, ALTER COLUMN qty TYPE numeric']) {
    assert.deepEqual(actions(sql), [[]], sql);
  }
  // Narrowing, rounding, another type's cast, or a USING that computes other values.
  for (const sql of ['ALTER TABLE orders ALTER COLUMN status TYPE "char"', 'ALTER TABLE orders ALTER COLUMN total TYPE int', 'ALTER TABLE orders ALTER COLUMN at TYPE date', 'ALTER TABLE orders ALTER COLUMN code TYPE varchar(4)', 'ALTER TABLE orders ALTER COLUMN qty TYPE bigint, ALTER COLUMN status TYPE "char"', "ALTER TABLE orders ALTER COLUMN status TYPE text USING status || 'x'", 'ALTER TABLE orders ALTER COLUMN status TYPE "char" USING status::"char"']) {
    assert.deepEqual(actions(sql), [OVERWRITE], sql);
  }
  // What the catalog cannot vouch for: a domain, a column or table it does not have, a temp table.
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN email TYPE text'), [OVERWRITE]);
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN added_just_now TYPE text'), [OVERWRITE]);
  assert.deepEqual(actions('ALTER TABLE zz_new ALTER COLUMN code TYPE text'), [OVERWRITE]);
  assert.deepEqual(actions('ALTER TABLE pg_temp.orders ALTER COLUMN code TYPE text'), [OVERWRITE]);
  // Other actions stay when the type change is proven.
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN qty TYPE bigint, DROP COLUMN total'), [['ALTER TABLE DROP COLUMN']]);
  // An unqualified type name may be a temp type this session (or this message) made: `text` a
  // domain over "char" keeps one byte. pg_catalog.text is still pg_catalog's.
  assert.deepEqual(actions('CREATE DOMAIN pg_temp.text AS "char"; ALTER TABLE orders ALTER COLUMN code TYPE text'), [[], OVERWRITE]);
  const domain = fresh();
  domain.typesChanged.add('text');
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN code TYPE text', domain), [OVERWRITE]);
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN code TYPE pg_catalog.text', domain), [[]]);
  const unknownTypes = fresh();
  unknownTypes.typesChanged.add('*');
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN code TYPE pg_catalog.text', unknownTypes), [OVERWRITE]);
  // A search_path that puts a schema before pg_catalog: its types shadow pg_catalog's.
  const shadowed = fresh();
  setSearchPath(shadowed, ['public', 'pg_catalog']);
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN code TYPE text', shadowed), [OVERWRITE]);
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN code TYPE varchar(10)', shadowed), [[]]);
  // A column retyped earlier in the session (or the message): the catalog may not know its type now.
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN qty TYPE numeric; ALTER TABLE orders ALTER COLUMN qty TYPE bigint'), [[], OVERWRITE]);
  const retyped = fresh();
  retyped.typesChanged.add('orders');
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN qty TYPE bigint', retyped), [OVERWRITE]);
  // The table renamed in this session, or no catalog (yet): fail closed.
  const renamed = fresh();
  renamed.renamed.add('orders');
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN qty TYPE bigint', renamed), [OVERWRITE]);
  loaded = false;
  assert.deepEqual(actions('ALTER TABLE orders ALTER COLUMN qty TYPE bigint'), [OVERWRITE]);
});

test('a plain table column read where the rows are of unknown origin (a name renamed in the session) gets a plan, uncached', () => {
  // It crashed: every column a base table's, but no relations to key a cached plan by.
  const catalog = { loaded: () => true, resolveRelation: (r: { name: string }) => ({ schema: 'public', name: r.name, oid: 1 }), isBaseTable: () => true, relations: () => [], refresh: async () => undefined, knowsRelation: () => true, columnOf: () => ({ schema: 'public', table: 'users', column: 'full_name' }) } as unknown as Catalog;
  const rt = runtime(catalog);
  const state = fresh();
  state.renamed.add('users');
  const facts = rt.resolve(analysePostgres('SELECT full_name FROM users').statements, state);
  const col: ResultColumn = { index: 0, name: 'full_name', tableOid: 1, attnum: 2, typeId: 25, format: 0 };
  const plan = rt.maskPlan(session, facts, [col], state) as MaskPlan | null;
  assert.equal(plan?.columns.length, 1, 'the column is masked');
});
