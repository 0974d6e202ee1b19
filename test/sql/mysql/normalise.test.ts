import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { StatementFacts } from '../../../src/sql/facts.js';
import { analyseMysql, type MysqlAnalyseOptions } from '../../../src/sql/mysql/analyse.js';
import { normaliseLiterals } from '../../../src/sql/mysql/normalise.js';

const MARIA: MysqlAnalyseOptions = { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' };
const MODES: MysqlAnalyseOptions[] = [
  MARIA,
  { serverVersion: 80036, mariadb: false, sqlMode: { noBackslashEscapes: true, ansiQuotes: true } },
];

/** Everything the policy, masking and audit read, except the statement's own text. */
const facts = (sql: string, o: MysqlAnalyseOptions): Omit<StatementFacts, 'text'>[] =>
  analyseMysql(sql, o).statements.map(({ text: _text, ...rest }) => rest);

/**
 * The normalised text must be analysed exactly like the original, under every mode. When it
 * does not parse (the analyser then analyses the original text instead), neither does the original.
 */
function assertSameAnalysis(sql: string, norm = normaliseLiterals(sql)): void {
  assert.ok(norm !== undefined, `expected a normalised form of ${sql}`);
  for (const o of MODES) {
    const shared = facts(norm, o);
    const full = facts(sql, o);
    if (shared.some((f) => f.opaque)) assert.deepEqual(full.map((f) => f.opaque?.reason), shared.map((f) => f.opaque?.reason), `${sql}\n→ ${norm}`);
    else assert.deepEqual(shared, full, `${sql}\n→ ${norm}`);
  }
}

describe('literal normalisation', () => {
  const table: [string, string][] = [
    ['SELECT v FROM kv WHERE id = 42', 'SELECT v FROM kv WHERE id = ?'],
    ['select v from kv where id=42;', 'select v from kv where id=?;'],
    ["SELECT * FROM users WHERE email = 'a@b.io' AND status <> 'gone' LIMIT 1", 'SELECT * FROM users WHERE email = ? AND status <> ? LIMIT 1'],
    ['SELECT a FROM t WHERE (x >= 1.5 OR t.y != 2) AND app.t.z <= 3 ORDER BY a', 'SELECT a FROM t WHERE (x >= ? OR t.y != ?) AND app.t.z <= ? ORDER BY a'],
    ["UPDATE kv SET v = 'x' WHERE id = 7", "UPDATE kv SET v = 'x' WHERE id = ?"],
    ['DELETE FROM kv WHERE id < 10 OR id > 20', 'DELETE FROM kv WHERE id < ? OR id > ?'],
    ['SELECT v FROM kv WHERE id = 1 FOR UPDATE', 'SELECT v FROM kv WHERE id = ? FOR UPDATE'],
  ];
  for (const [sql, want] of table) {
    it(`normalises ${sql}`, () => {
      assert.equal(normaliseLiterals(sql), want);
      assertSameAnalysis(sql);
    });
  }

  // Each of these must take the full parse: the literal may matter, or the text is not plain.
  const adversarial = [
    // tautologies and comparisons whose left side is not a column
    'DELETE FROM t WHERE 1 = 1',
    "DELETE FROM t WHERE 'a' = 'a'",
    'DELETE FROM t WHERE id = 5 OR 1 = 1',
    'DELETE FROM t WHERE TRUE = 1',
    'DELETE FROM t WHERE id = id',
    'DELETE FROM t WHERE 5 AND a = 5 AND a',
    'DELETE FROM t WHERE a < 5 = a < 5',
    'DELETE FROM t WHERE a < 5 AND b = a < 5 AND b',
    "DELETE FROM t WHERE x LIKE '%'",
    'DELETE FROM t WHERE id IN (1, 2)',
    'DELETE FROM t WHERE id BETWEEN 1 AND 2',
    'DELETE FROM t WHERE NOT id = 1',
    'DELETE FROM t WHERE id <=> 1',
    'DELETE FROM t WHERE id = -1',
    'DELETE FROM t WHERE id = 1 + 0',
    'DELETE FROM t WHERE id = 1 || 1',
    'DELETE FROM t WHERE id = 1 && 1',
    'DELETE FROM t WHERE f(id) = 1',
    'DELETE FROM t WHERE id = (SELECT 1)',
    'DELETE FROM t WHERE `id` = 1',
    'DELETE FROM t WHERE "id" = 1',
    // comments, executable comments
    'SELECT v FROM kv WHERE id = 1 -- x',
    'SELECT v FROM kv WHERE id = 1 #x',
    'SELECT v FROM kv WHERE id = 1 /* x */',
    'SELECT v FROM kv WHERE id = 1 /*!50000 OR 1=1 */',
    'SELECT v FROM kv WHERE id = 1 /*M! OR 1=1 */',
    'SELECT v FROM kv /*! WHERE 1=1 */ WHERE id = 1',
    // strings holding quotes, backslashes or operators; introducers and typed literals
    "SELECT v FROM kv WHERE name = 'it''s'",
    "SELECT v FROM kv WHERE name = 'a\\' OR 1=1 -- '",
    "SELECT v FROM kv WHERE name = 'x' 'y'",
    "SELECT v FROM kv WHERE name = '1=1'",
    "SELECT v FROM kv WHERE name = 'a;b'",
    "SELECT v FROM kv WHERE name = '/*!'",
    "SELECT v FROM kv WHERE name = _utf8'x'",
    "SELECT v FROM kv WHERE name = N'x'",
    "SELECT v FROM kv WHERE name = X'41'",
    "SELECT v FROM kv WHERE d = DATE '2024-01-01'",
    'SELECT v FROM kv WHERE id = 0x41',
    'SELECT v FROM kv WHERE id = 0b1',
    'SELECT v FROM kv WHERE id = 1e3',
    'SELECT v FROM kv WHERE id = .5',
    'SELECT v FROM kv WHERE id = 1abc',
    "SELECT v FROM kv WHERE name = 'é'",
    // variables, placeholders, several statements, other statement kinds
    'SELECT v FROM kv WHERE id = @x',
    'SELECT v FROM kv WHERE id = ?',
    'SELECT v FROM kv WHERE id = 1; DROP TABLE kv',
    'SELECT v FROM kv WHERE id = 1; SELECT 2',
    "SET sql_mode = 'ANSI_QUOTES'",
    "PREPARE s FROM 'SELECT 1'",
    'EXPLAIN SELECT v FROM kv WHERE id = 1',
    'INSERT INTO kv VALUES (1, 2)',
    'SELECT v FROM kv WHERE id = 1 UNION SELECT v FROM kv WHERE id = 2',
    'SELECT v FROM kv',
  ];
  for (const sql of adversarial) it(`takes the full path: ${sql}`, () => assert.equal(normaliseLiterals(sql), undefined));

  // Plain statements: heads, WHERE clauses of column-operator-literal atoms, tails.
  const name = fc.constantFrom('id', 'v', 'kv.id', 'app.kv.v', 'status', 'date', 'user_id', 'ID', 'x1');
  const op = fc.constantFrom('=', '<', '>', '<=', '>=', '<>', '!=');
  const lit = fc.oneof(
    fc.nat({ max: 1_000_000 }).map(String),
    fc.tuple(fc.nat(999), fc.nat(99)).map(([a, b]) => `${a}.${b}`),
    fc.stringMatching(/^[A-Za-z0-9 _.,:@-]{0,12}$/).filter((s) => !s.includes('--')).map((s) => `'${s}'`),
  );
  const atom = fc.tuple(name, op, lit, fc.boolean()).map(([n, o, l, tight]) => (tight ? [`${n}${o}${l}`] : [n, o, l]));
  const pred: fc.Arbitrary<string[]> = fc.letrec<{ pred: string[] }>((tie) => ({
    pred: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      fc.tuple(tie('pred'), fc.constantFrom('AND', 'OR', 'and'), tie('pred')).map(([a, j, b]) => [...a, j, ...b]),
      tie('pred').map((p) => ['(', ...p, ')']),
    ),
  })).pred;
  const head = fc.constantFrom('SELECT v FROM kv', 'select id, v from app.kv k', 'SELECT COUNT(*) FROM kv', 'UPDATE kv SET v = 1', "UPDATE kv SET v = 'x', w = 2", 'DELETE FROM kv', 'SELECT a.v FROM kv a JOIN kw b ON a.id = b.id');
  const tail = fc.constantFrom('', ' LIMIT 1', ' ORDER BY id DESC LIMIT 10', ' GROUP BY v', ' FOR UPDATE', ';', ' LIMIT 5;');

  it('agrees with the full analysis on a generated corpus of plain statements', () => {
    fc.assert(
      fc.property(head, pred, tail, (h, p, t) => assertSameAnalysis(`${h} WHERE ${p.join(' ')}${t}`)),
      { numRuns: 500, seed: 7 },
    );
  });

  it('never normalises a text whose analysis would differ (plain statements with hostile tokens mixed in)', () => {
    const hostile = fc.constantFrom(
      'kv', 'v', 'id', 'AND', 'OR', 'NOT', 'TRUE', 'FALSE', 'NULL', 'LIKE', 'IS', 'IN', 'WHERE', 'SELECT', 'LIMIT', 'ORDER BY',
      '(', ')', '=', '<', '>', '<=', '>=', '<>', '!=', '<=>', '+', '-', ',', '*', ';', '1', '0', '5', '2.5', "'a'", "'1'", "'%'",
      "''", '?', '@x', '#', '--', '/*', '*/', '/*!', '/*!50000', '`id`', '"id"', "_utf8'a'", 'X', 'DATE', "'",
    );
    const mutation = fc.tuple(fc.nat(40), hostile, fc.boolean());
    let normalised = 0;
    fc.assert(
      fc.property(head, pred, tail, fc.array(mutation, { minLength: 1, maxLength: 3 }), (h, p, t, muts) => {
        const toks = [...p];
        for (const [at, tok, replace] of muts) toks.splice(at % (toks.length + 1), replace ? 1 : 0, tok);
        const sql = `${h} WHERE ${toks.join(' ')}${t}`;
        const norm = normaliseLiterals(sql);
        if (norm === undefined) return;
        normalised++;
        assertSameAnalysis(sql, norm);
      }),
      { numRuns: 20_000, seed: 11 },
    );
    // The property must actually have been exercised.
    assert.ok(normalised > 300, `only ${normalised} texts were normalised`);
  });

  it('shares one analysis shape across literal values', () => {
    const a = normaliseLiterals('SELECT v FROM kv WHERE id = 1');
    const b = normaliseLiterals('SELECT v FROM kv WHERE id = 99999');
    assert.equal(a, b);
    assert.equal(facts(a!, MARIA)[0].hasWhere, null);
    assert.equal(facts(normaliseLiterals('DELETE FROM kv WHERE id = 3')!, MARIA)[0].hasWhere, true);
  });
});
