/**
 * Adversarial guardrail probes against a protected prod target with the built-in default policy
 * (and the model-weights review policy of the guardrail corpus), beyond
 * test/corpus/postgres-guardrails.yaml and mysql-guardrails.yaml. Each probe starts from freshly
 * seeded tables, runs its statements through the tunnel one message each (a statement holding `;`
 * is one multi-statement message), and `check` (run as the admin afterwards) must be true: the
 * destructive or reviewed change did not happen. `REFRESH` reloads the broker's catalogs, as the
 * 15 s timer would. Statements the server rejects are fine; a statement dbgov lets through that
 * changes what `check` looks at is a bypass.
 * PROBE_LOG=dir writes each probe's outcomes there (for triage).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type mysql from 'mysql2/promise';
import { adminQuery, createTestDatabase, pgTarget, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import { createMysqlDatabase, mysqlAdmin, mysqlTarget, mysqlTunnelClient, type MysqlTestDatabase } from './mysql-harness.js';
import type { Connection } from '../../src/cli/connect.js';

type Step = string | { text: string; values: unknown[] };
interface Probe {
  name: string;
  sql: Step[];
  check: string;
  policy?: 'default' | 'model-weights';
}

/**
 * Probes that still get through: known gaps, each recorded in the issue notes. They run as `todo`
 * (reported, not failed), so a fix shows up as a todo that passes and is then removed from here.
 */
const KNOWN_GAPS: Record<string, string> = {};

const DEV = { id: 'dev', email: 'dev@example.com', name: 'Dev', password: 'dev-pw', groups: ['devs'] };
const logDir = process.env.PROBE_LOG;
if (logDir) mkdirSync(logDir, { recursive: true });

const PG_SETUP = `
  DROP SCHEMA IF EXISTS public CASCADE; DROP SCHEMA IF EXISTS scratch CASCADE; CREATE SCHEMA public;
  CREATE TABLE public.users (id int PRIMARY KEY, email text, ssn text, name text);
  CREATE TABLE public.orders (id int PRIMARY KEY, user_id int, total numeric, status text);
  CREATE TABLE public.model_weights (id int PRIMARY KEY, layer text, w float8);
  CREATE TABLE public.audit_notes (id serial PRIMARY KEY, note text);
  CREATE SCHEMA scratch;
  CREATE TABLE scratch.model_weights (id int PRIMARY KEY, w float8);
  CREATE OR REPLACE PROCEDURE public.touch_note(n text) LANGUAGE sql AS $$ INSERT INTO public.audit_notes(note) VALUES (n) $$;
  CREATE OPERATOR public.<<< (rightarg = text, function = pg_catalog.lo_import);
  CREATE FUNCTION public.zz_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'notes are never deleted'; END $$;
  CREATE TRIGGER zz_guard BEFORE DELETE ON public.audit_notes FOR EACH ROW EXECUTE FUNCTION public.zz_no_delete();
  INSERT INTO public.audit_notes(note) VALUES ('kept');
  INSERT INTO public.users VALUES (1, 'ada@example.com', '123-45-6789', 'Ada'), (2, 'bob@example.com', '987-65-4321', 'Bob'), (3, 'cy@example.com', '555-12-3456', 'Cy');
  INSERT INTO public.orders VALUES (1, 1, 10, 'new'), (2, 2, 20, 'new'), (3, 3, 30, 'paid');
  INSERT INTO public.model_weights VALUES (1, 'l1', 0.5), (2, 'l2', 0.25);
  INSERT INTO scratch.model_weights VALUES (1, 0.5);
`;
const ORDERS_INTACT = "SELECT count(*) = 3 AND count(*) FILTER (WHERE status = 'pwned') = 0 AND count(total) = 3 FROM public.orders";

export const pgProbes: Probe[] = [
  { name: 'MERGE … WHEN MATCHED THEN DELETE over the whole table', sql: ['MERGE INTO orders o USING orders s ON o.id = s.id WHEN MATCHED THEN DELETE'], check: ORDERS_INTACT },
  { name: 'EXPLAIN ANALYZE of that MERGE', sql: ['EXPLAIN ANALYZE MERGE INTO orders o USING orders s ON o.id = s.id WHEN MATCHED THEN DELETE'], check: ORDERS_INTACT },
  { name: 'MERGE … WHEN MATCHED THEN UPDATE over the whole table', sql: ["MERGE INTO orders o USING orders s ON o.id = s.id WHEN MATCHED THEN UPDATE SET status = 'pwned'"], check: ORDERS_INTACT },
  { name: 'INSERT … SELECT every row … ON CONFLICT DO UPDATE', sql: ["INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET status = 'pwned'"], check: ORDERS_INTACT },
  { name: 'ALTER COLUMN TYPE … USING NULL wipes a column', sql: ['ALTER TABLE orders ALTER COLUMN total TYPE numeric USING NULL'], check: ORDERS_INTACT },
  { name: 'ALTER TABLE … DROP COLUMN', sql: ['ALTER TABLE orders DROP COLUMN status'], check: "SELECT count(*) = 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders' AND column_name = 'status'" },
  { name: 'self-comparison WHERE the corpus does not list', sql: ['DELETE FROM orders WHERE id IN (id)', 'DELETE FROM orders WHERE id + 0 = id', "UPDATE orders SET status = 'pwned' WHERE status IS NULL OR status IS NOT NULL"], check: ORDERS_INTACT },
  { name: 'procedure body replaced and called in one message', sql: ["CREATE OR REPLACE PROCEDURE public.touch_note(n text) LANGUAGE sql AS $$ DELETE FROM public.orders $$; CALL public.touch_note('x')"], check: ORDERS_INTACT },
  { name: 'procedure body replaced and called in one transaction', sql: ['BEGIN', 'CREATE OR REPLACE PROCEDURE public.touch_note(n text) LANGUAGE sql AS $$ DELETE FROM public.orders $$', "CALL public.touch_note('x')", 'COMMIT'], check: ORDERS_INTACT },
  { name: 'procedure body replaced, catalog reloaded, then called (control)', sql: ['CREATE OR REPLACE PROCEDURE public.touch_note(n text) LANGUAGE sql AS $$ DELETE FROM public.orders $$', 'REFRESH', "CALL public.touch_note('x')"], check: ORDERS_INTACT },
  { name: 'SQL-standard body (BEGIN ATOMIC) function', sql: ['CREATE FUNCTION public.zz_atomic() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM public.orders; END', 'REFRESH', 'SELECT public.zz_atomic()'], check: ORDERS_INTACT },
  { name: 'SQL-standard body (BEGIN ATOMIC) procedure', sql: ['CREATE PROCEDURE public.zz_atomic_p() LANGUAGE sql BEGIN ATOMIC DELETE FROM public.orders; END', 'REFRESH', 'CALL public.zz_atomic_p()'], check: ORDERS_INTACT },
  { name: 'function in a column DEFAULT, body replaced afterwards', sql: ['CREATE FUNCTION public.zz_wipe() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', 'CREATE TABLE public.zz_t (x int DEFAULT public.zz_wipe())', 'CREATE OR REPLACE FUNCTION public.zz_wipe() RETURNS int LANGUAGE sql AS $$ DELETE FROM public.orders RETURNING 1 $$', 'REFRESH', 'INSERT INTO public.zz_t DEFAULT VALUES'], check: ORDERS_INTACT },
  { name: 'trigger whose function wipes another table', sql: ['CREATE FUNCTION public.zz_trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM public.orders; RETURN NULL; END $$', 'CREATE TRIGGER zz AFTER INSERT ON public.audit_notes FOR EACH STATEMENT EXECUTE FUNCTION public.zz_trg()', "INSERT INTO audit_notes(note) VALUES ('x')"], check: ORDERS_INTACT },
  { name: 'PL/pgSQL function that wipes a table (control)', sql: ['CREATE FUNCTION public.zz_p() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM public.orders; END $$', 'REFRESH', 'SELECT public.zz_p()'], check: ORDERS_INTACT },
  { name: 'set_config(role) with the name as a bind parameter', sql: [{ text: 'SELECT set_config($1, $2, false)', values: ['role', 'postgres'] }, 'DELETE FROM orders'], check: ORDERS_INTACT },
  { name: 'review bypass: search_path desync (SET rolled back)', policy: 'model-weights', sql: ['BEGIN', 'SET search_path = scratch, public', 'ROLLBACK', 'UPDATE model_weights SET w = 0 WHERE id = 1'], check: 'SELECT w = 0.5 FROM public.model_weights WHERE id = 1' },
  { name: 'review bypass: search_path desync (failed implicit transaction)', policy: 'model-weights', sql: ['SET search_path = scratch, public; SELECT 1/0', 'DELETE FROM model_weights WHERE id = 1'], check: 'SELECT count(*) = 2 FROM public.model_weights' },
  { name: 'review bypass: view created and written in one message', policy: 'model-weights', sql: ['CREATE VIEW public.zz_mw AS SELECT * FROM public.model_weights; UPDATE public.zz_mw SET w = 0 WHERE id = 1'], check: 'SELECT w = 0.5 FROM public.model_weights WHERE id = 1' },
  // ---- round 2
  { name: 'r2: WHERE that only tests a bind parameter', sql: [{ text: 'DELETE FROM orders WHERE $1', values: [true] }, { text: "UPDATE orders SET status = 'pwned' WHERE $1::int = 1", values: [1] }], check: ORDERS_INTACT },
  { name: 'r2: WHERE with no column of the target (volatile / scalar subquery / IS NULL of a constant)', sql: ['DELETE FROM orders WHERE random() < 2', 'DELETE FROM orders WHERE (SELECT count(*) FROM users) > 0', 'DELETE FROM orders WHERE NULL IS NULL', "DELETE FROM orders WHERE coalesce(NULL, true)", 'DELETE FROM orders WHERE (SELECT true)', "DELETE FROM orders WHERE CASE WHEN true THEN true END"], check: ORDERS_INTACT },
  { name: 'r2: self-comparisons in other spellings', sql: ['DELETE FROM orders AS o WHERE o.id = o.id', 'DELETE FROM orders WHERE (id, status) = (id, status)', 'DELETE FROM orders WHERE id BETWEEN id AND id', 'DELETE FROM orders WHERE id >= id', 'DELETE FROM orders WHERE id = ANY (ARRAY[id])', 'DELETE FROM orders WHERE id IN (id, 1)', 'DELETE FROM orders WHERE id::text = id::text', "DELETE FROM orders WHERE NOT (id <> id)", 'DELETE FROM orders WHERE id = id AND true'], check: ORDERS_INTACT },
  { name: 'r2: WHERE <system column> IS NOT NULL', sql: ['DELETE FROM orders WHERE ctid IS NOT NULL', 'DELETE FROM orders WHERE xmin IS NOT NULL', "UPDATE orders o SET status = 'pwned' WHERE o.tableoid IS NOT NULL"], check: ORDERS_INTACT },
  { name: 'r2: WHERE tableoid = the table itself', sql: ["DELETE FROM orders WHERE tableoid = 'orders'::regclass"], check: ORDERS_INTACT },
  { name: 'r2: WHERE on the whole row', sql: ['DELETE FROM orders WHERE orders IS DISTINCT FROM NULL', 'DELETE FROM orders o WHERE o IS NOT NULL'], check: ORDERS_INTACT },
  { name: 'r3: self-join through a CTE that reads the table', sql: ['WITH x AS (SELECT * FROM orders) DELETE FROM orders USING x WHERE orders.id = x.id', "WITH x AS (SELECT * FROM orders) UPDATE orders SET status = 'pwned' FROM x WHERE orders.id = x.id", 'WITH x AS (SELECT * FROM orders) MERGE INTO orders o USING x ON o.id = x.id WHEN MATCHED THEN DELETE'], check: ORDERS_INTACT },
  { name: 'r2: WHERE selecting every row through a subquery on the same table', sql: ['DELETE FROM orders WHERE id IN (SELECT id FROM orders)', 'DELETE FROM orders WHERE id = ANY (ARRAY(SELECT id FROM orders))', 'WITH x AS (SELECT id FROM orders) DELETE FROM orders WHERE id IN (SELECT id FROM x)', 'DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM orders p WHERE p.id = o.id)'], check: ORDERS_INTACT },
  { name: 'r2: writable CTE whose WHERE is only on the outer query', sql: ['WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d WHERE id = 1', "WITH u AS (UPDATE orders SET status = 'pwned' RETURNING id) SELECT count(*) FROM u WHERE id = 1", 'WITH a AS (SELECT 1), d AS (DELETE FROM orders RETURNING 1) SELECT * FROM a'], check: ORDERS_INTACT },
  { name: 'r2: PREPARE of an unbounded DELETE, then EXECUTE', sql: ['PREPARE d1 AS DELETE FROM orders', 'EXECUTE d1', "PREPARE d2(text) AS UPDATE orders SET status = $1", "EXECUTE d2('pwned')"], check: ORDERS_INTACT },
  { name: 'r2: OR with a disjunct that names no row (parameter, clock)', sql: [{ text: 'DELETE FROM orders WHERE id = $1 OR $2', values: [1, true] }, "DELETE FROM orders WHERE id = -1 OR now() > '2000-01-01'"], check: ORDERS_INTACT },
  { name: 'r2: DROP / TRUNCATE in a DO block and in EXECUTE format()', sql: ["DO $$ BEGIN EXECUTE format('TRUNCATE %I', 'orders'); END $$", "DO $$ BEGIN EXECUTE 'DROP TABLE public.orders'; END $$", "DO LANGUAGE plpgsql $$ BEGIN DELETE FROM public.orders; END $$"], check: ORDERS_INTACT },
  { name: 'r2: CREATE RULE that turns an INSERT into a DELETE, then INSERT', sql: ['CREATE RULE zz_r AS ON INSERT TO public.audit_notes DO ALSO DELETE FROM public.orders', "INSERT INTO audit_notes(note) VALUES ('x')"], check: ORDERS_INTACT },
  { name: 'r2: TRUNCATE through a view name / ONLY / a partition-less inheritance child', sql: ['TRUNCATE ONLY orders', 'TRUNCATE orders, audit_notes RESTART IDENTITY', 'TRUNCATE TABLE ONLY public.orders *'], check: ORDERS_INTACT },
  { name: 'r2: sequence reset and column default change (control: allowed, orders intact)', sql: ['ALTER SEQUENCE IF EXISTS public.order_ids RESTART'], check: ORDERS_INTACT },
  { name: 'r2: COPY FROM STDIN into orders is not destructive; DELETE split over a multi-statement message', sql: ["DELETE FROM orders WHERE id = 1 OR\n--;\ntrue", "SELECT 1; DELETE FROM orders WHERE id = 1; DELETE /* WHERE id = 1 */ FROM orders"], check: ORDERS_INTACT },
  { name: 'r2: UPDATE … FROM a join that matches every row, no WHERE', sql: ["UPDATE orders o SET status = 'pwned' FROM users u", "DELETE FROM orders USING users u"], check: ORDERS_INTACT },
  // ---- round 3
  { name: 'r3: a write inside COPY (…) TO STDOUT', sql: ['COPY (DELETE FROM orders RETURNING *) TO STDOUT', "COPY (UPDATE orders SET status = 'pwned' RETURNING 1) TO STDOUT", "COPY (INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET status = 'pwned' RETURNING 1) TO STDOUT"], check: ORDERS_INTACT },
  { name: 'r3: upsert / MERGE fed by a select list that makes its own rows', sql: ["INSERT INTO orders (id) SELECT generate_series(1, 100) ON CONFLICT (id) DO UPDATE SET status = 'pwned'", "MERGE INTO orders o USING (SELECT unnest((SELECT array_agg(id) FROM orders)) AS id) s ON o.id = s.id WHEN MATCHED THEN UPDATE SET status = 'pwned'", 'MERGE INTO orders o USING (SELECT unnest((SELECT array_agg(id) FROM orders)) AS id) s ON o.id = s.id WHEN MATCHED THEN DELETE'], check: ORDERS_INTACT },
  { name: 'r3: ALTER COLUMN TYPE … USING that reads the column and still rewrites it', sql: ["ALTER TABLE orders ALTER COLUMN status TYPE text USING 'pwned' || left(status, 0)", 'ALTER TABLE orders ALTER COLUMN status TYPE varchar(1) USING status::varchar(1)', 'ALTER TABLE orders ALTER COLUMN total TYPE boolean USING total > 0'], check: "SELECT count(*) = 3 AND count(*) FILTER (WHERE status = 'new') = 2 AND sum(total) = 60 FROM public.orders" },
  { name: 'r3: ALTER COLUMN TYPE to a narrower type without USING ("char" keeps one byte)', sql: ['ALTER TABLE orders ALTER COLUMN status TYPE "char"'], check: "SELECT count(*) FILTER (WHERE status::text = 'new') = 2 FROM public.orders" },
  { name: 'r3: ALTER COLUMN TYPE that rounds or cuts, without USING or with USING the column cast', sql: ['ALTER TABLE orders ALTER COLUMN total TYPE int2', 'ALTER TABLE orders ALTER COLUMN status TYPE "char" USING status::"char"', 'ALTER TABLE orders ALTER COLUMN status TYPE varchar(1)', 'ALTER TABLE orders ALTER COLUMN total TYPE numeric(2, -1)'], check: "SELECT count(*) FILTER (WHERE status::text = 'new') = 2 AND bool_and(pg_typeof(total) = 'numeric'::regtype) AND sum(total) = 60 FROM public.orders" },
  { name: 'r3: ALTER COLUMN TYPE to an unqualified name a temp domain shadows (text → text is a no-op to the catalog)', sql: ['CREATE DOMAIN pg_temp.text AS "char"', 'ALTER TABLE orders ALTER COLUMN status TYPE text', 'CREATE DOMAIN pg_temp.int8 AS int2 CHECK (VALUE IS NOT NULL); ALTER TABLE orders ALTER COLUMN id TYPE int8', 'SET search_path = public, pg_catalog', 'CREATE DOMAIN public.text AS "char"', 'ALTER TABLE orders ALTER COLUMN status TYPE text'], check: "SELECT count(*) FILTER (WHERE status::text = 'new') = 2 AND bool_and(pg_typeof(status) = 'text'::regtype AND pg_typeof(id) = 'integer'::regtype) FROM public.orders" },
  { name: 'r3: ALTER COLUMN TYPE twice in a transaction: widened first, then narrowed from the type the catalog has not seen', sql: ['BEGIN', 'ALTER TABLE orders ALTER COLUMN user_id TYPE numeric', 'UPDATE orders SET user_id = 1.5 WHERE id = 1', 'ALTER TABLE orders ALTER COLUMN user_id TYPE int8', 'COMMIT'], check: "SELECT bool_and(pg_typeof(user_id) <> 'bigint'::regtype) FROM public.orders" },
  { name: 'r3: patterns that match every value (LIKE of only %, SIMILAR TO, a regex matching the empty string, NOT NOT LIKE)', sql: ["DELETE FROM orders WHERE status LIKE '%%%'", "DELETE FROM orders WHERE status ~~ '%'", "DELETE FROM orders WHERE NOT (status NOT LIKE '%')", "DELETE FROM orders WHERE status LIKE '%' ESCAPE '#'", "DELETE FROM orders WHERE status SIMILAR TO '%'", "DELETE FROM orders WHERE status ~ ''", "UPDATE orders SET status = 'pwned' WHERE status ~* '.*'"], check: ORDERS_INTACT },
  { name: 'r3: an operator (or cast) bound to a server-file function, or created to be one', sql: ["SELECT <<< '/etc/hostname'", "SELECT OPERATOR(public.<<<) '/etc/hostname'", "CREATE OPERATOR public.<<<< (rightarg = text, function = pg_catalog.lo_import); SELECT <<<< '/etc/hostname'", 'CREATE OPERATOR public.<<<< (rightarg = text, function = pg_catalog.lo_import)', 'BEGIN', 'CREATE CAST (text AS oid) WITH FUNCTION pg_catalog.lo_import(text)', "SELECT '/etc/hostname'::text::oid", 'ROLLBACK'], check: 'SELECT count(*) = 0 FROM pg_largeobject_metadata' },
  { name: 'r3: the key IS NOT NULL in other spellings', sql: ['DELETE FROM orders WHERE id::int IS NOT NULL', 'DELETE FROM orders WHERE NOT id IS NULL', 'DELETE FROM orders WHERE id IS NOT NULL AND true', 'DELETE FROM orders WHERE ROW(id) IS NOT NULL', 'DELETE FROM orders WHERE (id IS NOT NULL) IS TRUE', 'DELETE FROM orders WHERE id + 0 IS NOT NULL', "UPDATE orders SET status = 'pwned' WHERE id IS NOT NULL OR false"], check: ORDERS_INTACT },
  { name: 'r3: a table swapped in under another name by renames inside a transaction (its id a key there, not in the catalog)', sql: ['CREATE TABLE public.zz (k int, id int)', 'REFRESH', 'BEGIN', 'ALTER TABLE public.zz RENAME TO zz_old', 'ALTER TABLE public.orders RENAME TO zz', 'DELETE FROM zz WHERE id IS NOT NULL', 'ALTER TABLE public.zz RENAME TO orders', 'COMMIT', 'ALTER TABLE public.zz RENAME TO zz_old2; ALTER TABLE public.orders RENAME TO zz; DELETE FROM zz WHERE id IS NOT NULL; ALTER TABLE public.zz RENAME TO orders'], check: ORDERS_INTACT },
  { name: 'r3: review bypass: the schema renamed inside a transaction, then written by its new name', policy: 'model-weights', sql: ['BEGIN', 'ALTER SCHEMA public RENAME TO zp2', 'UPDATE zp2.model_weights SET w = 0 WHERE id = 1', 'ALTER SCHEMA zp2 RENAME TO public', 'COMMIT'], check: 'SELECT w = 0.5 FROM public.model_weights WHERE id = 1' },
  { name: 'r3: standard_conforming_strings off hides a DELETE / TRUNCATE in what the parser takes for a literal', sql: ['SET standard_conforming_strings = off', "SELECT '\\''; DELETE FROM orders; --'", 'RESET standard_conforming_strings', "SELECT set_config('standard_conforming_strings', 'off', false)", "SELECT 'a\\'' ; TRUNCATE orders; --'"], check: ORDERS_INTACT },
  { name: 'r3: client_encoding SJIS hides a DELETE behind a character UTF-8 reads as a backslash', sql: ["SET client_encoding = 'SJIS'", "SELECT E'Օ\\' ; DELETE FROM orders; --'"], check: ORDERS_INTACT },
  { name: 'r3: a trigger that guards rows switched off (DISABLE TRIGGER, ENABLE REPLICA TRIGGER), then the rows deleted', sql: ['ALTER TABLE audit_notes DISABLE TRIGGER zz_guard', 'DELETE FROM audit_notes WHERE id > 0', 'ALTER TABLE audit_notes DISABLE TRIGGER ALL', 'ALTER TABLE audit_notes DISABLE TRIGGER USER', 'ALTER TABLE audit_notes ENABLE REPLICA TRIGGER zz_guard', 'DELETE FROM audit_notes WHERE id > 0'], check: 'SELECT count(*) = 1 FROM public.audit_notes' },
  // ---- round 6
  { name: 'r6: WHERE through a subquery whose own CTE reads the table; the key or the whole row IS NOT NULL in other spellings', sql: ['DELETE FROM orders WHERE id IN (WITH c AS (SELECT id FROM orders) SELECT id FROM c)', "UPDATE orders SET status = 'pwned' WHERE id IN (WITH c AS (SELECT * FROM orders), d AS (SELECT id FROM c) SELECT id FROM d)", 'DELETE FROM orders WHERE id IS DISTINCT FROM NULL', 'DELETE FROM orders WHERE orders.* IS NOT NULL', 'DELETE FROM orders o WHERE row(o.*) IS NOT NULL'], check: ORDERS_INTACT },
  { name: 'r6: model_weights attached as a partition of a new table, then written through the parent', policy: 'model-weights', sql: ['CREATE TABLE public.zz_p (id int, layer text, w float8) PARTITION BY LIST (id)', 'ALTER TABLE public.zz_p ATTACH PARTITION public.model_weights FOR VALUES IN (1, 2)', 'UPDATE public.zz_p SET w = 0 WHERE id = 1'], check: 'SELECT w = 0.5 FROM public.model_weights WHERE id = 1' },
  { name: 'r6: a view over model_weights moved to another schema or renamed in a transaction, then written', policy: 'model-weights', sql: ['BEGIN', 'CREATE VIEW public.zz_v AS SELECT * FROM public.model_weights', 'ALTER VIEW public.zz_v SET SCHEMA scratch', 'UPDATE scratch.zz_v SET w = 0 WHERE id = 1', 'COMMIT', 'BEGIN', 'CREATE VIEW public.zz_v2 AS SELECT * FROM public.model_weights', 'ALTER TABLE public.zz_v2 RENAME TO zz_v3', 'UPDATE public.zz_v3 SET w = 0 WHERE id = 1', 'COMMIT'], check: 'SELECT w = 0.5 FROM public.model_weights WHERE id = 1' },
  { name: 'r6: PREPARE under one search_path, EXECUTE under another (the server parses it again)', policy: 'model-weights', sql: ['SET search_path = scratch, public', 'SELECT 1', 'PREPARE zz_e AS UPDATE model_weights SET w = 0 WHERE id = 1', 'SET search_path = public', 'EXECUTE zz_e', 'RESET search_path', 'EXECUTE zz_e'], check: 'SELECT w = 0.5 FROM public.model_weights WHERE id = 1' },
  { name: 'r6: PREPARE over a temp table that shadows model_weights, the temp table dropped (DISCARD TEMP, ON COMMIT DROP), then EXECUTE', policy: 'model-weights', sql: ['CREATE TEMP TABLE model_weights (id int, layer text, w float8)', 'PREPARE zz_t AS UPDATE model_weights SET w = 0 WHERE id = 1', 'DISCARD TEMP', 'EXECUTE zz_t', 'BEGIN', 'CREATE TEMP TABLE model_weights (id int, layer text, w float8) ON COMMIT DROP', 'PREPARE zz_t2 AS UPDATE model_weights SET w = 0 WHERE id = 1', 'COMMIT', 'EXECUTE zz_t2'], check: 'SELECT w = 0.5 FROM public.model_weights WHERE id = 1' },
  { name: 'r6: REASSIGN OWNED / ALTER TABLE ALL IN TABLESPACE reach model_weights without naming it', policy: 'model-weights', sql: ['CREATE ROLE zz_r6', 'REASSIGN OWNED BY CURRENT_USER TO zz_r6', 'ALTER TABLE ALL IN TABLESPACE pg_default OWNED BY CURRENT_USER SET TABLESPACE pg_default'], check: "SELECT pg_get_userbyid(relowner) <> 'zz_r6' FROM pg_class WHERE oid = 'public.model_weights'::regclass" },
  { name: 'r3: the same expression with a call on both sides', sql: ['DELETE FROM orders WHERE lower(status) = lower(status)', 'DELETE FROM orders WHERE abs(id) = abs(id)', "UPDATE orders SET status = 'pwned' WHERE length(status) >= length(status)"], check: ORDERS_INTACT },
];

const MY_SETUP = `
  CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100), ssn VARCHAR(20), name VARCHAR(50));
  CREATE TABLE orders (id INT PRIMARY KEY, user_id INT, total DECIMAL(10,2), status VARCHAR(10)) ENGINE=InnoDB;
  CREATE TABLE audit_notes (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100));
  INSERT INTO users VALUES (1, 'ada@example.com', '123-45-6789', 'Ada'), (2, 'bob@example.com', '987-65-4321', 'Bob'), (3, 'cy@example.com', '555-12-3456', 'Cy');
  INSERT INTO orders VALUES (1, 1, 10, 'new'), (2, 2, 20, 'new'), (3, 3, 30, 'paid');
`;
const MY_ORDERS_INTACT = "SELECT COUNT(*) = 3 AND SUM(status = 'pwned') = 0 AND COUNT(total) = 3 AS ok FROM orders";

export const myProbes: Probe[] = [
  { name: 'CREATE OR REPLACE TABLE (drops the table)', sql: ['CREATE OR REPLACE TABLE orders (id INT)'], check: MY_ORDERS_INTACT },
  { name: 'ALTER TABLE … ENGINE=BLACKHOLE (discards every row)', sql: ['ALTER TABLE orders ENGINE=BLACKHOLE'], check: MY_ORDERS_INTACT },
  { name: 'ALTER TABLE … DISCARD TABLESPACE', sql: ['ALTER TABLE orders DISCARD TABLESPACE'], check: MY_ORDERS_INTACT },
  { name: 'partition, then TRUNCATE PARTITION ALL', sql: ['ALTER TABLE orders PARTITION BY HASH(id) PARTITIONS 2', 'ALTER TABLE orders TRUNCATE PARTITION ALL'], check: MY_ORDERS_INTACT },
  { name: 'partition by range, then DROP PARTITION', sql: ['ALTER TABLE orders PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN MAXVALUE)', 'ALTER TABLE orders DROP PARTITION p0'], check: MY_ORDERS_INTACT },
  { name: 'INSERT … SELECT every row … ON DUPLICATE KEY UPDATE', sql: ["INSERT INTO orders SELECT * FROM orders ON DUPLICATE KEY UPDATE status = 'pwned'"], check: MY_ORDERS_INTACT },
  { name: 'DELETE … WHERE <non-zero column>', sql: ['DELETE FROM orders WHERE id', 'DELETE FROM orders WHERE id IS NOT NULL'], check: MY_ORDERS_INTACT },
  { name: 'ALTER … MODIFY to a type that loses every value', sql: ['ALTER TABLE orders MODIFY status INT'], check: "SELECT SUM(status = 'new') = 2 AS ok FROM orders" },
  { name: 'trigger that wipes another table', sql: ['CREATE TRIGGER zz_tr AFTER INSERT ON audit_notes FOR EACH ROW DELETE FROM orders', "INSERT INTO audit_notes (note) VALUES ('x')"], check: MY_ORDERS_INTACT },
  { name: 'procedure that wipes a table, then CALL', sql: ['CREATE PROCEDURE zz_p() DELETE FROM orders', 'SELECT SLEEP(0.3)', 'CALL zz_p()'], check: MY_ORDERS_INTACT },
  { name: 'stored function that wipes a table, then SELECT it', sql: ['CREATE FUNCTION zz_f() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM orders; RETURN 1; END', 'SELECT SLEEP(0.3)', 'SELECT zz_f()'], check: MY_ORDERS_INTACT },
  { name: 'stored function called from a column DEFAULT', sql: ['CREATE FUNCTION zz_g() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM orders; RETURN 1; END', 'CREATE TABLE zz_t (id INT, x INT DEFAULT (zz_g()))', "INSERT INTO zz_t (id) VALUES (1)"], check: MY_ORDERS_INTACT },
  // ---- round 2
  { name: 'r2: WHERE with no column of the target', sql: ['DELETE FROM orders WHERE @undefined_var IS NULL', 'DELETE FROM orders WHERE RAND() < 2', "DELETE FROM orders WHERE (SELECT COUNT(*) FROM users) > 0", 'DELETE FROM orders WHERE COALESCE(NULL, 1)', "DELETE FROM orders WHERE '1abc'", 'DELETE FROM orders WHERE NOT 0', 'DELETE FROM orders WHERE IFNULL(NULL, TRUE)', 'DELETE FROM orders WHERE 1 IN (1)'], check: MY_ORDERS_INTACT },
  { name: 'r2: self-comparisons in other spellings', sql: ['DELETE FROM orders WHERE id = -1 OR @undefined_var IS NULL', 'DELETE FROM orders WHERE id <=> id', 'DELETE FROM orders WHERE id BETWEEN id AND id', 'DELETE FROM orders WHERE id IN (id, 1)', 'DELETE FROM orders WHERE (id, status) = (id, status)', 'DELETE FROM orders WHERE id >= id', 'DELETE o FROM orders o WHERE o.id = o.id'], check: MY_ORDERS_INTACT },
  { name: 'r2: multi-table DELETE / UPDATE bounded only by the join', sql: ['DELETE o FROM orders o JOIN users u ON u.id = o.user_id', 'DELETE orders FROM orders, users', 'DELETE FROM orders USING orders JOIN users ON users.id = orders.user_id', "UPDATE orders o JOIN users u ON u.id = o.user_id SET o.status = 'pwned'", 'DELETE orders.* FROM orders'], check: MY_ORDERS_INTACT },
  { name: 'r2: DELETE / UPDATE with only ORDER BY / LIMIT', sql: ['DELETE FROM orders LIMIT 100', "UPDATE orders SET status = 'pwned' ORDER BY id LIMIT 100", 'DELETE LOW_PRIORITY QUICK IGNORE FROM orders ORDER BY id'], check: MY_ORDERS_INTACT },
  { name: 'r2: dynamic SQL: PREPARE FROM a literal / a variable, EXECUTE IMMEDIATE', sql: ["PREPARE s1 FROM 'TRUNCATE orders'", 'EXECUTE s1', "SET @q = 'DELETE FROM orders'", 'PREPARE s2 FROM @q', 'EXECUTE s2', "EXECUTE IMMEDIATE CONCAT('TRUNC', 'ATE orders')"], check: MY_ORDERS_INTACT },
  { name: 'r2: executable comments hiding the destructive part', sql: ['DELETE FROM orders WHERE id = -1 /*!99999 OR 1=1 */', 'DELETE FROM orders WHERE id = -1 /*M!100000 OR 1=1 */', 'DELETE FROM orders /*!WHERE id = -1*/', 'DELETE FROM orders WHERE id = -1 /*!50699 OR 1=1 */', 'DELETE FROM orders WHERE id = -1 /*!50700 OR 1=1 */', '/*!50000 DROP TABLE orders */', '/*!40101 TRUNCATE orders */', 'SELECT 1 /*!, 2 */; /*!DELETE FROM orders*/'], check: MY_ORDERS_INTACT },
  { name: 'r2: comment-looking text that the server runs', sql: ['DELETE FROM orders WHERE id = -1 --1\nOR 1=1', 'DELETE FROM orders WHERE id = -1 #\nOR 1=1', "DELETE FROM orders WHERE id = -1 OR 1=1 -- '", 'DELETE FROM orders WHERE id = -1 --\tx\nOR TRUE'], check: MY_ORDERS_INTACT },
  { name: 'r2: statements split oddly across a multi-statement message', sql: ["SELECT 1;DELETE FROM orders", "SELECT 'a;b'; DELETE FROM orders WHERE id = -1; TRUNCATE orders", "DELETE FROM orders WHERE id = -1;\n;\nDELETE FROM orders"], check: MY_ORDERS_INTACT },
  { name: 'r2: ALTER … CHANGE to a lossy type, sql_mode relaxed first', sql: ["SET SESSION sql_mode = ''", 'ALTER TABLE orders CHANGE status status INT', 'ALTER TABLE orders MODIFY total DECIMAL(10,2) NOT NULL DEFAULT 0, MODIFY status VARCHAR(1)'], check: "SELECT SUM(status = 'new') = 2 AS ok FROM orders" },
  { name: 'r3: WHERE selecting every row through a subquery on the same table', sql: ['DELETE FROM orders WHERE id IN (SELECT id FROM orders)', 'DELETE FROM orders WHERE id = ANY (SELECT id FROM orders)', 'DELETE FROM orders WHERE EXISTS (SELECT 1 FROM orders p WHERE p.id = orders.id)', "UPDATE orders SET status = 'pwned' WHERE id IN (SELECT id FROM (SELECT id FROM orders) s)"], check: MY_ORDERS_INTACT },
  { name: 'r2: event whose body wipes a table', sql: ['CREATE EVENT zz_e ON SCHEDULE AT CURRENT_TIMESTAMP DO DELETE FROM orders', 'SELECT SLEEP(0.5)'], check: MY_ORDERS_INTACT },
  { name: 'r2: REPLACE … SELECT over every row, upsert from VALUES()', sql: ["REPLACE INTO orders SELECT id, user_id, total, 'pwned' FROM orders", "INSERT INTO orders SELECT id, user_id, total, 'pwned' FROM orders ON DUPLICATE KEY UPDATE status = VALUES(status)"], check: MY_ORDERS_INTACT },
  // ---- round 3
  { name: 'r3: lexer: `--` followed by DEL (0x7f) hides the rest of the line from the server', sql: ["SELECT 1 --\x7f '\n; DELETE FROM orders; -- '", "SELECT 1 --\x7f '\n; UPDATE orders SET status = 'pwned'; -- '"], check: MY_ORDERS_INTACT },
  { name: 'r3: lexer: a comment nested in a skipped versioned comment', sql: ["SELECT 1 /*!99999 /* */ ' */; DELETE FROM orders; -- '", "SELECT 1 /*M!999999 /* */ ' */; TRUNCATE orders; -- '"], check: MY_ORDERS_INTACT },
  { name: 'r3: lexer: a multi-byte client character set (GBK) takes the backslash into a character', sql: ['SET NAMES gbk', "SELECT '中\\'; DELETE FROM orders; -- '", 'SET NAMES utf8mb4', 'SET character_set_client = gbk', "SELECT '中\\'; TRUNCATE orders; -- '"], check: MY_ORDERS_INTACT },
  { name: 'r3: lexer: sql_mode NO_BACKSLASH_ESCAPES set by number', sql: ['SET sql_mode = 1048576', "SELECT 'a\\'; DELETE FROM orders; -- '", "SET sql_mode = 1048576; SELECT 'a\\'; TRUNCATE orders; -- '"], check: MY_ORDERS_INTACT },
  { name: 'r3: lexer: sql_mode NO_BACKSLASH_ESCAPES set by a prepared statement', sql: ["PREPARE sm FROM 'SET sql_mode = ''NO_BACKSLASH_ESCAPES'''", 'EXECUTE sm', "SELECT 'a\\'; DELETE FROM orders; -- '", "SET sql_mode = DEFAULT; EXECUTE sm; SELECT 'a\\'; TRUNCATE orders; -- '", "SET sql_mode = DEFAULT; PREPARE sn FROM 'SET sql_mode = 1048576'; EXECUTE sn; SELECT 'a\\'; UPDATE orders SET status = 'pwned'; -- '"], check: MY_ORDERS_INTACT },
  {
    name: 'r3: self-comparisons through identities, qualifiers, COLLATE and excluded middles',
    sql: ['DELETE FROM orders WHERE id + 0 = id', 'DELETE FROM orders WHERE orders.id = id', "UPDATE orders SET status = 'pwned' WHERE status = status COLLATE utf8mb4_bin", 'DELETE FROM orders WHERE (id) = id * 1', 'DELETE FROM orders WHERE status IS NULL OR status IS NOT NULL', "DELETE FROM orders WHERE status LIKE '%'", 'DELETE FROM orders WHERE NOT (id <> id)', "DELETE FROM orders WHERE status = 'new' OR NOT status = 'new'", 'DELETE FROM orders WHERE BINARY status = status', 'DELETE FROM orders WHERE (id = id) IS TRUE', 'DELETE FROM orders WHERE (id = id) = TRUE'],
    check: MY_ORDERS_INTACT,
  },
  { name: 'r3: tautologies joined by AND / && / XOR', sql: ['DELETE FROM orders WHERE id = id AND 1', 'DELETE FROM orders WHERE id = id && id + 0 = id', "UPDATE orders SET status = 'pwned' WHERE id = id XOR FALSE"], check: MY_ORDERS_INTACT },
  { name: 'r3: the table joined with itself on the same column, in the WHERE', sql: ['DELETE o FROM orders o, orders p WHERE o.id = p.id', "UPDATE orders o JOIN orders p ON p.id = o.id SET o.status = 'pwned' WHERE p.id = o.id", 'DELETE FROM o USING orders o JOIN orders p WHERE o.id = p.id', 'DELETE o FROM orders o JOIN (SELECT id FROM orders) p ON p.id = o.id WHERE o.id = p.id'], check: MY_ORDERS_INTACT },
  { name: 'r3: subqueries that are the row itself', sql: ['DELETE FROM orders WHERE id = (SELECT id)', 'DELETE FROM orders WHERE id IN (SELECT id)', "UPDATE orders SET status = 'pwned' WHERE id = ANY (SELECT id)", 'DELETE FROM orders WHERE id IN (SELECT o2.id FROM orders o2 WHERE o2.id = id)'], check: MY_ORDERS_INTACT },
  { name: 'r3: ALTER TABLE … CONVERT PARTITION moves the rows out of the table', sql: ['ALTER TABLE orders PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN MAXVALUE)', 'ALTER TABLE orders CONVERT PARTITION p0 TO TABLE zz_moved'], check: MY_ORDERS_INTACT },
  { name: 'r3: ALTER IGNORE TABLE deletes rows that duplicate a new unique key, and cuts values in strict mode', sql: ['ALTER IGNORE TABLE orders ADD UNIQUE KEY (status)', 'ALTER IGNORE TABLE orders MODIFY status VARCHAR(1)'], check: "SELECT COUNT(*) = 3 AND SUM(status = 'new') = 2 AS ok FROM orders" },
  { name: 'r3: ALTER TABLE … ENGINE= an engine that does not keep the rows (MEMORY until a restart, MERGE none)', sql: ['ALTER TABLE orders ENGINE=MEMORY', "ALTER TABLE orders ENGINE = 'HEAP'", 'ALTER TABLE orders ENGINE=MRG_MyISAM', 'ALTER TABLE orders ENGINE=MyISAM, ENGINE=MERGE'], check: "SELECT ENGINE = 'InnoDB' AS ok FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders'" },
  { name: 'r3: MODIFY / CHANGE into a generated column overwrites every value, strict mode or not', sql: ["ALTER TABLE orders CHANGE status status VARCHAR(10) AS ('pwned') STORED", 'ALTER TABLE orders MODIFY total DECIMAL(10,2) AS (NULL) PERSISTENT'], check: MY_ORDERS_INTACT },
];

describe('adversarial guardrail probes (PostgreSQL prod)', () => {
  let db: TestDatabase;
  const brokers = new Map<string, TestBroker>();
  const tokens = new Map<string, string>();

  before(async () => {
    db = await createTestDatabase('zzguard', PG_SETUP);
  });
  after(async () => {
    for (const b of brokers.values()) await b.close();
    await db?.drop();
  });

  const brokerFor = async (policyName: string): Promise<{ tb: TestBroker; token: string }> => {
    let tb = brokers.get(policyName);
    if (!tb) {
      const statements =
        policyName === 'model-weights'
          ? [{ name: 'review-model-weights', match: { statement: { relations: { names: ['public.model_weights'], access: ['write', 'ddl'] } } }, action: 'review', review: { approvers: { groups: ['ml-leads'], quorum: 2 }, hold: 0, expires: '1h', window: '15m' } }]
          : [];
      tb = await startTestBroker({ targets: { prod: pgTarget(db.name, { env: 'prod' }) }, policy: { statements, access: [{ name: 'any', action: 'allow' }] }, builtinIdp: true, humans: [DEV] });
      brokers.set(policyName, tb);
      tokens.set(policyName, await tb.loginHuman(DEV.email));
    }
    return { tb, token: tokens.get(policyName)! };
  };

  pgProbes.forEach((p, i) => {
    test(p.name, { todo: KNOWN_GAPS[p.name] }, async () => {
      await adminQuery(PG_SETUP, [], db.name);
      const { tb, token } = await brokerFor(p.policy ?? 'default');
      await tb.broker.refreshCatalogs();
      const conn: Connection = await tb.connect(token, { target: 'prod', access: 'write' });
      const client: pg.Client = await tunnelClient(conn);
      client.on('error', () => undefined);
      client.on('notice', () => undefined);
      const log: string[] = [];
      try {
        for (const s of p.sql) {
          if (s === 'REFRESH') {
            await tb.broker.refreshCatalogs();
            continue;
          }
          try {
            await (typeof s === 'string' ? client.query(s) : client.query(s.text, s.values));
            log.push(`ok      ${JSON.stringify(s)}`);
          } catch (e) {
            const err = e as { message?: string; detail?: string };
            log.push(`${err.message?.startsWith('dbgov:') ? 'REFUSED' : 'error  '} ${JSON.stringify(s)} -> ${err.message} ${err.detail ?? ''}`);
          }
        }
      } finally {
        await client.end().catch(() => undefined);
        await conn.close();
      }
      const held = await adminQuery(p.check, [], db.name)
        .then((r) => Object.values(r.rows[0] ?? {})[0] === true)
        .catch(() => false);
      if (logDir) writeFileSync(join(logDir, `pg-${String(i).padStart(2, '0')}.txt`), `# ${p.name}\n# held: ${held}\n${log.join('\n')}\n`);
      assert.ok(held, `${p.name}: the change happened\n${log.join('\n')}`);
    });
  });
});

describe('adversarial guardrail probes (MariaDB prod)', () => {
  myProbes.forEach((p, i) => {
    test(p.name, { todo: KNOWN_GAPS[p.name] }, async () => {
      const db: MysqlTestDatabase = await createMysqlDatabase('zzguard', MY_SETUP);
      let b: TestBroker | undefined;
      try {
        // One target per database: a broker per probe keeps each probe on fresh tables.
        b = await startTestBroker({ targets: { prod: mysqlTarget(db.name, { env: 'prod' }) }, policy: { access: [{ name: 'any', action: 'allow' }] }, builtinIdp: true, humans: [DEV] });
        const conn = await b.connect(await b.loginHuman(DEV.email), { target: 'prod', access: 'write' });
        const c: mysql.Connection = await mysqlTunnelClient(conn, { multipleStatements: true });
        const log: string[] = [];
        try {
          for (const s of p.sql) {
            const text = typeof s === 'string' ? s : s.text;
            try {
              await c.query(text);
              log.push(`ok      ${text}`);
            } catch (e) {
              const m = (e as Error).message;
              log.push(`${m.startsWith('dbgov:') ? 'REFUSED' : 'error  '} ${text} -> ${m}`);
            }
          }
        } finally {
          await c.end().catch(() => undefined);
          await conn.close();
        }
        const held = await mysqlAdmin<{ ok: number | string }[]>(p.check, db.name)
          .then((r) => Number(r[0]?.ok) === 1)
          .catch(() => false);
        if (logDir) writeFileSync(join(logDir, `my-${String(i).padStart(2, '0')}.txt`), `# ${p.name}\n# held: ${held}\n${log.join('\n')}\n`);
        assert.ok(held, `${p.name}: the change happened\n${log.join('\n')}`);
      } finally {
        await b?.close();
        await db.drop();
      }
    });
  });
});
