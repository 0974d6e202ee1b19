/**
 * Adversarial round 5 (MariaDB), beyond adversarial-mysql.test.ts: each probe sends its entries
 * as COM_QUERY texts through mysql2 (bytes exactly as written) on one connection through the
 * tunnel, behind a capturing proxy; no seeded PII value may reach the client, and `refused` must
 * match every entry's outcome. Analyser-level cases for each are in test/sql/mysql/round5.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { leaks as leaksOf } from './capture-proxy.js';
import { captureTarget, type CapturedTarget, type MaskingCorpus } from './masking-fixture.js';
import { mysqlAdmin, mysqlTunnelClient } from './mysql-harness.js';

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/mysql-masking.yaml'), 'utf8')) as MaskingCorpus;
const MASKED_PREDICATE = /masked-predicate/;

export const probes: { name: string; sql: string[]; refused?: RegExp }[] = [
  // SHOW … WHERE / LIKE was skipped unread: the subquery's value came back in an XPATH error.
  {
    name: 'SHOW … WHERE / LIKE with a subquery on a classified column',
    refused: MASKED_PREDICATE,
    sql: [
      'SHOW TABLES WHERE EXTRACTVALUE(1, CONCAT(0x7e, (SELECT full_name FROM users WHERE id = 1)))',
      "SHOW DATABASES WHERE (SELECT ssn FROM users WHERE id = 1) LIKE '123%'",
      "SHOW VARIABLES LIKE (SELECT CONCAT(LEFT(address, 2), '%') FROM users WHERE id = 1)",
      'SHOW STATUS WHERE 1 = (SELECT UPDATEXML(1, CONCAT(0x7e, email), 1) FROM users WHERE id = 2)',
    ],
  },
  // How many rows JSON_TABLE yields depends on its document: COUNT(*) told whether ssn starts 123-.
  {
    name: 'JSON_TABLE row count over a value rewritten into separators',
    refused: MASKED_PREDICATE,
    sql: [
      "SELECT u.id, COUNT(*) - 1 AS hit FROM users u, JSON_TABLE(CONCAT('[\"', REPLACE(CONCAT('^', u.ssn), '^123-', '\",\"'), '\"]'), '$[*]' COLUMNS (x VARCHAR(99) PATH '$')) j GROUP BY u.id",
      "SELECT COUNT(*) AS words FROM users u, JSON_TABLE(CONCAT('[\"', REPLACE(u.full_name, ' ', '\",\"'), '\"]'), '$[*]' COLUMNS (x VARCHAR(99) PATH '$')) j WHERE u.id = 1",
    ],
  },
  // Past max_allowed_packet a string function returns NULL: NULL-ness answered what ssn holds.
  {
    name: 'NULL from a transform whose result outgrows max_allowed_packet',
    refused: MASKED_PREDICATE,
    sql: [
      "SELECT id, REPLACE(ssn, '123-', REPEAT('x', @@max_allowed_packet - 6)) AS r FROM users",
      "SELECT id, CONCAT(full_name, REPEAT('x', @@max_allowed_packet - 13)) AS r FROM users",
      "SELECT id, TO_BASE64(REPLACE(address, 'Oxford', REPEAT('x', @@max_allowed_packet / 2))) AS r FROM users",
    ],
  },
  // Rows matched: 1  Changed: 0 (or affected rows 0 / 2 of an upsert) answered whether the guess was the value.
  {
    name: 'an UPDATE or upsert setting a classified column to a guess',
    refused: /masked-predicate|^ok \{"fieldCount":0,"affectedRows":0,"insertId":0,"info":"",/,
    sql: [
      'BEGIN',
      "UPDATE users SET ssn = '123-45-6789' WHERE id = 1",
      "UPDATE users SET email = REPLACE(email, 'alice', 'alice') WHERE id = 1",
      "INSERT INTO users (id, email) VALUES (1, 'alice.liddell@example.com') ON DUPLICATE KEY UPDATE email = VALUES(email)",
      'ROLLBACK',
    ],
  },
  // CYCLE … RESTRICT stopped the recursion at a repeat: 1 row when the guess was full_name, 2 otherwise.
  {
    name: 'a recursive CTE whose CYCLE clause compares a guess with a classified value',
    refused: /masked-predicate/,
    sql: ["WITH RECURSIVE r(n, s) AS (SELECT 1, full_name FROM users WHERE id = 1 UNION ALL SELECT n + 1, 'Alice Liddell' FROM r WHERE n < 5) CYCLE s RESTRICT SELECT n FROM r"],
  },
  // Text dbgov cannot analyse may filter on a masked column too (the CYCLE clause did not parse).
  {
    name: 'a statement dbgov cannot analyse, for an identity that sees masked data',
    refused: /dbgov could not analyse this statement/,
    sql: ["UPDATE users FOR PORTION OF p FROM '2000-01-01' TO '2100-01-01' SET plan = 'x' WHERE ssn = '123-45-6789'"],
  },
  // The ALTER fails exactly when a row fails the CHECK; a partition picks out the rows whose value is in its bounds.
  {
    name: 'ALTER TABLE … CHECK or PARTITION BY over a classified column',
    refused: /masked-predicate/,
    sql: [
      "ALTER TABLE orders ADD CONSTRAINT c1 CHECK (card NOT LIKE '4111%')",
      "ALTER TABLE users PARTITION BY RANGE COLUMNS(ssn) (PARTITION p0 VALUES LESS THAN ('123-45-6789'), PARTITION p1 VALUES LESS THAN ('123-45-678:'), PARTITION p2 VALUES LESS THAN (MAXVALUE))",
      'ALTER TABLE users PARTITION BY KEY() PARTITIONS 2',
    ],
  },
  // With a guessed SSN inserted, ADD UNIQUE (ssn) failed exactly when a stored SSN equalled it.
  {
    name: 'a unique key added over a classified column after inserting a guess',
    refused: /masked-predicate|^ok \{"fieldCount":0,"affectedRows":1,/,
    sql: ["INSERT INTO users (id, email, ssn) VALUES (99, 'zz@example.com', '123-45-6789')", 'ALTER TABLE users ADD UNIQUE (ssn)', 'DELETE FROM users WHERE id = 99'],
  },
  { name: 'control: ordinary transforms of classified columns still answer (masked)', refused: /^ok \[/, sql: ["SELECT REPLACE(card, ' ', '') AS digits, REPLACE(REPLACE(email, '@', ' at '), '.', ' dot ') AS e FROM users", "SELECT CONCAT(full_name, ' (', DATE_FORMAT(created, '%Y'), ')') AS a, CONCAT_WS(', ', full_name, address, plan) AS b FROM users"] },
  { name: 'control: ordinary SHOW statements still answer', refused: /^ok \[/, sql: ['SHOW TABLES', "SHOW VARIABLES LIKE 'version'", 'SHOW CREATE TABLE users', "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'"] },
];

async function outcomes(t: CapturedTarget, sql: string[]): Promise<string[]> {
  const c = await mysqlTunnelClient(t.conn, { multipleStatements: true }, t.proxy.port);
  const out: string[] = [];
  try {
    for (const s of sql) out.push(await c.query(s).then(([rows]) => `ok ${JSON.stringify(rows)}`, (e: Error) => `error ${e.message}`));
  } finally {
    await c.end().catch(() => undefined);
  }
  return out;
}

describe('adversarial masking probes, round 5 (MariaDB)', () => {
  let t: CapturedTarget;
  before(async () => {
    t = await captureTarget('mysql', 'zzr5', corpus);
  });
  after(async () => t?.close());

  for (const p of probes) {
    test(p.name, async () => {
      t.proxy.take();
      const out = await outcomes(t, p.sql);
      const found = leaksOf(corpus.pii, t.proxy.take());
      assert.deepEqual(found, [], `clear PII in the wire bytes\n${out.join('\n')}`);
      if (p.refused) for (const [k, o] of out.entries()) assert.match(o, p.refused, `${p.sql[k]}: not refused`);
    });
  }
});

/**
 * Guardrails on a protected target: an ALTER that retypes a column keeps every value only in
 * strict mode, and the mode it runs under can be its own (SET STATEMENT) or that of a later
 * EXECUTE. Each case must be refused and leave the values as they were.
 */
describe('adversarial guardrail probes, round 5 (MariaDB, protected target)', () => {
  let t: CapturedTarget;
  before(async () => {
    t = await captureTarget('mysql', 'zzr5g', corpus, 'prod');
  });
  after(async () => t?.close());

  const cases: { name: string; run: (c: Awaited<ReturnType<typeof mysqlTunnelClient>>) => Promise<unknown> }[] = [
    { name: "SET STATEMENT sql_mode = '' FOR ALTER … MODIFY", run: (c) => c.query("SET STATEMENT sql_mode = '' FOR ALTER TABLE orders MODIFY status VARCHAR(1)") },
    {
      name: "PREPARE under strict mode, SET sql_mode = '', EXECUTE",
      run: async (c) => {
        await c.query("PREPARE s FROM 'ALTER TABLE orders MODIFY status VARCHAR(1)'");
        await c.query("SET sql_mode = ''");
        await c.query('EXECUTE s');
      },
    },
    {
      name: "COM_STMT_PREPARE under strict mode, SET sql_mode = '', COM_STMT_EXECUTE",
      run: async (c) => {
        const p = await c.prepare('ALTER TABLE orders MODIFY status VARCHAR(1)');
        await c.query("SET sql_mode = ''");
        await p.execute([]);
      },
    },
    { name: 'CREATE OR REPLACE SEQUENCE over a table', run: (c) => c.query('CREATE OR REPLACE SEQUENCE orders') },
  ];
  for (const k of cases) {
    test(k.name, async () => {
      const c = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
      try {
        await assert.rejects(k.run(c), /^Error: dbgov: blocked/);
      } finally {
        await c.end().catch(() => undefined);
      }
      const rows = await mysqlAdmin<{ status: string }[]>('SELECT status FROM orders ORDER BY id', t.db);
      assert.deepEqual(rows.map((r) => r.status), ['paid', 'new', 'paid']);
    });
  }
});
