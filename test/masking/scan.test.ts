import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { parse } from 'yaml';
import { scanDatabase } from '../../src/masking/scan.js';
import { compileMasking } from '../../src/masking/config.js';

const DB = `dbgov_scan_${process.pid}_${Date.now().toString(36)}`;
const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'root', database: 'postgres' });
let client: pg.Client;

const SEED = `
  CREATE TABLE customers (
    id serial PRIMARY KEY, contact text, full_name text, mobile text, tax_id text,
    notes text, status text, amount numeric, created date
  );
  INSERT INTO customers (contact, full_name, mobile, tax_id, notes, status, amount, created)
  SELECT 'user' || g || '@example.com', 'Person ' || g, '+1 555-' || lpad((100 + g)::text, 3, '0') || '-' || lpad(g::text, 4, '0'),
         lpad((100 + g)::text, 3, '0') || '-45-' || lpad((1000 + g)::text, 4, '0'),
         CASE WHEN g % 2 = 0 THEN 'card 4111 1111 1111 1111 on file' ELSE 'no issues' END,
         'active', g * 1.5, DATE '2024-01-01' + g
    FROM generate_series(1, 60) g;
  CREATE SCHEMA billing;
  CREATE TABLE billing.accounts (id int, iban text, api_token text, ip inet);
  INSERT INTO billing.accounts VALUES
    (1, 'DE89370400440532013000', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc', '10.0.0.1'),
    (2, 'GB82WEST12345698765432', 'sk_live_9xZ81QwErTyUiOpAsDfGh3jk', '10.0.0.2');
  CREATE TABLE products (id int, title text, sku text);
  INSERT INTO products SELECT g, 'Widget ' || g, 'SKU-' || g FROM generate_series(1, 30) g;
`;

before(async () => {
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DB}`);
  client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'root', database: DB });
  await client.connect();
  await client.query(SEED);
  await client.query('ANALYZE');
});

after(async () => {
  await client?.end();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.end();
});

test('scan finds PII by name and content, reports counts only, and emits valid config', async () => {
  const progress: string[] = [];
  const r = await scanDatabase(client, { sampleRows: 50, onProgress: (p) => progress.push(`${p.done}/${p.total}`) });
  const found = Object.fromEntries(r.candidates.map((c) => [`${c.schema}.${c.table}.${c.column}`, c.class]));
  const expected: [string, string | undefined][] = [
    ['public.customers.contact', 'email'],
    ['public.customers.full_name', 'name'],
    ['public.customers.mobile', 'phone'],
    ['public.customers.tax_id', 'ssn'],
    ['public.customers.notes', 'card'],
    ['billing.accounts.iban', 'iban'],
    ['billing.accounts.api_token', 'secret'],
    ['billing.accounts.ip', 'ip'],
    ['public.customers.status', undefined],
    ['public.customers.amount', undefined],
    ['public.products.title', undefined],
    ['public.products.sku', undefined],
  ];
  for (const [col, cls] of expected) assert.equal(found[col], cls, col);
  assert.equal(r.tables, 3);
  assert.deepEqual(progress.at(-1), '3/3');

  const contact = r.candidates.find((c) => c.column === 'contact')!;
  assert.equal(contact.evidence.nonNull, 50);
  assert.equal(contact.evidence.hits.email, 50);
  const text = JSON.stringify(r);
  for (const value of ['user1@example.com', '4111 1111 1111 1111', 'DE89370400440532013000', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc']) assert.ok(!text.includes(value), `no sampled value in the result: ${value}`);

  const cfg = compileMasking(parse(r.yaml).masking);
  assert.equal(cfg.columns.length, r.candidates.length);

  // The scan ran in its own transaction and left none open.
  const { rows } = await client.query('SELECT pg_current_xact_id_if_assigned() IS NULL AS clean');
  assert.equal(rows[0].clean, true);
});

test('scan is read-only and bounded', async () => {
  const seen: string[] = [];
  const spy = { query: async (q: string) => (seen.push(q), client.query(q)) };
  await scanDatabase(spy as never, { sampleRows: 5, statementTimeoutMs: 2000, schemas: ['billing'] });
  assert.equal(seen[0], 'BEGIN READ ONLY');
  assert.ok(seen.some((q) => /statement_timeout = 2000/.test(q)));
  assert.ok(seen.filter((q) => /^SELECT left/.test(q)).every((q) => / LIMIT 5$/.test(q)));
  assert.equal(seen.at(-1), 'ROLLBACK');
});
