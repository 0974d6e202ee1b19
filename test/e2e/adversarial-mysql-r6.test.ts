/**
 * Adversarial round 6 (MariaDB), beyond rounds 1–5: each probe sends its entries as COM_QUERY
 * texts through mysql2 on one connection through the tunnel, behind a capturing proxy; no seeded
 * PII value may reach the client, and `refused` must match every entry's outcome. Each probe
 * failed before its fix; the `control` probes are ordinary work of the same family that must
 * still run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { leaks as leaksOf } from './capture-proxy.js';
import type { Connection } from '../../src/cli/connect.js';
import { SA_TOKENS, startTestBroker, type TestBroker } from './harness.js';
import { captureTarget, type CapturedTarget, type MaskingCorpus } from './masking-fixture.js';
import { mysqlAdmin, mysqlTarget, mysqlTunnelClient } from './mysql-harness.js';

const corpus = parse(readFileSync(resolve(process.cwd(), 'test/corpus/mysql-masking.yaml'), 'utf8')) as MaskingCorpus;
const MASKED_PREDICATE = /masked-predicate/;
const OK_ROWS = /^ok \[/;

type Client = Awaited<ReturnType<typeof mysqlTunnelClient>>;

export const probes: { name: string; sql: string[]; refused: RegExp; setup?: string }[] = [
  // The masked-predicate rule compared view columns with masking's patterns (`*.users.email`)
  // by the view's own name: any view over a classified column filtered on it freely.
  {
    name: 'a filter on a view column that is a classified column',
    refused: MASKED_PREDICATE,
    sql: [
      "SELECT id FROM user_contacts WHERE email LIKE 'alice%'",
      "SELECT COUNT(*) FROM user_contacts v WHERE v.full_name > 'B'",
      "SELECT id FROM user_contacts ORDER BY IF(email LIKE 'a%', 0, 1), id LIMIT 1",
    ],
  },
  { name: 'control: a filter on a view column that is not classified still runs', refused: OK_ROWS, sql: ["SELECT id, email FROM user_contacts WHERE plan = 'pro'", 'SELECT id FROM user_contacts WHERE id = 1'] },
  // A view created in the session is not in the catalog yet: a filter on its columns went unseen.
  {
    name: 'a filter on a view the session just created over a classified column',
    refused: MASKED_PREDICATE,
    setup: 'CREATE VIEW r6_new AS SELECT id, ssn AS s FROM users',
    sql: ["SELECT id FROM r6_new WHERE s LIKE '1%'", "SELECT 1 FROM r6_new WHERE s = '123-45-6789'"],
  },
  // EXECUTE of a prepared CREATE VIEW created a view the session did not know of (and the
  // catalog did not reload): its columns were read as plain ones, the SSNs came back in clear.
  {
    name: 'a view created by EXECUTE of a prepared CREATE VIEW, read',
    refused: OK_ROWS,
    setup: "PREPARE r6_s FROM 'CREATE VIEW r6_pv AS SELECT id, ssn AS s FROM users'; EXECUTE r6_s",
    sql: ['SELECT s FROM r6_pv', 'SELECT * FROM r6_pv'],
  },
  {
    name: 'a view created by EXECUTE of a prepared CREATE VIEW, filtered in the same message',
    refused: MASKED_PREDICATE,
    setup: "PREPARE r6_t FROM 'CREATE VIEW r6_pw AS SELECT id, ssn AS s FROM users'",
    sql: ["EXECUTE r6_t; SELECT id FROM r6_pw WHERE s LIKE '1%'"],
  },
  // CHECKSUM TABLE's rows had no lineage: its CRC of every row came back as is. With the other
  // rows deleted in a transaction it is one row's CRC, to test SSN guesses against offline.
  {
    name: 'CHECKSUM TABLE over a table with classified columns',
    refused: /^ok \[\{"Table":"[^"]*","Checksum":(0|null)\}|^ok \{|^ok \[\]/,
    sql: ['CHECKSUM TABLE users', 'CHECKSUM TABLE users EXTENDED', 'BEGIN', 'DELETE FROM orders WHERE id <> 10', 'CHECKSUM TABLE orders', 'ROLLBACK'],
  },
  {
    name: 'control: CHECKSUM TABLE of a table without classified columns still answers',
    refused: /^ok \[\{"Table":"[^"]*","Checksum":[1-9]/,
    setup: 'CREATE TABLE IF NOT EXISTS r6_plain (a INT); INSERT INTO r6_plain VALUES (1)',
    sql: ['CHECKSUM TABLE r6_plain'],
  },
  // A partial mask keeps some positions of what the column holds: stored rearranged, the phone
  // read back as `****-***-514 1+` (its first digits, reversed), a prefix as `+44 20`.
  {
    name: 'a classified value rearranged into its own partially masked column, then read',
    refused: /rearranged in|^ok \{"fieldCount":0,"affectedRows":0,|^ok \[\{"phone":"\+\* \*\*\*-\*\*\*-0199"\}\]|^ok \[\]/,
    sql: [
      'BEGIN',
      'UPDATE users SET phone = REVERSE(phone) WHERE id = 1',
      'SELECT phone FROM users WHERE id = 1',
      "INSERT INTO users (id, email, phone) SELECT 98, CONCAT('q', id, '@x.org'), LEFT(phone, 6) FROM users WHERE id = 2",
      'SELECT phone FROM users WHERE id = 98',
      'ROLLBACK',
    ],
  },
  {
    name: 'control: a classified value stored as it is, or case mapped, still runs',
    refused: /^ok \{/,
    sql: ['BEGIN', 'UPDATE users SET email = LOWER(email), phone = phone WHERE id = 1', "INSERT INTO users (id, email, phone) SELECT 97, CONCAT('r', id, '@x.org'), phone FROM users WHERE id = 2", 'ROLLBACK'],
  },
];

async function outcomes(t: CapturedTarget, sql: string[], c?: Client): Promise<string[]> {
  const own = c === undefined;
  c ??= await mysqlTunnelClient(t.conn, { multipleStatements: true }, t.proxy.port);
  const out: string[] = [];
  try {
    for (const s of sql) out.push(await c.query(s).then(([rows]) => `ok ${JSON.stringify(rows)}`, (e: Error) => `error ${e.message}`));
  } finally {
    if (own) await c.end().catch(() => undefined);
  }
  return out;
}

describe('adversarial masking probes, round 6 (MariaDB)', () => {
  let t: CapturedTarget;
  before(async () => {
    t = await captureTarget('mysql', 'zzr6', corpus);
  });
  after(async () => t?.close());

  for (const p of probes) {
    test(p.name, async () => {
      const c = await mysqlTunnelClient(t.conn, { multipleStatements: true }, t.proxy.port);
      try {
        if (p.setup) await c.query(p.setup);
        t.proxy.take();
        const out = await outcomes(t, p.sql, c);
        const found = leaksOf(corpus.pii, t.proxy.take());
        assert.deepEqual(found, [], `clear PII in the wire bytes\n${out.join('\n')}`);
        for (const [k, o] of out.entries()) assert.match(o, p.refused, `${p.sql[k]}: not refused`);
      } finally {
        await c.end().catch(() => undefined);
      }
    });
  }

  // CREATE OR REPLACE VIEW in one session: the next statement of another session, before the
  // catalog reloaded, read the view by its old definition (plan = users.plan) and sent clear SSNs.
  test('another session reads a view just replaced over a classified column', async () => {
    const a = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
    const b = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
    try {
      await a.query('CREATE VIEW r6_swap AS SELECT id, plan FROM users');
      // The catalog reloads 50 ms after DDL through the gateway; from then on it has the view.
      await new Promise((r) => setTimeout(r, 500));
      assert.match((await outcomes(t, ['SELECT plan FROM r6_swap WHERE id = 1'], b))[0], /"plan":"pro"/);
      t.proxy.take();
      await a.query('CREATE OR REPLACE VIEW r6_swap AS SELECT id, ssn AS plan FROM users');
      const out = await outcomes(t, ['SELECT plan FROM r6_swap ORDER BY id', "SELECT id FROM r6_swap WHERE plan LIKE '1%'"], b);
      assert.deepEqual(leaksOf(corpus.pii, t.proxy.take()), [], `clear PII in the wire bytes\n${out.join('\n')}`);
      assert.match(out[1], MASKED_PREDICATE);
    } finally {
      await a.end().catch(() => undefined);
      await b.end().catch(() => undefined);
    }
  });
});

/** Guardrails on a protected target: each case must be refused and leave the orders as they were. */
describe('adversarial guardrail probes, round 6 (MariaDB, protected target)', () => {
  let t: CapturedTarget;
  before(async () => {
    t = await captureTarget('mysql', 'zzr6g', corpus, 'prod');
  });
  after(async () => t?.close());

  const refused: { name: string; sql: string }[] = [
    // The WHERE tied down the joined table only: every order joined the one user, and went.
    { name: 'multi-table DELETE whose WHERE bounds only the other table', sql: 'DELETE orders FROM orders, users WHERE users.id = 1' },
    { name: 'DELETE … USING whose WHERE bounds only the other table', sql: 'DELETE FROM o USING orders o, users u WHERE u.id = 1' },
    { name: 'multi-table UPDATE whose WHERE bounds only the other table', sql: "UPDATE orders o, users u SET o.status = 'gone' WHERE u.id = 1" },
    { name: 'multi-table UPDATE joined ON a constant', sql: "UPDATE orders o JOIN users u ON u.id = 1 SET o.status = 'gone' WHERE u.plan = 'pro'" },
  ];
  for (const k of refused) {
    test(k.name, async () => {
      const c = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
      try {
        await assert.rejects(c.query(k.sql), /^Error: dbgov: blocked/);
      } finally {
        await c.end().catch(() => undefined);
      }
      const rows = await mysqlAdmin<{ status: string }[]>('SELECT status FROM orders ORDER BY id', t.db);
      assert.deepEqual(rows.map((r) => r.status), ['paid', 'new', 'paid']);
    });
  }

  // Strict mode refuses a value that does not fit, not one it can round: 19.99 became 20 with a
  // note, fractional seconds, times and trailing spaces went silently.
  const retypes = [
    'ALTER TABLE orders MODIFY amount DECIMAL(10,0)',
    'ALTER TABLE orders CHANGE amount amount FLOAT(4,1)',
    'ALTER TABLE users MODIFY COLUMN created TIME',
    'ALTER TABLE orders MODIFY status CHAR(10)',
    // DECIMAL → INT rounds silently, with no note at all; the catalog says amount is a DECIMAL.
    'ALTER TABLE orders MODIFY amount INT',
    'ALTER TABLE orders CHANGE COLUMN amount amt BIGINT',
  ];
  for (const sql of retypes) {
    test(`a retype that rounds or cuts even in strict mode: ${sql}`, async () => {
      const c = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
      try {
        await assert.rejects(c.query(sql), /^Error: dbgov: blocked/);
      } finally {
        await c.end().catch(() => undefined);
      }
      const rows = await mysqlAdmin<{ a: string; c: string }[]>("SELECT (SELECT GROUP_CONCAT(amount ORDER BY id) FROM orders) AS a, (SELECT GROUP_CONCAT(DATE_FORMAT(created, '%Y-%m-%d') ORDER BY id) FROM users) AS c", t.db);
      assert.deepEqual(rows[0], { a: '19.99,5.00,7.50', c: '2023-01-05,2023-02-11,2023-03-17' });
    });
  }

  test('control: a retype strict mode keeps whole still runs', async () => {
    const c = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
    try {
      await c.query('ALTER TABLE orders MODIFY status VARCHAR(20)');
      await c.query('ALTER TABLE orders MODIFY user_id BIGINT');
    } finally {
      await c.end().catch(() => undefined);
    }
  });

  test('control: a multi-table UPDATE joined to a bounded table still runs', async () => {
    const c = await mysqlTunnelClient(t.conn, {}, t.proxy.port);
    try {
      await c.query('BEGIN');
      const [r] = await c.query("UPDATE orders o JOIN users u ON o.user_id = u.id SET o.status = 'seen' WHERE u.id = 1");
      assert.equal((r as { affectedRows: number }).affectedRows, 1);
      const [d] = await c.query('DELETE o FROM orders o, users u WHERE o.user_id = u.id AND u.id = 2');
      assert.equal((d as { affectedRows: number }).affectedRows, 1);
      await c.query('ROLLBACK');
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});

/** A rule that freezes model_weights must hold however the table is reached. */
describe('adversarial probes of a table rule, round 6 (MariaDB, protected target)', () => {
  const db = `dbgov_zzr6w_${Date.now().toString(36)}`;
  let tb: TestBroker;
  let conn: Connection;
  const weights = async (): Promise<number[]> => {
    const rows = await mysqlAdmin<{ n: number; s: number }[]>('SELECT COUNT(*) AS n, SUM(w) AS s FROM model_weights', db);
    return [Number(rows[0].n), Number(rows[0].s)];
  };

  before(async () => {
    await mysqlAdmin(`CREATE DATABASE \`${db}\``);
    await mysqlAdmin('CREATE TABLE model_weights (id INT PRIMARY KEY, w DOUBLE); INSERT INTO model_weights VALUES (1, 0.5), (2, 0.25); CREATE TABLE other (id INT PRIMARY KEY)', db);
    await mysqlAdmin('CREATE PROCEDURE wipe() BEGIN DELETE FROM model_weights; END', db);
    const rule = { name: 'weights-frozen', match: { statement: { relations: { names: [`${db}.model_weights`], access: ['write'] } } }, action: 'block', message: 'model weights are frozen' };
    tb = await startTestBroker({ targets: { prod: mysqlTarget(db, { env: 'prod' }) }, policy: { statements: [rule], access: [{ name: 'any', action: 'allow' }] } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await mysqlAdmin(`DROP DATABASE IF EXISTS \`${db}\``);
  });

  // Renamed, the table's rows were under a name no rule matched: the UPDATE that followed ran.
  for (const [rename, back] of [
    ['RENAME TABLE model_weights TO w2', 'RENAME TABLE w2 TO model_weights'],
    ['ALTER TABLE model_weights RENAME TO w2', 'ALTER TABLE w2 RENAME TO model_weights'],
  ]) {
    test(`${rename}, then a write to the new name`, async () => {
      const c = await mysqlTunnelClient(conn);
      try {
        await assert.rejects(c.query(rename), /dbgov: blocked: model weights are frozen/);
        await c.query('UPDATE w2 SET w = 0 WHERE id = 1').catch(() => undefined);
        await c.query(back).catch(() => undefined);
      } finally {
        await c.end();
      }
      assert.deepEqual(await weights(), [2, 0.75]);
    });
  }

  // A view created in one session was unknown to another until the catalog reloaded: a write
  // through it there was a write to no table the rule names.
  test('a write through a view another session just created', async () => {
    const a = await mysqlTunnelClient(conn);
    const b = await mysqlTunnelClient(conn);
    try {
      await a.query('CREATE VIEW mw_new AS SELECT * FROM model_weights');
      await assert.rejects(b.query('UPDATE mw_new SET w = 0 WHERE id = 1'), /dbgov: blocked: model weights are frozen/);
    } finally {
      await a.end();
      await b.end();
    }
    assert.deepEqual(await weights(), [2, 0.75]);
  });

  // CALL was never opaque: the procedure's DELETE, which no rule saw, emptied model_weights.
  test('CALL of a stored procedure whose body writes the table', async () => {
    const c = await mysqlTunnelClient(conn);
    try {
      await assert.rejects(c.query('CALL wipe()'), /dbgov: blocked: dbgov cannot see what this statement does/);
    } finally {
      await c.end();
    }
    assert.deepEqual(await weights(), [2, 0.75]);
  });

  test('control: renaming a table no rule protects still runs', async () => {
    const c = await mysqlTunnelClient(conn);
    try {
      await c.query('RENAME TABLE other TO other2');
      await c.query('ALTER TABLE other2 RENAME TO other');
    } finally {
      await c.end();
    }
  });
});
