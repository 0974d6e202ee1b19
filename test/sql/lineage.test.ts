/**
 * Lineage shapes, checked exactly through the catalog of a real database created for this run,
 * and (for a few) without a catalog, where the analyser must over-approximate.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';
import { PostgresCatalog } from '../../src/sql/catalog.js';
import { resolveLineage } from '../../src/sql/lineage.js';

const dbName = `dbgov_lineage_${process.pid}_${Date.now()}`;
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
    CREATE TABLE people (id int primary key, name text, ssn text, email text);
    CREATE TABLE orders (id int, pid int, total numeric, note text);
    CREATE SCHEMA app;
    CREATE TABLE app.cards (id int, pan text);
    CREATE VIEW v_people AS SELECT id, name AS full_name, upper(ssn) AS ssn_up FROM people;
    CREATE VIEW v_nested AS SELECT full_name, ssn_up FROM v_people;
    CREATE FUNCTION lookup_ssn(i int) RETURNS text LANGUAGE sql AS 'SELECT ssn FROM people WHERE id = i';
  `);
  catalog = await PostgresCatalog.load(client);
});

after(async () => {
  await client?.end();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

/** Expected per output column: `name <- sources` (sorted, comma-joined), `!` suffix when opaque. */
const P = 'public.people.';
const all = (t: string, cols: string[]): string => cols.map((c) => `${t}${c}`).sort().join(',');
const PEOPLE = all(P, ['email', 'id', 'name', 'ssn']);

const shapes: [string, string[]][] = [
  ['select name from people', [`name <- ${P}name`]],
  ['select p.ssn as x from people p', [`x <- ${P}ssn`]],
  ['select * from people', [`id <- ${P}id`, `name <- ${P}name`, `ssn <- ${P}ssn`, `email <- ${P}email`]],
  ['select p.* from people p join orders o on o.pid = p.id', [`id <- ${P}id`, `name <- ${P}name`, `ssn <- ${P}ssn`, `email <- ${P}email`]],
  ['select o.*, p.name from orders o, people p', ['id <- public.orders.id', 'pid <- public.orders.pid', 'total <- public.orders.total', 'note <- public.orders.note', `name <- ${P}name`]],
  ['select row_to_json(p) from people p', [`row_to_json <- ${PEOPLE}`]],
  ['select to_jsonb(p.*) from people p', [`to_jsonb <- ${PEOPLE}`]],
  ['select p::text from people p', [`p <- ${PEOPLE}`]],
  ['select people from people', [`people <- ${PEOPLE}`]],
  ['select row(name, ssn) from people', [`row <- ${P}name,${P}ssn`]],
  [`select ssn || '-' || name as s from people`, [`s <- ${P}name,${P}ssn`]],
  ['select ssn::int from people', [`ssn <- ${P}ssn`]],
  ['select cast(ssn as varchar(4)) from people', [`ssn <- ${P}ssn`]],
  ['select substr(ssn, 1, 3) from people', [`substr <- ${P}ssn`]],
  ['select upper(lower(email)) e from people', [`e <- ${P}email`]],
  ['select string_agg(ssn, \',\' order by name) from people', [`string_agg <- ${P}name,${P}ssn`]],
  ['select max(ssn), count(*) from people', [`max <- ${P}ssn`, 'count <- ']],
  ['select case when id > 1 then ssn else name end from people', [`name <- ${P}id,${P}name,${P}ssn`]],
  ['select coalesce(ssn, email) from people', [`coalesce <- ${P}email,${P}ssn`]],
  ['select nullif(ssn, name) from people', [`nullif <- ${P}name,${P}ssn`]],
  ['select greatest(ssn, name) from people', [`greatest <- ${P}name,${P}ssn`]],
  ['select array[ssn, name] from people', [`array <- ${P}name,${P}ssn`]],
  ['select (select ssn from people p2 where p2.id = o.pid) from orders o', [`ssn <- ${P}id,${P}ssn`.replace(`${P}id,`, '')]],
  ['select array(select ssn from people) as a', [`a <- ${P}ssn`]],
  ['select exists(select ssn from people) as e', ['e <- ']],
  ['select x.s from (select ssn as s from people) x', [`s <- ${P}ssn`]],
  ['select * from (select name, ssn from people) x(a, b)', [`a <- ${P}name`, `b <- ${P}ssn`]],
  ['select l.v from people p, lateral (select p.ssn as v) l', [`v <- ${P}ssn`]],
  ['select t.v from people p cross join lateral unnest(array[p.ssn]) as t(v)', [`v <- ${P}ssn`]],
  ['with c as (select ssn from people) select ssn from c', [`ssn <- ${P}ssn`]],
  ['with c(k) as (select ssn from people) select k from c', [`k <- ${P}ssn`]],
  ['with recursive r(n, s) as (select 1, name from people union all select n + 1, s from r where n < 3) select s from r', [`s <- ${P}name`]],
  ['select name from people union select note from orders', [`name <- public.orders.note,${P}name`]],
  ['select id, ssn from people intersect select id, note from orders', [`id <- public.orders.id,${P}id`, `ssn <- public.orders.note,${P}ssn`]],
  ['select ssn from people except select note from orders', [`ssn <- public.orders.note,${P}ssn`]],
  ['select * from people union all select * from people', [`id <- ${P}id`, `name <- ${P}name`, `ssn <- ${P}ssn`, `email <- ${P}email`]],
  ['values (1, 2)', ['column1 <- ', 'column2 <- ']],
  ['select * from v_people', ['id <- public.people.id', `full_name <- ${P}name`, `ssn_up <- ${P}ssn`]],
  ['select ssn_up from v_nested', [`ssn_up <- ${P}ssn`]],
  ['select pan from app.cards', ['pan <- app.cards.pan']],
  ['select * from people join orders using (id)', [`id <- public.orders.id,${P}id`, `name <- ${P}name`, `ssn <- ${P}ssn`, `email <- ${P}email`, 'pid <- public.orders.pid', 'total <- public.orders.total', 'note <- public.orders.note']],
  ['select * from people natural join orders', [`id <- public.orders.id,${P}id`, `name <- ${P}name`, `ssn <- ${P}ssn`, `email <- ${P}email`, 'pid <- public.orders.pid', 'total <- public.orders.total', 'note <- public.orders.note']],
  ['select name from people, orders', [`name <- ${P}name`]],
  ['select lookup_ssn(id) from orders', ['lookup_ssn <- public.orders.id!']],
  [`select query_to_xml('select ssn from people', true, true, '')`, ['query_to_xml <- !']],
  ['update people set name = ssn where id = 1 returning name', [`name <- ${P}name,${P}ssn`]],
  ['delete from people where id = 1 returning ssn', [`ssn <- ${P}ssn`]],
  ['insert into orders (note) select ssn from people returning note', [`note <- public.orders.note,${P}ssn`]],
  ['copy people (ssn) to stdout', [`ssn <- ${P}ssn`]],
  ['copy people to stdout', [`id <- ${P}id`, `name <- ${P}name`, `ssn <- ${P}ssn`, `email <- ${P}email`]],
  ['copy (select email from people) to stdout', [`email <- ${P}email`]],
  ['declare cur cursor for select ssn from people', [`ssn <- ${P}ssn`]],
  ['prepare q as select ssn as s from people', [`s <- ${P}ssn`]],
  ['explain analyze select ssn from people', ['QUERY PLAN <- ']],
  ['select "SSN" from (select ssn as "SSN" from people) x', [`SSN <- ${P}ssn`]],
  ['select nosuch from people', ['nosuch <- !']],
];

function render(l: { name: string; sources: { schema?: string; table: string; column: string }[]; opaque: boolean }): string {
  const src = l.sources.map((s) => `${s.schema}.${s.table}.${s.column}`).sort().join(',');
  return `${l.name} <- ${src}${l.opaque ? '!' : ''}`;
}

test('resolved lineage per output column, through the catalog', () => {
  assert.ok(shapes.length >= 40);
  const wrong: string[] = [];
  for (const [sql, want] of shapes) {
    const facts = analysePostgres(sql).statements[0];
    assert.ok(facts, sql);
    const got = resolveLineage(facts, catalog, ['public']).map(render);
    if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${sql}\n  got  ${JSON.stringify(got)}\n  want ${JSON.stringify(want)}`);
  }
  assert.deepEqual(wrong, []);
});

test('plain column references are direct; derived ones are not', () => {
  const facts = analysePostgres('select name, upper(name) from people').statements[0];
  assert.ok(facts);
  assert.deepEqual(resolveLineage(facts, catalog, ['public']).map((l) => l.direct), [true, false]);
});

test('without a catalog: unqualified names go to every candidate, * stays a placeholder', () => {
  const table: [string, string[]][] = [
    ['select name from people, orders', ['name <- undefined.orders.name,undefined.people.name']],
    ['select * from people', ['* <- undefined.people.*']],
    ['select name from people union select * from orders', ['name <- undefined.orders.*,undefined.people.name!']],
  ];
  for (const [sql, want] of table) assert.deepEqual(analysePostgres(sql).statements[0]?.lineage?.map(render), want, sql);
});
