/**
 * Literal normalisation for the analysis cache. A client sending COM_QUERY text makes a new text
 * for every literal (`SELECT v FROM kv WHERE id = 42`, `… id = 43`), and every new text would be
 * lexed and parsed again. For a narrow, plain subset of statements the literals of the WHERE
 * clause do not change what the analyser reports, so such texts share the analysis of one
 * normalised text, `SELECT v FROM kv WHERE id = ?`.
 *
 * Why the facts cannot depend on the replaced literals (src/sql/mysql/parser.ts): inside WHERE,
 * the analyser reads literal values only in the tautology rule (`isTautology`, which decides
 * `hasWhere` for UPDATE/DELETE), and token types only there and in `scanExpr` (a word followed
 * by a string is a typed literal such as `DATE '…'`, not a column). The WHERE accepted here is
 * built only of atoms `column op literal` joined by AND/OR and parentheses, with `column` a
 * plain, non-reserved name. In every disjunct the tautology rule sees, the first comparison is
 * then such an atom: its left side starts with `(` or a name, its right side with the literal,
 * so `x = x` cannot match, and a one-token name is never a literal (TRUE/FALSE are reserved),
 * so `'a' = 'a'` cannot either: the rule says "restricts rows" for the literal and for `?`
 * alike. Redaction and fingerprints already replace literals and `?` by the same `?`.
 *
 * Everything else takes the full path: comments of any kind (so executable comments), quoted
 * identifiers, double quotes (ANSI_QUOTES changes their meaning), backslashes (NO_BACKSLASH_ESCAPES
 * changes where a string ends), variables, `?`, charset introducers and typed literals
 * (`_utf8'…'`, `N'…'`, `X'…'`, `DATE '…'`), hex, bit and exponent numbers, negative numbers,
 * strings holding quotes or operator characters, non-ASCII text, LIKE and every operator other
 * than = < > <= >= <> !=, functions, subqueries or any other expression in WHERE, several
 * statements, and any statement that is not SELECT, UPDATE or DELETE.
 */

/** Reserved words (MySQL 8.0 and MariaDB) and words with literal meaning: never a plain column. */
const RESERVED = new Set(
  `ACCESSIBLE ADD ALL ALTER ANALYZE AND ANY AS ASC ASENSITIVE BEFORE BETWEEN BIGINT BINARY BLOB BOTH BY CALL CASCADE CASE
  CHANGE CHAR CHARACTER CHECK COLLATE COLUMN CONDITION CONSTRAINT CONTINUE CONVERT CREATE CROSS CUBE CUME_DIST CURRENT_DATE
  CURRENT_ROLE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATABASE DATABASES DAY_HOUR DAY_MICROSECOND DAY_MINUTE
  DAY_SECOND DEC DECIMAL DECLARE DEFAULT DELAYED DELETE DELETE_DOMAIN_ID DENSE_RANK DESC DESCRIBE DETERMINISTIC DISTINCT
  DISTINCTROW DIV DO_DOMAIN_IDS DOUBLE DROP DUAL EACH ELSE ELSEIF EMPTY ENCLOSED END ESCAPE ESCAPED EXCEPT EXISTS EXIT
  EXPLAIN FALSE FETCH FIRST_VALUE FLOAT FLOAT4 FLOAT8 FOR FORCE FOREIGN FROM FULL FULLTEXT FUNCTION GENERAL GENERATED GET
  GRANT GROUP GROUPING GROUPS HAVING HIGH_PRIORITY HOUR_MICROSECOND HOUR_MINUTE HOUR_SECOND IF IGNORE IGNORE_DOMAIN_IDS
  IGNORE_SERVER_IDS IN INDEX INFILE INNER INOUT INSENSITIVE INSERT INT INT1 INT2 INT3 INT4 INT8 INTEGER INTERSECT INTERVAL
  INTO IO_AFTER_GTIDS IO_BEFORE_GTIDS IS ITERATE JOIN JSON_TABLE KEY KEYS KILL LAG LAST_VALUE LATERAL LEAD LEADING LEAVE
  LEFT LIKE LIMIT LINEAR LINES LOAD LOCALTIME LOCALTIMESTAMP LOCK LONG LONGBLOB LONGTEXT LOOP LOW_PRIORITY MASTER_BIND
  MASTER_HEARTBEAT_PERIOD MASTER_SSL_VERIFY_SERVER_CERT MATCH MAXVALUE MEDIUMBLOB MEDIUMINT MEDIUMTEXT MIDDLEINT MINUS
  MINUTE_MICROSECOND MINUTE_SECOND MOD MODIFIES NATURAL NOT NO_WRITE_TO_BINLOG NTH_VALUE NTILE NULL NUMERIC OF OFFSET ON
  OPTIMIZE OPTIMIZER_COSTS OPTION OPTIONALLY OR ORDER OUT OUTER OUTFILE OVER PAGE_CHECKSUM PARSE_VCOL_EXPR PARTITION
  PERCENT_RANK POSITION PRECISION PRIMARY PROCEDURE PURGE QUALIFY RANGE RANK READ READS READ_WRITE REAL RECURSIVE REF_SYSTEM_ID
  REFERENCES REGEXP RELEASE RENAME REPEAT REPLACE REQUIRE RESIGNAL RESTRICT RETURN RETURNING REVOKE RIGHT RLIKE ROW ROWNUM
  ROWS ROW_NUMBER SCHEMA SCHEMAS SECOND_MICROSECOND SELECT SENSITIVE SEPARATOR SET SHOW SIGNAL SLOW SMALLINT SOME SOUNDS
  SPATIAL SPECIFIC SQL SQLEXCEPTION SQLSTATE SQLWARNING SQL_BIG_RESULT SQL_CALC_FOUND_ROWS SQL_SMALL_RESULT SSL STARTING
  STATS_AUTO_RECALC STATS_PERSISTENT STATS_SAMPLE_PAGES STORED STRAIGHT_JOIN SYSDATE SYSTEM TABLE TERMINATED THEN TINYBLOB
  TINYINT TINYTEXT TO TRAILING TRIGGER TRUE UNDO UNION UNIQUE UNKNOWN UNLOCK UNSIGNED UPDATE USAGE USE USING UTC_DATE
  UTC_TIME UTC_TIMESTAMP VALUES VARBINARY VARCHAR VARCHARACTER VARYING VIRTUAL WHEN WHERE WHILE WINDOW WITH WRITE XOR
  YEAR_MONTH ZEROFILL`.split(/\s+/),
);

/** Statement kinds whose WHERE is normalised. */
const LEADS = new Set(['SELECT', 'UPDATE', 'DELETE']);
/** What may follow the WHERE clause (the analyser ends the predicate at each of them). */
const AFTER_WHERE = new Set(['GROUP', 'ORDER', 'LIMIT', 'FOR', 'LOCK']);

/** Token kinds, as plain numbers: tokens live in a flat number array. */
const Kind = { Word: 0, Number: 1, String: 2, Punct: 3 } as const;

/** Token kinds, start and end offsets, flattened: three numbers per token, no object per token. */
type Tokens = number[];

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isWordStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isWordChar = (c: number): boolean => isWordStart(c) || isDigit(c);
/** Characters a normalisable string may hold: no quote, no backslash, no operator or comment start. */
const isPlainStringChar = (c: number): boolean => isWordChar(c) || c === 32 || c === 46 || c === 44 || c === 58 || c === 64 || c === 45;

/**
 * Splits the text into plain tokens, or returns undefined at the first character outside the
 * plain subset (the caller then analyses the text as it is).
 */
function scan(sql: string): Tokens | undefined {
  const out: Tokens = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 32 || c === 10 || c === 9 || c === 13) {
      i++;
      continue;
    }
    const start = i;
    if (isWordStart(c)) {
      while (i < n && isWordChar(sql.charCodeAt(i))) i++;
      // `N'…'`, `X'…'`, `_utf8'…'`, `DATE'…'` are literals of another kind; `word.` is a qualified name.
      if (sql.charCodeAt(i) === 39) return undefined;
      out.push(Kind.Word, start, i);
      continue;
    }
    if (isDigit(c)) {
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      if (sql.charCodeAt(i) === 46 && isDigit(sql.charCodeAt(i + 1))) {
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
      }
      // `1e5`, `0x1F`, `0b1`, `1abc` (a name), `1.` and `1.2.3`: not plain decimal numbers.
      const next = sql.charCodeAt(i);
      if (isWordChar(next) || next === 46 || next === 36) return undefined;
      out.push(Kind.Number, start, i);
      continue;
    }
    if (c === 39) {
      i++;
      while (i < n && isPlainStringChar(sql.charCodeAt(i))) {
        // `--` inside a string is harmless to the server, but not worth reasoning about.
        if (sql.charCodeAt(i) === 45 && sql.charCodeAt(i + 1) === 45) return undefined;
        i++;
      }
      // Anything but the closing quote here (a doubled quote, a backslash, an operator) is exotic.
      if (sql.charCodeAt(i) !== 39) return undefined;
      i++;
      if (isWordChar(sql.charCodeAt(i)) || sql.charCodeAt(i) === 39) return undefined;
      out.push(Kind.String, start, i);
      continue;
    }
    switch (c) {
      case 40: // (
      case 41: // )
      case 44: // ,
      case 42: // *
      case 59: // ;
      case 43: // +
        i++;
        break;
      case 46: // .
        // `.5` is a number the scanner does not take; `t.c` is fine.
        if (isDigit(sql.charCodeAt(i + 1))) return undefined;
        i++;
        break;
      case 45: // -
        if (sql.charCodeAt(i + 1) === 45) return undefined; // `--` comment
        i++;
        break;
      case 47: // /
        if (sql.charCodeAt(i + 1) === 42) return undefined; // `/*` comment, `/*!` executable comment
        i++;
        break;
      case 61: // =
        i++;
        break;
      case 60: // < <= <>
        i += sql.charCodeAt(i + 1) === 61 ? (sql.charCodeAt(i + 2) === 62 ? 3 : 2) : sql.charCodeAt(i + 1) === 62 || sql.charCodeAt(i + 1) === 60 ? 2 : 1;
        break;
      case 62: // > >= >>
        i += sql.charCodeAt(i + 1) === 61 || sql.charCodeAt(i + 1) === 62 ? 2 : 1;
        break;
      case 33: // !=
        if (sql.charCodeAt(i + 1) !== 61) return undefined;
        i += 2;
        break;
      default:
        // Backticks, double quotes, backslashes, #, @, ?, $, |, &, :, {, non-ASCII, control characters.
        return undefined;
    }
    out.push(Kind.Punct, start, i);
  }
  return out;
}

/** Comparison operators whose right-hand literal may be replaced. */
function isComparison(sql: string, start: number, end: number): boolean {
  const len = end - start;
  const c = sql.charCodeAt(start);
  if (len === 1) return c === 61 || c === 60 || c === 62;
  if (len !== 2) return false;
  const d = sql.charCodeAt(start + 1);
  return (c === 60 && (d === 61 || d === 62)) || (c === 62 && d === 61) || (c === 33 && d === 61);
}

/**
 * The text with the WHERE literals replaced by `?`, when it is in the plain subset described
 * above and has at least one such literal; undefined otherwise.
 */
export function normaliseLiterals(sql: string): string | undefined {
  const t = scan(sql);
  if (t === undefined || t.length < 3 || t[0] !== Kind.Word) return undefined;
  const count = t.length / 3;
  const word = (k: number): string | undefined => (k < count && t[k * 3] === Kind.Word ? sql.slice(t[k * 3 + 1], t[k * 3 + 2]).toUpperCase() : undefined);
  const punct = (k: number, ch: number): boolean => k < count && t[k * 3] === Kind.Punct && t[k * 3 + 2] - t[k * 3 + 1] === 1 && sql.charCodeAt(t[k * 3 + 1]) === ch;
  if (!LEADS.has(word(0)!)) return undefined;

  // One statement: a `;` may only end the text.
  let last = count;
  if (punct(count - 1, 59)) last = count - 1;
  // The WHERE of the statement itself: the first at parenthesis depth 0.
  let where = -1;
  let depth = 0;
  for (let k = 0; k < last; k++) {
    if (punct(k, 59)) return undefined;
    if (punct(k, 40)) depth++;
    else if (punct(k, 41)) depth--;
    else if (depth === 0 && where < 0 && t[k * 3] === Kind.Word && word(k) === 'WHERE') where = k;
  }
  if (where < 0 || depth !== 0) return undefined;

  // WHERE atom { AND|OR atom }, atom = ( … ) | name[.name[.name]] op literal.
  const literals: number[] = [];
  let k = where + 1;
  depth = 0;
  for (;;) {
    while (punct(k, 40)) {
      depth++;
      k++;
    }
    // A plain column name, possibly qualified.
    for (let parts = 0; ; parts++) {
      const w = word(k);
      if (w === undefined || RESERVED.has(w) || parts === 3) return undefined;
      k++;
      if (!punct(k, 46)) break;
      k++;
    }
    if (k >= last || t[k * 3] !== Kind.Punct || !isComparison(sql, t[k * 3 + 1], t[k * 3 + 2])) return undefined;
    k++;
    if (k >= last || (t[k * 3] !== Kind.Number && t[k * 3] !== Kind.String)) return undefined;
    literals.push(k);
    k++;
    while (depth > 0 && punct(k, 41)) {
      depth--;
      k++;
    }
    if (k >= last) break;
    const w = word(k);
    if (w === 'AND' || w === 'OR') {
      k++;
      continue;
    }
    if (depth === 0 && w !== undefined && AFTER_WHERE.has(w)) break;
    return undefined;
  }
  if (depth !== 0) return undefined;

  let out = '';
  let from = 0;
  for (const lit of literals) {
    out += sql.slice(from, t[lit * 3 + 1]) + '?';
    from = t[lit * 3 + 2];
  }
  return out + sql.slice(from);
}
