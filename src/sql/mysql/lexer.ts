/**
 * A MySQL/MariaDB lexer that sees the statement the way the server's own lexer does.
 *
 * The point of writing our own: executable comments (`/*! … *\/`, `/*!50000 … *\/`,
 * `/*M! … *\/`, `/*M!100100 … *\/`) are code to the server and comments to most SQL parsers.
 * Here their bodies are lexed as ordinary tokens whenever the target server would run them,
 * so `SELECT 1 /*! ; DROP TABLE x *\/` yields a `;` and a DROP.
 * Rules from sql/sql_lex.cc (MY_LEX_COMMENT / MY_LEX_LONG_COMMENT) of MySQL 8.0 and MariaDB 10.11.
 */

export interface MysqlDialect {
  /** MYSQL_VERSION_ID of the server: 80036 for MySQL 8.0.36, 101119 for MariaDB 10.11.19. */
  serverVersion: number;
  mariadb: boolean;
  sqlMode: { noBackslashEscapes: boolean; ansiQuotes: boolean };
}

export const TOKEN_TYPES = ['word', 'quoted', 'string', 'number', 'param', 'var', 'sysvar', 'punct'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

export interface Token {
  type: TokenType;
  /** Raw text as written. */
  text: string;
  /**
   * word: upper-cased text; quoted: the identifier with quotes removed; string: the decoded
   * value; var/sysvar: the name without `@`/`@@`; others: the text.
   */
  value: string;
  start: number;
  end: number;
}

/** The text cannot be lexed (unterminated string, comment or quoted identifier). */
export class MysqlLexError extends Error {
  constructor(
    message: string,
    readonly reason: 'parse-error' | 'executable-comment',
  ) {
    super(message);
  }
}

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const NUMBER = /^(?:0x[0-9a-fA-F]+|0b[01]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/;
/** Longest first: the lexer takes the longest operator that matches. */
const OPERATORS = ['<=>', '->>', '<=', '>=', '<>', '!=', ':=', '||', '&&', '<<', '>>', '->'];

const BACKSLASH_ESCAPES: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a', '%': '\\%', _: '\\_' };

/** Lexes `sql` from offset `from` (to re-lex the rest of a message after its sql_mode changed). */
export function lexMysql(sql: string, dialect: MysqlDialect, from = 0): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = from;
  /** Inside the body of an executable comment that the server runs: `*\/` closes it. */
  let inExecutable = false;

  const push = (type: TokenType, start: number, end: number, value: string): void => {
    tokens.push({ type, text: sql.slice(start, end), value, start, end });
  };

  const readQuoted = (start: number, quote: string, escapes: boolean): { end: number; value: string } => {
    let j = start + 1;
    let value = '';
    for (;;) {
      if (j >= n) throw new MysqlLexError(`unterminated ${quote} at offset ${start}`, 'parse-error');
      const c = sql[j];
      if (c === '\\' && escapes) {
        if (j + 1 >= n) throw new MysqlLexError(`unterminated ${quote} at offset ${start}`, 'parse-error');
        const e = sql[j + 1];
        value += BACKSLASH_ESCAPES[e] ?? e;
        j += 2;
        continue;
      }
      if (c === quote) {
        // A doubled quote is the quote character itself, in every mode.
        if (sql[j + 1] === quote) {
          value += quote;
          j += 2;
          continue;
        }
        return { end: j + 1, value };
      }
      value += c;
      j++;
    }
  };

  const stringEscapes = !dialect.sqlMode.noBackslashEscapes;

  while (i < n) {
    const c = sql[i];
    const c2 = sql[i + 1];

    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '#') {
      i = lineEnd(sql, i);
      continue;
    }
    // `--` starts a comment only when followed by whitespace/control or the end of input; `1--1` is 2.
    // DEL (0x7f) is a control character to the server too: `--\x7f` hides the rest of the line.
    if (c === '-' && c2 === '-' && (i + 2 >= n || sql.charCodeAt(i + 2) <= 32 || sql.charCodeAt(i + 2) === 127)) {
      i = lineEnd(sql, i);
      continue;
    }
    if (inExecutable && c === '*' && c2 === '/') {
      inExecutable = false;
      i += 2;
      continue;
    }
    if (c === '/' && c2 === '*') {
      const maria = sql[i + 2] === 'M' && sql[i + 3] === '!';
      const bang = sql[i + 2] === '!';
      // `/*M!` is MariaDB syntax; MySQL's lexer sees `/*M` and treats it as a plain comment.
      if (bang || (maria && dialect.mariadb)) {
        if (inExecutable) {
          // The server rejects nested executable comments; refusing to guess keeps us fail-closed.
          throw new MysqlLexError(`nested executable comment at offset ${i}`, 'executable-comment');
        }
        let j = i + (maria ? 4 : 3);
        let run = true;
        if (isDigit(sql[j])) {
          let len = 5;
          if (!allDigits(sql, j, 5)) throw new MysqlLexError(`malformed version in executable comment at offset ${i}`, 'executable-comment');
          // MariaDB (and MySQL from 8.0.34) accept a six-digit version such as 100100.
          if ((dialect.mariadb || dialect.serverVersion >= 80034) && isDigit(sql[j + 5])) len = 6;
          const version = Number(sql.slice(j, j + len));
          j += len;
          run = version <= dialect.serverVersion;
          // MariaDB ignores `/*!` comments versioned 50700–99999 (MySQL 5.7+/8.0 syntax), but not `/*M!`.
          if (dialect.mariadb && !maria && version >= 50700 && version <= 99999) run = false;
        }
        if (run) {
          inExecutable = true;
          i = j;
        } else {
          i = skippedCommentEnd(sql, i + 2);
        }
        continue;
      }
      i = commentEnd(sql, i);
      continue;
    }

    if (c === "'" || (c === '"' && !dialect.sqlMode.ansiQuotes)) {
      const { end, value } = readQuoted(i, c, stringEscapes);
      push('string', i, end, value);
      i = end;
      continue;
    }
    if (c === '`' || (c === '"' && dialect.sqlMode.ansiQuotes)) {
      // Identifiers never take backslash escapes, only a doubled quote.
      const { end, value } = readQuoted(i, c, false);
      push('quoted', i, end, value);
      i = end;
      continue;
    }
    if (c === '@') {
      if (c2 === '@') {
        let j = i + 2;
        while (j < n && (IDENT_CHAR.test(sql[j]) || sql[j] === '.')) j++;
        push('sysvar', i, j, sql.slice(i + 2, j).toLowerCase());
        i = j;
        continue;
      }
      if (c2 === "'" || c2 === '"' || c2 === '`') {
        const { end, value } = readQuoted(i + 1, c2, c2 !== '`' && stringEscapes);
        push('var', i, end, value.toLowerCase());
        i = end;
        continue;
      }
      let j = i + 1;
      while (j < n && (IDENT_CHAR.test(sql[j]) || sql[j] === '.')) j++;
      push('var', i, j, sql.slice(i + 1, j).toLowerCase());
      i = j;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(c2))) {
      const m = NUMBER.exec(sql.slice(i, i + 200));
      let j = i + (m ? m[0].length : 1);
      if (j < n && IDENT_CHAR.test(sql[j]) && c !== '.') {
        // `1abc` and `0xZZ` are identifiers in MySQL: identifiers may begin with a digit.
        j = i;
        while (j < n && IDENT_CHAR.test(sql[j])) j++;
        push('word', i, j, sql.slice(i, j).toUpperCase());
      } else {
        push('number', i, j, sql.slice(i, j));
      }
      i = j;
      continue;
    }
    if (IDENT_CHAR.test(c)) {
      let j = i;
      while (j < n && IDENT_CHAR.test(sql[j])) j++;
      const word = sql.slice(i, j);
      const upper = word.toUpperCase();
      // X'ab', B'01', N'text' and _charset'text' are literals: one string token, so redaction covers them.
      if (sql[j] === "'" && (upper === 'X' || upper === 'B' || upper === 'N' || word.startsWith('_'))) {
        const { end, value } = readQuoted(j, "'", upper === 'N' || word.startsWith('_') ? stringEscapes : false);
        push('string', i, end, value);
        i = end;
        continue;
      }
      push('word', i, j, upper);
      i = j;
      continue;
    }
    if (c === '?') {
      push('param', i, i + 1, '?');
      i++;
      continue;
    }
    const op = OPERATORS.find((o) => sql.startsWith(o, i));
    if (op) {
      push('punct', i, i + op.length, op);
      i += op.length;
      continue;
    }
    push('punct', i, i + 1, c);
    i++;
  }
  if (inExecutable) throw new MysqlLexError('unterminated executable comment', 'executable-comment');
  return tokens;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function allDigits(s: string, from: number, len: number): boolean {
  for (let k = from; k < from + len; k++) if (!isDigit(s[k])) return false;
  return true;
}

function lineEnd(sql: string, i: number): number {
  const j = sql.indexOf('\n', i);
  return j < 0 ? sql.length : j + 1;
}

/**
 * The end of an executable comment the server skips (its version is too high). The server lets
 * such a comment hold one comment of its own (consume_comment(lip, 1) in sql/sql_lex.cc), so in
 * `/*!99999 /* *\/ ' *\/` the first `*\/` closes the inner comment and the quote is skipped: taking
 * it for the end would read the quote as the start of a string that hides real code.
 */
function skippedCommentEnd(sql: string, from: number): number {
  let nested = false;
  for (let j = from; j < sql.length; j++) {
    if (!nested && sql[j] === '/' && sql[j + 1] === '*') {
      nested = true;
      j++;
      continue;
    }
    if (sql[j] === '*' && sql[j + 1] === '/') {
      if (!nested) return j + 2;
      nested = false;
      j++;
    }
  }
  throw new MysqlLexError(`unterminated comment at offset ${from - 2}`, 'parse-error');
}

function commentEnd(sql: string, i: number): number {
  const j = sql.indexOf('*/', i + 2);
  // An unterminated comment is a syntax error on the server; refuse rather than guess its extent.
  if (j < 0) throw new MysqlLexError(`unterminated comment at offset ${i}`, 'parse-error');
  return j + 2;
}

/** Splits a token stream into statements at top-level `;`. Compound bodies (BEGIN … END) stay whole. */
export function splitStatements(tokens: Token[]): Token[][] {
  const out: Token[][] = [];
  let cur: Token[] = [];
  let depth = 0;
  let compound = false;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (cur.length === 0 && t.type === 'punct' && t.value === ';') continue;
    if (cur.length === 0) compound = false;
    cur.push(t);
    if (cur.length <= 8 && t.type === 'word' && !compound) {
      compound = startsCompound(cur);
      // The opening BEGIN may precede the tokens that reveal a compound statement (BEGIN NOT ATOMIC).
      if (compound) depth = cur.filter((x) => x.type === 'word' && x.value === 'BEGIN').length - (t.value === 'BEGIN' ? 1 : 0);
    }
    if (compound && t.type === 'word') {
      if (t.value === 'BEGIN' || (t.value === 'CASE' && depth > 0)) depth++;
      else if (t.value === 'END') {
        const next = tokens[k + 1];
        const closesOther = next?.type === 'word' && ['IF', 'LOOP', 'WHILE', 'REPEAT', 'FOR'].includes(next.value);
        if (!closesOther && depth > 0) depth--;
      }
    }
    if (t.type === 'punct' && t.value === ';' && depth === 0) {
      cur.pop();
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT and MariaDB's `BEGIN NOT ATOMIC` carry `;` inside a body. */
function startsCompound(cur: Token[]): boolean {
  const w = cur.filter((t) => t.type === 'word').map((t) => t.value);
  if (w[0] === 'BEGIN' && w[1] === 'NOT' && w[2] === 'ATOMIC') return true;
  if (w[0] !== 'CREATE') return false;
  return w.some((x) => x === 'PROCEDURE' || x === 'FUNCTION' || x === 'TRIGGER' || x === 'EVENT');
}
