/**
 * COPY … TO STDOUT with non-default options still masks the right fields: the delimiter, quote,
 * escape and NULL string change how a row splits into columns, so the plan must follow them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, createTestDatabase, pgTarget, psqlArgs, run, startTestBroker, type TestBroker, type TestDatabase } from './harness.js';
import type { Connection } from '../../src/cli/connect.js';

describe('COPY options and masking', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let conn: Connection;
  before(async () => {
    db = await createTestDatabase('copyopt', "CREATE TABLE users (id int, email text, note text); INSERT INTO users VALUES (1, 'ann@corp.example', 'a,b|c'), (2, 'ben@corp.example', NULL);");
    tb = await startTestBroker({ targets: { dev: pgTarget(db.name, { env: 'staging' }) }, masking: { key: '${env:T_MASK_KEY}', columns: { 'public.users.email': { class: 'email', function: 'redact' } } }, policy: { access: [{ name: 'any', action: 'allow' }] } });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'dev' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await db?.drop();
  });

  const shapes = [
    "COPY users TO STDOUT WITH (FORMAT csv, DELIMITER '|')",
    "COPY users TO STDOUT WITH (FORMAT csv, DELIMITER ';', QUOTE '''', HEADER)",
    "COPY users TO STDOUT WITH (FORMAT text, DELIMITER ',')",
    "COPY users TO STDOUT WITH (FORMAT text, DELIMITER '|', NULL 'NIL')",
    "COPY users TO STDOUT WITH DELIMITER '|' CSV",
    "COPY (SELECT note, email, id FROM users) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\t')",
    "COPY users (email) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)",
  ];
  for (const sql of shapes) {
    test(sql, async () => {
      const r = await run('psql', psqlArgs(conn, '-c', sql));
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /corp\.example/, `email leaked:\n${r.stdout}`);
      if (!sql.includes('users (email)')) assert.match(r.stdout, /\b1\b/, 'other columns still come through');
      else assert.equal(r.stdout.trim().split('\n').length, 2, 'one line per row');
    });
  }
});
