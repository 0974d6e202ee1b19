/**
 * Micro-benchmark of PostgreSQL statement analysis: µs per statement, uncached (full analysis)
 * and cached (facts cache hit), for pgbench-style statements. Targets: cached ≤5 µs, uncached ≤200 µs.
 * Run: npx tsx bench/sql.ts
 */
import { performance } from 'node:perf_hooks';
import { createFactsCache } from '../src/sql/cache.js';
import { analysePostgres, loadSqlParser } from '../src/sql/postgres.js';

const statements = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = $1;',
  'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;',
  'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);',
];
const WARMUP = 10_000;
const ROUNDS = 5_000;

await loadSqlParser();
for (let i = 0; i < WARMUP; i++) analysePostgres(statements[i % statements.length] as string);

const lines: string[] = [];
const cache = createFactsCache(1000);
for (const sql of statements) {
  let t = performance.now();
  for (let i = 0; i < ROUNDS; i++) analysePostgres(sql);
  const uncached = ((performance.now() - t) * 1000) / ROUNDS;
  cache.get(sql, analysePostgres);
  t = performance.now();
  for (let i = 0; i < ROUNDS * 20; i++) cache.get(sql, analysePostgres);
  const cached = ((performance.now() - t) * 1000) / (ROUNDS * 20);
  lines.push(`${uncached.toFixed(1).padStart(8)} µs uncached ${cached.toFixed(3).padStart(8)} µs cached  ${sql.slice(0, 60)}`);
}
process.stdout.write(`${lines.join('\n')}\n`);
