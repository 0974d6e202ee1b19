/**
 * A keyed-hash mask must not become a hashing oracle. `card` is masked with `hash`: a keyed,
 * deterministic token, so equal cards share a token (joins and GROUP BY keep working). If a
 * value the client chose could come out under the same token function, the client could hash
 * its guesses and compare them with the real tokens: a dictionary attack on every hashed column
 * (`SELECT card FROM users UNION ALL SELECT '<guess>'`, or a derived expression that throws the
 * column away and returns the guess). Only a plain column reads as a token; a derived or mixed
 * result never does, so no guess can be set beside a real token.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { tunnelClient } from './harness.js';
import { mysqlTunnelClient } from './mysql-harness.js';
import { captureTarget, type CapturedTarget, type MaskingCorpus } from './masking-fixture.js';

const corpus = (file: string): MaskingCorpus => parse(readFileSync(resolve(process.cwd(), 'test/corpus', file), 'utf8')) as MaskingCorpus;
/** Alice's card, in both corpora's seed. */
const CARD = '4111 1111 1111 1111';

/** Every value each statement returned, as text (errors as `error: …`). */
type Runner = (sql: string) => Promise<string[]>;

function oracleProbes(run: () => Runner, guessShapes: string[]): void {
  test('the real token, read directly, is a token', async () => {
    const [token] = await run()('SELECT card FROM users WHERE id = 1');
    assert.match(token, /^tok_[0-9a-f]+$/);
  });
  for (const sql of guessShapes) {
    test(`a guess does not come out as a comparable token: ${sql}`, async () => {
      const [token] = await run()('SELECT card FROM users WHERE id = 1');
      const out = await run()(sql);
      assert.ok(out.length > 0, 'the statement returned something (or an error)');
      assert.ok(!out.includes(token), `the guess came back as the real card's token: ${JSON.stringify(out)}`);
      assert.ok(!out.some((v) => v.includes(CARD)), `a card in clear: ${JSON.stringify(out)}`);
    });
  }
}

describe('hash masks are not a hashing oracle (PostgreSQL)', () => {
  let t: CapturedTarget;
  before(async () => {
    t = await captureTarget('postgres', 'zzoracle', corpus('postgres-masking.yaml'));
  });
  after(async () => t?.close());
  const run = (): Runner => async (sql) => {
    const c = await tunnelClient(t.conn);
    try {
      const r = await c.query({ text: sql, rowMode: 'array' });
      return r.rows.flat().map((v) => String(v));
    } catch (e) {
      return [`error: ${(e as Error).message}`];
    } finally {
      await c.end();
    }
  };
  oracleProbes(run, [
    `SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}'`,
    `SELECT card FROM orders WHERE id = 12 UNION SELECT '${CARD}'::text`,
    `SELECT concat(left(card, 0), '${CARD}') AS c FROM users WHERE id = 2`,
    `SELECT substr(card, 100) || '${CARD}' AS c FROM users WHERE id = 2`,
    `SELECT CASE WHEN id = 2 THEN '${CARD}' ELSE card END AS c FROM users WHERE id = 2`,
    `WITH s AS (SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}') SELECT card FROM s`,
    `SELECT s.c FROM (SELECT concat(left(card, 0), '${CARD}') AS c FROM users WHERE id = 2) s`,
    `SELECT coalesce(NULL::text, card) AS c FROM users WHERE id = 1`,
    `SELECT v FROM (SELECT card AS v FROM users WHERE id = 2 UNION ALL VALUES ('${CARD}')) s`,
  ]);
});

describe('hash masks are not a hashing oracle (MariaDB)', () => {
  let t: CapturedTarget;
  before(async () => {
    t = await captureTarget('mysql', 'zzoracle', corpus('mysql-masking.yaml'));
  });
  after(async () => t?.close());
  const run = (): Runner => async (sql) => {
    const c = await mysqlTunnelClient(t.conn);
    try {
      const [rows] = await c.query({ sql, rowsAsArray: true });
      return (rows as unknown[][]).flat().map((v) => String(v));
    } catch (e) {
      return [`error: ${(e as Error).message}`];
    } finally {
      await c.end();
    }
  };
  oracleProbes(run, [
    `SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}'`,
    `SELECT card FROM orders WHERE id = 12 UNION SELECT '${CARD}'`,
    `SELECT CONCAT(LEFT(card, 0), '${CARD}') AS c FROM users WHERE id = 2`,
    `SELECT CASE WHEN id = 2 THEN '${CARD}' ELSE card END AS c FROM users WHERE id = 2`,
    `SELECT v FROM (SELECT card AS v FROM users WHERE id = 2 UNION ALL SELECT '${CARD}') s`,
    `WITH s AS (SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}') SELECT card FROM s`,
    `SELECT s.c FROM (SELECT CONCAT(LEFT(card, 0), '${CARD}') AS c FROM users WHERE id = 2) s`,
  ]);
});

/**
 * Sorting by a classified column is allowed (rows come back in its order, each masked); a row the
 * client chose sorted among them would tell where its guess falls among the real values, and a
 * binary search of guesses then recovers every value. A sort that mixes a classified column's
 * values with any other value is a comparison of them: refused for an identity that sees it masked.
 */
describe('sorting a guess among classified values', () => {
  const shapes = (q: (s: string) => string): string[] => [
    q(`SELECT id, ssn FROM users UNION ALL SELECT 0, '200' ORDER BY 2`),
    q(`SELECT id FROM (SELECT id, ssn FROM users UNION ALL SELECT 0, '200') s ORDER BY ssn`),
    q(`SELECT id, row_number() OVER (ORDER BY ssn) AS r FROM (SELECT id, ssn FROM users UNION ALL SELECT 0, '200') s`),
    // Set operations that drop or keep rows by comparing them: the row count answers.
    q(`SELECT ssn FROM users UNION SELECT '123-45-6789'`),
    q(`SELECT ssn FROM users EXCEPT SELECT '123-45-6789'`),
    q(`SELECT ssn FROM users INTERSECT SELECT '123-45-6789'`),
    // Grouping, DISTINCT and counting distinct values over a column that mixes a guess in.
    q(`SELECT v, count(*) FROM (SELECT ssn AS v FROM users UNION ALL SELECT '123-45-6789') s GROUP BY v`),
    q(`SELECT DISTINCT v FROM (SELECT ssn AS v FROM users UNION ALL SELECT '123-45-6789') s`),
    q(`SELECT count(DISTINCT v) FROM (SELECT ssn AS v FROM users UNION ALL SELECT '123-45-6789') s`),
    q(`SELECT DISTINCT CASE WHEN id = 1 THEN '123-45-6789' ELSE ssn END AS v FROM users`),
    q(`SELECT id, CASE WHEN id = 1 THEN '200' ELSE ssn END AS v FROM users ORDER BY 2`),
  ];
  const plain = ['SELECT id FROM users ORDER BY ssn', 'SELECT DISTINCT ssn FROM users', 'SELECT ssn, count(*) FROM users GROUP BY ssn', 'SELECT ssn FROM users UNION SELECT ssn FROM users'];
  for (const engine of ['postgres', 'mysql'] as const) {
    describe(engine, () => {
      let t: CapturedTarget;
      before(async () => {
        t = await captureTarget(engine, 'zzsort', corpus(engine === 'postgres' ? 'postgres-masking.yaml' : 'mysql-masking.yaml'));
      });
      after(async () => t?.close());
      for (const sql of shapes((s) => s)) {
        test(sql, async () => {
          let out: string;
          if (engine === 'postgres') {
            const c = await tunnelClient(t.conn);
            out = await c.query(sql).then((r) => `ok ${JSON.stringify(r.rows)}`, (e: Error) => `error ${e.message}`);
            await c.end();
          } else {
            const c = await mysqlTunnelClient(t.conn);
            out = await c.query(sql).then(([r]) => `ok ${JSON.stringify(r)}`, (e: Error) => `error ${e.message}`);
            await c.end();
          }
          assert.match(out, /^error dbgov: blocked/, out);
        });
      }
      for (const sql of plain) {
        test(`control, the real values alone: ${sql}`, async () => {
          let out: string;
          if (engine === 'postgres') {
            const c = await tunnelClient(t.conn);
            out = await c.query(sql).then((r) => `ok ${JSON.stringify(r.rows)}`, (e: Error) => `error ${e.message}`);
            await c.end();
          } else {
            const c = await mysqlTunnelClient(t.conn);
            out = await c.query(sql).then(([r]) => `ok ${JSON.stringify(r)}`, (e: Error) => `error ${e.message}`);
            await c.end();
          }
          assert.match(out, /^ok /, out);
          assert.ok(!/123-45-6789|219-09-9999|078-05-1120/.test(out), out);
        });
      }
    });
  }
});
