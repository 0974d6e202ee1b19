/**
 * PostgreSQL statement analysis on the real parser (libpg-query, PostgreSQL 18 grammar).
 * `analysePostgres` turns one protocol message's SQL into statement facts; it never throws for
 * bad SQL: what it cannot understand comes back opaque, and protected environments block it.
 */
import { createHash } from 'node:crypto';
import { fingerprintSync, loadModule, parseSync } from 'libpg-query';
import { DbgovError } from '../shared/errors.js';
import type { MessageAnalysis, StatementFacts } from './facts.js';
import { statementLineage } from './lineage.js';
import { as, isObject, list, names, str, sval, unwrap, type PgNode } from './postgres/ast.js';
import { classify, explainRuns } from './postgres/classify.js';
import { Walker, defaultAccessOf, type Setting } from './postgres/collect.js';
import { fold } from './postgres/constant.js';
import { UNREDACTABLE, redact } from './postgres/redact.js';
import { typeRefOf } from './postgres/retype.js';

let loading: Promise<void> | undefined;
let loaded = false;

/** Loads the WASM parser once (~130 ms). Safe to call any number of times. */
export function loadSqlParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    loaded = true;
  });
  return loading;
}

export function isSqlParserLoaded(): boolean {
  return loaded;
}

export class SqlParserNotLoadedError extends DbgovError {
  constructor() {
    super('sql-parser-not-loaded', 'The SQL parser is not loaded yet.', {
      actions: ['Call and await loadSqlParser() once at startup, before analysing statements.'],
    });
  }
}

export function analysePostgres(sql: string): MessageAnalysis {
  if (!loaded) throw new SqlParserNotLoadedError();
  let stmts;
  try {
    stmts = parseSync(sql).stmts ?? [];
  } catch (e) {
    return { statements: [parseFailure(sql, e)] };
  }
  const multi = stmts.length > 1;
  // stmt_location / stmt_len are UTF-8 byte offsets; location is omitted when 0 and the last
  // statement's length is 0, meaning "to the end".
  const bytes = Buffer.from(sql, 'utf8');
  const statements: StatementFacts[] = [];
  for (const raw of stmts) {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
    const text = multi ? bytes.subarray(start, end).toString('utf8').trim() : sql.trim();
    statements.push(analyseStatement(raw.stmt, text, multi));
  }
  return { statements };
}

/**
 * Analysis under the session's settings. The parser lexes as the server does with
 * standard_conforming_strings on (the default). With it off, a backslash in a '…' literal escapes
 * the next character, so the server ends literals elsewhere: `SELECT '\''; DELETE FROM t; --'`
 * is one literal to the parser and a DELETE to the server. A text with a backslash is then not
 * analysed: every statement in it is opaque. The server reports the setting (ParameterStatus),
 * and the session marks it unknown while a SET of it is on its way (see applySettings).
 */
export function postgresSessionAnalyser(analyse: (sql: string) => MessageAnalysis): (sql: string, params: ReadonlyMap<string, string>) => MessageAnalysis {
  return (sql, params) => {
    const a = analyse(sql);
    const scs = params.get('standard_conforming_strings');
    if (scs === undefined || scs === 'on' || !sql.includes('\\')) return a;
    const opaque = { reason: 'nonstandard-strings' as const, detail: `standard_conforming_strings is ${scs === 'off' ? 'off' : 'being changed'}, so a backslash may end a string literal where the parser does not see it` };
    return { statements: a.statements.map((f) => ({ ...f, lineage: undefined, opaque })) };
  };
}

function parseFailure(sql: string, e: unknown): StatementFacts {
  const redacted = redact(sql);
  const message = e instanceof Error ? e.message : String(e);
  return {
    kind: 'unknown',
    tag: 'UNKNOWN',
    text: sql,
    redacted,
    fingerprint: unparsedFingerprint(redacted === UNREDACTABLE ? sql : redacted),
    relations: [],
    functions: [],
    hasWhere: null,
    modifyingCte: false,
    multiStatement: false,
    opaque: { reason: 'parse-error', detail: message },
  };
}

function unparsedFingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function fingerprintOf(text: string): string {
  try {
    return fingerprintSync(text);
  } catch {
    return unparsedFingerprint(text);
  }
}

function analyseStatement(stmt: unknown, text: string, multi: boolean): StatementFacts {
  const w = unwrap(stmt);
  const base = { text, redacted: redact(text), fingerprint: fingerprintOf(text), multiStatement: multi };
  const cls = w ? classify(w[0], w[1]) : undefined;
  if (!w || !cls) {
    return {
      ...base,
      kind: 'unknown',
      tag: 'UNKNOWN',
      relations: [],
      functions: [],
      hasWhere: null,
      modifyingCte: false,
      opaque: { reason: 'unclassified-statement', detail: `statement type ${w?.[0] ?? 'none'} is not classified` },
    };
  }
  const [type, node] = w;
  if (type === 'ExplainStmt' && explainRuns(node.options)) {
    // EXPLAIN ANALYZE executes its statement: policy sees that statement.
    const inner = analyseStatement(node.query, text, multi);
    // Its result is the plan, one text column, whatever the inner statement returns.
    return { ...inner, ...base, tag: 'EXPLAIN', explainAnalyze: true, lineage: [{ index: 0, name: 'QUERY PLAN', sources: [], opaque: false, direct: false }] };
  }
  if (type === 'PrepareStmt') {
    // PREPARE carries its statement's kind, relations and risks so that policy judging the
    // PREPARE judges what a later EXECUTE will run; `prepare.inner` keeps them for EXECUTE.
    const inner = analyseStatement(node.query, text, multi);
    const name = str(node.name) ?? '';
    return { ...inner, ...base, tag: 'PREPARE', prepare: { name, inner } };
  }
  return facts(type, node, cls.kind, cls.tag, base);
}

function facts(
  type: string,
  node: PgNode,
  kind: StatementFacts['kind'],
  tag: string,
  base: Pick<StatementFacts, 'text' | 'redacted' | 'fingerprint' | 'multiStatement'>,
): StatementFacts {
  const walker = new Walker(type === 'CreateFunctionStmt' ? base.text : undefined);
  if (type === 'DoStmt') walker.doBlock(node);
  else if (type === 'ExplainStmt') {
    // Plain EXPLAIN only plans: everything it names is read at most.
    const inner = unwrap(node.query);
    if (inner) walker.statement(inner[0], inner[1], 'read');
    for (const r of walker.out.relations) r.access = 'read';
  } else walker.statement(type, node, defaultAccessOf(type));
  const out = walker.out;
  const settings = [...settingsOf(type, node), ...out.settings];
  const f: StatementFacts = {
    ...base,
    kind,
    tag,
    relations: out.relations,
    functions: out.functions,
    hasWhere: null,
    modifyingCte: out.modifyingCte,
  };
  // Every UPDATE/DELETE/MERGE (and upsert: an UPDATE of the rows it conflicts with) the statement
  // runs counts, wherever it sits: a data-modifying CTE behind a harmless SELECT, the query of
  // `COPY (DELETE FROM t RETURNING *) TO STDOUT`, a rule's actions (they run on every matching
  // write). Not what runs later or never: a function body (judged when a call runs it), a plain
  // EXPLAIN (it only plans), a DO block (opaque, refused on its own account).
  if (out.restricted.length > 0 && !RUNS_NOTHING_NOW.has(type)) {
    f.hasWhere = out.restricted.length === 0 ? null : out.restricted.every(Boolean);
    if (f.hasWhere === true && out.whereTruthOf !== undefined && out.restricted.length === 1) f.whereTruthOf = out.whereTruthOf;
    if (f.hasWhere === true && out.whereBareNames !== undefined && out.restricted.length === 1) f.whereBareNames = out.whereBareNames;
  }
  if (out.opaque) f.opaque = out.opaque;
  if (out.implicitCalls.length > 0) f.implicitCalls = out.implicitCalls;
  if (settings.length > 0) f.settings = settings;
  if (out.predicateColumns.length > 0) f.predicateColumns = out.predicateColumns;
  if (type === 'ExecuteStmt') f.execute = { name: str(node.name) ?? '' };
  if (type === 'AlterTableStmt') {
    const { actions, retypes } = alterActions(node);
    if (actions.length > 0) f.actions = actions;
    if (retypes.length > 0) f.retypes = retypes;
  }
  const typesChanged = typesChangedBy(type, node);
  if (typesChanged.length > 0) f.typesChanged = typesChanged;
  const functionsChanged = functionsChangedBy(type, node);
  if (functionsChanged.length > 0) f.functionsChanged = functionsChanged;
  if (type === 'DeallocateStmt') f.deallocate = { name: node.isall === true || str(node.name) === undefined ? null : str(node.name)! };
  if (type === 'CopyStmt') f.copy = copyFormat(node);
  // Cursors: FETCH returns rows of the DECLAREd query, so masking needs to link the two.
  if (type === 'DeclareCursorStmt') f.cursor = { name: str(node.portalname) ?? '', op: 'declare' };
  if (type === 'FetchStmt') f.cursor = { name: str(node.portalname) ?? '', op: node.ismove === true ? 'move' : 'fetch' };
  if (type === 'ClosePortalStmt') f.cursor = { name: str(node.portalname) ?? '', op: 'close' };
  const renamed = renamedNames(type, node);
  if (renamed.length > 0) f.renamed = renamed;
  const renamesInto = renamedInto(type, node);
  if (renamesInto.length > 0) f.renamesInto = renamesInto;
  if (changesResolution(type, node, settings)) f.changesResolution = true;
  const lineage = statementLineage(type, node);
  if (lineage) f.lineage = lineage;
  return f;
}

/** Statements whose inner UPDATE/DELETE/MERGE does not run as part of them. */
const RUNS_NOTHING_NOW: ReadonlySet<string> = new Set(['CreateFunctionStmt', 'ExplainStmt', 'DoStmt']);

/** SET / RESET / SET ROLE / SET SESSION AUTHORIZATION / DISCARD ALL, as the session must track them. */
function settingsOf(type: string, n: PgNode): Setting[] {
  if (type === 'DiscardStmt' && n.target === 'DISCARD_ALL') return [{ name: 'all', value: null, local: false }];
  if (type !== 'VariableSetStmt') return [];
  const local = n.is_local === true;
  const name = (str(n.name) ?? '').toLowerCase();
  switch (n.kind) {
    case 'VAR_SET_VALUE':
      return [{ name, value: settingValue(name, list(n.args)), local }];
    case 'VAR_SET_DEFAULT':
    case 'VAR_SET_CURRENT':
    case 'VAR_RESET':
      return [{ name, value: null, local }];
    case 'VAR_RESET_ALL':
      return [{ name: 'all', value: null, local }];
    case 'VAR_SET_MULTI':
      return [{ name, value: null, local }];
    default:
      return [];
  }
}

/** The value in the form the server reports it (search_path entries quoted as needed). */
function settingValue(name: string, args: unknown[]): string {
  const parts = args.map((a) => {
    const v = fold(a);
    const s = v === undefined || v === null ? '' : String(v);
    if (name !== 'search_path') return s;
    return isPlainIdentifier(s) ? s : `"${s.replaceAll('"', '""')}"`;
  });
  return parts.join(', ');
}

function isPlainIdentifier(s: string): boolean {
  if (s === '$user') return true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const lower = c >= 97 && c <= 122;
    const digit = c >= 48 && c <= 57;
    if (!(lower || c === 95 || (i > 0 && (digit || c === 36)))) return false;
  }
  return s.length > 0;
}

/** Statements after which a name may resolve to a different object (new shadowing, new path). */
const RESOLUTION_SETTINGS = new Set(['search_path', 'role', 'session_authorization', 'all']);

function changesResolution(type: string, n: PgNode, settings: Setting[]): boolean {
  if (settings.some((s) => RESOLUTION_SETTINGS.has(s.name))) return true;
  switch (type) {
    case 'RuleStmt':
    case 'CreateTrigStmt':
    case 'CreateStmt':
    case 'CreateTableAsStmt':
    case 'ViewStmt':
    case 'CreateForeignTableStmt':
    case 'RenameStmt':
    case 'AlterObjectSchemaStmt':
    case 'CreateSchemaStmt':
    case 'CreateSeqStmt':
    case 'DropStmt':
      return true;
    case 'SelectStmt':
      return isObject(n.intoClause);
    default:
      return false;
  }
}

/** Relation kinds a RENAME or SET SCHEMA can give another name. */
const RENAMED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE', 'OBJECT_COLUMN']);

/** See StatementFacts.renamed. */
function renamedNames(type: string, n: PgNode): string[] {
  const rel = isObject(n.relation) ? str(n.relation.relname) : undefined;
  if (type === 'RenameStmt') {
    if (n.renameType === 'OBJECT_SCHEMA') return ['*'];
    if (!RENAMED_RELATIONS.has(String(n.renameType)) || rel === undefined) return [];
    // A column rename keeps the table's name; the table's columns are what changed.
    return n.renameType === 'OBJECT_COLUMN' ? [rel.toLowerCase()] : [rel.toLowerCase(), (str(n.newname) ?? '').toLowerCase()];
  }
  if (type === 'AlterObjectSchemaStmt' && RENAMED_RELATIONS.has(String(n.objectType)) && rel !== undefined) return [rel.toLowerCase()];
  return [];
}

/** See StatementFacts.renamesInto. */
function renamedInto(type: string, n: PgNode): NonNullable<StatementFacts['renamesInto']> {
  const rel = isObject(n.relation) ? n.relation : undefined;
  const table = str(rel?.relname);
  const schema = str(rel?.schemaname);
  const at = schema === undefined ? {} : { schema };
  const newname = str(n.newname);
  if (type === 'RenameStmt') {
    if (n.renameType === 'OBJECT_SCHEMA') return newname !== undefined && str(n.subname) !== undefined ? [{ schema: newname, table: '*', from: str(n.subname)! }] : [];
    if (table === undefined || newname === undefined || !RENAMED_RELATIONS.has(String(n.renameType))) return [];
    if (n.renameType === 'OBJECT_COLUMN') return str(n.subname) !== undefined ? [{ ...at, table, column: newname, from: str(n.subname)! }] : [];
    return [{ ...at, table: newname }];
  }
  if (type === 'AlterObjectSchemaStmt' && RENAMED_RELATIONS.has(String(n.objectType)) && table !== undefined && str(n.newschema) !== undefined) return [{ schema: str(n.newschema)!, table }];
  return [];
}

/** COPY's format options (WITH (FORMAT csv, DELIMITER '|', …) and the legacy `DELIMITER '|' CSV`). */
function copyFormat(node: PgNode): NonNullable<StatementFacts['copy']> {
  const out: NonNullable<StatementFacts['copy']> = { format: 'text' };
  for (const o of list(node.options)) {
    const d = as(o, 'DefElem');
    if (!d) continue;
    const name = str(d.defname);
    const text = sval(d.arg);
    const bool = as(d.arg, 'Boolean')?.boolval;
    switch (name) {
      case 'format':
        if (text === 'csv' || text === 'binary' || text === 'text') out.format = text;
        break;
      case 'delimiter':
        if (text !== undefined) out.delimiter = text;
        break;
      case 'quote':
        if (text !== undefined) out.quote = text;
        break;
      case 'escape':
        if (text !== undefined) out.escape = text;
        break;
      case 'null':
        if (text !== undefined) out.null = text;
        break;
      case 'encoding':
        // The output's encoding (COPY FROM's input is not read by the gateway).
        if (text !== undefined && node.is_from !== true) out.encoding = text;
        break;
      case 'header':
        // HEADER, HEADER true, HEADER MATCH (COPY FROM only): any of them means a header line.
        out.header = bool !== false && text !== 'false' && text !== 'off';
        break;
      default:
        break;
    }
  }
  return out;
}

/** ALTER TABLE subcommands that switch off a protection, and the action each is reported as. */
const DISABLES: Record<string, string> = {
  AT_DisableTrig: 'ALTER TABLE DISABLE TRIGGER',
  AT_DisableTrigAll: 'ALTER TABLE DISABLE TRIGGER',
  AT_DisableTrigUser: 'ALTER TABLE DISABLE TRIGGER',
  AT_DisableRule: 'ALTER TABLE DISABLE RULE',
  // Fire only in replica mode: off for every ordinary session.
  AT_EnableReplicaTrig: 'ALTER TABLE DISABLE TRIGGER',
  AT_EnableReplicaRule: 'ALTER TABLE DISABLE RULE',
  AT_DisableRowSecurity: 'ALTER TABLE DISABLE ROW LEVEL SECURITY',
  AT_NoForceRowSecurity: 'ALTER TABLE DISABLE ROW LEVEL SECURITY',
};

/** What an ALTER TABLE does to rows already there (see StatementFacts.actions and .retypes). */
function alterActions(node: PgNode): { actions: string[]; retypes: NonNullable<StatementFacts['retypes']> } {
  const out = new Set<string>();
  const retypes: NonNullable<StatementFacts['retypes']> = [];
  for (const c of list(node.cmds)) {
    const cmd = as(c, 'AlterTableCmd');
    if (!cmd) continue;
    if (cmd.subtype === 'AT_DropColumn') out.add('ALTER TABLE DROP COLUMN');
    // Switching off what guards the rows (triggers, rules, row security) for every session:
    // what session_replication_role = replica does for one.
    const off = DISABLES[String(cmd.subtype)];
    if (off !== undefined) out.add(off);
    if (cmd.subtype === 'AT_AlterColumnType') {
      // Every type change rewrites the column: with USING, each row gets the expression's value
      // (`USING NULL`, `USING 'x' || left(c, 0)`, `USING c::varchar(1)`, an explicit cast that
      // truncates); without it (or with USING c), the assignment cast's, and `"char"` keeps one
      // byte, numeric → int rounds. It counts as overwriting unless the broker proves from the
      // column's current type that the conversion keeps every value (src/sql/postgres/retype.ts).
      const def = as(cmd.def, 'ColumnDef');
      const using = def?.raw_default;
      const column = str(cmd.name) ?? '';
      out.add('ALTER TABLE OVERWRITE COLUMN');
      retypes.push({ column, type: typeRefOf(def?.typeName), rewrites: using !== undefined && !keepsColumn(using, column, def?.typeName) });
    }
  }
  return { actions: [...out], retypes };
}

/** Names of types a statement may define or change (see StatementFacts.typesChanged). */
function typesChangedBy(type: string, n: PgNode): string[] {
  const relname = (x: unknown): string[] => {
    const r = as(x, 'RangeVar') ?? (isObject(x) ? x : undefined);
    const name = str(r?.relname);
    return name === undefined ? ['*'] : [name.toLowerCase()];
  };
  const last = (x: unknown): string[] => {
    const parts = names(x);
    return parts.length === 0 ? ['*'] : [parts[parts.length - 1].toLowerCase()];
  };
  switch (type) {
    case 'AlterTableStmt':
      // A table's row type is a type too, and its column types are what the catalog now misstates.
      return list(n.cmds).some((c) => as(c, 'AlterTableCmd')?.subtype === 'AT_AlterColumnType') ? relname(n.relation) : [];
    case 'CreateStmt':
    case 'CreateForeignTableStmt':
      return relname(isObject(n.base) ? n.base.relation : n.relation);
    case 'CreateTableAsStmt':
      return relname(isObject(n.into) ? n.into.rel : undefined);
    case 'SelectStmt':
      return isObject(n.intoClause) ? relname(n.intoClause.rel) : [];
    case 'ViewStmt':
      return relname(n.view);
    case 'CreateSeqStmt':
      return relname(n.sequence);
    case 'CompositeTypeStmt':
      return relname(n.typevar);
    case 'CreateDomainStmt':
      return last(n.domainname);
    case 'CreateEnumStmt':
      return last(n.typeName);
    case 'DefineStmt':
      return n.kind === 'OBJECT_TYPE' ? last(n.defnames) : [];
    case 'RenameStmt':
      return [(str(n.newname) ?? '*').toLowerCase()];
    // A range type also makes a multirange (named by an option or derived); these move or make
    // types whose names the statement does not spell out.
    case 'CreateRangeStmt':
    case 'AlterObjectSchemaStmt':
    case 'CreateExtensionStmt':
    case 'AlterExtensionStmt':
    case 'AlterExtensionContentsStmt':
    case 'ImportForeignSchemaStmt':
      return ['*'];
    case 'CreateSchemaStmt':
      return list(n.schemaElts).length > 0 ? ['*'] : [];
    default:
      return [];
  }
}

const ROUTINE_OBJECTS: ReadonlySet<string> = new Set(['OBJECT_FUNCTION', 'OBJECT_PROCEDURE', 'OBJECT_ROUTINE', 'OBJECT_AGGREGATE']);

/**
 * Names of functions a statement may define or change (see StatementFacts.functionsChanged): one
 * it creates or replaces, alters (its volatility decides whether its body is judged), renames
 * (the old name and the new) or moves to another schema (one earlier on the path shadows); an
 * operator (`operator:<symbol>`) or cast (`cast:<target type>`) it creates or moves; `*` for
 * statements that bring functions they do not name (an extension).
 */
function functionsChangedBy(type: string, n: PgNode): string[] {
  const last = (x: unknown): string[] => {
    const parts = names(x);
    return parts.length === 0 ? ['*'] : [parts[parts.length - 1].toLowerCase()];
  };
  // ObjectWithArgs, bare (ALTER FUNCTION) or wrapped (RENAME, SET SCHEMA).
  const routine = (x: unknown): string[] => last((as(x, 'ObjectWithArgs') ?? (isObject(x) ? x : undefined))?.objname);
  switch (type) {
    case 'CreateFunctionStmt':
      return last(n.funcname);
    case 'AlterFunctionStmt':
      return routine(n.func);
    case 'DefineStmt':
      // An operator is named `operator:<symbol>`: expressions call it without naming a function.
      return n.kind === 'OBJECT_AGGREGATE' ? last(n.defnames) : n.kind === 'OBJECT_OPERATOR' ? last(n.defnames).map((x) => `operator:${x}`) : [];
    case 'CreateCastStmt':
      return last(isObject(n.targettype) ? n.targettype.names : undefined).map((x) => `cast:${x}`);
    case 'RenameStmt':
      return typeof n.renameType === 'string' && ROUTINE_OBJECTS.has(n.renameType) ? [...routine(n.object), (str(n.newname) ?? '*').toLowerCase()] : [];
    case 'AlterObjectSchemaStmt':
      if (n.objectType === 'OBJECT_OPERATOR') return routine(n.object).map((x) => `operator:${x}`);
      return typeof n.objectType === 'string' && ROUTINE_OBJECTS.has(n.objectType) ? routine(n.object) : [];
    case 'CreateExtensionStmt':
    case 'AlterExtensionStmt':
    case 'AlterExtensionContentsStmt':
      return ['*'];
    default:
      return [];
  }
}

/** `c`, or `c::T` / `CAST(c AS T)` where T is the ALTER's new type and has no modifier (no `varchar(1)`). */
function keepsColumn(x: unknown, column: string, newType: unknown): boolean {
  const ref = as(x, 'ColumnRef');
  if (ref) {
    const fields = list(ref.fields);
    return fields.length === 1 && sval(fields[0]) === column;
  }
  const c = as(x, 'TypeCast');
  if (!c || !isObject(c.typeName) || !isObject(newType)) return false;
  const plain = (t: PgNode): string | undefined => (list(t.typmods).length > 0 || list(t.arrayBounds).length > 0 ? undefined : names(t.names).pop());
  const target = plain(c.typeName);
  return target !== undefined && target === plain(newType) && as(c.arg, 'ColumnRef') !== undefined && keepsColumn(c.arg, column, newType);
}
