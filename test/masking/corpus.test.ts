/**
 * The pure half of the masking corpus (test/corpus/postgres-masking.yaml): each query runs on a
 * real, seeded PostgreSQL; its real RowDescription and rows go through lineage → plan → masks,
 * and no seeded PII value may survive. The lead's e2e run covers the same corpus through the tunnel.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { parse } from 'yaml';
import { compileMasking, type MaskingConfig } from '../../src/masking/config.js';
import { planCopy, type CopyFormat } from '../../src/masking/copy.js';
import { buildMaskPlan, isMaskBlock } from '../../src/masking/plan.js';
import { scrubMessage } from '../../src/masking/scrub.js';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';
import { rowSource, planRelations } from '../../src/masking/row-source.js';
import { resolveLineage } from '../../src/sql/lineage.js';
import { PostgresCatalog } from '../../src/sql/catalog.js';
import type { StatementFacts } from '../../src/sql/facts.js';
import type { ResultColumn } from '../../src/gateway/engine.js';

interface CorpusQuery {
  name: string;
  sql: string;
  setup?: string[];
  masked?: string[];
  clear?: string[];
  error?: boolean;
  /** Refused by the gateway itself (see the corpus header): nothing to check without it. */
  refused?: boolean;
  writes?: boolean;
  copy?: CopyFormat;
  todo?: string;
}
interface Corpus {
  schema: string;
  seed: string;
  masking: unknown;
  pii: string[];
  queries: CorpusQuery[];
}

const corpus = parse(readFileSync('test/corpus/postgres-masking.yaml', 'utf8')) as Corpus;
const DB = `dbgov_maskcorpus_${process.pid}_${Date.now().toString(36)}`;
const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'root', database: 'postgres' });
let client: pg.Client;
let catalog: PostgresCatalog;
let config: MaskingConfig;
const identity = { id: 'dev', kind: 'human' as const, groups: ['dev'] };
const raw = { getTypeParser: () => (v: string) => v };

/** Each PII value in the forms a query shape can produce from it. */
const needles = corpus.pii.flatMap((v) => [v.toLowerCase(), [...v].reverse().join('').toLowerCase()]);
function leaked(text: string): string | undefined {
  const t = text.toLowerCase();
  return needles.find((n) => t.includes(n));
}

before(async () => {
  await loadSqlParser();
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DB}`);
  client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'root', database: DB });
  await client.connect();
  await client.query(corpus.schema);
  await client.query(corpus.seed);
  catalog = await PostgresCatalog.load(client);
  config = compileMasking(corpus.masking);
});

after(async () => {
  await client?.end();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.end();
});

function facts(sql: string): StatementFacts {
  return analysePostgres(sql).statements[0];
}

/** Lineage the broker would use: EXECUTE and FETCH take it from the PREPARE / DECLARE they name. */
function lineageFor(q: CorpusQuery): { lineage: ReturnType<typeof resolveLineage> | undefined; f: StatementFacts } {
  // The same resolution the broker does: PREPARE and DECLARE seen earlier in the session.
  const prepared = new Map<string, StatementFacts>();
  const cursors = new Map<string, StatementFacts>();
  for (const s of q.setup ?? []) {
    const sf = facts(s);
    if (sf.prepare) prepared.set(sf.prepare.name, sf.prepare.inner);
    if (sf.cursor?.op === 'declare') cursors.set(sf.cursor.name, sf);
  }
  const target = rowSource([facts(q.sql)], { prepared, cursors })[0];
  if (!planRelations([target])) return { lineage: undefined, f: target };
  try {
    return { lineage: resolveLineage(target, catalog, ['public']), f: target };
  } catch {
    return { lineage: undefined, f: target };
  }
}

test('corpus has at least 60 query shapes', () => {
  assert.ok(corpus.queries.length >= 60, String(corpus.queries.length));
});

test('corpus: no seeded PII survives masking; clear columns unchanged', async (t) => {
  const failures: string[] = [];
  for (const q of corpus.queries) {
    if (q.copy || q.refused) continue;
    const { lineage, f } = lineageFor(q);
    const tx = q.writes || q.setup?.includes('BEGIN');
    if (q.writes) await client.query('BEGIN');
    try {
      for (const s of q.setup ?? []) await client.query(s);
      if (q.error) {
        const err = await client.query(q.sql).then(() => null, (e: pg.DatabaseError) => e);
        assert.ok(err, `${q.name}: expected an error`);
        const out = scrubMessage({ message: err.message, detail: err.detail, hint: err.hint, where: err.where }, { classified: true, contentScan: false });
        const hit = leaked(JSON.stringify(out));
        if (hit) failures.push(`${q.name}: error leaks ${hit}: ${JSON.stringify(out)}`);
        continue;
      }
      const res = await client.query({ text: q.sql, rowMode: 'array', types: raw });
      const columns: ResultColumn[] = res.fields.map((fd, index) => ({ index, name: fd.name, tableOid: fd.tableID, attnum: fd.columnID, typeId: fd.dataTypeID, format: 0 }));
      const relations = planRelations([f]);
      const plan = buildMaskPlan({ columns, lineage, ...(relations ? { relations } : {}), resolve: (o, a) => catalog.columnOf(o, a), identity, target: 'prod', config });
      assert.ok(!isMaskBlock(plan), q.name);
      for (const row of res.rows as (string | null)[][]) {
        const out = row.map((v, i) => {
          const m = plan?.columns.find((c) => c.index === i);
          if (!m) return v;
          const r = m.mask(v === null ? null : Buffer.from(v), 0, columns[i].typeId);
          return r === null ? null : r.toString();
        });
        const hit = leaked(JSON.stringify(out));
        if (hit) failures.push(`${q.name}: leaks ${hit} (lineage ${JSON.stringify(lineage)})`);
        for (const name of q.masked ?? []) {
          const i = columns.findIndex((c) => c.name === name);
          if (i < 0) failures.push(`${q.name}: no column ${name}`);
          else if (row[i] !== null && out[i] === row[i]) failures.push(`${q.name}: ${name} not masked`);
        }
        for (const name of q.clear ?? []) {
          const i = columns.findIndex((c) => c.name === name);
          if (i >= 0 && out[i] !== row[i] && q.todo) t.diagnostic(`known gap, ${q.name}: ${q.todo}`);
          else if (i < 0 || out[i] !== row[i]) failures.push(`${q.name}: ${name} changed (lineage ${JSON.stringify(lineage?.[i])})`);
        }
      }
    } finally {
      if (tx) await client.query('ROLLBACK');
      if (q.setup?.some((s) => /^PREPARE/i.test(s))) await client.query('DEALLOCATE ALL');
    }
  }
  t.diagnostic(`${corpus.queries.filter((q) => !q.copy).length} row/error shapes checked`);
  assert.deepEqual(failures, []);
});

test('corpus: COPY … TO STDOUT output through planCopy has no seeded PII', () => {
  const failures: string[] = [];
  for (const q of corpus.queries.filter((x) => x.copy)) {
    const bytes = execFileSync('psql', ['-X', '-q', '-h', '127.0.0.1', '-U', 'root', '-d', DB, '-c', q.sql]);
    const { lineage, f } = lineageFor(q);
    const header = /HEADER/i.test(q.sql);
    const plan = planCopy({ format: q.copy!, columnCount: lineage?.length ?? 1, lineage, relations: f.relations, resolve: () => undefined, identity, target: 'prod', config, options: { header } });
    assert.ok(plan && !isMaskBlock(plan), q.name);
    const out = Buffer.concat([plan.maskChunk(bytes.subarray(0, 7)), plan.maskChunk(bytes.subarray(7)), plan.end() ?? Buffer.alloc(0)]);
    const hit = leaked(out.toString('latin1'));
    if (hit) failures.push(`${q.name}: leaks ${hit}`);
    if (!out.includes('\n') && q.copy !== 'binary') failures.push(`${q.name}: empty output`);
  }
  assert.deepEqual(failures, []);
});
