/**
 * Adversarial round 6 on identity, credentials, approvals and audit evidence: shapes the earlier
 * rounds (adversarial-identity, identity-*, approvals, audit*, protocol-hostile-*) did not try.
 * Every probe asserts what must hold and has a control that ordinary work still runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminQuery, createTestDatabase, pgTarget, SA_TOKENS, startTestBroker, type TestBroker, type TestDatabase } from './harness.js';
import { RawPg, errorsOf, fe, field, rowsOf } from './pg-raw.js';
import type { Connection } from '../../src/cli/connect.js';

describe('r6: startup settings are read as the server reads them', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let conn: Connection;

  before(async () => {
    db = await createTestDatabase(
      'id6su',
      `create schema secure;
       create table secure.accounts (id int primary key, v int); insert into secure.accounts values (1, 1);
       create table public.accounts (id int primary key, v int); insert into public.accounts values (1, 1);`,
    );
    tb = await startTestBroker({
      targets: { prod: pgTarget(db.name, { env: 'staging' }) },
      policy: { statements: [{ name: 'secure-frozen', match: { statement: { relations: { names: ['secure.accounts'], access: ['write'] } } }, action: 'block', message: 'secure.accounts is frozen' }] },
    });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await db?.drop();
  });

  const secureValue = async (): Promise<number> => (await adminQuery<{ v: number }>('select v from secure.accounts where id = 1', [], db.name)).rows[0].v;

  // Each packet makes the server's search_path `secure`; the gateway once read only the first
  // `-c search_path=` literally (or only the exact field name), and judged `accounts` as public's.
  const aimedAtSecure: { name: string; params: Record<string, string> }[] = [
    { name: 'two -c search_path switches, the last wins', params: { options: '-c search_path=public -c search_path=secure' } },
    { name: 'an upper-case setting name in options', params: { options: '-c SEARCH_PATH=secure' } },
    { name: 'a dashed setting name in options', params: { options: '-c search-path=secure' } },
    { name: 'a --long switch with dashes', params: { options: '--search-path=secure' } },
    { name: 'a mixed-case packet field', params: { Search_Path: 'secure' } },
    { name: 'a packet field beats options', params: { search_path: 'secure', options: '-c search_path=public' } },
  ];
  for (const c of aimedAtSecure) {
    test(`a write through ${c.name} is judged against the table the server writes`, async () => {
      const before = await secureValue();
      const raw = await RawPg.openWith(conn.tunnel.port, { user: conn.credential.identity.id, database: conn.credential.database, ...c.params });
      try {
        raw.send(fe.query('SELECT current_setting(\'search_path\')'));
        const shown = await raw.ready();
        assert.deepEqual(rowsOf(shown), [['secure']], `the server runs with search_path secure: ${errorsOf(shown).join('; ')}`);
        raw.send(fe.query('UPDATE accounts SET v = v + 1 WHERE id = 1'));
        const out = await raw.ready();
        const err = out.find((m) => m.type === 'E');
        assert.ok(err, `refused: ${JSON.stringify(rowsOf(out))}`);
        assert.equal(field(err, 'C'), '42501');
        assert.match(field(err, 'D') ?? '', /secure-frozen/);
      } finally {
        raw.end();
      }
      assert.equal(await secureValue(), before, 'secure.accounts unchanged');
    });
  }

  test('control: options with a plain search_path still apply, and writes to the public table run', async () => {
    const raw = await RawPg.openWith(conn.tunnel.port, { user: conn.credential.identity.id, database: conn.credential.database, options: '-c search_path=public -c statement_timeout=5s', application_name: 'id6' });
    try {
      raw.send(fe.query("SELECT current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')"));
      assert.deepEqual(rowsOf(await raw.ready()), [['public', '5s', 'id6']]);
      raw.send(fe.query('UPDATE accounts SET v = v + 1 WHERE id = 1'));
      const out = await raw.ready();
      assert.deepEqual(errorsOf(out), []);
    } finally {
      raw.end();
    }
  });

  test('options naming a setting outside the allow-list are not forwarded at all', async () => {
    const raw = await RawPg.openWith(conn.tunnel.port, { user: conn.credential.identity.id, database: conn.credential.database, options: '-c search_path=secure -c session_authorization=postgres' });
    try {
      raw.send(fe.query("SELECT current_setting('search_path')"));
      assert.deepEqual(rowsOf(await raw.ready()), [['"$user", public']]);
    } finally {
      raw.end();
    }
  });
});
