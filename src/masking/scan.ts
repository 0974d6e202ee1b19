/**
 * `dbgov scan <target>`: find columns that probably hold PII or secrets, from column names and a
 * bounded, read-only sample of their values. Prints counts, never values.
 *
 * Safety on a production database: one READ ONLY transaction, a statement_timeout and
 * lock_timeout on every query, TABLESAMPLE on large tables and a LIMIT on all of them, and a
 * savepoint per table so one slow or unreadable table does not end the scan.
 */
import { Document } from 'yaml';
import { BUILTIN_CLASSES, type BuiltinClass } from './config.js';
import { DETECTOR_CLASS, DETECTOR_NAMES, detect, type DetectorName } from './detectors.js';

/** The part of a `pg` Client the scanner uses. */
export interface Queryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string): Promise<{ rows: R[] }>;
}

export interface ScanOptions {
  /** Rows sampled per table. Default 200. */
  sampleRows?: number;
  /** Per-query timeout. Default 5000 ms. */
  statementTimeoutMs?: number;
  /** Only these schemas. Default: every non-system schema. */
  schemas?: readonly string[];
  /** Candidates below this confidence are dropped. Default 0.5. */
  minConfidence?: number;
  onProgress?(progress: { table: string; done: number; total: number }): void;
}

export interface ScanEvidence {
  /** Name heuristic that matched, if any. */
  name: BuiltinClass | null;
  sampled: number;
  nonNull: number;
  /** Values with at least one detector hit, per detector. Counts only. */
  hits: Partial<Record<DetectorName, number>>;
}

export interface ScanCandidate {
  schema: string;
  table: string;
  column: string;
  type: string;
  class: BuiltinClass;
  /** 0..1. */
  confidence: number;
  evidence: ScanEvidence;
}

export interface ScanResult {
  candidates: ScanCandidate[];
  tables: number;
  /** Tables skipped (timeout, permission), with the reason. */
  skipped: { table: string; reason: string }[];
  /** Paste under `masking:` after review. */
  yaml: string;
}

/** Column-name heuristics, in priority order (email_address is an email, not an address). */
const NAME_RULES: readonly { cls: BuiltinClass; re: RegExp; weight: number }[] = [
  { cls: 'secret', re: /(pass(word|wd)?|pwd|secret|token|api_?key|private_?key|credential|access_?key|client_?secret)/i, weight: 0.8 },
  { cls: 'email', re: /(^|_)e_?mail(_?addr(ess)?)?($|_)/i, weight: 0.8 },
  { cls: 'ssn', re: /(^|_)(ssn|social_security(_number)?|tax_?id|national_id|sin)($|_)/i, weight: 0.85 },
  { cls: 'card', re: /(^|_)(cc|credit_?card|card|pan)(_?(number|num|no))?($|_)/i, weight: 0.7 },
  { cls: 'iban', re: /(^|_)(iban|bank_?account(_?(number|no))?|account_?number)($|_)/i, weight: 0.75 },
  { cls: 'phone', re: /(^|_)(phone|mobile|cell|msisdn|telephone|tel|fax)(_?(number|no))?($|_)/i, weight: 0.75 },
  { cls: 'ip', re: /(^|_)(ip|ip_?addr(ess)?|remote_?addr|client_?ip)($|_)/i, weight: 0.7 },
  { cls: 'address', re: /(^|_)(address|street|addr|postcode|post_code|zip|zip_?code|city)($|_)/i, weight: 0.65 },
  { cls: 'name', re: /(^|_)(full_?name|first_?name|last_?name|surname|given_?name|family_?name|maiden_?name)($|_)/i, weight: 0.7 },
];

function nameClass(column: string): { cls: BuiltinClass; weight: number } | null {
  for (const r of NAME_RULES) if (r.re.test(column)) return { cls: r.cls, weight: r.weight };
  return null;
}

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;

interface ColumnRow extends Record<string, unknown> {
  schema: string;
  table: string;
  reltuples: string;
  column: string;
  type: string;
  category: string;
}

/** Type categories worth sampling: strings, user types (citext), JSON, numbers (card numbers in bigint), network. */
const SAMPLED_CATEGORIES = new Set(['S', 'U', 'N', 'I']);

export async function scanDatabase(client: Queryable, options: ScanOptions = {}): Promise<ScanResult> {
  const sampleRows = options.sampleRows ?? 200;
  const timeout = options.statementTimeoutMs ?? 5000;
  const minConfidence = options.minConfidence ?? 0.5;
  await client.query('BEGIN READ ONLY');
  try {
    // Bounds every query of the scan; LOCAL ends with the transaction.
    await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeout))}`);
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(timeout / 2))}`);
    const schemaFilter = options.schemas?.length ? `AND n.nspname IN (${options.schemas.map((s) => `'${s.replace(/'/g, "''")}'`).join(', ')})` : '';
    const { rows } = await client.query<ColumnRow>(`
      SELECT n.nspname AS schema, c.relname AS table, c.reltuples::bigint::text AS reltuples,
             a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, t.typcategory AS category
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_type t ON t.oid = a.atttypid
       WHERE c.relkind IN ('r', 'p', 'm')
         AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
         AND has_table_privilege(c.oid, 'SELECT')
         ${schemaFilter}
       ORDER BY n.nspname, c.relname, a.attnum`);

    const tables = new Map<string, ColumnRow[]>();
    for (const r of rows) {
      const k = `${r.schema}.${r.table}`;
      tables.set(k, [...(tables.get(k) ?? []), r]);
    }

    const candidates: ScanCandidate[] = [];
    const skipped: ScanResult['skipped'] = [];
    let done = 0;
    for (const [name, cols] of tables) {
      options.onProgress?.({ table: name, done, total: tables.size });
      const sampled = cols.filter((c) => SAMPLED_CATEGORIES.has(c.category));
      let values: (string | null)[][] = [];
      if (sampled.length > 0) {
        try {
          values = await sample(client, cols[0].schema, cols[0].table, Number(cols[0].reltuples), sampled, sampleRows);
        } catch (e) {
          skipped.push({ table: name, reason: e instanceof Error ? e.message : String(e) });
        }
      }
      for (const col of cols) {
        const i = sampled.indexOf(col);
        const candidate = judge(col, i < 0 ? [] : values.map((row) => row[i]));
        if (candidate && candidate.confidence >= minConfidence) candidates.push(candidate);
      }
      done++;
    }
    options.onProgress?.({ table: '', done, total: tables.size });
    candidates.sort((a, b) => b.confidence - a.confidence || `${a.schema}.${a.table}.${a.column}`.localeCompare(`${b.schema}.${b.table}.${b.column}`));
    return { candidates, tables: tables.size, skipped, yaml: toYaml(candidates) };
  } finally {
    await client.query('ROLLBACK');
  }
}

async function sample(client: Queryable, schema: string, table: string, reltuples: number, cols: ColumnRow[], limit: number): Promise<(string | null)[][]> {
  const rel = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  // TABLESAMPLE SYSTEM reads whole pages at random; on small tables it can return nothing, so only large ones use it.
  const percent = reltuples > limit * 20 ? Math.min(100, Math.max(0.01, ((limit * 5) / reltuples) * 100)) : null;
  const from = percent === null ? rel : `${rel} TABLESAMPLE SYSTEM (${percent.toFixed(4)})`;
  const list = cols.map((c, i) => `left(${quoteIdent(c.column)}::text, 4096) AS c${i}`).join(', ');
  await client.query('SAVEPOINT dbgov_scan');
  try {
    const { rows } = await client.query<Record<string, string | null>>(`SELECT ${list} FROM ${from} LIMIT ${limit}`);
    await client.query('RELEASE SAVEPOINT dbgov_scan');
    return rows.map((r) => cols.map((_, i) => r[`c${i}`] ?? null));
  } catch (e) {
    await client.query('ROLLBACK TO SAVEPOINT dbgov_scan');
    throw e;
  }
}

/** Combines the name heuristic and detector hit ratios into one candidate, or null. */
function judge(col: ColumnRow, values: (string | null)[]): ScanCandidate | null {
  const hits: Partial<Record<DetectorName, number>> = {};
  let nonNull = 0;
  for (const v of values) {
    if (v === null || v === '') continue;
    nonNull++;
    const seen = new Set(detect(v).map((h) => h.detector));
    for (const d of seen) hits[d] = (hits[d] ?? 0) + 1;
  }
  const byName = nameClass(col.column) ?? (col.type === 'inet' || col.type === 'cidr' ? { cls: 'ip' as const, weight: 0.7 } : null);

  let contentClass: BuiltinClass | null = null;
  let ratio = 0;
  for (const d of DETECTOR_NAMES) {
    const r = nonNull === 0 ? 0 : (hits[d] ?? 0) / nonNull;
    if (r > ratio) {
      ratio = r;
      contentClass = DETECTOR_CLASS[d];
    }
  }

  let cls: BuiltinClass | null = null;
  let confidence = 0;
  if (byName && contentClass === byName.cls && ratio > 0) {
    cls = byName.cls;
    confidence = Math.min(0.99, byName.weight + 0.2 + ratio * 0.1);
  } else if (contentClass && ratio >= 0.2 && ratio * 0.9 + 0.05 >= (byName?.weight ?? 0)) {
    cls = contentClass;
    confidence = Math.min(0.95, 0.4 + ratio * 0.55);
  } else if (byName) {
    cls = byName.cls;
    // A name alone, with values sampled that never look like the class, is weaker evidence.
    confidence = nonNull >= 10 && ratio === 0 && byName.cls !== 'secret' && byName.cls !== 'name' && byName.cls !== 'address' ? byName.weight - 0.2 : byName.weight;
  }
  if (!cls || !(BUILTIN_CLASSES as readonly string[]).includes(cls)) return null;
  return {
    schema: col.schema,
    table: col.table,
    column: col.column,
    type: col.type,
    class: cls,
    confidence: Math.round(confidence * 100) / 100,
    evidence: { name: byName?.cls ?? null, sampled: values.length, nonNull, hits },
  };
}

/** The `masking.columns` section for the candidates, with the evidence as comments. */
export function toYaml(candidates: readonly ScanCandidate[]): string {
  const doc = new Document({ masking: { columns: Object.fromEntries(candidates.map((c) => [`${c.schema}.${c.table}.${c.column}`, c.class])) } });
  const columns = doc.getIn(['masking', 'columns'], true) as { items: { key: { comment?: string }; value: { comment?: string } }[] } | undefined;
  for (const [i, c] of candidates.entries()) {
    const hits = Object.entries(c.evidence.hits).map(([d, n]) => `${d} ${n}/${c.evidence.nonNull}`);
    const why = [c.evidence.name ? `name` : null, ...hits].filter(Boolean).join(', ');
    const item = columns?.items[i];
    if (item) item.value.comment = ` confidence ${c.confidence.toFixed(2)}${why ? ` (${why})` : ''}`;
  }
  return doc.toString({ lineWidth: 0 });
}
