/**
 * Which operands of an expression the server tests rather than passes on: a column (or a
 * subquery) whose value steers a condition, a comparison, a search or an error is a filter on
 * it wherever it stands, as it is in a WHERE. `SELECT IF(ssn = '1…', EXP(1000), 0)` returns a
 * masked value, but whether it errs answers the comparison; so does `NULLIF(ssn, '1…')` by
 * coming back NULL.
 *
 * An operand passes only by climbing to the top of its expression through known value
 * transforms (an allowlist): functions whose result, NULL-ness included, depends on the operand
 * only as a value that lineage masks, and that raise no error (nor a warning that strict mode
 * turns into one) for any value. Anything else (an operator, a condition, an unknown or stored
 * function, a cast to a type that can reject a value) tests its operands. The list of
 * conditional functions is open-ended (IF, CASE, LOCATE, FIELD, ELT, NULLIF, REGEXP_*,
 * JSON_*, a stored function, any function added by the next server release); the list of
 * harmless transforms is short and can be checked one by one, so it is the one kept.
 */
import { CLAUSE_WORDS, NOT_FUNCTIONS } from './functions.js';
import type { Token } from './lexer.js';

/** Argument positions that carry a value through (`all`, or the indices). */
type ValueArgs = 'all' | readonly number[];

/**
 * Value transforms, by upper-case name: the argument positions whose value reaches the result
 * only as data (never NULL for a non-NULL value, never an error). Positions not listed are
 * lengths, offsets or keys: a classified value there steers what comes out.
 */
const TRANSFORMS: Readonly<Record<string, ValueArgs>> = {
  CONCAT: 'all',
  CONCAT_WS: 'all',
  UPPER: 'all',
  UCASE: 'all',
  LOWER: 'all',
  LCASE: 'all',
  REVERSE: 'all',
  QUOTE: 'all',
  TO_BASE64: 'all',
  HEX: 'all',
  MD5: 'all',
  SHA1: 'all',
  SHA: 'all',
  SHA2: [0],
  CRC32: 'all',
  COMPRESS: 'all',
  LENGTH: 'all',
  CHAR_LENGTH: 'all',
  CHARACTER_LENGTH: 'all',
  OCTET_LENGTH: 'all',
  BIT_LENGTH: 'all',
  SOUNDEX: 'all',
  // The search and replacement strings only change the (masked) result.
  REPLACE: 'all',
  TRIM: 'all',
  LTRIM: 'all',
  RTRIM: 'all',
  SUBSTRING: [0],
  SUBSTR: [0],
  MID: [0],
  LEFT: [0],
  RIGHT: [0],
  INSERT: [0, 3],
  CAST: [0],
  CONVERT: [0],
  // NULL-ness is what these test, and a masked column keeps its NULLs anyway.
  COALESCE: 'all',
  IFNULL: 'all',
  IF: [1, 2],
  JSON_OBJECT: 'all',
  JSON_ARRAY: 'all',
  JSON_QUOTE: 'all',
  // Aggregates and window functions that return one of the values they read.
  MAX: 'all',
  MIN: 'all',
  COUNT: 'all',
  ANY_VALUE: 'all',
  GROUP_CONCAT: 'all',
  JSON_ARRAYAGG: 'all',
  JSON_OBJECTAGG: [1],
  FIRST_VALUE: 'all',
  VALUES: 'all',
  LAST_VALUE: 'all',
  NTH_VALUE: [0],
  LAG: [0, 2],
  LEAD: [0, 2],
};

/**
 * Decoders that return NULL for input they cannot decode: total, and so transforms, only over
 * what their encoder made (`FROM_BASE64(TO_BASE64(ssn))`).
 */
const INVERSES: Readonly<Record<string, string>> = { FROM_BASE64: 'TO_BASE64', UNHEX: 'HEX', UNCOMPRESS: 'COMPRESS' };

/** Aggregates that take DISTINCT / ALL before their argument. */
const AGGREGATES = new Set(['MAX', 'MIN', 'COUNT', 'GROUP_CONCAT', 'JSON_ARRAYAGG']);
/** Target types of CAST / CONVERT that accept every value (a string type; a length only truncates). */
const TEXT_TYPES = new Set(['CHAR', 'NCHAR', 'BINARY', 'VARCHAR', 'CHARACTER']);

/**
 * A string function whose result would be longer than max_allowed_packet returns NULL instead
 * (with a warning), so "never NULL for a non-NULL value" holds for a transform only while its
 * result stays short. Beside a value the client makes long, NULL-ness answers how long the
 * operand is, or through REPLACE what it holds: REPLACE(ssn, '123-', REPEAT('x',
 * @@max_allowed_packet - 6)) is NULL exactly when ssn holds `123-`. So along the way up, the
 * operand's length may be multiplied by at most MAX_GROWTH and have at most MAX_ADDED bytes
 * added; a value beside it counts at its length when that is bounded (a literal, a column of
 * COLUMN_BYTES, a known transform of those), and a variable, a parameter, a subquery or a
 * function like REPEAT counts as unbounded. 64 × a classified value (`REPLACE(REPLACE(email, '@',
 * ' at '), '.', ' dot ')` is 20 ×) plus 256 KiB stays below any max_allowed_packet a server runs
 * with (MariaDB's default is 16 MiB, MySQL's 64 MiB) for values up to tens of KiB. A parameter
 * counts as unbounded too: COM_STMT_SEND_LONG_DATA makes it as long as the client likes.
 */
const MAX_GROWTH = 64;
const MAX_ADDED = 256 * 1024;
/** What a column beside the operand is taken to hold at most: a VARCHAR(255) in utf8mb4. */
const COLUMN_BYTES = 1020;
/** A number's text; a number-typed result (a length, a count, a sum). */
const NUMBER_BYTES = 64;
/** Transforms whose result can be longer than their operand: by a factor, or by what stands beside it. */
const GROWS = new Set(['CONCAT', 'CONCAT_WS', 'REPLACE', 'INSERT', 'QUOTE', 'HEX', 'TO_BASE64', 'COMPRESS', 'UPPER', 'UCASE', 'LOWER', 'LCASE', 'JSON_OBJECT', 'JSON_ARRAY', 'JSON_QUOTE']);
/** Results of a fixed, short length whatever the operand: numbers and digests. */
const FIXED_LENGTH = new Set(['LENGTH', 'CHAR_LENGTH', 'CHARACTER_LENGTH', 'OCTET_LENGTH', 'BIT_LENGTH', 'COUNT', 'CRC32', 'MD5', 'SHA1', 'SHA', 'SHA2', 'SOUNDEX']);
/** Aggregates whose result is as long as all the rows they read together. */
const GATHERS = new Set(['GROUP_CONCAT', 'JSON_ARRAYAGG', 'JSON_OBJECTAGG']);
/** A literal's introducer or type word before a string: `_utf8mb4'x'`, `N'x'`, `DATE '…'`. */
const LITERAL_PREFIX = /^(DATE|TIME|TIMESTAMP|N|_[A-Z0-9]+)$/;
/** Operators whose result is a number (or a truth value), however long their operands: `||` is not one (PIPES_AS_CONCAT). */
const NUMERIC_OPERATORS = new Set(['+', '-', '*', '/', '%', 'DIV', 'MOD', '=', '<', '>', '<=', '>=', '<>', '!=', '<=>', 'LIKE', 'REGEXP', 'RLIKE', 'IN', 'IS', 'BETWEEN', 'AND', 'OR', 'XOR', 'NOT', '&&', '!', '&', '|', '^', '~', '<<', '>>']);
/**
 * Built-ins whose result is about as long as their arguments, at most (numbers, dates, their
 * formats, positions): 8 bytes per argument byte bounds them. A function not listed here, or
 * in TRANSFORMS, counts as unbounded beside an operand: SFORMAT, UNCOMPRESS, WEIGHT_STRING …
 * AS CHAR(n) make long values out of short ones (REPEAT, LPAD, RPAD, SPACE count by a literal).
 */
const SHORT_RESULT = new Set([
  'ABS', 'ACOS', 'ADDDATE', 'ADDTIME', 'ASCII', 'ASIN', 'ATAN', 'ATAN2', 'AVG', 'BIN', 'BIT_AND', 'BIT_COUNT', 'BIT_OR', 'BIT_XOR', 'CEIL', 'CEILING', 'CONNECTION_ID',
  'CONV', 'COS', 'COT', 'CUME_DIST', 'CURDATE', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_TIMESTAMP', 'CURRENT_USER', 'CURTIME', 'DATABASE', 'DATE', 'DATEDIFF',
  'DATE_ADD', 'DATE_FORMAT', 'DATE_SUB', 'DAY', 'DAYNAME', 'DAYOFMONTH', 'DAYOFWEEK', 'DAYOFYEAR', 'DEGREES', 'DENSE_RANK', 'EXP', 'EXTRACT', 'FIELD', 'FIND_IN_SET',
  'FLOOR', 'FORMAT', 'FOUND_ROWS', 'FROM_DAYS', 'FROM_UNIXTIME', 'GREATEST', 'HOUR', 'INET_ATON', 'INET_NTOA', 'INSTR', 'LAST_DAY', 'LAST_INSERT_ID', 'LEAST', 'LN',
  'LOCALTIME', 'LOCALTIMESTAMP', 'LOCATE', 'LOG', 'LOG10', 'LOG2', 'MAKEDATE', 'MAKETIME', 'MICROSECOND', 'MINUTE', 'MOD', 'MONTH', 'MONTHNAME', 'NOW', 'NTILE',
  'NULLIF', 'OCT', 'ORD', 'PERCENT_RANK', 'PERIOD_ADD', 'PERIOD_DIFF', 'PI', 'POSITION', 'POW', 'POWER', 'QUARTER', 'RADIANS', 'RAND', 'RANK', 'ROUND', 'ROW_COUNT',
  'ROW_NUMBER', 'SECOND', 'SEC_TO_TIME', 'SIGN', 'SIN', 'SQRT', 'STD', 'STDDEV', 'STDDEV_POP', 'STDDEV_SAMP', 'STRCMP', 'STR_TO_DATE', 'SUBDATE', 'SUBTIME', 'SUM',
  'SYSDATE', 'TAN', 'TIME', 'TIMEDIFF', 'TIMESTAMP', 'TIMESTAMPADD', 'TIMESTAMPDIFF', 'TIME_FORMAT', 'TIME_TO_SEC', 'TO_DAYS', 'TO_SECONDS', 'TRUNCATE', 'UNIX_TIMESTAMP',
  'USER', 'UTC_DATE', 'UTC_TIME', 'UTC_TIMESTAMP', 'UUID', 'VARIANCE', 'VAR_POP', 'VAR_SAMP', 'VERSION', 'WEEK', 'WEEKDAY', 'WEEKOFYEAR', 'YEAR', 'YEARWEEK',
]);
/** Arguments of these that are values passed through whole (the rest test or count). */
const VALUE_ARGS: Readonly<Record<string, readonly number[]>> = { IF: [1, 2], LAG: [0, 2], LEAD: [0, 2] };

/** The operand's length as it climbs: at most factor × its own length + added bytes. */
interface Length {
  factor: number;
  added: number;
}

interface Group {
  kind: 'paren' | 'case';
  open: number;
  close: number;
  /** The upper-case name of the function called, when the parenthesis follows one ('?' if qualified). */
  fn?: string;
  /** Where the group starts as an operand: its function name, or the group's first token. */
  from: number;
  /** The group follows OVER: a window specification. */
  over?: true;
}

const isWord = (t: Token | undefined, ...w: string[]): boolean => t?.type === 'word' && w.includes(t.value);
const isPunct = (t: Token | undefined, p: string): boolean => t?.type === 'punct' && t.value === p;

/**
 * The expression toks[a, b) as a tree of parenthesised and CASE … END groups, each token mapped
 * to its innermost group. Unbalanced input maps to no group, which tests everything in it.
 */
export class ExprShape {
  private readonly groups: Group[] = [];
  /** Innermost group index of each token (relative to a), -1 at the top. */
  private readonly inside: number[] = [];
  private readonly balanced: boolean;

  constructor(
    private readonly toks: Token[],
    private readonly a: number,
    private readonly b: number,
  ) {
    const stack: number[] = [];
    let ok = true;
    for (let k = a; k < b; k++) {
      const t = toks[k];
      const top = stack.length > 0 ? stack[stack.length - 1] : -1;
      this.inside.push(top);
      if (isPunct(t, '(')) {
        const prev = k > a ? toks[k - 1] : undefined;
        const g: Group = { kind: 'paren', open: k, close: -1, from: k };
        if (prev && (prev.type === 'word' || prev.type === 'quoted') && !(prev.type === 'word' && NOT_FUNCTIONS.has(prev.value))) {
          const qualified = k - 2 >= a && isPunct(toks[k - 2], '.');
          // A quoted or qualified name calls a stored function or a UDF, never a built-in.
          g.fn = qualified || prev.type === 'quoted' ? '?' : prev.value;
          g.from = k - 1;
          if (qualified) for (let j = k - 2; j >= a && isPunct(toks[j], '.'); j -= 2) g.from = j - 1;
        } else if (isWord(prev, 'OVER')) g.over = true;
        else if (isWord(prev, 'VALUES', 'VALUE') && k > a) {
          // ON DUPLICATE KEY UPDATE c = VALUES(c): the value the INSERT brought, passed on.
          g.fn = 'VALUES';
          g.from = k - 1;
        }
        stack.push(this.groups.push(g) - 1);
      } else if (isPunct(t, ')')) {
        if (top < 0 || this.groups[top].kind !== 'paren') {
          ok = false;
          break;
        }
        this.groups[top].close = k;
        stack.pop();
      } else if (isWord(t, 'CASE')) {
        stack.push(this.groups.push({ kind: 'case', open: k, close: -1, from: k }) - 1);
      } else if (isWord(t, 'END') && top >= 0 && this.groups[top].kind === 'case') {
        this.groups[top].close = k;
        stack.pop();
      }
    }
    this.balanced = ok && stack.length === 0;
  }

  /**
   * Whether the operand toks[from, to) (a column reference, or a subquery's parentheses) is
   * tested: anywhere but in a value slot of a value transform, all the way up.
   */
  tested(from: number, to: number): boolean {
    if (!this.balanced || from < this.a || to > this.b) return true;
    if (to === from + 1 && this.namesNoValue(from)) return false;
    let s = from;
    let e = to;
    let length: Length = { factor: 1, added: 0 };
    for (;;) {
      const gi = this.enclosing(s, e);
      const g = gi < 0 ? undefined : this.groups[gi];
      const lo = g ? g.open + 1 : this.a;
      const hi = g ? g.close : this.b;
      const slot = this.slotOf(g, lo, hi, s);
      if (slot === undefined || !this.alone(g, slot, s, e)) return true;
      // A sort key of a window or of an aggregate's ORDER BY goes nowhere further: it only orders.
      if (!g || g.over || this.sortsWithin(g, s)) return false;
      // Past max_allowed_packet a growing transform returns NULL: the operand must stay short.
      length = this.lengthThrough(g, slot, length);
      if (g.fn !== undefined && GROWS.has(g.fn) && (length.factor > MAX_GROWTH || length.added > MAX_ADDED)) return true;
      s = g.from;
      e = g.close + 1;
    }
  }

  /** The operand's length after group g, the operand standing in `slot` of it (see MAX_GROWTH). */
  private lengthThrough(g: Group, slot: [number, number], l: Length): Length {
    const values = VALUE_ARGS[g.fn ?? ''];
    const others = (): number[] => this.argsOf(g).flatMap((a, k) => (a[0] === slot[0] || (values && !values.includes(k)) ? [] : [this.bytesOf(a[0], a[1])]));
    const sum = (xs: number[]): number => xs.reduce((x, y) => x + y, 0);
    if (g.kind === 'case') return { factor: l.factor, added: Math.max(l.added, this.caseValueBytes(g, slot)) };
    const fn = g.fn;
    if (fn === undefined || fn === 'VALUES') return l;
    if (FIXED_LENGTH.has(fn)) return { factor: 0, added: fn === 'COUNT' || fn.endsWith('LENGTH') ? NUMBER_BYTES : 128 };
    if (GATHERS.has(fn)) return { factor: Infinity, added: Infinity };
    const args = this.argsOf(g);
    const index = args.findIndex((a) => a[0] === slot[0]);
    const bytes = args.map((a) => this.bytesOf(a[0], a[1]));
    const scale = (k: number, plus = 0): Length => ({ factor: l.factor * k, added: l.added * k + plus });
    switch (fn) {
      case 'CONCAT':
      case 'INSERT':
        return scale(1, sum(others()));
      case 'CONCAT_WS': {
        // The separator stands between every two values.
        const between = Math.max(1, args.length - 2);
        return index === 0 ? scale(between, sum(others())) : scale(1, sum(others()) + bytes[0] * (between - 1));
      }
      case 'REPLACE': {
        // REPLACE(str, from, to): each `from` in str becomes `to`.
        const fromBytes = Math.max(1, this.literalBytes(args[1]) ?? 1);
        if (index === 0) return scale(Math.max(1, Math.ceil(bytes[2] / fromBytes)));
        if (index === 1) return { factor: 0, added: bytes[0] * Math.max(1, bytes[2]) };
        return scale(bytes[0], bytes[0]);
      }
      case 'JSON_QUOTE':
        return scale(6, 2);
      case 'JSON_OBJECT':
      case 'JSON_ARRAY':
        return scale(6, 6 * sum(others()) + 8 * args.length);
      case 'QUOTE':
      case 'HEX':
      case 'TO_BASE64':
      case 'COMPRESS':
      case 'UPPER':
      case 'UCASE':
      case 'LOWER':
      case 'LCASE':
        return scale(2, 16);
      case 'COALESCE':
      case 'IFNULL':
      case 'IF':
      case 'LAG':
      case 'LEAD':
        // One of its values, whole: as long as the longest.
        return { factor: l.factor, added: Math.max(l.added, ...others()) };
      default:
        // The rest give part of the operand (SUBSTRING, TRIM, CAST, …) or one of its values (MAX, MIN, …).
        return l;
    }
  }

  /** The argument ranges of a call group (up to an aggregate's ORDER BY or SEPARATOR). */
  private argsOf(g: Group): [number, number][] {
    const gi = this.groups.indexOf(g);
    const out: [number, number][] = [];
    let x = g.open + 1;
    for (let k = g.open + 1; k <= g.close; k++) {
      const end = k === g.close || (this.depthHere(k, gi) && isWord(this.toks[k], 'ORDER', 'SEPARATOR'));
      if (end || (this.depthHere(k, gi) && isPunct(this.toks[k], ','))) {
        out.push([x, k]);
        x = k + 1;
        if (end) break;
      }
    }
    return out;
  }

  /** The longest THEN / ELSE value of a CASE group other than the one in `slot`. */
  private caseValueBytes(g: Group, slot: [number, number]): number {
    const gi = this.groups.indexOf(g);
    let most = 0;
    let x = -1;
    for (let k = g.open + 1; k <= g.close; k++) {
      const sep = k === g.close || (this.depthHere(k, gi) && isWord(this.toks[k], 'WHEN', 'THEN', 'ELSE'));
      if (!sep) continue;
      if (x >= 0 && x !== slot[0]) most = Math.max(most, this.bytesOf(x, k));
      x = isWord(this.toks[k], 'THEN', 'ELSE') ? k + 1 : -1;
    }
    return most;
  }

  /** The byte length of a string literal argument, if it is one. */
  private literalBytes([x, y]: [number, number]): number | undefined {
    const t = this.toks.slice(x, y);
    if (t.length > 0 && t.every((k) => k.type === 'string')) return t.reduce((n, k) => n + Buffer.byteLength(k.value), 0);
    return undefined;
  }

  /**
   * How many bytes the value toks[x, y) can have at most: a literal its own, a column
   * COLUMN_BYTES, a known transform of those by its growth, a number NUMBER_BYTES; anything
   * whose length the client chooses at run time (a variable, a parameter, a subquery, REPEAT,
   * LPAD, …) is unbounded.
   */
  private bytesOf(x: number, y: number): number {
    const toks = this.toks;
    while (y - x >= 2 && isPunct(toks[x], '(') && this.groups.some((g) => g.open === x && g.close === y - 1)) {
      x++;
      y--;
    }
    if (y <= x) return 0;
    if (isWord(toks[x], 'BINARY') && y - x > 1 && !isPunct(toks[x + 1], '(')) return this.bytesOf(x + 1, y);
    if (y - x > 2 && isWord(toks[y - 2], 'COLLATE')) return this.bytesOf(x, y - 2);
    if (isWord(toks[x], 'DISTINCT', 'ALL')) return this.bytesOf(x + 1, y);
    const strings = LITERAL_PREFIX.test(toks[x].type === 'word' ? toks[x].value : '') && toks[x + 1]?.type === 'string' ? x + 1 : x;
    const literal = this.literalBytes([strings, y]);
    if (literal !== undefined) return literal;
    if (y - x === 1) {
      const t = toks[x];
      if (t.type === 'number') return Math.max(NUMBER_BYTES, t.text.length);
      if (isWord(t, 'NULL', 'TRUE', 'FALSE', 'DEFAULT')) return 8;
      if (t.type === 'word' || t.type === 'quoted') return COLUMN_BYTES;
      return Infinity;
    }
    const chain = (y - x) % 2 === 1 && toks.slice(x, y).every((t, k) => (k % 2 === 1 ? isPunct(t, '.') : t.type === 'word' || t.type === 'quoted'));
    if (chain) return COLUMN_BYTES;
    const call = this.groups.find((g) => g.kind === 'paren' && g.from === x && g.close === y - 1 && g.fn !== undefined);
    if (call) return this.callBytes(call);
    const kase = this.groups.find((g) => g.kind === 'case' && g.open === x && g.close === y - 1);
    if (kase) return this.caseValueBytes(kase, [-1, -1]);
    // An operator outside any call gives a number; `||` may concatenate (PIPES_AS_CONCAT).
    const top = this.inside[x - this.a];
    let numeric = false;
    for (let k = x; k < y; k++) {
      const t = toks[k];
      if (!this.depthHere(k, top)) continue;
      if (isPunct(t, '||') || t.type === 'var' || t.type === 'sysvar' || t.type === 'param') return Infinity;
      if ((t.type === 'punct' || t.type === 'word') && NUMERIC_OPERATORS.has(t.value)) numeric = true;
    }
    return numeric ? NUMBER_BYTES : Infinity;
  }

  /** The longest result of a call, from its arguments' lengths (unbounded for a function not known here). */
  private callBytes(g: Group): number {
    const fn = g.fn!;
    const args = this.argsOf(g);
    const bytes = args.map((a) => this.bytesOf(a[0], a[1]));
    const sum = bytes.reduce((x, y) => x + y, 0);
    if (FIXED_LENGTH.has(fn)) return 128;
    if (SHORT_RESULT.has(fn)) return 8 * sum + NUMBER_BYTES;
    // LPAD(s, n, p), RPAD, REPEAT(s, n), SPACE(n): as long as a literal count says.
    const count = (k: number): number => {
      const t = args[k] && args[k][1] - args[k][0] === 1 ? this.toks[args[k][0]] : undefined;
      return t?.type === 'number' && /^\d+$/.test(t.text) ? Number(t.text) : Infinity;
    };
    if (fn === 'LPAD' || fn === 'RPAD') return 4 * count(1);
    if (fn === 'REPEAT') return bytes[0] * count(1);
    if (fn === 'SPACE') return count(0);
    // A decoder gives less than it reads; UNCOMPRESS gives whatever the compressed value says.
    if (fn in INVERSES) return fn === 'UNCOMPRESS' ? Infinity : bytes[0] ?? 0;
    if (!(fn in TRANSFORMS) || GATHERS.has(fn)) return Infinity;
    const value = this.valueRange(g, args);
    if (value === undefined) return Infinity;
    const through = this.lengthThrough(g, value, { factor: 1, added: 0 });
    return through.factor === 0 ? through.added : through.factor * this.bytesOf(value[0], value[1]) + through.added;
  }

  /**
   * The argument of a transform call whose value comes out (whole or in part): TRIM(… FROM x),
   * SUBSTRING(x FROM …), CAST(x AS …), CONVERT(x USING …), a value argument of IF / LAG / LEAD,
   * else the first.
   */
  private valueRange(g: Group, args: [number, number][]): [number, number] | undefined {
    const gi = this.groups.indexOf(g);
    const at = (w: string): number => {
      for (let k = g.open + 1; k < g.close; k++) if (this.depthHere(k, gi) && isWord(this.toks[k], w)) return k;
      return -1;
    };
    const from = at('FROM');
    if (g.fn === 'TRIM' && from >= 0) return [from + 1, g.close];
    if ((g.fn === 'SUBSTRING' || g.fn === 'SUBSTR') && from >= 0) return [g.open + 1, from];
    if (g.fn === 'CAST' && at('AS') >= 0) return [g.open + 1, at('AS')];
    if (g.fn === 'CONVERT' && at('USING') >= 0) return [g.open + 1, at('USING')];
    const values = VALUE_ARGS[g.fn ?? ''];
    return args[values ? values[0] : 0];
  }

  /**
   * Whether the word at toks[k], read as a column reference, is syntax naming no value: a
   * collation, a character set, a type, a window name, ROLLUP, a window frame bound.
   */
  private namesNoValue(k: number): boolean {
    const prev = k > this.a ? this.toks[k - 1] : undefined;
    const gi = this.inside[k - this.a];
    const g = gi >= 0 ? this.groups[gi] : undefined;
    if (isWord(prev, 'COLLATE', 'USING', 'OVER') || (isWord(prev, 'WITH') && isWord(this.toks[k], 'ROLLUP'))) return true;
    // `CAST(x AS type)`, `COLUMN_GET(x, 'a' AS CHAR)`: inside a call, AS names a type (at the top, an alias).
    if (isWord(prev, 'AS') && g?.kind === 'paren') return true;
    if (g?.fn === 'CONVERT' && isPunct(prev, ',') && this.depthHere(k - 1, gi)) return true;
    // A frame bound (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) must be a constant.
    if (g?.over) for (let j = g.open + 1; j < k; j++) if (this.depthHere(j, gi) && isWord(this.toks[j], 'ROWS', 'RANGE', 'GROUPS')) return true;
    return false;
  }

  /** Whether the subquery (or other group) opened at toks[open] is tested. */
  testedGroup(open: number): boolean {
    const g = this.groups.find((x) => x.open === open);
    return g === undefined || this.tested(g.from, g.close + 1);
  }

  /** Whether toks[k] is the alias of a top-level item (`ssn AS s`, `ssn s`), not a reference. */
  isAlias(k: number): boolean {
    if (this.inside[k - this.a] !== -1) return false;
    const slot = this.topSlot(k);
    return slot !== undefined && this.aliasAt(slot[0], slot[1]) === k;
  }

  /** The innermost group that strictly contains toks[s, e). */
  private enclosing(s: number, e: number): number {
    let gi = this.inside[s - this.a];
    // A subquery's own parenthesis maps to the group it opens: start from its parent.
    while (gi >= 0 && !(this.groups[gi].open < s && this.groups[gi].close >= e)) gi = this.parentOf(gi);
    return gi;
  }

  private parentOf(gi: number): number {
    return this.inside[this.groups[gi].open - this.a];
  }

  private depthHere(k: number, gi: number): boolean {
    let x = this.inside[k - this.a];
    // A token that opens or closes a group belongs to the group around it.
    if (x >= 0 && (this.groups[x].open === k || this.groups[x].close === k)) x = this.parentOf(x);
    return x === gi;
  }

  private topSlot(k: number): [number, number] | undefined {
    let x = k;
    let y = k;
    while (x > this.a && !(isPunct(this.toks[x - 1], ',') && this.depthHere(x - 1, -1))) x--;
    while (y < this.b && !(isPunct(this.toks[y], ',') && this.depthHere(y, -1))) y++;
    return [x, y];
  }

  /**
   * The value slot [x, y) of group g (or the top) holding toks[s], or undefined when that
   * position is a test: a condition, a key, an offset, an argument of an unknown function.
   */
  private slotOf(g: Group | undefined, lo: number, hi: number, s: number): [number, number] | undefined {
    const gi = g ? this.groups.indexOf(g) : -1;
    const here = (k: number): boolean => this.depthHere(k, gi);
    if (g?.kind === 'case') {
      // CASE [operand] WHEN cond THEN value … [ELSE value] END: only THEN and ELSE give values.
      let x = lo;
      let lead: string = 'CASE';
      for (let k = lo; k < hi; k++) {
        if (here(k) && isWord(this.toks[k], 'WHEN', 'THEN', 'ELSE')) {
          if (k > s) return lead === 'THEN' || lead === 'ELSE' ? [x, k] : undefined;
          x = k + 1;
          lead = this.toks[k].value;
        }
      }
      return lead === 'THEN' || lead === 'ELSE' ? [x, hi] : undefined;
    }
    // Window specifications and an aggregate's own ORDER BY sort by their items: a plain value
    // there tests nothing (as ORDER BY ssn does not), an expression comparing it does.
    const orderAt = (): number => {
      for (let k = lo; k < hi - 1; k++) if (here(k) && isWord(this.toks[k], 'ORDER') && isWord(this.toks[k + 1], 'BY')) return k;
      return -1;
    };
    if (g?.over) return this.orderItem(lo, hi, s, here, true);
    const order = g?.fn !== undefined && (g.fn === 'GROUP_CONCAT' || g.fn === 'JSON_ARRAYAGG') ? orderAt() : -1;
    if (order >= 0 && s > order) return this.orderItem(order, hi, s, here, false);
    const end = order >= 0 ? order : hi;
    let index = 0;
    let x = lo;
    let slot: [number, number] | undefined;
    for (let k = lo; k <= end; k++) {
      if (k === end || (here(k) && isPunct(this.toks[k], ','))) {
        if (s >= x && s < k) slot = [x, k];
        if (slot) break;
        index++;
        x = k + 1;
      }
    }
    if (!slot) return undefined;
    if (!g) return slot;
    if (g.fn === undefined) return slot;
    // `name(…)` whose `name` is a keyword-looking word that is not a call (handled as plain parentheses).
    const fn = g.fn;
    if (fn in INVERSES) {
      const inner = this.groupAt(slot[0], slot[1]);
      return index === 0 && inner?.fn === INVERSES[fn] && inner.from === slot[0] && inner.close === slot[1] - 1 ? slot : undefined;
    }
    const args = TRANSFORMS[fn];
    if (args === undefined) return undefined;
    if (args !== 'all' && !args.includes(index)) return undefined;
    if (fn === 'CONVERT' && index === 0 && slot[1] < end) {
      // CONVERT(x, type): the second argument names the type.
      const type = this.toks[slot[1] + 1];
      if (!isWord(type, ...TEXT_TYPES)) return undefined;
    }
    return slot;
  }

  /** Whether toks[s] is in the ORDER BY of an aggregate call g. */
  private sortsWithin(g: Group, s: number): boolean {
    if (g.fn !== 'GROUP_CONCAT' && g.fn !== 'JSON_ARRAYAGG') return false;
    const gi = this.groups.indexOf(g);
    for (let k = g.open + 1; k < s; k++) if (this.depthHere(k, gi) && isWord(this.toks[k], 'ORDER') && isWord(this.toks[k + 1], 'BY')) return true;
    return false;
  }

  /** The group starting exactly at toks[x] as an operand, if any. */
  private groupAt(x: number, y: number): Group | undefined {
    return this.groups.find((g) => g.from === x && g.close < y);
  }

  /** An item of ORDER BY / PARTITION BY lists within toks[lo, hi) holding toks[s]. */
  private orderItem(lo: number, hi: number, s: number, here: (k: number) => boolean, window: boolean): [number, number] | undefined {
    let x = lo;
    for (let k = lo; k <= hi; k++) {
      const t = this.toks[k];
      const sep = k === hi || (here(k) && (isPunct(t, ',') || isWord(t, 'BY', 'SEPARATOR') || (window && isWord(t, 'ROWS', 'RANGE', 'GROUPS'))));
      if (!sep) continue;
      // A window frame counts rows: anything in it is not a sort key (and is judged a test).
      if (window && k < hi && isWord(t, 'ROWS', 'RANGE', 'GROUPS')) return s >= x && s < k ? this.trimOrder([x, k]) : undefined;
      if (k < hi && isWord(t, 'SEPARATOR')) return s >= x && s < k ? this.trimOrder([x, k]) : undefined;
      if (s >= x && s < k) return this.trimOrder([x, k]);
      x = k + 1;
    }
    return undefined;
  }

  private trimOrder([x, y]: [number, number]): [number, number] {
    let end = y;
    while (end > x && isWord(this.toks[end - 1], 'ASC', 'DESC', 'PARTITION', 'ORDER')) end--;
    return [x, end];
  }

  /** The index of a top-level item's trailing alias in toks[x, y), or -1. */
  private aliasAt(x: number, y: number): number {
    if (y - x < 2) return -1;
    const last = this.toks[y - 1];
    const before = this.toks[y - 2];
    if (isWord(before, 'AS')) return last.type === 'word' || last.type === 'quoted' || last.type === 'string' ? y - 1 : -1;
    const aliasLike = last.type === 'quoted' || last.type === 'string' || (last.type === 'word' && !CLAUSE_WORDS.has(last.value));
    const ends = before.type === 'punct' ? before.value === ')' : before.type !== 'word' || !CLAUSE_WORDS.has(before.value) || before.value === 'END';
    return aliasLike && ends && !isPunct(before, '.') && before.type !== 'string' ? y - 1 : -1;
  }

  /**
   * Whether the slot [x, y) holds the operand toks[s, e) and only syntax that keeps its value:
   * BINARY before it, COLLATE and OVER after it, a CAST target type, and at the top an alias,
   * ASC / DESC or WITH ROLLUP.
   */
  private alone(g: Group | undefined, [x, y]: [number, number], s: number, e: number): boolean {
    let lo = x;
    let hi = y;
    if (!g) {
      const alias = this.aliasAt(lo, hi);
      if (alias >= 0 && alias >= e) hi = isWord(this.toks[alias - 1], 'AS') ? alias - 1 : alias;
      if (hi - 2 >= e && isWord(this.toks[hi - 2], 'WITH') && isWord(this.toks[hi - 1], 'ROLLUP')) hi -= 2;
      if (hi - 1 >= e && isWord(this.toks[hi - 1], 'ASC', 'DESC')) hi--;
    }
    if (g?.fn === 'TRIM' || g?.fn === 'SUBSTRING' || g?.fn === 'SUBSTR') {
      // TRIM([BOTH|LEADING|TRAILING] [remstr] FROM str), SUBSTRING(str FROM pos [FOR len]).
      const kw = g.fn === 'TRIM' ? ['BOTH', 'LEADING', 'TRAILING'] : [];
      let from = -1;
      for (let j = x; j < y; j++) if (isWord(this.toks[j], 'FROM') && this.depthHere(j, this.groups.indexOf(g))) from = j;
      if (from >= 0) {
        if (g.fn === 'TRIM') {
          const start = isWord(this.toks[x], ...kw) ? x + 1 : x;
          return (s === start && e === from) || (s === from + 1 && e === y) || (start === from && s === from + 1 && e === y);
        }
        return s === x && e === from;
      }
      if (g.fn === 'TRIM' && isWord(this.toks[x], ...kw)) return false;
    }
    if (g?.fn !== undefined && AGGREGATES.has(g.fn) && lo === g.open + 1 && lo < s && isWord(this.toks[lo], 'DISTINCT', 'ALL')) lo++;
    if (lo < s && isWord(this.toks[lo], 'BINARY') && !isPunct(this.toks[lo + 1], '(')) lo++;
    // `@v := x` passes x on as itself; what the variable keeps is judged as a stored value.
    while (lo + 2 <= s && this.toks[lo].type === 'var' && isPunct(this.toks[lo + 1], ':=')) lo += 2;
    if (lo !== s) return false;
    let k = e;
    // `… OVER (…)` / `… OVER w` after a window function call.
    if (isWord(this.toks[k], 'OVER')) {
      if (isPunct(this.toks[k + 1], '(')) {
        const over = this.groups.find((w) => w.open === k + 1);
        if (!over) return false;
        k = over.close + 1;
      } else k += 2;
    }
    if (isWord(this.toks[k], 'COLLATE') && k + 1 < hi) k += 2;
    if (g?.fn === 'CAST' || g?.fn === 'CONVERT') {
      // CAST(x AS CHAR[(n)] [CHARACTER SET cs]), CONVERT(x USING cs): a string accepts any value.
      if (isWord(this.toks[k], 'USING') && g.fn === 'CONVERT') k = hi;
      else if (isWord(this.toks[k], 'AS') && isWord(this.toks[k + 1], ...TEXT_TYPES)) k = hi;
    }
    return k === hi;
  }
}
