import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import type { MessageAnalysis, StatementFacts } from '../../src/sql/facts.js';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';
import { createShapeAnalyser, shapeOf } from '../../src/sql/postgres/normalise.js';

before(() => loadSqlParser());

/** Everything policy, masking and audit read from a statement's facts; `text` is the cache's own. */
function view(a: MessageAnalysis): unknown[] {
  return a.statements.map((s: StatementFacts) => {
    const { text: _t, ...rest } = s;
    return rest;
  });
}

test('shapes: values compared with a column, assigned by SET or listed in VALUES become placeholders, nothing else does', () => {
  const cases: [string, string | null][] = [
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 4711;', 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;'],
    ["UPDATE pgbench_accounts SET abalance = abalance + -17 WHERE aid = 9", 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2'],
    ["UPDATE t SET a = 'x', b = -2.5, c = c - 3 RETURNING a", 'UPDATE t SET a = $1, b = $2, c = c - $3 RETURNING a'],
    ['INSERT INTO h (tid, bid, aid, delta, mtime) VALUES (3, 1, -5, 12, CURRENT_TIMESTAMP);', 'INSERT INTO h (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);'],
    ["INSERT INTO t VALUES (1, 'a'), (2, 'b') RETURNING id", 'INSERT INTO t VALUES ($1, $2), ($3, $4) RETURNING id'],
    ["INSERT INTO t (a) VALUES ('users'::regclass)", null], // a cast follows
    ['INSERT INTO t (a) VALUES (f(1))', null], // a function argument
    ['INSERT INTO t (a) SELECT 1', null], // not a VALUES row
    // A candidate only: the parser check below refuses a placeholder in ON CONFLICT's SET.
    ["INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 2", 'INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET b = $2'],
    ['UPDATE t SET a = b * 2', null],
    ['UPDATE t SET a = f(2)', null],
    ["UPDATE t SET a = 2 || 'x'", null],
    ['UPDATE t SET a = s.b + 2', null],
    ['UPDATE t SET a = b +-2', null], // one operator token "+-"
    ['UPDATE t SET a = (SELECT 2)', null],
    ["SELECT * FROM users WHERE email = 'a@b.io' AND id >= 3 ORDER BY id LIMIT 5", 'SELECT * FROM users WHERE email = $1 AND id >= $2 ORDER BY id LIMIT 5'],
    ["SELECT * FROM t WHERE (a <> 'x') OR b != 2.5e3", 'SELECT * FROM t WHERE (a <> $1) OR b != $2'],
    ['SELECT * FROM t WHERE 1 = 1', null], // left side is not a column
    ["SELECT * FROM t WHERE a LIKE '%'", null], // LIKE is not a comparison here
    ['SELECT * FROM t WHERE a = a', null],
    ['SELECT * FROM t WHERE a = -5', null], // unary minus: not directly a literal
    ['SELECT * FROM t WHERE a =-5', null], // one operator token "=-"
    ["SELECT * FROM t WHERE a = '5'::int", null], // a cast follows
    ['SELECT * FROM t WHERE a = 5 + 1', null],
    ['SELECT a = 5 FROM t', null], // FROM does not end a condition
    ['SET x = 5', null], // not a shared statement kind
    ['SELECT * FROM t WHERE a = 5 -- comment', null],
    ['SELECT * FROM t WHERE a = 5 /* c */', null],
    ["SELECT * FROM t WHERE a = E'x'", null],
    ["SELECT * FROM t WHERE a = 'x\\' OR 1=1 --'", null],
    ["SELECT * FROM t WHERE a = 'x'\n'y'", null], // string continuation
    ['SELECT * FROM "t" WHERE a = 5', null],
    ['SELECT * FROM t WHERE a = $$x$$', null],
    ['SELECT * FROM t WHERE a = 5; DROP TABLE t', null],
    ['SELECT * FROM t WHERE a = 0x1F', null],
    ['SELECT * FROM t WHERE a = 1_000', null],
    ["SELECT * FROM t WHERE a = 'é'", "SELECT * FROM t WHERE a = $1"],
    ['SELECT * FROM té WHERE a = 5', null],
  ];
  for (const [sql, shape] of cases) assert.equal(shapeOf(sql)?.text ?? null, shape, sql);
  assert.notEqual(shapeOf("SELECT * FROM t WHERE a = '5'")!.key, shapeOf('SELECT * FROM t WHERE a = 5')!.key, 'a number and a string are different shapes');
});

function corpusTexts(): string[] {
  const texts: string[] = [];
  for (const file of ['postgres-guardrails.yaml', 'postgres-masking.yaml']) {
    const doc = parse(readFileSync(resolve(process.cwd(), 'test/corpus', file), 'utf8')) as Record<string, unknown>;
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) k === 'sql' && typeof x === 'string' ? texts.push(x) : walk(x);
    };
    walk(doc);
  }
  return texts;
}

test('a shared shape gives every text exactly the facts, redaction and fingerprint of a full analysis', () => {
  const texts = corpusTexts();
  assert.ok(texts.length > 250, `corpus loaded (${texts.length})`);
  // Variants: the same statements with other values, so shapes are hit, not only filled.
  const variants = texts.flatMap((t) => [t, t.replace(/\b\d+\b/g, (d) => String(Number(d) + 7)), t.replace(/'([^'\\]*)'/g, "'v$1'")]);
  const pgbench = Array.from({ length: 200 }, (_, i) => [
    `SELECT abalance FROM pgbench_accounts WHERE aid = ${i * 37};`,
    `UPDATE pgbench_accounts SET abalance = abalance + ${i - 100} WHERE aid = ${i};`,
    `UPDATE pgbench_tellers SET tbalance = tbalance + ${i} WHERE tid = ${i % 10};`,
    `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${i}, 1, ${i}, ${i}, CURRENT_TIMESTAMP);`,
    `UPDATE users SET email = 'x' WHERE id = ${i} OR ${i} = ${i}`,
    `DELETE FROM orders WHERE id = ${i} OR status = status`,
  ]).flat();
  const analyser = createShapeAnalyser(analysePostgres, 10_000);
  let shared = 0;
  for (const sql of [...variants, ...pgbench]) {
    const got = analyser(sql);
    assert.deepEqual(view(got), view(analysePostgres(sql)), sql);
    if (shapeOf(sql) && got.statements[0]?.text !== sql) shared++;
  }
  assert.ok(shared > 500, `shapes were shared (${shared})`);
});

test('texts of one shape share one analysis object; a tautology never joins a bounded shape', () => {
  const analyser = createShapeAnalyser(analysePostgres, 100);
  const a = analyser('DELETE FROM orders WHERE id = 1');
  const b = analyser('DELETE FROM orders WHERE id = 2');
  assert.equal(a, b, 'one object, so resolution and mask plans cached on it are shared');
  assert.equal(a.statements[0].hasWhere, true);
  const t = analyser('DELETE FROM orders WHERE id = id');
  assert.notEqual(t, a);
  assert.deepEqual(view(t), view(analysePostgres('DELETE FROM orders WHERE id = id')));
  // TPC-B in simple mode: every statement of the script shares its shape across values.
  for (const [x, y] of [
    ['UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid = 3;', 'UPDATE pgbench_accounts SET abalance = abalance + -4242 WHERE aid = 99;'],
    ['INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, -4, CURRENT_TIMESTAMP);', 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (5, 6, 7, 8, CURRENT_TIMESTAMP);'],
    ["UPDATE orders SET status = 'paid', amount = amount - 1 WHERE id = 4", "UPDATE orders SET status = 'open', amount = amount - 250 WHERE id = 5"],
  ]) {
    const first = analyser(x);
    assert.equal(analyser(y), first, `${y} shares the analysis of ${x}`);
    assert.deepEqual(view(first), view(analysePostgres(x)));
  }
  // Refused by the parser check: the shape is not shared, and each text gets its own full analysis.
  const u1 = analyser('INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET status = 2');
  const u2 = analyser('INSERT INTO orders (id) VALUES (2) ON CONFLICT (id) DO UPDATE SET status = 3');
  assert.notEqual(u1, u2);
  const s = analyser("SELECT * FROM users WHERE ssn = '123-45-6789'");
  assert.doesNotMatch(JSON.stringify(s), /123-45-6789/, 'the shared analysis holds no value from the text');
});
