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

type Engine = 'postgres' | 'mysql';

/** What one statement returned, through the tunnel: its values as text, or its error. */
async function query(engine: Engine, t: CapturedTarget, sql: string): Promise<{ values: string[]; error?: string }> {
  if (engine === 'postgres') {
    const c = await tunnelClient(t.conn);
    try {
      const r = await c.query({ text: sql, rowMode: 'array' });
      return { values: r.rows.flat().map((v) => String(v)) };
    } catch (e) {
      return { values: [], error: (e as Error).message };
    } finally {
      await c.end();
    }
  }
  const c = await mysqlTunnelClient(t.conn);
  try {
    const [rows] = await c.query({ sql, rowsAsArray: true });
    return { values: (rows as unknown[][]).flat().map((v) => String(v)) };
  } catch (e) {
    return { values: [], error: (e as Error).message };
  } finally {
    await c.end();
  }
}

/** A masking target per engine, for the tests declared inside `body`. */
function onEachEngine(prefix: string, body: (engine: Engine, target: () => CapturedTarget) => void): void {
  for (const engine of ['postgres', 'mysql'] as const) {
    describe(engine, () => {
      let t: CapturedTarget;
      before(async () => {
        t = await captureTarget(engine, prefix, corpus(engine === 'postgres' ? 'postgres-masking.yaml' : 'mysql-masking.yaml'));
      });
      after(async () => t?.close());
      body(engine, () => t);
    });
  }
}

const GUESSES: Record<Engine, string[]> = {
  postgres: [
    `SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}'`,
    `SELECT card FROM orders WHERE id = 12 UNION SELECT '${CARD}'::text`,
    `SELECT concat(left(card, 0), '${CARD}') AS c FROM users WHERE id = 2`,
    `SELECT substr(card, 100) || '${CARD}' AS c FROM users WHERE id = 2`,
    `SELECT CASE WHEN id = 2 THEN '${CARD}' ELSE card END AS c FROM users WHERE id = 2`,
    `WITH s AS (SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}') SELECT card FROM s`,
    `SELECT s.c FROM (SELECT concat(left(card, 0), '${CARD}') AS c FROM users WHERE id = 2) s`,
    `SELECT coalesce(NULL::text, card) AS c FROM users WHERE id = 1`,
    `SELECT v FROM (SELECT card AS v FROM users WHERE id = 2 UNION ALL VALUES ('${CARD}')) s`,
  ],
  mysql: [
    `SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}'`,
    `SELECT card FROM orders WHERE id = 12 UNION SELECT '${CARD}'`,
    `SELECT CONCAT(LEFT(card, 0), '${CARD}') AS c FROM users WHERE id = 2`,
    `SELECT CASE WHEN id = 2 THEN '${CARD}' ELSE card END AS c FROM users WHERE id = 2`,
    `SELECT v FROM (SELECT card AS v FROM users WHERE id = 2 UNION ALL SELECT '${CARD}') s`,
    `WITH s AS (SELECT card FROM users WHERE id = 2 UNION ALL SELECT '${CARD}') SELECT card FROM s`,
    `SELECT s.c FROM (SELECT CONCAT(LEFT(card, 0), '${CARD}') AS c FROM users WHERE id = 2) s`,
  ],
};

describe('hash masks are not a hashing oracle', () => {
  onEachEngine('zzoracle', (engine, t) => {
    const realToken = async (): Promise<string> => (await query(engine, t(), 'SELECT card FROM users WHERE id = 1')).values[0];
    test('the real token, read directly, is a token', async () => assert.match(await realToken(), /^tok_[0-9a-f]+$/));
    for (const sql of GUESSES[engine]) {
      test(`a guess does not come out as a comparable token: ${sql}`, async () => {
        const token = await realToken();
        const out = await query(engine, t(), sql);
        assert.ok(out.values.length > 0 || out.error !== undefined, 'the statement returned something (or an error)');
        assert.ok(!out.values.includes(token), `the guess came back as the real card's token: ${JSON.stringify(out)}`);
        assert.ok(!out.values.some((v) => v.includes(CARD)), `a card in clear: ${JSON.stringify(out)}`);
      });
    }
  });
});

/**
 * Sorting by a classified column is allowed (rows come back in its order, each masked); a row the
 * client chose sorted among them would tell where its guess falls among the real values, and a
 * binary search of guesses then recovers every value. A sort, grouping, deduplication or set
 * operation that compares a classified column's values with any other value is refused for an
 * identity that sees it masked.
 */
describe('a guess compared among classified values', () => {
  const compared = [
    `SELECT id, ssn FROM users UNION ALL SELECT 0, '200' ORDER BY 2`,
    `SELECT id FROM (SELECT id, ssn FROM users UNION ALL SELECT 0, '200') s ORDER BY ssn`,
    `SELECT id, row_number() OVER (ORDER BY ssn) AS r FROM (SELECT id, ssn FROM users UNION ALL SELECT 0, '200') s`,
    // Set operations that drop or keep rows by comparing them: the row count answers.
    `SELECT ssn FROM users UNION SELECT '123-45-6789'`,
    `SELECT ssn FROM users EXCEPT SELECT '123-45-6789'`,
    `SELECT ssn FROM users INTERSECT SELECT '123-45-6789'`,
    // Grouping, DISTINCT and counting distinct values over a column that mixes a guess in.
    `SELECT v, count(*) FROM (SELECT ssn AS v FROM users UNION ALL SELECT '123-45-6789') s GROUP BY v`,
    `SELECT DISTINCT v FROM (SELECT ssn AS v FROM users UNION ALL SELECT '123-45-6789') s`,
    `SELECT count(DISTINCT v) FROM (SELECT ssn AS v FROM users UNION ALL SELECT '123-45-6789') s`,
    `SELECT DISTINCT CASE WHEN id = 1 THEN '123-45-6789' ELSE ssn END AS v FROM users`,
    `SELECT id, CASE WHEN id = 1 THEN '200' ELSE ssn END AS v FROM users ORDER BY 2`,
  ];
  const plain = ['SELECT id FROM users ORDER BY ssn', 'SELECT DISTINCT ssn FROM users', 'SELECT ssn, count(*) FROM users GROUP BY ssn', 'SELECT ssn FROM users UNION SELECT ssn FROM users'];
  onEachEngine('zzsort', (engine, t) => {
    for (const sql of compared) {
      test(sql, async () => {
        const out = await query(engine, t(), sql);
        assert.match(out.error ?? `ran: ${JSON.stringify(out.values)}`, /^dbgov: blocked/);
      });
    }
    for (const sql of plain) {
      test(`control, the real values alone: ${sql}`, async () => {
        const out = await query(engine, t(), sql);
        assert.equal(out.error, undefined, out.error);
        assert.ok(!out.values.some((v) => /123-45-6789|219-09-9999|078-05-1120/.test(v)), JSON.stringify(out.values));
      });
    }
  });
});
