/**
 * The MySQL/MariaDB dialect analyser: one COM_QUERY / COM_STMT_PREPARE text in, statement facts out.
 * Pure: no I/O. Executable comments are expanded for the given server version and flavour before
 * anything is classified, so what is analysed is what the server runs.
 */
import { createHash } from 'node:crypto';
import type { MessageAnalysis, OpaqueReason, RelationRef, StatementFacts } from '../facts.js';
import { lexMysql, MysqlLexError, splitStatements, type MysqlDialect, type Token } from './lexer.js';
import { MysqlParseError, MysqlStatementParser } from './parser.js';

export interface MysqlAnalyseOptions extends MysqlDialect {
  /** The session's current database (USE), used to resolve unqualified table names. */
  currentDb?: string;
  /** The server's global sql_mode, which `SET sql_mode = DEFAULT` gives the session; unknown when absent. */
  defaultSqlMode?: string;
}

/** `SET sql_mode = DEFAULT`: the value is the server's global sql_mode, not a mode named DEFAULT. */
export function isDefaultSetting(value: string): boolean {
  return value.toLowerCase() === 'default';
}

/**
 * A non-ASCII character followed by one of the ASCII bytes that a multi-byte client character
 * set takes as the second byte of a character (GBK, Big5, SJIS and CP932 pair a byte from
 * 0x81 up with one from 0x40–0x7E). The gateway reads the text as UTF-8, but the server reads it
 * in the session's character set, which the client picks at login or with SET NAMES: in GBK,
 * `'中\'` is a complete string (the backslash is half of a character), in UTF-8 the string goes
 * on past `\'`. Letters, digits and `_` only ever lengthen a name or a string, which reads the
 * same either way; these may end a string, start a name or be an operator.
 */
const MULTIBYTE_TRAIL = /[\u0080-\uffff][@[\\\]^`{|}~]/;

export function analyseMysql(sql: string, opts: MysqlAnalyseOptions): MessageAnalysis {
  let dialect: MysqlDialect = { serverVersion: opts.serverVersion, mariadb: opts.mariadb, sqlMode: { ...opts.sqlMode } };
  let currentDb = opts.currentDb;
  const trail = MULTIBYTE_TRAIL.exec(sql);
  if (trail) return { statements: [unknown(sql, 'parse-error', `'${trail[0][1]}' right after a non-ASCII character at offset ${trail.index + 1} reads differently in a multi-byte client character set (GBK, Big5, SJIS)`)] };
  let tokens: Token[];
  try {
    tokens = lexMysql(sql, dialect);
  } catch (e) {
    if (e instanceof MysqlLexError) return { statements: [unknown(sql, e.reason, e.message)] };
    throw e;
  }
  let parts = splitStatements(tokens);
  const statements: StatementFacts[] = [];
  for (let k = 0; k < parts.length; k++) {
    const facts = analyseStatement(parts[k], sql, dialect, currentDb);
    statements.push(facts);
    for (const s of facts.settings ?? []) {
      if (s.name === 'database' && s.value !== null) currentDb = s.value;
      if (s.name === 'sql_mode' && !s.local && !s.global && k < parts.length - 1) {
        // The server lexes each statement of a multi-statement message after running the ones before,
        // so a SET sql_mode changes how the rest is read (ANSI_QUOTES turns "x" into an identifier).
        const text = s.value !== null && isDefaultSetting(s.value) ? (opts.defaultSqlMode ?? null) : s.value;
        const mode = text === null ? undefined : sqlModeFlags(text);
        const restFrom = parts[k + 1][0].start;
        if (mode === undefined) {
          for (const rest of parts.slice(k + 1)) statements.push(unknown(sql.slice(rest[0].start, rest[rest.length - 1].end), 'parse-error', 'sql_mode set to a computed value earlier in this message'));
          parts = parts.slice(0, k + 1);
          break;
        }
        dialect = { ...dialect, sqlMode: mode };
        try {
          parts = [...parts.slice(0, k + 1), ...splitStatements(lexMysql(sql, dialect, restFrom))];
        } catch (e) {
          if (!(e instanceof MysqlLexError)) throw e;
          statements.push(unknown(sql.slice(restFrom), e.reason, e.message));
          parts = parts.slice(0, k + 1);
          break;
        }
      }
    }
  }
  if (statements.length > 1) for (const s of statements) s.multiStatement = true;
  return { statements };
}

/** Combination modes that switch ANSI_QUOTES on without naming it (MariaDB, and MySQL before 8.0). */
const IMPLY_ANSI_QUOTES = ['ANSI_QUOTES', 'ANSI', 'DB2', 'MAXDB', 'MSSQL', 'ORACLE', 'POSTGRESQL'];
/** Modes under which the server refuses a value it cannot store instead of changing it. */
const STRICT = ['STRICT_TRANS_TABLES', 'STRICT_ALL_TABLES', 'TRADITIONAL'];

/**
 * The modes by bit, as MariaDB numbers them: `SET sql_mode = 4` sets ANSI_QUOTES, 1048576
 * NO_BACKSLASH_ESCAPES. Read as names, those numbers would set no mode at all.
 */
const MODE_BITS = [
  'REAL_AS_FLOAT', 'PIPES_AS_CONCAT', 'ANSI_QUOTES', 'IGNORE_SPACE', 'IGNORE_BAD_TABLE_OPTIONS', 'ONLY_FULL_GROUP_BY', 'NO_UNSIGNED_SUBTRACTION',
  'NO_DIR_IN_CREATE', 'POSTGRESQL', 'ORACLE', 'MSSQL', 'DB2', 'MAXDB', 'NO_KEY_OPTIONS', 'NO_TABLE_OPTIONS', 'NO_FIELD_OPTIONS', 'MYSQL323',
  'MYSQL40', 'ANSI', 'NO_AUTO_VALUE_ON_ZERO', 'NO_BACKSLASH_ESCAPES', 'STRICT_TRANS_TABLES', 'STRICT_ALL_TABLES', 'NO_ZERO_IN_DATE',
  'NO_ZERO_DATE', 'ALLOW_INVALID_DATES', 'ERROR_FOR_DIVISION_BY_ZERO', 'TRADITIONAL', 'NO_AUTO_CREATE_USER', 'HIGH_NOT_PRECEDENCE',
  'NO_ENGINE_SUBSTITUTION', 'PAD_CHAR_TO_FULL_LENGTH', 'EMPTY_STRING_IS_NULL', 'SIMULTANEOUS_ASSIGNMENT', 'TIME_ROUND_FRACTIONAL',
];

const modesOf = (value: string): string[] => {
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const bits = BigInt(v);
    return MODE_BITS.filter((_, k) => (bits >> BigInt(k)) & 1n);
  }
  return value.toUpperCase().split(',').map((m) => m.trim());
};

/** The flags the analyser needs from an sql_mode value (`ANSI` implies ANSI_QUOTES). */
export function sqlModeFlags(value: string): MysqlDialect['sqlMode'] {
  const modes = modesOf(value);
  return { ansiQuotes: IMPLY_ANSI_QUOTES.some((m) => modes.includes(m)), noBackslashEscapes: modes.includes('NO_BACKSLASH_ESCAPES') };
}

/** Whether an sql_mode value is strict: values that do not fit are refused, not changed. */
export function sqlModeStrict(value: string): boolean {
  const modes = modesOf(value);
  return STRICT.some((m) => modes.includes(m));
}

function analyseStatement(toks: Token[], sql: string, dialect: MysqlDialect, currentDb: string | undefined): StatementFacts {
  const text = sql.slice(toks[0].start, toks[toks.length - 1].end);
  const base = { text, redacted: redact(toks, sql), fingerprint: fingerprint(toks) };
  const nested = (inner: string): StatementFacts => {
    const a = analyseMysql(inner, { ...dialect, ...(currentDb !== undefined ? { currentDb } : {}) });
    // A prepared text holds exactly one statement; anything else the server rejects, and we refuse to guess.
    if (a.statements.length !== 1) return unknown(inner, 'parse-error', 'prepared text must hold exactly one statement');
    return a.statements[0];
  };
  const parser = new MysqlStatementParser(toks, sql, currentDb, nested);
  try {
    const c = parser.classify();
    const facts: StatementFacts = {
      kind: c.kind,
      tag: c.tag,
      ...base,
      relations: parser.relations,
      functions: parser.functions,
      hasWhere: c.kind === 'update' || c.kind === 'delete' ? (c.hasWhere ?? false) : (c.hasWhere ?? null),
      modifyingCte: false,
      multiStatement: false,
    };
    if (c.opaque) facts.opaque = c.opaque;
    if (c.settings && c.settings.length > 0) facts.settings = c.settings;
    if (c.prepare) facts.prepare = c.prepare;
    if (c.execute) facts.execute = c.execute;
    if (c.diagnostics || parser.relations.some(quotesStatements)) facts.diagnostics = true;
    if (parser.bareWhereColumn !== undefined && facts.hasWhere === true) facts.whereTruthOf = parser.bareWhereColumn;
    if (c.actions) facts.actions = c.actions;
    if (parser.retypes.length > 0) facts.retypes = parser.retypes;
    if (c.cursor) facts.cursor = c.cursor;
    if (c.deallocate) facts.deallocate = c.deallocate;
    // A HANDLER OPEN carries the rows its READs will return.
    if (c.lineage && (c.kind === 'select' || c.explainAnalyze || c.cursor?.op === 'declare')) facts.lineage = c.lineage;
    if (parser.predicateColumns.length > 0) facts.predicateColumns = parser.predicateColumns;
    const stores = parser.storedValues();
    if (stores.length > 0) facts.stores = stores;
    if (c.changesResolution) facts.changesResolution = true;
    if (c.explainAnalyze) facts.explainAnalyze = true;
    return facts;
  } catch (e) {
    if (!(e instanceof MysqlParseError)) throw e;
    return { ...unknown(text, 'parse-error', e.message), ...base };
  }
}

/**
 * information_schema tables holding the text of statements other sessions are running (or the
 * key values they lock): literals there are values those statements read or wrote. And tables
 * holding column values themselves: a FULLTEXT index's words (INNODB_FT_INDEX_TABLE / _CACHE),
 * MySQL 8's histograms (COLUMN_STATISTICS: `ANALYZE TABLE users UPDATE HISTOGRAM ON ssn` puts
 * the values in its buckets).
 */
const STATEMENT_TEXT_TABLES = new Set(['processlist', 'innodb_trx', 'innodb_locks', 'query_cache_info', 'innodb_ft_index_table', 'innodb_ft_index_cache', 'column_statistics']);

/**
 * The same texts in performance_schema (on by default in MySQL 8: SQL_TEXT of current and past
 * statements, a thread's PROCESSLIST_INFO, a prepared statement's text, a lock's key value) and
 * in the sys schema's views over it (`sys.processlist`, `sys.session` and their `x$` forms carry
 * the full query). A statement digest there has its literals replaced, but its first text does not.
 */
const PERFORMANCE_TEXT_TABLES = new Set([
  'events_statements_current', 'events_statements_history', 'events_statements_history_long',
  'events_statements_summary_by_digest', 'threads', 'processlist', 'prepared_statements_instances', 'data_locks',
]);
const SYS_TEXT_VIEWS = new Set(['processlist', 'session', 'x$processlist', 'x$session', 'statement_analysis', 'x$statement_analysis']);

function quotesStatements(r: RelationRef): boolean {
  const schema = r.schema?.toLowerCase();
  const name = r.name.toLowerCase();
  if (schema === 'information_schema') return STATEMENT_TEXT_TABLES.has(name);
  if (schema === 'performance_schema') return PERFORMANCE_TEXT_TABLES.has(name);
  return schema === 'sys' && SYS_TEXT_VIEWS.has(name);
}

function unknown(text: string, reason: OpaqueReason, detail: string): StatementFacts {
  return {
    kind: 'unknown',
    tag: 'UNKNOWN',
    text,
    // Unlexable text may hold literals we cannot delimit: store none of it.
    redacted: '<unparsed>',
    fingerprint: hash(`unknown:${reason}`),
    relations: [],
    functions: [],
    hasWhere: null,
    modifyingCte: false,
    multiStatement: false,
    opaque: { reason, detail },
  };
}

const isLiteral = (t: Token): boolean => t.type === 'string' || t.type === 'number';

/** The statement as the server runs it, with every literal replaced by `?` and comments dropped. */
function redact(toks: Token[], sql: string): string {
  let out = '';
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k];
    if (k > 0) {
      const gap = sql.slice(toks[k - 1].end, t.start);
      out += gap === '' ? '' : /^\s+$/.test(gap) ? gap : ' ';
    }
    out += isLiteral(t) ? '?' : t.text;
  }
  return out;
}

/** Hash of the normalised token stream: keywords upper-cased, names lower-cased, literal lists collapsed. */
function fingerprint(toks: Token[]): string {
  const norm: string[] = [];
  for (const t of toks) {
    const v = isLiteral(t) || t.type === 'param' ? '?' : t.type === 'word' ? t.value : t.type === 'quoted' ? t.value.toLowerCase() : t.text;
    // `IN (?, ?, ?)` and `IN (?)` share a shape.
    if (v === '?' && norm[norm.length - 1] === ',' && norm[norm.length - 2] === '?') {
      norm.pop();
      continue;
    }
    norm.push(v);
  }
  return hash(norm.join(' '));
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}
