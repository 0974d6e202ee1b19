/**
 * Adversarial masking probes, round 5 (PostgreSQL): shapes the earlier rounds did not try. Each
 * probe runs its statements in one psql session through the tunnel behind a capturing proxy (as
 * adversarial-pg.test.ts does). No seeded PII value may reach the client, and an oracle (a
 * statement whose result, NULL-ness or error would answer a guess about a masked value) must be
 * refused: `refused` counts the refusals psql prints. Probes undo their schema changes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
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
}

const MASKED_PREDICATE = /rule masked-predicate/g;

export const probes: Probe[] = [
  {
    name: 'r5 control: subscripts of arrays, fields of rows, a whole row as JSON still run',
    runs: true,
    sql: [
      'SELECT (ARRAY[full_name, address])[2] AS a, (u).email AS b FROM users u',
      'SELECT (array_agg(ssn ORDER BY id))[1:2] AS c FROM users',
      "SELECT to_jsonb(u) ->> 'email' AS d, row_to_json(u) ->> 'full_name' AS e FROM users u",
    ],
  },
  {
    // A bare name is a column before it is a whole row: to_jsonb(s) of a jsonb column s keyed by
    // full_name, ->> a guessed key, is NULL unless the guess is right (masked or not).
    name: 'r5: to_jsonb of a column named like its range, a field of a guessed key',
    refused: { re: MASKED_PREDICATE, count: 2 },
    sql: [
      "SELECT id, to_jsonb(s) ->> 'Alice Liddell' AS x FROM (SELECT id, jsonb_build_object(full_name, 1) AS s FROM users) s",
      "SELECT id, to_jsonb(s) ->> 'A' AS x FROM (SELECT id, jsonb_build_object(left(full_name, 1), 1) AS s FROM users) s",
    ],
  },
  {
    // A jsonb subscript looks a key up: NULL unless the guess is a key (integers are keys too).
    name: 'r5: jsonb subscript of a value keyed by a classified column',
    refused: { re: MASKED_PREDICATE, count: 3 },
    sql: [
      "SELECT id, (jsonb_build_object(full_name, 1))['Alice Liddell'] AS x FROM users",
      'SELECT id, (jsonb_build_object(left(ssn, 1), 1))[1] AS x FROM users',
      "SELECT id, (x).j['A'] AS y FROM (SELECT id, ROW(jsonb_build_object(left(full_name, 1), 1))::record AS x FROM users) s",
    ],
  },
  {
    // The server picks among all functions of a name on the path by argument types: a
    // public.md5(varchar) is what md5(x::varchar) calls, not pg_catalog.md5(text).
    name: 'r5: a user overload of a built-in transform answers a guess by NULL',
    refused: { re: MASKED_PREDICATE, count: 2 },
    sql: [
      "CREATE FUNCTION public.md5(t varchar) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN t LIKE 'Alice%' THEN NULL ELSE 'x' END $$",
      'SELECT pg_sleep(0.5)',
      'SELECT id, md5(full_name::varchar) AS x FROM users',
      'SELECT id, md5(ssn::varchar(20)) AS x FROM users',
      'DROP FUNCTION public.md5(varchar)',
    ],
  },
  {
    // Its body (an INSERT of its argument) was never analysed: the call was taken for pg_catalog.lower.
    name: 'r5: a VOLATILE user overload of a built-in stores its argument in an unclassified column',
    sql: [
      "CREATE FUNCTION public.lower(t varchar) RETURNS text LANGUAGE sql VOLATILE AS $$ INSERT INTO orders (id, status) VALUES (500 + length(t), t) RETURNING 'x' $$",
      'SELECT pg_sleep(0.5)',
      'SELECT lower(full_name::varchar) AS x FROM users WHERE id = 1',
      'SELECT lower(address::varchar) AS x FROM users',
      'SELECT id, status FROM orders WHERE id >= 500',
      'DELETE FROM orders WHERE id >= 500',
      'DROP FUNCTION public.lower(varchar)',
    ],
  },
  {
    // An unqualified type name finds the session's temp schema first: a domain named text with
    // a CHECK makes ::text err by the value. So does one in a schema put before pg_catalog.
    name: 'r5: a cast to text where text is a temp domain (or a schema before pg_catalog) with a CHECK',
    refused: { re: MASKED_PREDICATE, count: 3 },
    sql: [
      "CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (VALUE NOT LIKE 'Alice%')",
      'SELECT id, full_name::text AS x FROM users WHERE id = 1',
      'SELECT id, CAST(address AS text) AS x FROM users',
      'CREATE SCHEMA IF NOT EXISTS zdom',
      "CREATE DOMAIN zdom.bpchar AS pg_catalog.bpchar CHECK (VALUE NOT LIKE '1%')",
      'SET search_path = zdom, pg_catalog, public',
      'SELECT id, ssn::bpchar AS x FROM users',
      'RESET search_path',
      'DROP SCHEMA zdom CASCADE',
    ],
  },
  {
    // In SJIS 'ソ' is 0x83 0x5c: the gateway's COPY reader took its `\` for an escape of the tab
    // after it, so the next field (a card, a name) was read as part of the status and went out in clear.
    name: 'r5: COPY … TO with an ENCODING whose characters end in a backslash',
    refused: { re: /COPY output in encoding/g, count: 3 },
    sql: [
      'BEGIN',
      "UPDATE orders SET status = 'ソ' WHERE id = 10",
      "COPY orders (status, card) TO STDOUT WITH (ENCODING 'SJIS')",
      "COPY (SELECT o.status, u.full_name FROM orders o JOIN users u ON u.id = o.user_id) TO STDOUT WITH (FORMAT text, ENCODING 'BIG5')",
      "COPY orders (status, card) TO STDOUT (ENCODING 'windows-932', DELIMITER '|')",
      'ROLLBACK',
    ],
  },
  {
    // card is masked with hash: a keyed token per value. A guess written into a card column reads
    // back as the token of the guess: equal to a real row's token exactly when the guess is right.
    name: 'r5: a chosen value written into a hash-masked column, then read back as a token',
    refused: { re: /masked for you as tokens/g, count: 5 },
    sql: [
      'BEGIN',
      "MERGE INTO users u USING (SELECT 3 AS id) s ON u.id = s.id WHEN MATCHED THEN UPDATE SET card = '4111 1111 1111 1111'",
      'ROLLBACK',
      'BEGIN',
      "INSERT INTO orders (id, user_id, amount, status, card) VALUES (99, 1, 0, 'x', '4111 1111 1111 1111')",
      'ROLLBACK',
      'BEGIN',
      "UPDATE users SET card = '5500 0055 5555 5559' WHERE id = 3",
      'ROLLBACK',
      "INSERT INTO orders (id, user_id, amount, status, card) SELECT 98, 1, 0, 'x', left(card, 4) FROM users WHERE id = 1",
      'COPY orders (id, card) FROM STDIN',
      'SELECT id, card FROM orders ORDER BY id',
    ],
  },
  {
    name: 'r5 control: writes that leave a token column alone, or copy one as it is, still run',
    runs: true,
    sql: [
      "WITH u AS (UPDATE users SET plan = plan, card = card WHERE id = 1 RETURNING id) SELECT count(*) FROM u",
      "WITH i AS (INSERT INTO orders (id, user_id, amount, status) VALUES (97, 1, 0, 'x') RETURNING id) SELECT count(*) FROM i",
      'WITH d AS (DELETE FROM orders WHERE id = 97 RETURNING id) SELECT count(*) FROM d',
    ],
  },
  {
    // A deferred unique constraint is checked at COMMIT (or SET CONSTRAINTS … IMMEDIATE): the
    // violation quotes the key the UPDATE wrote, under a statement that reads nothing classified.
    name: 'r5: a deferred constraint violation quoted at COMMIT / SET CONSTRAINTS',
    sql: [
      'ALTER TABLE users ADD CONSTRAINT zdefer UNIQUE (full_name) DEFERRABLE INITIALLY DEFERRED',
      'BEGIN',
      'UPDATE users SET full_name = (SELECT full_name FROM users WHERE id = 1) WHERE id = 2',
      'COMMIT',
      'BEGIN',
      'UPDATE users SET full_name = (SELECT full_name FROM users WHERE id = 3) WHERE id = 2',
      'SET CONSTRAINTS ALL IMMEDIATE',
      'ROLLBACK',
      'ALTER TABLE users DROP CONSTRAINT zdefer',
    ],
  },
  {
    // Another session's statement text, literals and all, as it runs (see the test below, which
    // starts one with PII in it); the pg_stat_activity view over it is masked.
    name: "r5: other sessions' statement texts through pg_stat_get_activity",
    sql: ['SELECT pg_sleep(0.3)', "SELECT query FROM pg_stat_get_activity(NULL) WHERE query LIKE '%zsession%'", "SELECT pg_stat_get_backend_activity(b) AS q FROM pg_stat_get_backend_idset() b WHERE pg_stat_get_backend_activity(b) LIKE '%zsession%'"],
  },
];

describe('adversarial masking probes, round 5 (PostgreSQL)', () => {
  let t: CapturedTarget;

  before(async () => {
    t = await captureTarget('postgres', 'zzprobe5', corpus, process.env.PROBE_ENV);
  });
  after(async () => {
    await t?.close();
  });

  const psql = (sql: string[]) => psqlThrough(t, sql);

  for (const p of probes) {
    test(p.name, async () => {
      t.proxy.take();
      // For the pg_stat_get_activity probe: an application session whose statement holds PII, running meanwhile.
      const busy = p.sql.some((x) => x.includes('zsession'))
        ? adminQuery(`SELECT pg_sleep(3), 'zsession ${corpus.pii[12]} ${corpus.pii[0]}'::text`, [], t.db).catch(() => undefined)
        : undefined;
      const r = await psql(p.sql);
      await busy;
      const found = leaksOf(corpus.pii, t.proxy.take());
      assert.deepEqual(found, [], `${p.sql.join('; ')}: clear PII in the wire bytes\n${r.stdout}\n${r.stderr}`);
      if (p.refused) assert.equal(r.stderr.match(p.refused.re)?.length ?? 0, p.refused.count, `not every oracle refused\n${r.stdout}\n${r.stderr}`);
      if (p.runs) assert.equal(r.stdout.match(/\(\d+ rows?\)/g)?.length ?? 0, p.sql.length, `not every statement ran\n${r.stdout}\n${r.stderr}`);
    });
  }
});
