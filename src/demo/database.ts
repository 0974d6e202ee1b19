/**
 * The demo's database: an embedded PostgreSQL (PGlite) seeded with a `users` table full of PII
 * and a `model_weights` table, served on 127.0.0.1 through pglite-socket so the broker reaches
 * it over the real wire protocol. A fresh PGlite costs ~6 s of initdb, so the seeded data
 * directory is cached (dumpDataDir/loadDataDir, ~0.5 s) under the user's cache folder.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { makeDirSync } from '../shared/dirs.js';

/** Bump when the seed changes, so old caches are not reused. */
const SEED_VERSION = 3;

export interface DemoDatabase {
  host: string;
  port: number;
  database: string;
  user: string;
  close(): Promise<void>;
}

const FIRST = ['Ada', 'Grace', 'Alan', 'Barbara', 'Edsger', 'Frances', 'Donald', 'Margaret', 'Ken', 'Radia', 'Leslie', 'Shafi', 'Tim', 'Adele', 'John', 'Sophie', 'Niklaus', 'Lynn', 'Dennis', 'Karen'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Liskov', 'Dijkstra', 'Allen', 'Knuth', 'Hamilton', 'Thompson', 'Perlman', 'Lamport', 'Goldwasser', 'Berners-Lee', 'Goldberg', 'McCarthy', 'Wilson', 'Wirth', 'Conway', 'Ritchie', 'Spärck Jones'];
const STREETS = ['Analytical Way', 'Compiler Court', 'Lambda Lane', 'Turing Terrace', 'Kernel Street'];

/** Deterministic, Luhn-valid test card numbers (4000 0000 0000 xxxx style). */
function card(i: number): string {
  const base = `4000${String(100000000000 + i * 7919).slice(-11)}`;
  let sum = 0;
  for (let k = 0; k < base.length; k++) {
    let d = Number(base[base.length - 1 - k]);
    if (k % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return base + String((10 - (sum % 10)) % 10);
}

export function seedSql(users = 40): string {
  const rows: string[] = [];
  for (let i = 1; i <= users; i++) {
    const first = FIRST[i % FIRST.length];
    const last = LAST[(i * 7) % LAST.length];
    const email = `${first.toLowerCase()}.${last.toLowerCase().replace(/[^a-z]/g, '')}${i}@example.com`;
    const phone = `+1-555-${String(100 + i).padStart(3, '0')}-${String(1000 + i * 37).slice(-4)}`;
    const ssn = `${String(100 + i).slice(-3)}-${String(10 + (i % 89)).padStart(2, '0')}-${String(1000 + i * 53).slice(-4)}`;
    const address = `${i * 3} ${STREETS[i % STREETS.length]}, Springfield`;
    const token = `sk_live_${Buffer.from(`demo-token-${i}-${email}`).toString('hex').slice(0, 32)}`;
    rows.push(`(${i}, '${first} ${last.replace(/'/g, "''")}', '${email}', '${phone}', '${ssn}', '${card(i)}', '${address}', '${token}', ${i % 7 === 0 ? "'admin'" : "'member'"})`);
  }
  const orders: string[] = [];
  for (let i = 1; i <= users * 3; i++) orders.push(`(${i}, ${((i * 13) % users) + 1}, ${((i * 977) % 50000) / 100}, '${['paid', 'shipped', 'refunded'][i % 3]}')`);
  const weights: string[] = [];
  for (let i = 1; i <= 12; i++) weights.push(`(${i}, '${['ranker-v3', 'fraud-v7', 'embed-v2'][i % 3]}', 'layer_${i}', ARRAY[${[1, 2, 3, 4].map((k) => ((i * k * 31) % 100) / 100).join(', ')}]::real[], now())`);
  return `
CREATE TABLE users (
  id int PRIMARY KEY,
  full_name text NOT NULL,
  email text UNIQUE NOT NULL,
  phone text,
  ssn text,
  card_number text,
  address text,
  api_token text,
  plan text NOT NULL DEFAULT 'member',
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users (id, full_name, email, phone, ssn, card_number, address, api_token, plan) VALUES
${rows.join(',\n')};
CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users(id), amount numeric(10,2), status text);
INSERT INTO orders VALUES ${orders.join(', ')};
CREATE TABLE model_weights (id int PRIMARY KEY, model text NOT NULL, layer text NOT NULL, weights real[] NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO model_weights VALUES ${weights.join(', ')};
CREATE VIEW customer_contacts AS SELECT u.id, u.full_name, u.email, u.phone FROM users u;
`;
}

function cacheFile(): string {
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dbgov');
  makeDirSync(dir);
  return join(dir, `demo-pgdata-v${SEED_VERSION}.tar.gz`);
}

async function openSeeded(): Promise<PGlite> {
  const file = cacheFile();
  try {
    const blob = new Blob([readFileSync(file)]);
    const db = await PGlite.create({ loadDataDir: blob });
    await db.query('SELECT 1 FROM users LIMIT 1');
    return db;
  } catch {
    // No cache yet, or a stale one: seed from scratch and save it for next time.
  }
  const db = await PGlite.create();
  await db.exec(seedSql());
  const dump = await db.dumpDataDir('gzip');
  writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  return db;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function startDemoDatabase(host = '127.0.0.1'): Promise<DemoDatabase> {
  const db = await openSeeded();
  // pglite-socket defaults to 5432, which a real server may own: always pass a free port.
  const port = await freePort(host);
  const server = new PGLiteSocketServer({ db, host, port, maxConnections: 16 });
  await server.start();
  return {
    host,
    port,
    database: 'postgres',
    user: 'postgres',
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}
