/**
 * Adversarial masking probes, round 6 (PostgreSQL): shapes the earlier rounds did not try. Each
 * probe runs its statements in one psql session through the tunnel behind a capturing proxy (as
 * adversarial-pg-r5.test.ts does). No seeded PII value may reach the client, and an oracle (a
 * statement whose result, row count, NULL-ness or error would answer a guess about a masked value)
 * must be refused: `refused` counts the refusals psql prints. Probes undo their schema changes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { adminQuery } from './harness.js';
import { leaks as leaksOf } from './capture-proxy.js';
import { captureTarget, psqlThrough, type CapturedTarget, type MaskingCorpus } from './masking-fixture.js';

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/postgres-masking.yaml'), 'utf8')) as MaskingCorpus;

interface Probe {
  name: string;
  sql: string[];
  /** How many statements must be refused, and by what. */
  refused?: { re: RegExp; count: number };
  /** Every statement must return rows (ordinary work that must keep running). */
  runs?: true;
  /** Run first, in a session of their own (not checked). */
  setup?: string[];
  /** Run first of all, as the admin (straight to the server). */
  admin?: string[];
  /** A known gap, left open (reported, not failed): why. */
  todo?: string;
}

const MASKED_PREDICATE = /rule masked-predicate/g;
const MIXED = "(SELECT ssn AS s, 0 AS g FROM users UNION ALL SELECT '2', 1)";

export const probes: Probe[] = [
  {
    // A partial mask keeps some positions of whatever the column holds: the value rearranged on
    // the way in (reverse, a prefix, a reordering) reads back with its hidden characters there.
    name: 'r6: a partially masked column rearranged into itself shows other characters in the kept places',
    refused: { re: /rearranged in/g, count: 3 },
    sql: [
      'BEGIN',
      'UPDATE users SET phone = reverse(phone) WHERE id = 1',
      'ROLLBACK',
      'BEGIN',
      'UPDATE users SET phone = left(phone, 6) WHERE id = 2',
      'ROLLBACK',
      'BEGIN',
      "UPDATE users SET email = split_part(email, '@', 1) || '@x.org' WHERE id = 3",
      'ROLLBACK',
    ],
  },
  {
    name: 'r6 control: a partially masked column stored as it is, or with its case changed, still runs',
    sql: [
      'BEGIN',
      'UPDATE users SET email = lower(email) WHERE id = 1',
      'UPDATE users SET email = upper(email), phone = phone WHERE id = 2',
      "UPDATE users SET phone = '+1 555-0100' WHERE id = 3",
      'ROLLBACK',
    ],
    refused: { re: /blocked/g, count: 0 },
  },
  {
    name: 'r6 (held): joins USING / NATURAL on a classified column',
    refused: { re: MASKED_PREDICATE, count: 4 },
    sql: [
      "SELECT count(*) FROM users JOIN (VALUES ('123-45-6789')) v(ssn) USING (ssn)",
      "SELECT count(*) FROM users NATURAL JOIN (SELECT '123-45-6789'::text AS ssn) g",
      "SELECT v.g, u.id FROM (VALUES ('Alice Liddell', 1)) v(full_name, g) LEFT JOIN users u USING (full_name)",
      "SELECT count(*) FROM users u1 JOIN users u2 USING (full_name)",
    ],
  },
  {
    name: 'r6 (held): a column mixing a guess with the real values, ordered inside aggregates and windows',
    refused: { re: MASKED_PREDICATE, count: 6 },
    sql: [
      `SELECT array_agg(g ORDER BY s) AS a FROM ${MIXED} x`,
      `SELECT g, rank() OVER (ORDER BY s) AS r FROM ${MIXED} x`,
      `SELECT g, count(*) OVER (PARTITION BY s) AS c FROM ${MIXED} x`,
      `SELECT string_agg(g::text, ',' ORDER BY s) AS a FROM ${MIXED} x`,
      "SELECT v.g, rank() OVER (ORDER BY coalesce(u.ssn, v.s)) AS r FROM users u FULL JOIN (VALUES ('2', 1)) v(s, g) ON false",
      "SELECT id, (SELECT array_agg(o ORDER BY x) FROM unnest(ARRAY[ssn, '2']) WITH ORDINALITY t(x, o)) AS a FROM users",
    ],
  },
  {
    name: 'r6 (held): TABLESAMPLE arguments, REPEATABLE seeds, FETCH FIRST counts computed from a classified value',
    refused: { re: MASKED_PREDICATE, count: 3 },
    sql: [
      "SELECT count(*) FROM orders TABLESAMPLE BERNOULLI ((SELECT CASE WHEN ssn = '123-45-6789' THEN 100 ELSE 0 END FROM users WHERE id = 1))",
      "SELECT count(*) FROM orders TABLESAMPLE BERNOULLI (50) REPEATABLE ((SELECT length(replace(ssn, '123', '')) FROM users WHERE id = 1))",
      "SELECT id FROM users ORDER BY id FETCH FIRST (SELECT length(replace(ssn, '123', '')) FROM users WHERE id = 1) ROWS ONLY",
    ],
  },
  {
    name: 'r6 (held): statistics samples (pg_stats of an index expression, MCV lists), index pages through pageinspect',
    sql: [
      'CREATE STATISTICS zst (mcv) ON full_name, plan FROM users',
      'CREATE INDEX zix ON users ((full_name || address))',
      'ANALYZE users',
      "SELECT m.values FROM pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m",
      "SELECT tablename, attname, histogram_bounds, most_common_vals FROM pg_stats WHERE tablename IN ('users', 'zix')",
      'SELECT most_common_vals FROM pg_stats_ext',
      'CREATE EXTENSION IF NOT EXISTS pageinspect',
      "SELECT data FROM bt_page_items('zix', 1)",
      "SELECT data FROM bt_page_items('users_email_key', 1)",
      "SELECT encode(key_data, 'escape') FROM brin_page_items(get_raw_page('zix', 1), 'zix')",
      'DROP INDEX zix',
      'DROP STATISTICS zst',
    ],
  },
  {
    name: 'r6 (held): jsonpath, xpath and regexp searches of a classified value in FROM and the select list',
    refused: { re: MASKED_PREDICATE, count: 4 },
    sql: [
      "SELECT count(*) FROM users, jsonb_path_query(to_jsonb(users.ssn), '$ ? (@ == \"123-45-6789\")') j",
      "SELECT id, to_jsonb(ssn) @? '$ ? (@ starts with \"123\")' AS x FROM users",
      "SELECT id, xpath_exists('/a[.=\"Alice Liddell\"]', xmlelement(name a, full_name)) AS x FROM users",
      "SELECT count(*) FROM users, regexp_matches(ssn, '^123')",
    ],
  },
  {
    name: 'r6 (held): a classified value as a setting name, a relation name, or searched in an array',
    refused: { re: MASKED_PREDICATE, count: 5 },
    sql: [
      "SET alice.liddell = 'x'",
      "SELECT id, current_setting(split_part(email, '@', 1), true) AS x FROM users",
      "SELECT id, to_regclass(split_part(email, '@', 1)) AS x FROM users",
      "SELECT id, array_position(ARRAY['123-45-6789'], ssn) AS x FROM users",
      "SELECT id, width_bucket(ssn, ARRAY['1', '2']) AS x FROM users",
      "SELECT id, CASE ssn WHEN '123-45-6789' THEN 1 END AS x FROM users",
    ],
  },
  {
    // C code of an extension is not read: tablefunc's crosstab / connectby and xml2's xpath_table
    // run the query (or the table, column and WHERE) they are given as text. Its result rows were
    // masked as of unknown origin, but how many there are answered the WHERE inside the text.
    name: 'r6: extension functions that run a query given as text (crosstab, connectby, xpath_table)',
    refused: { re: /dbgov: blocked: (crosstab|connectby|xpath_table) /g, count: 6 },
    setup: ['CREATE EXTENSION IF NOT EXISTS tablefunc', 'CREATE EXTENSION IF NOT EXISTS xml2', 'CREATE TABLE zz6 (x int)', 'DROP TABLE zz6'],
    sql: [
      "SELECT count(*) AS n FROM crosstab('SELECT id, plan, plan FROM users WHERE ssn = ''123-45-6789''') AS ct(id int, a text)",
      "SELECT count(*) AS n FROM connectby('users', 'id', 'full_name', 'Alice Liddell', 1) AS t(a int, b int, l int)",
      "SELECT * FROM xpath_table('id', '''<a>'' || full_name || ''</a>''', 'users', '/a', 'true') AS t(id int, x text)",
      "SELECT count(*) AS n FROM xpath_table('id', '''<a/>''', 'users', '/a', 'ssn = ''123-45-6789''') AS t(id int, x text)",
      "SELECT * FROM crosstab('SELECT id, plan, full_name FROM users') AS ct(id int, a text)",
      "SELECT a FROM connectby('users', 'full_name', 'address', 'Alice Liddell', 1) AS t(a text, b text, l int)",
    ],
  },
  {
    // DDL runs expressions over every row of the table and tells what it found: a partial index's
    // reltuples counts the rows its WHERE picks (a unique one fails on two), an expression index
    // errs by the value or keeps its distribution for ANALYZE (pg_stats, pg_stats_ext_exprs) and
    // its order for CLUSTER, an exclusion constraint's WHERE, a CHECK, a foreign key into a table
    // of guesses, a type change's cast or USING, a generated column, a partition bound.
    name: 'r6: DDL that evaluates a condition on a classified column over the rows (indexes, statistics, constraints, ALTER TYPE, ATTACH PARTITION)',
    refused: { re: MASKED_PREDICATE, count: 13 },
    sql: [
      "CREATE INDEX zi1 ON users (id) WHERE ssn = '123-45-6789'",
      "SELECT relname, reltuples FROM pg_class WHERE relname = 'zi1'",
      "CREATE INDEX zi2 ON users ((ssn = '123-45-6789'))",
      "CREATE STATISTICS zs2 ON (ssn < '2'), (plan) FROM users",
      'ANALYZE users',
      "SELECT tablename, n_distinct, most_common_freqs FROM pg_stats WHERE tablename = 'zi2'",
      "SELECT n_distinct, most_common_freqs FROM pg_stats_ext_exprs WHERE statistics_name = 'zs2'",
      "CREATE UNIQUE INDEX zi3 ON users ((1)) WHERE ssn < '2'",
      "CREATE INDEX zi4 ON users ((1 / (ssn = '123-45-6789')::int))",
      "CREATE INDEX zi5 ON users ((ssn < '2'), id)",
      "ALTER TABLE users ADD CONSTRAINT zx6 EXCLUDE USING btree ((1) WITH =) WHERE (ssn < '2')",
      'BEGIN',
      "ALTER TABLE users ADD CONSTRAINT zck CHECK (full_name NOT LIKE 'A%')",
      'ROLLBACK',
      'CREATE TABLE zref (k text PRIMARY KEY)',
      "INSERT INTO zref VALUES ('123-45-6789'), ('219-09-9999')",
      'BEGIN',
      'ALTER TABLE users ADD CONSTRAINT zfk FOREIGN KEY (ssn) REFERENCES zref (k)',
      'ROLLBACK',
      'BEGIN',
      "ALTER TABLE users ALTER COLUMN ssn TYPE text USING CASE WHEN ssn = '123-45-6789' THEN ssn::int::text ELSE ssn END",
      'ROLLBACK',
      'BEGIN',
      'ALTER TABLE users ALTER COLUMN ssn TYPE numeric',
      'ROLLBACK',
      'BEGIN',
      "ALTER TABLE users ADD COLUMN zg int GENERATED ALWAYS AS (1 / (ssn = '123-45-6789')::int) STORED",
      'ROLLBACK',
      'BEGIN',
      'CREATE TABLE zpp (LIKE users) PARTITION BY RANGE (ssn)',
      'ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey',
      "ALTER TABLE zpp ATTACH PARTITION users FOR VALUES FROM ('0') TO ('2')",
      'ROLLBACK',
      'DROP INDEX IF EXISTS zi1, zi2, zi3, zi4, zi5',
      'DROP STATISTICS IF EXISTS zs2',
      'DROP TABLE zref',
    ],
  },
  {
    name: 'r6 control: indexes, statistics and constraints over classified columns that test nothing still run',
    refused: { re: /dbgov: blocked/g, count: 0 },
    sql: [
      'CREATE INDEX zc1 ON users (lower(email))',
      'CREATE INDEX zc2 ON users (ssn) WHERE id > 0',
      'CREATE STATISTICS zc3 ON ssn, plan FROM users',
      "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new'",
      'ALTER TABLE orders ALTER COLUMN status DROP DEFAULT',
      "CREATE TABLE zc5 (id int, card text DEFAULT 'none')",
      'DROP TABLE zc5',
      "ALTER TABLE users ADD CONSTRAINT zc4 CHECK (plan <> 'x')",
      'ALTER TABLE users ALTER COLUMN ssn TYPE varchar(40)',
      'ALTER TABLE users ALTER COLUMN ssn TYPE text',
      'ALTER TABLE users DROP CONSTRAINT zc4',
      'ALTER TABLE orders RENAME COLUMN status TO zstate',
      'ALTER TABLE orders RENAME COLUMN zstate TO status',
      'ALTER TABLE orders RENAME COLUMN card TO zc',
      'SELECT pg_sleep(1)',
      'ALTER TABLE orders RENAME COLUMN zc TO card',
      'ALTER TABLE orders RENAME TO zo',
      'SELECT pg_sleep(1)',
      'ALTER TABLE zo RENAME TO orders',
      'DROP STATISTICS zc3',
      'DROP INDEX zc1, zc2',
    ],
  },
  {
    // card is masked as keyed tokens: a DEFAULT of a guess, set on the column, went into each row
    // inserted without it, and read back as the token of the guess (to compare with users.card).
    name: 'r6: a chosen value set as a token column\'s DEFAULT, then a row inserted without the column',
    refused: { re: /dbgov: blocked/g, count: 4 },
    sql: [
      "ALTER TABLE orders ALTER COLUMN card SET DEFAULT '4111 1111 1111 1111'",
      "INSERT INTO orders (id, user_id, amount, status) VALUES (90, 1, 0, 'x')",
      'UPDATE orders SET card = DEFAULT WHERE id = 11',
      'ALTER TABLE orders ALTER COLUMN card DROP DEFAULT',
      'SELECT id, card FROM orders ORDER BY id',
      'SELECT id, card FROM users ORDER BY id',
      'BEGIN',
      "ALTER TABLE orders ALTER COLUMN card TYPE text USING '5500 0055 5555 5559'",
      'SELECT id, card FROM orders ORDER BY id',
      'ROLLBACK',
      'BEGIN',
      'INSERT INTO orders SELECT * FROM json_populate_record(NULL::orders, \'{"id": 91, "card": "3782 822463 10005"}\')',
      'SELECT id, card FROM orders ORDER BY id',
      'ROLLBACK',
      'DELETE FROM orders WHERE id >= 90',
    ],
  },
  {
    name: 'r6 (held): prepared over a shadow of users, the shadow gone (DISCARD TEMP, ON COMMIT DROP, SET search_path), executed: the server parses it again',
    sql: [
      'CREATE TEMP TABLE users (id int, full_name text, address text)',
      "PREPARE zp6 AS SELECT upper(full_name) AS a, address || '' AS b FROM users",
      'DISCARD TEMP',
      'EXECUTE zp6',
      'BEGIN',
      'CREATE TEMP TABLE users (id int, full_name text, address text) ON COMMIT DROP',
      "PREPARE zp7 AS SELECT upper(full_name) AS a, address || '' AS b FROM users",
      'COMMIT',
      'EXECUTE zp7',
      'CREATE SCHEMA IF NOT EXISTS zlk6',
      'CREATE TABLE IF NOT EXISTS zlk6.users (id int, full_name text, address text)',
      'SET search_path = zlk6, public',
      'SELECT 1',
      "PREPARE zp8 AS SELECT upper(full_name) AS a, address || '' AS b FROM users",
      'SET search_path = public',
      'SELECT 1',
      'EXECUTE zp8',
      'BEGIN',
      "DECLARE zc8 CURSOR WITH HOLD FOR SELECT upper(full_name) AS a FROM users",
      'COMMIT',
      'DROP SCHEMA zlk6 CASCADE',
    ],
  },
  {
    // An admin's lookup function (`find_user(email)`): the WHERE inside it is not in the
    // statement. Its result was masked, but its row count, or an error on it, answered the guess.
    name: 'r6: a function the catalog knows that filters on a classified column inside (SQL, PL/pgSQL, SETOF, a table row)',
    refused: { re: MASKED_PREDICATE, count: 7 },
    admin: [
      'CREATE FUNCTION public.zf1(g text) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM users WHERE ssn = g $$',
      'CREATE FUNCTION public.zf2(g text) RETURNS bigint LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN (SELECT count(*) FROM users WHERE ssn = g); END $$',
      'CREATE FUNCTION public.zf3(g text) RETURNS SETOF int LANGUAGE sql STABLE AS $$ SELECT id FROM users WHERE full_name = g $$',
      'CREATE FUNCTION public.zf4(g text) RETURNS SETOF users LANGUAGE sql STABLE AS $$ SELECT * FROM users WHERE email = g $$',
    ],
    setup: ['CREATE TABLE zz6c (x int)', 'DROP TABLE zz6c'],
    sql: [
      "SELECT public.zf1('123-45-6789') AS n",
      "SELECT 1 / (public.zf1('123-45-6789') - 1) AS n",
      "SELECT public.zf2('123-45-6789') AS n",
      "SELECT count(*) AS n FROM public.zf3('Alice Liddell')",
      "SELECT x AS n FROM public.zf3('Alice Liddell') x",
      "SELECT id FROM public.zf4('alice.liddell@example.com')",
      'PREPARE zq6(text) AS SELECT count(*) AS n FROM public.zf3($1)',
      "EXECUTE zq6('Alice Liddell')",
    ],
  },
  {
    // A recursive CTE's UNION drops a guess equal to a value (one row fewer); CYCLE stops at it.
    name: 'r6: WITH RECURSIVE … UNION and CYCLE compare a guess with the values (and dedup through arrays, jsonb keys)',
    refused: { re: MASKED_PREDICATE, count: 6 },
    sql: [
      "WITH RECURSIVE r(x) AS (SELECT '123-45-6789'::text UNION SELECT ssn FROM users) SELECT count(*) AS n FROM r",
      "SELECT id, (SELECT count(DISTINCT x) FROM unnest(ARRAY[u.ssn, '123-45-6789']) x) AS n FROM users u",
      "SELECT id, (SELECT count(*) FROM jsonb_each(jsonb_build_object(u.ssn, 1, '123-45-6789', 2))) AS n FROM users u",
      "SELECT id, (SELECT count(*) FROM (SELECT DISTINCT x FROM unnest(ARRAY[u.ssn, '123-45-6789']) x) d) AS n FROM users u",
      "SELECT id, (SELECT count(*) FROM (SELECT x FROM unnest(ARRAY[u.ssn, '123-45-6789']) x GROUP BY x) d) AS n FROM users u",
      "WITH RECURSIVE r(x, n) AS (SELECT ssn, 1 FROM users WHERE id = 1 UNION ALL SELECT '123-45-6789', n + 1 FROM r WHERE n < 3) CYCLE x SET c USING p SELECT count(*) AS n FROM r",
    ],
  },
  {
    // An admin's view whose condition compares a classified column with what a client controls:
    // a table it may write (fill with guesses) or a setting it may SET.
    name: 'r6: a view the catalog knows that compares a classified column with a writable table, a setting or another column',
    refused: { re: MASKED_PREDICATE, count: 3 },
    admin: [
      'CREATE TABLE public.zlookup (term text)',
      'CREATE VIEW public.zv_match AS SELECT l.term FROM public.zlookup l JOIN public.users u ON u.email = l.term',
      "CREATE VIEW public.zv_set AS SELECT id FROM public.users WHERE ssn = current_setting('app.ssn', true)",
      'CREATE VIEW public.zv_col AS SELECT id FROM public.users WHERE ssn = plan',
    ],
    setup: ['CREATE TABLE zz6e (x int)', 'DROP TABLE zz6e'],
    sql: [
      "INSERT INTO zlookup VALUES ('alice.liddell@example.com'), ('nobody@example.com')",
      'SELECT count(*) AS n FROM zv_match',
      "SET app.ssn = '123-45-6789'",
      'SELECT count(*) AS n FROM zv_set',
      'BEGIN',
      "UPDATE users SET plan = '123-45-6789' WHERE id = 1",
      'SELECT count(*) AS n FROM zv_col',
      'ROLLBACK',
    ],
  },
  {
    name: 'r6 (held): columns renamed by aliases of tables, joins, subqueries, CTEs and functions in FROM',
    sql: [
      'SELECT upper(u.plan) AS x FROM users AS u(id, email, phone, plan)',
      "SELECT upper(j.b) AS x, j.b || '' AS y FROM (users u CROSS JOIN orders o) AS j(a, b)",
      'SELECT upper(t.c4) AS x FROM (SELECT * FROM users) AS t(c1, c2, c3, c4)',
      'SELECT upper(t.c) AS x FROM users u, LATERAL ROWS FROM (upper(u.full_name)) AS t(c)',
      'SELECT upper(v.column1) AS x FROM users u, LATERAL (VALUES (u.address)) v',
      "SELECT upper(x.full_name) AS x FROM users JOIN orders USING (id) AS x",
      'WITH w(a, b, c, d) AS (TABLE users) SELECT upper(d) AS x FROM w',
      'SELECT upper(q.p) AS x FROM (users u JOIN orders o ON o.user_id = u.id) AS q(i, e, ph, s, c, n, ad, t, p)',
      'SELECT upper(r.f2) AS x FROM (SELECT ROW(id, ssn) AS r FROM users) s, LATERAL (SELECT (s.r).f2) AS r(f2)',
      'SELECT upper(z) AS x FROM users u, unnest(ARRAY[u.full_name]) AS z',
      'SELECT upper(z.z) AS x FROM users u, unnest(ARRAY[u.email]) AS z',
      'SELECT upper(s) AS x FROM users u, CAST(u.ssn AS text) AS s',
    ],
  },
  {
    // An updatable view over orders: its card column is orders.card, masked as tokens. A guess
    // written through it read back as the token of the guess; the flow's destination was the
    // view's column (unclassified), or a view the catalog did not have yet.
    name: 'r6: a chosen value written into a token column through an updatable view (known, or created in the same transaction or message)',
    refused: { re: /dbgov: blocked/g, count: 5 },
    sql: [
      'CREATE VIEW zvt AS SELECT id, user_id, amount, status, card FROM orders',
      'CREATE VIEW zvt2 AS SELECT id, card AS c FROM zvt',
      'SELECT pg_sleep(1)',
      'BEGIN',
      "UPDATE zvt SET card = '4111 1111 1111 1111' WHERE id = 12",
      'ROLLBACK',
      'BEGIN',
      "INSERT INTO zvt (id, user_id, amount, status, card) VALUES (95, 1, 0, 'x', '5500 0055 5555 5559')",
      'ROLLBACK',
      'BEGIN',
      "UPDATE zvt2 SET c = '3782 822463 10005' WHERE id = 10",
      'ROLLBACK',
      'BEGIN',
      'CREATE VIEW zvt3 AS SELECT id, card FROM orders',
      "UPDATE zvt3 SET card = '4111 1111 1111 1111' WHERE id = 12",
      'SELECT id, card FROM orders ORDER BY id',
      'ROLLBACK',
      "CREATE VIEW zvt4 AS SELECT id, card FROM orders; UPDATE zvt4 SET card = '4111 1111 1111 1111' WHERE id = 12; SELECT id, card FROM orders ORDER BY id",
      'DROP VIEW IF EXISTS zvt4',
      'SELECT id, card FROM orders ORDER BY id',
      'DROP VIEW zvt2',
      'DROP VIEW zvt',
    ],
  },
  {
    // Masking is configured by name: status (values of the client's choosing) renamed to card, or
    // a table of guesses renamed to orders, read back as the tokens of the guesses.
    name: 'r6: values of the client\'s choosing renamed into the name of a token column (column, table, schema)',
    refused: { re: /masked for you as tokens/g, count: 7 },
    sql: [
      "UPDATE orders SET status = '4111 1111 1111 1111' WHERE id = 13",
      'ALTER TABLE orders RENAME COLUMN card TO zcard_old',
      'ALTER TABLE orders RENAME COLUMN status TO card',
      'SELECT pg_sleep(1)',
      'SELECT id, card FROM orders ORDER BY id',
      'ALTER TABLE orders RENAME COLUMN card TO status',
      'ALTER TABLE orders RENAME COLUMN zcard_old TO card',
      "UPDATE orders SET status = 'pending' WHERE id = 13",
      "CREATE TABLE zt6 AS SELECT id, '4111 1111 1111 1111'::text AS card FROM orders",
      'ALTER TABLE orders RENAME TO zorders_old',
      'ALTER TABLE zt6 RENAME TO orders',
      'SELECT pg_sleep(1)',
      'SELECT id, card FROM orders ORDER BY id',
      'ALTER TABLE orders RENAME TO zt6',
      'ALTER TABLE zorders_old RENAME TO orders',
      'DROP TABLE zt6',
      'CREATE SCHEMA IF NOT EXISTS zs6',
      // Read as what it is once the catalog has it (zs6.orders, whose card is not classified): the
      // client's own value back in clear, and no token of it. (A value outside the corpus, so the
      // wire check does not count it.)
      "CREATE TABLE zs6.orders AS SELECT 1 AS id, '4000 1234 5678 9010'::text AS card",
      'SET search_path = zs6, public',
      'SELECT id, card FROM orders',
      'RESET search_path',
      'DROP SCHEMA zs6 CASCADE',
      'CREATE SCHEMA zs7',
      "CREATE TABLE zs7.orders AS SELECT 1 AS id, '5500 0055 5555 5559'::text AS card",
      'BEGIN',
      'ALTER SCHEMA public RENAME TO zs7_old',
      'ALTER SCHEMA zs7 RENAME TO public',
      'ROLLBACK',
      'BEGIN',
      'ALTER TABLE public.orders SET SCHEMA zs7_old',
      'ALTER TABLE zs7.orders SET SCHEMA public',
      'ROLLBACK',
      'DROP SCHEMA zs7 CASCADE',
      'BEGIN',
      'ALTER TABLE orders RENAME TO zo7',
      "CREATE TABLE orders AS SELECT 1 AS id, '4111 1111 1111 1111'::text AS card",
      'ROLLBACK',
      'BEGIN',
      'ALTER TABLE orders RENAME TO zo7',
      'CREATE TABLE orders (id int, card text)',
      "INSERT INTO orders VALUES (1, '4111 1111 1111 1111')",
      'ROLLBACK',
      'BEGIN',
      'ALTER TABLE orders RENAME TO zo7',
      "CREATE TABLE orders (id int, card text DEFAULT '4111 1111 1111 1111')",
      'ROLLBACK',
    ],
  },
  {
    // A guess written into a classified column (not one masked as tokens) is then ordered, grouped
    // and counted among the real values by reads the rule allows (ORDER BY ssn, GROUP BY ssn,
    // count(DISTINCT ssn)): the unique-key oracle of the README's known limits, without the key.
    name: 'r6 (open): a guess inserted into a classified column, then ordered / grouped / counted with the real values',
    todo: 'refusing it would refuse every write of a chosen value into a classified column (see the README: unique-key oracle)',
    refused: { re: MASKED_PREDICATE, count: 4 },
    sql: [
      'BEGIN',
      "INSERT INTO users (id, email, ssn) VALUES (99, 'zz99@example.com', '150-00-0000')",
      'SELECT id FROM users ORDER BY ssn',
      "UPDATE users SET ssn = '123-45-6789' WHERE id = 99",
      'SELECT count(*) AS n FROM users GROUP BY ssn ORDER BY n DESC LIMIT 1',
      'SELECT count(DISTINCT ssn) AS n FROM users',
      'SELECT id, rank() OVER (ORDER BY ssn) AS r FROM users',
      'ROLLBACK',
    ],
  },
  {
    // An admin's validation trigger on an unclassified table: it looks the written value up in
    // users and raises when found. Writing a guess there answers whether it is a value.
    name: 'r6: a write to a table whose trigger (the catalog knows) looks the written value up in a classified column',
    refused: { re: MASKED_PREDICATE, count: 2 },
    admin: [
      'CREATE TABLE public.zsignups (email text, note text)',
      "CREATE FUNCTION public.zsignup_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS (SELECT 1 FROM public.users WHERE email = NEW.email) THEN RAISE EXCEPTION 'already registered'; END IF; RETURN NEW; END $$",
      'CREATE TRIGGER zsignup_check BEFORE INSERT OR UPDATE ON public.zsignups FOR EACH ROW EXECUTE FUNCTION public.zsignup_check()',
      'CREATE TABLE public.zaudited (note text)',
      'CREATE TABLE public.zaudit_log (at timestamptz, what text)',
      "CREATE FUNCTION public.zaudit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.zaudit_log VALUES (now(), TG_OP); RETURN NEW; END $$",
      'CREATE TRIGGER zaudit AFTER INSERT ON public.zaudited FOR EACH ROW EXECUTE FUNCTION public.zaudit()',
    ],
    setup: ['CREATE TABLE zz6g (x int)', 'DROP TABLE zz6g'],
    sql: [
      "INSERT INTO zsignups VALUES ('alice.liddell@example.com', 'x')",
      "UPDATE zsignups SET email = 'bob.builder@example.org' WHERE note = 'x'",
      "INSERT INTO zaudited VALUES ('kept')",
      'SELECT count(*) AS n FROM zaudit_log',
    ],
  },
  {
    // EXPLAIN ANALYZE runs its statement, PREPARE's runs at EXECUTE, COPY (…) TO runs its query:
    // the store checks parsed the statement's text, found the EXPLAIN, PREPARE or COPY, and no
    // write in it, so a classified value went into a new table or an unclassified column.
    name: 'r6: EXPLAIN ANALYZE, PREPARE / EXECUTE and COPY (…) TO of statements that store classified values or write tokens',
    refused: { re: /dbgov: blocked/g, count: 7 },
    sql: [
      'BEGIN',
      'EXPLAIN ANALYZE CREATE TABLE zt8 AS SELECT full_name FROM users',
      'SELECT * FROM zt8',
      'ROLLBACK',
      'BEGIN',
      'EXPLAIN (ANALYZE, COSTS OFF) INSERT INTO orders (id, status) SELECT 700 + id, full_name FROM users',
      'SELECT status FROM orders',
      'ROLLBACK',
      'BEGIN',
      'PREPARE zp9 AS INSERT INTO orders (id, status) SELECT 800 + id, address FROM users',
      'EXECUTE zp9',
      'SELECT status FROM orders',
      'ROLLBACK',
      'BEGIN',
      'COPY (INSERT INTO orders (id, status) SELECT 900 + id, email FROM users RETURNING id) TO STDOUT',
      'SELECT status FROM orders',
      'ROLLBACK',
      'BEGIN',
      "EXPLAIN ANALYZE UPDATE orders SET card = '4111 1111 1111 1111' WHERE id = 12",
      'ROLLBACK',
      'BEGIN',
      "EXPLAIN ANALYZE SELECT count(*) FROM users WHERE ssn = '123-45-6789'",
      'ROLLBACK',
      'BEGIN',
      "EXPLAIN (ANALYZE) SELECT set_config('x.y', full_name, false) FROM users",
      'ROLLBACK',
    ],
  },
  {
    name: 'r6 control: EXPLAIN ANALYZE, PREPARE / EXECUTE and COPY (…) TO of writes that store nothing classified still run',
    refused: { re: /dbgov: blocked/g, count: 0 },
    sql: [
      'BEGIN',
      "EXPLAIN ANALYZE INSERT INTO orders (id, user_id, amount, status) SELECT 700 + id, id, 0, plan FROM users",
      "PREPARE zp10 AS UPDATE orders SET status = upper(status) WHERE id >= 700",
      'EXECUTE zp10',
      'COPY (DELETE FROM orders WHERE id >= 700 RETURNING id, status) TO STDOUT',
      'ROLLBACK',
    ],
  },
  {
    name: 'r6 control: views that filter a classified column by constants only still run',
    runs: true,
    admin: ["CREATE VIEW public.zv_fixed AS SELECT id, email FROM public.users WHERE email NOT LIKE '%@test.example' AND email IS NOT NULL"],
    setup: ['CREATE TABLE zz6f (x int)', 'DROP TABLE zz6f'],
    sql: ['SELECT id, email FROM zv_fixed', 'SELECT id, email FROM user_contacts', 'SELECT count(*) FROM zv_fixed'],
  },
  {
    name: 'r6 control: recursive CTEs that carry a classified column without comparing it still run',
    runs: true,
    sql: [
      'WITH RECURSIVE r(n, s) AS (SELECT 1, ssn FROM users WHERE id = 1 UNION ALL SELECT n + 1, s FROM r WHERE n < 3) SELECT n, s FROM r',
      'WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r',
      'WITH RECURSIVE r(n, s) AS (SELECT id, full_name FROM users UNION ALL SELECT n + 10, s FROM r WHERE n < 10) CYCLE n SET c USING p SELECT n, s FROM r',
    ],
  },
  {
    name: 'r6 control: functions the catalog knows that filter on other columns still run',
    runs: true,
    admin: [
      'CREATE FUNCTION public.zg1(u int) RETURNS SETOF orders LANGUAGE sql STABLE AS $$ SELECT * FROM orders WHERE user_id = u $$',
      'CREATE FUNCTION public.zg2(u int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT full_name FROM users WHERE id = u $$',
    ],
    setup: ['CREATE TABLE zz6d (x int)', 'DROP TABLE zz6d'],
    sql: ['SELECT id, amount FROM public.zg1(1)', 'SELECT public.zg2(2) AS n'],
  },
  {
    name: 'r6 control: functions of extensions that compute from their arguments alone still run',
    runs: true,
    sql: [
      "SELECT id, similarity(plan, 'pro') AS s, hstore('p', plan) -> 'p' AS h FROM users",
      "SELECT show_trgm('abc') AS t",
    ],
    setup: ['CREATE EXTENSION IF NOT EXISTS pg_trgm', 'CREATE EXTENSION IF NOT EXISTS hstore', 'CREATE TABLE zz6b (x int)', 'DROP TABLE zz6b'],
  },
];

describe('adversarial masking probes, round 6 (PostgreSQL)', () => {
  let t: CapturedTarget;
  const logDir = process.env.PROBE_LOG;

  before(async () => {
    t = await captureTarget('postgres', 'zzprobe6', corpus, process.env.PROBE_ENV);
    if (logDir) mkdirSync(logDir, { recursive: true });
  });
  after(async () => {
    await t?.close();
  });

  const psql = (sql: string[]) => psqlThrough(t, sql);

  probes.forEach((p, i) => {
    test(p.name, { todo: p.todo }, async () => {
      for (const a of p.admin ?? []) await adminQuery(a, [], t.db);
      if (p.setup) await psql(p.setup);
      // The broker reads the catalog again after DDL: let it have what the setup made.
      if (p.admin || p.setup) await new Promise((r) => setTimeout(r, 1500));
      t.proxy.take();
      const r = await psql(p.sql);
      const found = leaksOf(corpus.pii, t.proxy.take());
      if (logDir) writeFileSync(join(logDir, `${String(i).padStart(2, '0')}.txt`), `# ${p.name}\n# leaks: ${JSON.stringify(found)}\n${p.sql.join('\n')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n`);
      assert.deepEqual(found, [], `${p.sql.join('; ')}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
      if (p.refused) assert.equal(r.stderr.match(p.refused.re)?.length ?? 0, p.refused.count, `not every oracle refused\n${r.stdout}\n${r.stderr}`);
      if (p.runs) assert.equal(r.stdout.match(/\(\d+ rows?\)/g)?.length ?? 0, p.sql.length, `not every statement ran\n${r.stdout}\n${r.stderr}`);
    });
  });
});
