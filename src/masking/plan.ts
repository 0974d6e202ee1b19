/**
 * Which result columns to mask, and how, for one statement and one identity.
 *
 * A column is classified by its origin (RowDescription's table OID and attribute number) and by
 * its lineage from the parse tree; the union of both counts, so neither a view (whose origin is
 * the view) nor an expression (whose origin is 0) hides a classified source.
 */
import type { ColumnLineage, RelationRef } from '../sql/facts.js';
import type { ClientError, MaskPlan, ResultColumn } from '../gateway/engine.js';
import type { IdentityRef } from '../shared/types.js';
import { classifyColumn, classifyTable, contentScanOn, mayUnmask, type ColumnClassification, type MaskFunctionName, type MaskingConfig } from './config.js';
import { carriesText, compileContentScan, compileMask, type MaskFn, type MaskSpec } from './functions.js';

export interface ColumnName {
  schema: string;
  table: string;
  column: string;
}

export interface MaskPlanInput {
  columns: readonly ResultColumn[];
  /** Output lineage with sources resolved to real schema.table.column; absent when unknown. */
  lineage?: readonly ColumnLineage[];
  /** Relations the statement touches (resolved names preferred); absent means unknown. */
  relations?: readonly RelationRef[];
  /** (table OID, attnum) → the column, from the catalog. */
  resolve(tableOid: number, attnum: number): ColumnName | undefined;
  /**
   * Whether the OID is a table holding its own values (PostgreSQL). A view's column is what the
   * view computes: its name alone says nothing about what the value carries. Absent: all are.
   */
  isBaseTable?(tableOid: number): boolean;
  identity: IdentityRef;
  target: string;
  config: MaskingConfig;
  /** Classes an approval unmasked for this statement. */
  approvedClasses?: readonly string[];
}

/** The statement must not return rows: lineage could not prove a column safe and policy says block. */
export interface MaskBlock {
  blocked: true;
  /** Output columns that could not be proven safe. */
  columns: string[];
  error: ClientError;
}

export function isMaskBlock<T extends object>(x: T | MaskBlock | null): x is MaskBlock {
  return x !== null && 'blocked' in x;
}

/** How one output column is treated. */
export type ColumnDecision =
  /** `unmasked`: a classified source this identity may see in clear (recorded in the audit). */
  | { kind: 'clear'; unmasked?: string }
  | { kind: 'mask'; spec: MaskSpec; label: string }
  | { kind: 'unprovable'; label: string };

const UNPROVABLE_SPEC: MaskSpec = {
  function: 'redact',
  shape: 'text',
  options: { replacement: '****', keepLast: 0, length: 16, prefix: 'tok_' },
};

interface Source {
  schema?: string;
  table: string;
  column: string;
}

function qualified(s: Source): string {
  return `${s.schema ?? '*'}.${s.table}.${s.column}`;
}

/** Classifications of one source column; `*` stands for every classified column of its table. */
function classesOf(config: MaskingConfig, target: string, s: Source): ColumnClassification[] {
  if (s.column === '*') return classifyTable(config, target, s.schema, s.table);
  const c = classifyColumn(config, target, s.schema, s.table, s.column);
  return c ? [c] : [];
}

/**
 * The function for a derived value. Partial and fake masks assume the value is the column
 * itself; over an expression (a substring, a concatenation) they could keep the clear part.
 * Hash is not kept either: a derived value may be one the client chose (`concat(left(card, 0),
 * '<guess>')`, a UNION with a literal, a CASE branch), and a token of it under the column's
 * function would let the client hash guesses and compare them with the real tokens. Only a
 * plain column reads as a token.
 */
function derivedFunction(fns: MaskFunctionName[]): MaskFunctionName {
  return fns.includes('null') ? 'null' : 'redact';
}

function sameSource(a: Source, b: Source): boolean {
  const eq = (x: string, y: string): boolean => x.toLowerCase() === y.toLowerCase();
  return eq(a.table, b.table) && eq(a.column, b.column) && (a.schema === undefined || b.schema === undefined || eq(a.schema, b.schema));
}

/**
 * The table column the server says a MySQL result column is (org_table / org_name): a plain
 * column reference, whatever the analyser made of the text. It counts with lineage, so a
 * statement the analyser misread (lexed differently from the server, say) cannot return a
 * classified column in clear under another column's lineage.
 */
function serverOrigin(col: ResultColumn): Source | undefined {
  if (!col.orgTable || !col.orgName) return undefined;
  return { ...(col.orgSchema ? { schema: col.orgSchema } : {}), table: col.orgTable, column: col.orgName };
}

/** Decides one column for one identity. Exposed for `dbgov policy explain` and tests. */
export function decideColumn(input: MaskPlanInput, col: ResultColumn, lineage: ColumnLineage | undefined, touchesMasked: boolean): ColumnDecision {
  const { config, target, identity, approvedClasses } = input;
  const origin: Source | undefined = col.tableOid ? input.resolve(col.tableOid, col.attnum ?? 0) : serverOrigin(col);
  const sources: Source[] = [];
  if (origin) sources.push(origin);
  if (lineage) sources.push(...lineage.sources);

  const hidden: { c: ColumnClassification; s: Source }[] = [];
  const visible: Source[] = [];
  for (const s of sources) {
    for (const c of classesOf(config, target, s)) {
      if (!mayUnmask(config, identity, target, c.cls.name, approvedClasses)) hidden.push({ c, s });
      else visible.push(s);
    }
  }

  if (hidden.length > 0) {
    const names = [...new Set(hidden.map((h) => qualified(h.s)))];
    // The value is the classified column itself: the server saw a plain reference to that very
    // column (origin), or lineage says so where the server names none that is classified
    // (MariaDB names a derived table's column as the origin of what reads through it).
    const originHidden = origin !== undefined && hidden.some((h) => sameSource(h.s, origin));
    const direct = originHidden ? hidden.every((h) => sameSource(h.s, origin)) : lineage?.direct === true && lineage.sources.length <= 1;
    const single = new Set(hidden.map((h) => `${h.c.cls.name}/${h.c.function}`)).size === 1 && hidden.every((h) => h.s.column !== '*');
    if (direct && single) {
      const { cls, function: fn } = hidden[0].c;
      return { kind: 'mask', spec: { function: fn, shape: cls.shape, options: cls.options }, label: names[0] };
    }
    const fn = derivedFunction(hidden.map((h) => h.c.function));
    return { kind: 'mask', spec: { function: fn, shape: 'text', options: UNPROVABLE_SPEC.options }, label: `${col.name} (${names.join(', ')})` };
  }

  // Unknown origin (catalog miss) or unknown lineage of a derived value: safe only if the
  // statement touches nothing this identity may not see.
  // RowDescription names a view's column for `SELECT n FROM v`: without lineage, unknown too.
  const viewOrigin = col.tableOid !== undefined && col.tableOid !== 0 && input.isBaseTable?.(col.tableOid) === false && lineage === undefined;
  const originUnknown = (col.tableOid !== undefined && col.tableOid !== 0 && origin === undefined) || viewOrigin;
  const lineageUnknown = lineage === undefined ? !col.tableOid : lineage.opaque;
  if ((originUnknown || lineageUnknown) && touchesMasked) return { kind: 'unprovable', label: `${col.name} (unprovable)` };
  return visible.length > 0 ? { kind: 'clear', unmasked: [...new Set(visible.map(qualified))].join(', ') } : { kind: 'clear' };
}

/** Whether the statement touches a table holding a class this identity may not see. */
function touchesMaskedData(input: MaskPlanInput): boolean {
  const { config, target, identity, approvedClasses } = input;
  if (config.columns.length === 0) return false;
  // Unknown relations: assume the worst, so an unanalysed statement cannot read classified columns in clear.
  if (!input.relations) return true;
  return input.relations.some((r) => {
    const schema = r.resolved?.schema ?? r.schema;
    const table = r.resolved?.name ?? r.name;
    return classifyTable(config, target, schema, table).some((c) => !mayUnmask(config, identity, target, c.cls.name, approvedClasses));
  });
}

/** Per-position decisions for a result; shared by row and COPY plans. */
export function decideColumns(input: MaskPlanInput): ColumnDecision[] {
  // Lineage that does not line up with the result cannot be trusted position by position.
  const lineage = input.lineage && input.lineage.length === input.columns.length ? input.lineage : undefined;
  const touchesMasked = touchesMaskedData(input);
  return input.columns.map((col, i) => decideColumn(input, col, lineage?.[i], touchesMasked));
}

function blockFor(columns: string[]): MaskBlock {
  return {
    blocked: true,
    columns,
    error: {
      message: 'dbgov: blocked: a result column may carry classified data that masking cannot follow',
      detail: `rule: masking.onUnprovable = block; columns: ${columns.join(', ')}`,
      hint: 'Select the classified columns directly (they are masked), or ask for an approval to see them in clear.',
      sqlstate: '42501',
    },
  };
}

/**
 * The mask plan for one result, null when every column goes out unchanged, or a MaskBlock when
 * `onUnprovable: block` and a column cannot be proven safe.
 */
export function buildMaskPlan(input: MaskPlanInput): MaskPlan | MaskBlock | null {
  const decisions = decideColumns(input);
  const unprovable = decisions.flatMap((d) => (d.kind === 'unprovable' ? [d.label] : []));
  if (unprovable.length > 0 && input.config.onUnprovable === 'block') return blockFor(unprovable);

  const scan = contentScanOn(input.config, input.target) ? compileContentScan(input.config.contentScan!.detectors) : null;
  const columns: MaskPlan['columns'] = [];
  const maskedColumns: string[] = [];
  const unmaskedColumns: string[] = [];
  for (const [i, d] of decisions.entries()) {
    const col = input.columns[i];
    if (d.kind === 'clear' && d.unmasked) unmaskedColumns.push(d.unmasked);
    const mask = maskFor(d, input.config.key, scan, col.typeId);
    if (mask === null) continue;
    columns.push({ index: col.index, mask });
    if (d.kind !== 'clear') maskedColumns.push(d.label);
  }
  if (columns.length === 0 && unmaskedColumns.length === 0) return null;
  // A plan with no columns only tells the audit what was read in clear; rows pass untouched.
  return { columns, maskedColumns, ...(unmaskedColumns.length ? { unmaskedColumns } : {}) };
}

/** The mask for one decision; null when the column passes through untouched. */
export function maskFor(d: ColumnDecision, key: Buffer | null, scan: MaskFn | null, typeId: number): MaskFn | null {
  switch (d.kind) {
    case 'clear':
      return scan && carriesText(typeId) ? scan : null;
    case 'mask':
      return compileMask(d.spec, key);
    case 'unprovable':
      return compileMask(UNPROVABLE_SPEC, key);
    default: {
      const never: never = d;
      return never;
    }
  }
}
