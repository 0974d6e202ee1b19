import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';
import { resolveLineage, resolveWriteFlows } from '../../src/sql/lineage.js';
import { PostgresCatalog, parseSearchPath } from '../../src/sql/catalog.js';

const dbName = `dbgov_catalog_${process.pid}_${Date.now()}`;
const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
let client: pg.Client;
let catalog: PostgresCatalog;

before(async () => {
  await loadSqlParser();
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: dbName });
  await client.connect();
  await client.query(`
    CREATE SCHEMA a; CREATE SCHEMA b; CREATE SCHEMA postgres;
    CREATE TABLE a.t (x int, y text); CREATE TABLE b.t (z int); CREATE TABLE b.only_b (q int);
    CREATE TABLE postgres.mine (m int); CREATE TABLE public.pg_class (fake int);
    CREATE TABLE public.users (id int, email text);
    CREATE TEMP TABLE users (shadow int);
    CREATE FUNCTION public.dyn() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'select 1'; END $$;
    CREATE FUNCTION public.plain() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
    CREATE FUNCTION public.peek(a int, b int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT email FROM public.users WHERE id = a $$;
    CREATE OPERATOR public.### (leftarg = int, rightarg = int, function = public.peek);
    CREATE OPERATOR public.<<< (rightarg = text, function = pg_catalog.lo_import);
    CREATE FUNCTION public.peek1(int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT email FROM public.users WHERE id = $1 $$;
    CREATE CAST (int AS text) WITH FUNCTION public.peek1(int);
    CREATE FUNCTION public.keeps(t text) RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN PERFORM set_config('x.y', t, false); RETURN 1; END $$;
    CREATE FUNCTION public.keeps_too(t text) RETURNS int LANGUAGE sql STABLE AS $$ SELECT public.keeps(t) $$;
    CREATE FUNCTION public.pure(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN upper(t); END $$;
    CREATE FUNCTION b.md5(t varchar) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT NULL::text $$;
  `);
  catalog = await PostgresCatalog.load(client);
});

after(async () => {
  await client?.end();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

test('resolveRelation follows the server: explicit schema, temp first, pg_catalog, then search_path', () => {
  const table: [{ schema?: string; name: string }, string[], string | undefined][] = [
    [{ name: 't' }, ['a', 'b'], 'a.t'],
    [{ name: 't' }, ['b', 'a'], 'b.t'],
    [{ name: 'only_b' }, ['a', 'b'], 'b.only_b'],
    [{ schema: 'b', name: 't' }, ['a'], 'b.t'],
    [{ name: 't' }, ['public'], undefined],
    [{ name: 'mine' }, ['$user', 'public'], 'postgres.mine'],
    [{ name: 'pg_class' }, ['public'], 'pg_catalog.pg_class'],
    [{ name: 'pg_class' }, ['public', 'pg_catalog'], 'public.pg_class'],
    [{ name: 'users' }, ['public'], `${catalog.tempSchema}.users`],
    [{ schema: 'pg_temp', name: 'users' }, ['public'], `${catalog.tempSchema}.users`],
    [{ name: 'users' }, ['public', 'pg_temp'], 'public.users'],
  ];
  for (const [ref, searchPath, want] of table) {
    const r = catalog.resolveRelation(ref, { searchPath, user: 'postgres' });
    assert.equal(r ? `${r.schema}.${r.name}` : undefined, want, `${JSON.stringify(ref)} on ${searchPath.join(',')}`);
  }
});

test('columnOf maps RowDescription (table OID, attnum) to a column', () => {
  const t = catalog.resolveRelation({ schema: 'a', name: 't' }, { searchPath: [] });
  assert.ok(t);
  assert.deepEqual(catalog.columnOf(t.oid, 2), { schema: 'a', table: 't', column: 'y' });
  assert.equal(catalog.columnOf(t.oid, 9), undefined);
});

test('refresh sees DDL; a renamed table keeps its oid', async () => {
  const before = catalog.resolveRelation({ schema: 'a', name: 't' }, { searchPath: [] });
  await client.query('ALTER TABLE a.t RENAME TO t2; ALTER TABLE a.t2 RENAME COLUMN y TO y2');
  await catalog.refresh();
  assert.equal(catalog.resolveRelation({ schema: 'a', name: 't' }, { searchPath: [] }), undefined);
  const after = catalog.resolveRelation({ schema: 'a', name: 't2' }, { searchPath: [] });
  assert.equal(after?.oid, before?.oid);
  assert.equal(catalog.columnOf(after?.oid ?? 0, 2)?.column, 'y2');
});

test('functions whose PL/pgSQL bodies EXECUTE dynamic SQL are flagged', () => {
  const dynamic = catalog.dynamicSqlFunctions().map((f) => `${f.schema}.${f.name}`);
  assert.ok(dynamic.includes('public.dyn'), `dynamic: ${dynamic.join(',')}`);
  assert.ok(!dynamic.includes('public.plain'));
  assert.deepEqual(catalog.functions().find((f) => f.name === 'pg_read_file')?.risks, ['file']);
  assert.equal(catalog.callsSystemFunction(undefined, 'plain', { searchPath: ['public'] }), false);
  assert.equal(catalog.callsSystemFunction(undefined, 'upper', { searchPath: ['public'] }), true);
  assert.equal(catalog.callsSystemFunction('pg_catalog', 'upper', { searchPath: ['public'] }), true);
  // Unknown to the catalog (a temp function, or one created since the last refresh): not built in.
  assert.equal(catalog.callsSystemFunction(undefined, 'no_such_function_here', { searchPath: ['public'] }), false);
  assert.equal(catalog.callsSystemFunction('pg_temp', 'f', { searchPath: ['public'] }), false);
  // The server picks among every function of the name on the path by argument types (the path
  // order breaks ties only): b.md5(varchar) is what md5(x::varchar) calls, pg_catalog first or not.
  assert.equal(catalog.callsSystemFunction(undefined, 'md5', { searchPath: ['public'] }), true);
  assert.equal(catalog.callsSystemFunction(undefined, 'md5', { searchPath: ['public', 'b'] }), false);
  assert.equal(catalog.callsSystemFunction('pg_catalog', 'md5', { searchPath: ['b'] }), true);
  assert.deepEqual(catalog.findFunctions(undefined, 'md5', { searchPath: ['b'] }).map((f) => f.schema).sort(), ['b', 'pg_catalog', 'pg_catalog']);
});

test('parseSearchPath reads the server format', () => {
  const table: [string, string[]][] = [
    ['"$user", public', ['$user', 'public']],
    ['a, "B c", "x""y"', ['a', 'B c', 'x"y']],
    ['  Public ', ['public']],
  ];
  for (const [value, want] of table) assert.deepEqual(parseSearchPath(value), want, value);
});

test('operators and casts: the functions user-defined ones run; unknown operator names are unknown', () => {
  const opts = { searchPath: ['public'] };
  const fns = (x: ReturnType<typeof catalog.implicitCallFunctions>) => (x === 'unknown' ? x : x.map((f) => `${f.schema}.${f.name}`));
  assert.deepEqual(fns(catalog.implicitCallFunctions({ kind: 'operator', name: '+' }, opts)), []);
  assert.deepEqual(fns(catalog.implicitCallFunctions({ kind: 'operator', name: '###' }, opts)), ['public.peek']);
  assert.deepEqual(fns(catalog.implicitCallFunctions({ kind: 'operator', schema: 'public', name: '###' }, opts)), ['public.peek']);
  // An operator bound to a built-in function still names it: its risks count.
  assert.deepEqual(fns(catalog.implicitCallFunctions({ kind: 'operator', name: '<<<' }, opts)), ['pg_catalog.lo_import']);
  // Not on the path, in another session's temp schema, or created since the load: unknown.
  assert.equal(catalog.implicitCallFunctions({ kind: 'operator', name: '###' }, { searchPath: ['a'] }), 'unknown');
  assert.equal(catalog.implicitCallFunctions({ kind: 'operator', schema: 'pg_temp', name: '#!#' }, opts), 'unknown');
  assert.equal(catalog.implicitCallFunctions({ kind: 'operator', name: '@@@@' }, opts), 'unknown');
  assert.deepEqual(fns(catalog.implicitCallFunctions({ kind: 'cast', name: 'text' }, opts)), ['public.peek1']);
  assert.deepEqual(fns(catalog.implicitCallFunctions({ kind: 'cast', schema: 'pg_catalog', name: 'int4' }, opts)), []);
});

test('a user function stores what it is given when its body (or one it calls) calls a storing function', () => {
  const fn = (name: string) => catalog.findFunctions('public', name, { searchPath: ['public'] })[0];
  assert.equal(fn('keeps')?.stores, true);
  assert.equal(fn('keeps_too')?.stores, true);
  assert.equal(fn('pure')?.stores, false);
  assert.equal(fn('peek')?.stores, false);
  assert.deepEqual(fn('peek')?.reads, [{ schema: 'public', name: 'users' }]);
});

test('lineage: a value computed by a user-defined operator or cast is of unknown origin', () => {
  const lineage = (sql: string) => {
    const [f] = analysePostgres(sql).statements;
    return resolveLineage(f!, catalog, { searchPath: ['public'] }).map((c) => c.opaque);
  };
  assert.deepEqual(lineage('SELECT 1 ### 1 AS a, 1 + 1 AS b'), [true, false]);
  assert.deepEqual(lineage('SELECT 2::text AS a, 2::int8 AS b'), [true, false]);
  assert.deepEqual(lineage('SELECT 1 OPERATOR(pg_temp.#!#) 1 AS a'), [true]);
});

test('write flows: a sequence value and an advisory lock key keep what they are given, as a setting does', () => {
  const places = (sql: string) => resolveWriteFlows(analysePostgres(sql).statements[0]!, catalog, ['public']).flatMap((f) => (f.place ? [f.place] : []));
  assert.deepEqual(places("SELECT setval('s', ascii(email)) FROM public.users"), ['setval()']);
  assert.deepEqual(places('SELECT pg_advisory_xact_lock(length(email)), lo_create(id) FROM public.users'), ['pg_advisory_xact_lock()', 'lo_create()']);
  assert.deepEqual(places("SELECT set_config('a.b', email, false) FROM public.users"), ['set_config()']);
  // Constants read nothing from a row.
  assert.deepEqual(places("SELECT setval('s', 100), pg_advisory_lock(42)"), []);
});

test('MERGE stores per column, as UPDATE and INSERT do (a token column is judged by what lands in it)', () => {
  const flows = (sql: string) =>
    resolveWriteFlows(analysePostgres(sql).statements[0]!, catalog, ['public'])
      .map((f) => `${f.column}<-${f.value.sources.map((s) => s.column).join(',') || 'const'}${f.value.direct ? ' direct' : ''}`)
      .sort();
  assert.deepEqual(flows("MERGE INTO public.users u USING (SELECT 1 AS id) s ON u.id = s.id WHEN MATCHED THEN UPDATE SET email = 'x' WHEN NOT MATCHED THEN INSERT (id, email) VALUES (s.id, 'y')"), ['email<-const', 'id<-const']);
  assert.deepEqual(flows('MERGE INTO public.users u USING public.users v ON u.id = v.id + 1 WHEN MATCHED THEN UPDATE SET email = v.email'), ['email<-email direct']);
  assert.deepEqual(flows('MERGE INTO public.users u USING public.users v ON u.id = v.id + 1 WHEN NOT MATCHED THEN INSERT VALUES (v.id, upper(v.email))'), ['email<-email', 'id<-id direct']);
});
