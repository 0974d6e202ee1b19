import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createFactsCache } from '../../src/sql/cache.js';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';

before(() => loadSqlParser());

test('facts cache: hits by exact text, evicts the oldest entry first', () => {
  const cache = createFactsCache(2);
  let calls = 0;
  const analyse = (sql: string) => {
    calls++;
    return analysePostgres(sql);
  };
  const steps: [string, number][] = [
    ['select 1', 1],
    ['select 1', 1],
    ['SELECT 1', 2],
    ['select 1', 2], // a hit does not reorder
    ['select 2', 3], // evicts 'select 1', the oldest
    ['SELECT 1', 3],
    ['select 1', 4], // analysed again; evicts 'SELECT 1'
    ['SELECT 1', 5],
  ];
  for (const [sql, want] of steps) {
    cache.get(sql, analyse);
    assert.equal(calls, want, sql);
  }
  assert.equal(cache.size, 2);
  cache.clear();
  assert.equal(cache.size, 0);
});
