/**
 * A recursive-descent classifier over one MySQL statement's tokens. It does not build a full
 * syntax tree: it follows the grammar far enough to know the statement kind, every relation and
 * how it is touched, the functions called, WHERE presence and output lineage. Anything it cannot
 * follow throws MysqlParseError, which the analyser turns into kind 'unknown' (fail closed).
 */
import type { ColumnLineage, FunctionRef, RelationAccess, RelationRef, StatementFacts, StoredValue } from '../facts.js';
import { ExprShape } from './conditions.js';
import { CLAUSE_WORDS, NOT_FUNCTIONS, functionRisks } from './functions.js';
import type { Token } from './lexer.js';

/** Words that may follow the first parenthesised term of a query expression. */
const QUERY_TERM_FOLLOW = new Set(['UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'ORDER', 'LIMIT', 'OFFSET', 'FETCH', 'INTO', 'FOR', 'LOCK', 'PROCEDURE']);

export class MysqlParseError extends Error {}

/** What the statement-specific code decided, besides relations and functions. */
export type Classified = Pick<StatementFacts, 'kind' | 'tag'> &
  Partial<Pick<StatementFacts, 'hasWhere' | 'lineage' | 'settings' | 'prepare' | 'execute' | 'opaque' | 'changesResolution' | 'explainAnalyze' | 'cursor' | 'deallocate' | 'diagnostics' | 'actions'>>;

/** Words after ADD or DROP in ALTER TABLE that name something other than a column. */
const NOT_A_COLUMN = new Set(['INDEX', 'KEY', 'PRIMARY', 'UNIQUE', 'FOREIGN', 'CONSTRAINT', 'CHECK', 'PARTITION', 'FULLTEXT', 'SPATIAL', 'SYSTEM', 'PERIOD', 'DEFAULT']);

/** Analyses nested SQL text (PREPARE … FROM 'text', EXECUTE IMMEDIATE 'text'). */
export type NestedAnalyser = (sql: string) => StatementFacts;

interface Binding {
  alias: string;
  schema?: string;
  table?: string;
  rel?: RelationRef;
  /** A derived table or CTE: its output columns. */
  derived?: ColumnLineage[];
  /** A CTE's definition: a name FROM may use, not a table in scope for column names. */
  cte?: true;
}

interface Scope {
  bindings: Binding[];
  parent?: Scope;
}

interface ColRef {
  qualifier: string[];
  column: string;
  /** Token index where the reference starts. */
  at: number;
}

interface ExprInfo {
  start: number;
  end: number;
  refs: ColRef[];
  /** Lineage of scalar subqueries inside the expression. */
  subqueries: ColumnLineage[][];
  /** Token index of each subquery's opening parenthesis (as subqueries). */
  subqueryAt: number[];
  /** Anything that is not a literal or an operator: columns, functions, variables, subqueries. */
  nonConstant: boolean;
  /** Assigns a user variable (`@v := …`). */
  assigns?: boolean;
}

interface SelectItem {
  expr: ExprInfo;
  alias?: string;
  star?: { qualifier?: string };
}

/** Keywords MariaDB also takes as bare column names, outside the places they are syntax (see isNameHere). */
const NAME_KEYWORDS = new Set(['ANY', 'SOME', 'ROW', 'LATERAL', 'SOUNDS', 'FULL', 'UNKNOWN', 'MINUS', 'END', 'ESCAPE', 'WINDOW', 'NOWAIT']);

/** Words after which a name followed by `(` names an index (DDL), not a function. */
const INDEX_WORDS = new Set(['INDEX', 'KEY', 'UNIQUE', 'FULLTEXT', 'SPATIAL']);
/** Words that make the string after them a typed literal: date/time types, charset introducers, N. */
const TYPED_LITERAL = /^(DATE|TIME|TIMESTAMP|N|_[A-Z0-9]+)$/i;
const CLAUSE_STOP = new Set(['FROM', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'INTO', 'FOR', 'LOCK', 'WINDOW', 'UNION', 'EXCEPT', 'INTERSECT', 'PROCEDURE', 'RETURNING', 'MINUS', 'QUALIFY']);
const JOIN_WORDS = new Set(['JOIN', 'INNER', 'CROSS', 'LEFT', 'RIGHT', 'NATURAL', 'STRAIGHT_JOIN', 'FULL', 'OUTER']);
const SELECT_OPTIONS = new Set(['ALL', 'DISTINCT', 'DISTINCTROW', 'HIGH_PRIORITY', 'STRAIGHT_JOIN', 'SQL_SMALL_RESULT', 'SQL_BIG_RESULT', 'SQL_BUFFER_RESULT', 'SQL_NO_CACHE', 'SQL_CACHE', 'SQL_CALC_FOUND_ROWS']);
/**
 * Reserved words inside expressions that are neither columns nor functions (types, units,
 * constants). Only reserved words: a non-reserved word may be a column name, and dropping a
 * real column from lineage would leave it unmasked.
 */
const EXPR_WORDS = new Set([
  'CHAR', 'UNSIGNED', 'INTEGER', 'INT', 'DECIMAL', 'DOUBLE', 'FLOAT', 'REAL', 'BINARY', 'DAY_HOUR', 'DAY_MINUTE', 'DAY_SECOND', 'HOUR_MINUTE',
  'HOUR_SECOND', 'MINUTE_SECOND', 'YEAR_MONTH', 'SEPARATOR', 'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_USER', 'LOCALTIME',
  'LOCALTIMESTAMP', 'UTC_TIMESTAMP', 'UTC_DATE', 'UTC_TIME', 'BOTH', 'LEADING', 'TRAILING', 'CHARACTER', 'NOWAIT', 'ROW',
]);

/**
 * Column types a retype into may change values even in strict mode, with a note or silently:
 * a DECIMAL with fewer decimals rounds (19.99 → 20), FLOAT/DOUBLE/REAL lose precision, DATE,
 * TIME, DATETIME and TIMESTAMP drop the time, the date or fractional seconds, CHAR drops
 * trailing spaces and BINARY pads with zero bytes. Which retypes only widen would need the
 * column's current type: any retype into one of these counts as overwriting.
 */
const ROUNDS_IN_STRICT_MODE: ReadonlySet<string> = new Set(['DECIMAL', 'DEC', 'NUMERIC', 'FIXED', 'FLOAT', 'DOUBLE', 'REAL', 'DATE', 'TIME', 'DATETIME', 'TIMESTAMP', 'CHAR', 'CHARACTER', 'NCHAR', 'NATIONAL', 'BINARY']);

/** Functions that map each character to one of the same place: LOWER(email) shows, partially masked, what email did. */
const CASE_MAPS: ReadonlySet<string> = new Set(['LOWER', 'UPPER', 'LCASE', 'UCASE']);

export class MysqlStatementParser {
  private i = 0;
  readonly relations: RelationRef[] = [];
  readonly functions: FunctionRef[] = [];
  readonly predicateColumns: { schema?: string; table: string; column: string }[] = [];
  /** Values the statement stores (StatementFacts.stores); `pending` ones resolve once the statement is read. */
  readonly stores: StoredValue[] = [];
  private readonly pending: { into: StoredValue['into']; expr: ExprInfo; scope: Scope }[] = [];
  /** The column an UPDATE/DELETE's whole WHERE tests for truth (`WHERE id`), if that is all it does. */
  bareWhereColumn: string | undefined;
  /** Join conditions read so far (ON), and whether a NATURAL join or USING joined every side. */
  private readonly joinConditions: ExprInfo[] = [];
  private joinedByName = false;
  /** The WHERE of the UPDATE/DELETE just read (see whereTail). */
  private lastWhere: ExprInfo | undefined;
  /** ALTER TABLE … MODIFY / CHANGE: each column retyped (its current name) and its new type (StatementFacts.retypes). */
  readonly retypes: NonNullable<StatementFacts['retypes']> = [];
  /** `… INTO @a` or `… INTO OUTFILE`, waiting for the whole query expression (see takeInto). */
  private intoTarget: 'variable' | 'file' | undefined;
  private readonly cteNames = new Set<string>();
  /** The last ORDER BY read, for a set operation whose last branch took it (see parseQuery). */
  private lastOrderBy: { info: ExprInfo; scope: Scope } | undefined;

  constructor(
    private readonly toks: Token[],
    private readonly sql: string,
    private readonly currentDb: string | undefined,
    private readonly nested: NestedAnalyser,
  ) {}

  // ---- token helpers -------------------------------------------------------------------------

  private peek(k = 0): Token | undefined {
    return this.toks[this.i + k];
  }
  private atEnd(): boolean {
    return this.i >= this.toks.length;
  }
  private isKw(word: string, k = 0): boolean {
    const t = this.toks[this.i + k];
    return t !== undefined && t.type === 'word' && t.value === word;
  }
  private isPunct(p: string, k = 0): boolean {
    const t = this.toks[this.i + k];
    return t !== undefined && t.type === 'punct' && t.value === p;
  }
  private acceptKw(...words: string[]): boolean {
    if (words.every((w, k) => this.isKw(w, k))) {
      this.i += words.length;
      return true;
    }
    return false;
  }
  private expectKw(word: string): void {
    if (!this.acceptKw(word)) this.fail(`expected ${word}`);
  }
  private acceptPunct(p: string): boolean {
    if (this.isPunct(p)) {
      this.i++;
      return true;
    }
    return false;
  }
  private expectPunct(p: string): void {
    if (!this.acceptPunct(p)) this.fail(`expected '${p}'`);
  }
  private fail(what: string): never {
    const t = this.peek();
    throw new MysqlParseError(`${what} at ${t ? `'${t.text}' (offset ${t.start})` : 'end of statement'}`);
  }
  private wordAt(k = 0): string | undefined {
    const t = this.peek(k);
    return t?.type === 'word' ? t.value : undefined;
  }
  private isIdent(t: Token | undefined): t is Token {
    return t !== undefined && (t.type === 'quoted' || (t.type === 'word' && !CLAUSE_WORDS.has(t.value)));
  }
  /** Unquoted names are compared lower-cased; quoted names keep their case. */
  private name(t: Token): string {
    return t.type === 'quoted' || t.type === 'string' ? t.value : t.text.toLowerCase();
  }
  private readIdent(): string {
    const t = this.peek();
    if (!t || !(t.type === 'quoted' || t.type === 'word')) this.fail('expected an identifier');
    this.i++;
    return this.name(t);
  }
  /** `name`, `db.name`: returns the parts. */
  private readQualified(): string[] {
    const parts = [this.readIdent()];
    while (this.isPunct('.') && (this.peek(1)?.type === 'word' || this.peek(1)?.type === 'quoted')) {
      this.i++;
      parts.push(this.readIdent());
    }
    return parts;
  }
  /** `(a, b, …)`: a CTE's or derived table's column names. */
  private columnList(): string[] {
    this.expectPunct('(');
    const names: string[] = [];
    do names.push(this.readIdent());
    while (this.acceptPunct(','));
    this.expectPunct(')');
    return names;
  }
  private skipParens(): void {
    this.expectPunct('(');
    this.scanExpr(() => false, { bindings: [] });
    this.expectPunct(')');
  }
  private textOf(start: number, end: number): string {
    if (start >= end) return '';
    return this.sql.slice(this.toks[start].start, this.toks[end - 1].end);
  }
  private rest(): void {
    this.scanExpr(() => false, { bindings: [] });
    if (!this.atEnd()) this.fail('unexpected token');
  }

  // ---- relations and functions ---------------------------------------------------------------

  private addRelation(parts: string[], access: RelationAccess, via?: string): RelationRef | undefined {
    const name = parts[parts.length - 1];
    const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
    // A CTE name shadows a table of the same name; it is not a relation of its own.
    if (schema === undefined && this.cteNames.has(name)) return undefined;
    const resolvedSchema = schema ?? this.currentDb;
    const existing = this.relations.find((r) => r.name === name && r.schema === resolvedSchema && r.access === access && r.via === via);
    if (existing) return existing;
    const rel: RelationRef = { name, access };
    if (resolvedSchema !== undefined) {
      rel.schema = resolvedSchema;
      rel.resolved = { schema: resolvedSchema, name };
    }
    if (via !== undefined) rel.via = via;
    this.relations.push(rel);
    return rel;
  }

  private addFunction(parts: string[], inFrom = false): FunctionRef {
    const name = parts[parts.length - 1];
    const upper = name.toUpperCase();
    const fn: FunctionRef = { name: upper, risks: parts.length > 1 ? [] : functionRisks(upper) };
    if (parts.length > 1) fn.schema = parts[parts.length - 2];
    if (inFrom) fn.inFrom = true;
    const seen = this.functions.find((f) => f.name === fn.name && f.schema === fn.schema && !!f.inFrom === inFrom);
    if (seen) return seen;
    this.functions.push(fn);
    return fn;
  }

  /** Server-side file access that is not a function call (INTO OUTFILE, LOAD DATA INFILE). */
  private addFileAccess(what: string): void {
    if (!this.functions.some((f) => f.name === what)) this.functions.push({ name: what, risks: ['file'] });
  }

  // ---- expressions ---------------------------------------------------------------------------

  /**
   * Walks an expression up to a depth-0 token for which `stop` holds (or an unbalanced `)`),
   * recording functions, subqueries and column references.
   */
  private scanExpr(stop: (t: Token) => boolean, scope: Scope): ExprInfo {
    const info: ExprInfo = { start: this.i, end: this.i, refs: [], subqueries: [], subqueryAt: [], nonConstant: false };
    let depth = 0;
    while (!this.atEnd()) {
      const t = this.peek()!;
      if (depth === 0 && stop(t)) break;
      if (t.type === 'punct' && t.value === '(') {
        if (this.isKw('SELECT', 1) || this.isKw('WITH', 1) || this.isKw('VALUES', 1) || this.isKw('TABLE', 1) || (this.isPunct('(', 1) && this.startsQueryInParens(1) && this.groupEndsQuery(1))) {
          const open = this.i++;
          const exists = this.toks[this.i - 2]?.type === 'word' && this.toks[this.i - 2].value === 'EXISTS';
          const lineage = this.parseQuery({ bindings: [], parent: scope });
          // EXISTS (SELECT …) is true or false: what the subquery returns is neither value nor test.
          info.subqueries.push(exists ? [] : lineage);
          info.subqueryAt.push(open);
          this.expectPunct(')');
          info.nonConstant = true;
          continue;
        }
        depth++;
        this.i++;
        continue;
      }
      if (t.type === 'punct' && t.value === ')') {
        if (depth === 0) break;
        depth--;
        this.i++;
        continue;
      }
      if (t.type === 'var' || t.type === 'sysvar' || t.type === 'param') info.nonConstant = true;
      if (t.type === 'var' && this.isPunct(':=', 1)) info.assigns = true;
      if (t.type === 'word' && t.value === 'REFERENCES' && (this.peek(1)?.type === 'word' || this.peek(1)?.type === 'quoted')) {
        this.i++;
        this.addRelation(this.readQualified(), 'read', 'foreign key');
        continue;
      }
      if (t.type === 'word' || t.type === 'quoted') {
        // A name after `.` belongs to the chain already read (e.g. `t.col` reached via `->`).
        const prev = this.toks[this.i - 1];
        if (prev?.type === 'punct' && prev.value === '.') {
          this.i++;
          continue;
        }
        // `KEY ix (col)`, `UNIQUE INDEX ix (col)`: an index name before its column list, not a call.
        if (prev?.type === 'word' && INDEX_WORDS.has(prev.value) && (t.type === 'quoted' || !CLAUSE_WORDS.has(t.value)) && this.isPunct('(', 1)) {
          this.i++;
          continue;
        }
        const chainStart = this.i;
        const parts = this.readQualified();
        if (this.isPunct('(') && !(t.type === 'word' && parts.length === 1 && NOT_FUNCTIONS.has(t.value))) {
          this.addFunction(parts);
          info.nonConstant = true;
          continue;
        }
        if (this.isPunct('.') && this.isPunct('*', 1)) {
          this.i += 2;
          info.refs.push({ qualifier: parts, column: '*', at: chainStart });
          info.nonConstant = true;
          continue;
        }
        const single = parts.length === 1 && t.type === 'word';
        if (single && (CLAUSE_WORDS.has(t.value) || EXPR_WORDS.has(t.value)) && !this.isNameHere(chainStart, info.start)) continue;
        // DATE '2024-01-01', _utf8mb4 'x', N'x': a typed literal, not a column. Any other word
        // before a string is a column with a string alias (`SELECT email 'e'`), and counts.
        if (single && this.toks[chainStart + 1]?.type === 'string' && TYPED_LITERAL.test(t.value)) continue;
        info.refs.push({ qualifier: parts.slice(0, -1), column: parts[parts.length - 1], at: chainStart });
        info.nonConstant = true;
        continue;
      }
      this.i++;
    }
    info.end = this.i;
    // Coarse but safe: the whole expression counts as what the variable receives.
    if (info.assigns) this.pending.push({ into: 'variable', expr: info, scope });
    this.testedOperands(info, scope);
    return info;
  }

  /**
   * Columns and subqueries the expression tests rather than passes on (see conditions.ts) are
   * filters on what they read, wherever the expression stands: `SELECT IF(ssn = '…', EXP(1000),
   * 0)` errs exactly when the guess is right, though what it returns is masked.
   */
  private testedOperands(info: ExprInfo, scope: Scope): void {
    if (info.refs.length === 0 && info.subqueries.every((l) => l.length === 0)) return;
    const shape = new ExprShape(this.toks, info.start, info.end);
    for (const r of info.refs) {
      if (shape.isAlias(r.at)) continue;
      if (shape.tested(r.at, r.at + 1 + 2 * r.qualifier.length)) this.addPredicates(this.resolve(r, scope).sources);
    }
    info.subqueries.forEach((l, k) => {
      if (l.length > 0 && shape.testedGroup(info.subqueryAt[k])) for (const c of l) this.addPredicates(c.sources);
    });
  }

  /** Columns compared with something: filters on what they read (facts.predicateColumns), each once. */
  private addPredicates(sources: ColumnLineage['sources']): void {
    for (const s of sources) if (!this.predicateColumns.some((p) => sameSource(p, s))) this.predicateColumns.push(s);
  }

  /**
   * Whether the keyword at token k (inside an expression that starts at `from`) is a column name
   * there. These words are keywords only in some places, and MariaDB takes them as bare names
   * anywhere else (`SELECT full FROM (SELECT full_name AS full …) d`): read as syntax, the column
   * they name would carry no lineage at all.
   */
  private isNameHere(k: number, from: number): boolean {
    const t = this.toks[k];
    if (!NAME_KEYWORDS.has(t.value)) return false;
    const next = this.toks[k + 1];
    const prev = k > from ? this.toks[k - 1] : undefined;
    const word = (x: Token | undefined, ...w: string[]): boolean => x?.type === 'word' && w.includes(x.value);
    const punct = (x: Token | undefined, p: string): boolean => x?.type === 'punct' && x.value === p;
    switch (t.value) {
      case 'ANY':
      case 'SOME':
      case 'ROW':
      case 'LATERAL':
        return !punct(next, '(');
      case 'SOUNDS':
        return !word(next, 'LIKE');
      case 'FULL':
        return !word(next, 'JOIN', 'OUTER');
      case 'UNKNOWN':
        return !(word(prev, 'IS') || (word(prev, 'NOT') && word(this.toks[k - 2], 'IS')));
      case 'MINUS':
        return !word(next, 'SELECT') && !punct(next, '(');
      case 'END':
      case 'ESCAPE': {
        // END closes a CASE, ESCAPE follows a LIKE: keywords when one is open in this expression.
        let open = 0;
        for (let j = from; j < k; j++) {
          const x = this.toks[j];
          if (t.value === 'END' && word(x, 'CASE')) open++;
          else if (t.value === 'END' && word(x, 'END') && !this.isNameHere(j, from)) open--;
          else if (t.value === 'ESCAPE' && word(x, 'LIKE')) open = 1;
        }
        // ESCAPE is followed by its character: a name is followed by `,`, `)` or an operator.
        if (t.value === 'ESCAPE' && open > 0) return next === undefined || (next.type === 'punct' && next.value !== '(');
        return open <= 0;
      }
      default:
        // WINDOW, NOWAIT: clause words the expression scan never reaches as syntax.
        return true;
    }
  }

  /** Stored values, with lineage now that every FROM of the statement has been read. */
  storedValues(): StoredValue[] {
    for (const p of this.pending.splice(0)) this.stores.push(this.storedFrom(p.into, p.expr, p.scope));
    return this.stores;
  }

  private storedFrom(into: StoredValue['into'], expr: ExprInfo, scope: Scope): StoredValue {
    const [l] = this.lineageOf([{ expr }], scope);
    return { into, sources: l?.sources ?? [], opaque: l?.opaque ?? true, ...(l?.direct === true ? { direct: true } : {}), ...(l?.caseMapped ? { caseMapped: true as const } : {}) };
  }

  /** Every output of a query stored into `into` (a table's columns in order, or variables). */
  private storeRows(lineage: ColumnLineage[], into: (k: number, name: string) => StoredValue['into']): void {
    lineage.forEach((c, k) => this.stores.push({ into: into(k, c.name), sources: c.sources, opaque: c.opaque, ...(c.direct ? { direct: true } : {}), ...(c.caseMapped ? { caseMapped: true as const } : {}) }));
  }

  private startsQueryInParens(k: number): boolean {
    let j = this.i + k;
    while (this.toks[j]?.type === 'punct' && this.toks[j].value === '(') j++;
    const t = this.toks[j];
    return t?.type === 'word' && (t.value === 'SELECT' || t.value === 'WITH' || t.value === 'VALUES' || t.value === 'TABLE');
  }

  /**
   * Whether the parenthesised group at token i+k, read as the first term of a query in
   * parentheses, is followed by what may follow such a term: `((SELECT …))`, `((SELECT …) UNION
   * …)`. Followed by anything else (`CONCAT((SELECT …), '')`, `((SELECT …) = 'x')`), the outer
   * parenthesis groups an expression and the inner one is a scalar subquery.
   */
  private groupEndsQuery(k: number): boolean {
    let depth = 0;
    for (let j = this.i + k; j < this.toks.length; j++) {
      const t = this.toks[j];
      if (t.type !== 'punct') continue;
      if (t.value === '(') depth++;
      else if (t.value === ')' && --depth === 0) {
        const next = this.toks[j + 1];
        if (next === undefined) return true;
        if (next.type === 'punct') return next.value === ')';
        return next.type === 'word' && QUERY_TERM_FOLLOW.has(next.value);
      }
    }
    // Unbalanced: left to the query parser, which reports it.
    return true;
  }

  private depth0Stop(words: Set<string>, comma = false): (t: Token) => boolean {
    return (t) => (t.type === 'word' && words.has(t.value)) || (t.type === 'punct' && (t.value === ';' || (comma && t.value === ',')));
  }

  // ---- queries -------------------------------------------------------------------------------

  /** query_expression: [WITH …] term { UNION|EXCEPT|INTERSECT term } [ORDER BY] [LIMIT] [INTO] [FOR UPDATE]. */
  parseQuery(scope: Scope): ColumnLineage[] {
    if (this.isKw('WITH')) this.parseWith(scope);
    let lineage = this.parseQueryTerm(scope);
    let lastTerm = -1;
    // Per position: every branch so far reads the same column, plainly (its values are all that column's).
    const plain = lineage.map((c) => c.direct && c.sources.length === 1);
    let compares = false;
    while (this.isKw('UNION') || this.isKw('EXCEPT') || this.isKw('INTERSECT') || this.isKw('MINUS')) {
      const op = this.wordAt();
      this.i++;
      lastTerm = this.i;
      const all = this.acceptKw('ALL');
      if (!all) this.acceptKw('DISTINCT');
      // Only UNION ALL keeps every row as it is; the others compare rows to drop or keep them.
      compares ||= !(op === 'UNION' && all);
      const next = this.parseQueryTerm(scope);
      plain.forEach((p, k) => (plain[k] = p && next[k]?.direct === true && next[k].sources.length === 1 && sameSource(next[k].sources[0], lineage[k].sources[0])));
      lineage = lineage.map((col, k) => ({
        ...col,
        sources: dedupeSources([...col.sources, ...(next[k]?.sources ?? [])]),
        opaque: col.opaque || (next[k]?.opaque ?? true),
        direct: false,
      }));
    }
    // A set operation that compares rows compares a classified column's values with whatever the
    // other branches put beside them (`SELECT ssn FROM users UNION SELECT '<guess>'` has one row
    // fewer when someone has that value): a filter, unless every branch reads that column plainly.
    if (compares) lineage.forEach((c, k) => plain[k] || this.addPredicates(c.sources));
    // After a set operation the branches' expressions are not at hand: any derived column counts.
    const named = (name: string): ColumnLineage['sources'] | undefined => {
      const k = name.startsWith('#') ? Number(name.slice(1)) - 1 : lineage.findIndex((x) => x.name.toLowerCase() === name);
      const c = lineage[k];
      return c !== undefined && !c.direct && !plain[k] ? c.sources : undefined;
    };
    // The last branch read an ORDER BY that sorts the whole set operation: by its output columns too.
    const last = this.lastOrderBy;
    if (lastTerm >= 0 && last !== undefined && last.info.start > lastTerm) this.orderingFilters(last.info, last.info.start, last.info.end, last.scope, named);
    this.parseQueryTail(scope, named);
    this.takeInto(lineage);
    return lineage;
  }

  /**
   * `… INTO @a, @b`: the query's values are stored in variables. Taken here, once the whole query
   * expression is read, so a UNION's every branch counts (INTO may follow the last one).
   */
  private takeInto(lineage: ColumnLineage[]): void {
    const into = this.intoTarget;
    if (into === undefined) return;
    this.intoTarget = undefined;
    this.storeRows(lineage, () => into);
  }

  private parseWith(scope: Scope): void {
    this.expectKw('WITH');
    this.acceptKw('RECURSIVE');
    do {
      const name = this.readIdent();
      this.cteNames.add(name);
      const columns = this.isPunct('(') ? this.columnList() : undefined;
      this.expectKw('AS');
      this.expectPunct('(');
      const lineage = this.parseQuery({ bindings: [], parent: scope });
      this.expectPunct(')');
      const derived = renamed(lineage, columns);
      scope.bindings.push({ alias: name, derived, cte: true });
      // MariaDB's CYCLE col, … RESTRICT stops the recursion at a row equal to an earlier one on
      // those columns: how many rows come out answers whether a value the client chose equals one.
      if (this.acceptKw('CYCLE')) {
        do {
          const col = this.readIdent().toLowerCase();
          const hit = derived.filter((c) => c.name.toLowerCase() === col);
          for (const c of hit.length > 0 ? hit : derived) this.addPredicates(c.sources);
        } while (this.acceptPunct(','));
        this.expectKw('RESTRICT');
      }
    } while (this.acceptPunct(','));
  }

  private parseQueryTerm(scope: Scope): ColumnLineage[] {
    if (this.acceptPunct('(')) {
      const lineage = this.parseQuery(scope);
      this.expectPunct(')');
      return lineage;
    }
    if (this.isKw('SELECT')) return this.parseSelect(scope);
    if (this.acceptKw('TABLE')) {
      const parts = this.readQualified();
      this.addRelation(parts, 'read');
      const table = parts[parts.length - 1];
      return [{ index: 0, name: '*', sources: [{ ...(parts.length > 1 ? { schema: parts[0] } : {}), table, column: '*' }], opaque: false, direct: false }];
    }
    if (this.acceptKw('VALUES')) return this.parseValuesRows(scope);
    this.fail('expected SELECT');
  }

  /**
   * A table value constructor, `VALUES (a, b), (c, d)` (MySQL 8: `VALUES ROW(a, b), …`): column k
   * carries what the k-th value of every row carries. Its rows are a query's rows like any other,
   * read through a derived table or a CTE too, so they must not come out with no lineage at all.
   */
  private parseValuesRows(scope: Scope): ColumnLineage[] {
    let out: ColumnLineage[] | undefined;
    do {
      this.acceptKw('ROW');
      this.expectPunct('(');
      const items: SelectItem[] = [];
      if (!this.isPunct(')')) {
        do items.push({ expr: this.scanExpr(this.depth0Stop(new Set(), true), scope) });
        while (this.acceptPunct(','));
      }
      this.expectPunct(')');
      const row = this.lineageOf(items, scope);
      // Rows of different widths are a server error; an unmatched position is unknown.
      out =
        out === undefined
          ? row
          : out.map((c, k) => ({ ...c, sources: dedupeSources([...c.sources, ...(row[k]?.sources ?? [])]), opaque: c.opaque || (row[k]?.opaque ?? true), direct: false }));
    } while (this.acceptPunct(','));
    return out;
  }

  /** `named`: what sorting by an output column's name tests (see orderingFilters). */
  private parseQueryTail(scope: Scope, named: (name: string) => ColumnLineage['sources'] | undefined): void {
    for (;;) {
      if (this.acceptKw('ORDER', 'BY')) {
        const info = this.scanExpr(this.depth0Stop(CLAUSE_STOP), scope);
        this.orderingFilters(info, info.start, info.end, scope, named);
        this.lastOrderBy = { info, scope };
      } else if (this.acceptKw('LIMIT') || this.acceptKw('OFFSET') || this.acceptKw('FETCH')) {
        this.scanExpr(this.depth0Stop(CLAUSE_STOP), scope);
      } else if (this.isKw('INTO')) {
        this.parseInto(scope);
      } else if (this.acceptKw('FOR')) {
        // FOR UPDATE / FOR SHARE [OF t] [NOWAIT | SKIP LOCKED]; FOR SYSTEM_TIME is handled in FROM.
        this.scanExpr(this.depth0Stop(new Set(['INTO', 'UNION', 'EXCEPT', 'INTERSECT'])), scope);
      } else if (this.acceptKw('LOCK', 'IN', 'SHARE', 'MODE')) {
        continue;
      } else if (this.acceptKw('PROCEDURE')) {
        this.scanExpr(this.depth0Stop(CLAUSE_STOP), scope);
      } else return;
    }
  }

  private parseInto(scope: Scope): void {
    this.expectKw('INTO');
    // Writes a file on the database host: the classic exfiltration and web-shell path.
    // What it writes there is stored where masking does not reach, as with variables.
    if (this.acceptKw('OUTFILE')) {
      this.addFileAccess('INTO OUTFILE');
      this.intoTarget = 'file';
    } else if (this.acceptKw('DUMPFILE')) {
      this.addFileAccess('INTO DUMPFILE');
      this.intoTarget = 'file';
    } else this.intoTarget = 'variable';
    this.scanExpr(this.depth0Stop(new Set(['FROM', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'FOR', 'LOCK', 'UNION', 'EXCEPT', 'INTERSECT', 'WINDOW'])), scope);
  }

  private parseSelect(outer: Scope): ColumnLineage[] {
    this.expectKw('SELECT');
    const scope: Scope = { bindings: [], parent: outer };
    let distinct = false;
    while (this.wordAt() !== undefined && SELECT_OPTIONS.has(this.wordAt()!)) {
      distinct ||= this.wordAt() === 'DISTINCT' || this.wordAt() === 'DISTINCTROW';
      this.i++;
    }
    // FROM first, as the server resolves names: a subquery in the select list may read a column
    // of these tables (`SELECT (SELECT email FROM orders) FROM users` reads users.email), and its
    // lineage and predicates are worked out as it is read.
    const itemsAt = this.i;
    const from = this.clauseFrom();
    let fromEnd = -1;
    if (from >= 0) {
      this.i = from + 1;
      this.parseTableRefs(scope, 'read');
      fromEnd = this.i;
      this.i = itemsAt;
    }
    const items: SelectItem[] = [];
    const itemStop = this.depth0Stop(CLAUSE_STOP, true);
    do {
      if (this.isPunct('*')) {
        this.i++;
        items.push({ expr: { start: this.i - 1, end: this.i, refs: [], subqueries: [], subqueryAt: [], nonConstant: true }, star: {} });
        continue;
      }
      const expr = this.scanExpr(itemStop, scope);
      if (expr.end === expr.start) this.fail('expected a select item');
      items.push(this.selectItem(expr));
    } while (this.acceptPunct(','));

    for (;;) {
      if (this.isKw('INTO')) this.parseInto(scope);
      else if (this.isKw('FROM')) {
        // Read above; a FROM anywhere else is not the one the server reads.
        if (this.i !== from) this.fail('unexpected FROM');
        this.i = fromEnd;
      } else if (this.acceptKw('HAVING') || this.acceptKw('QUALIFY')) {
        // HAVING may name an output column by its alias (`ssn AS s … HAVING s LIKE '1%'`): a filter on what it reads.
        const info = this.predicate(scope);
        for (const r of info.refs) {
          const item = r.qualifier.length === 0 ? items.find((it) => it.alias?.toLowerCase() === r.column.toLowerCase()) : undefined;
          if (item) this.addPredicates(this.lineageOf([item], scope)[0]?.sources ?? []);
        }
      } else if (this.acceptKw('WHERE')) this.predicate(scope);
      else if (this.acceptKw('GROUP', 'BY') || this.acceptKw('WINDOW')) {
        const info = this.scanExpr(this.depth0Stop(CLAUSE_STOP), scope);
        this.orderingFilters(info, info.start, info.end, scope, (name) => this.namedFilter(items, scope, name));
      } else break;
    }
    // DISTINCT compares every output row with the others, as GROUP BY of each item does.
    if (distinct) for (const item of items) if (!item.star) this.orderingFilters(item.expr, item.expr.start, item.expr.end, scope, () => undefined);
    for (const item of items) if (!item.star) this.aggregateOrderings(item.expr, scope);
    // Window specifications in the select list: OVER (PARTITION BY … ORDER BY …).
    for (const item of items) {
      for (let k = item.expr.start; k < item.expr.end - 1; k++) {
        if (this.toks[k].type !== 'word' || this.toks[k].value !== 'OVER' || !(this.toks[k + 1].type === 'punct' && this.toks[k + 1].value === '(')) continue;
        const close = matchingParen(this.toks, k + 1);
        if (close > 0) this.orderingFilters(item.expr, k + 2, close, scope, (name) => this.namedFilter(items, scope, name));
      }
    }
    this.parseQueryTail(scope, (name) => this.namedFilter(items, scope, name));
    return this.lineageOf(items, scope);
  }

  /**
   * Aggregates that compare their arguments: `COUNT(DISTINCT v)` counts one value fewer when a
   * guess beside the real ones matches one, `GROUP_CONCAT(id ORDER BY v)` lists rows in the
   * order of v. Both are orderings (see orderingFilters) over what they take. Window
   * specifications (OVER) are read with the select list's.
   */
  private aggregateOrderings(info: ExprInfo, scope: Scope): void {
    const isWord = (k: number, w: string): boolean => this.toks[k]?.type === 'word' && this.toks[k].value === w;
    const open: number[] = [];
    for (let k = info.start; k < info.end; k++) {
      const t = this.toks[k];
      if (t.type === 'punct' && t.value === '(') {
        open.push(k);
        if (isWord(k + 1, 'DISTINCT') && !isWord(k - 1, 'OVER')) {
          const close = matchingParen(this.toks, k);
          if (close > 0) this.orderingFilters(info, k + 2, this.aggregateClauseEnd(k + 2, close, ['ORDER', 'SEPARATOR', 'LIMIT']), scope, () => undefined);
        }
      } else if (t.type === 'punct' && t.value === ')') open.pop();
      else if (isWord(k, 'ORDER') && isWord(k + 1, 'BY') && open.length > 0 && !isWord(open[open.length - 1] - 1, 'OVER')) {
        const close = matchingParen(this.toks, open[open.length - 1]);
        if (close > 0) this.orderingFilters(info, k + 2, this.aggregateClauseEnd(k + 2, close, ['SEPARATOR', 'LIMIT']), scope, () => undefined);
      }
    }
  }

  /** Where toks[from, close) ends before one of `words` at its own depth (an aggregate's next clause). */
  private aggregateClauseEnd(from: number, close: number, words: string[]): number {
    let depth = 0;
    for (let k = from; k < close; k++) {
      const t = this.toks[k];
      if (t.type === 'punct' && t.value === '(') depth++;
      else if (t.type === 'punct' && t.value === ')') depth--;
      else if (depth === 0 && t.type === 'word' && words.includes(t.value)) return k;
    }
    return close;
  }

  /** The columns an output column named `name` tests, when it is a comparing expression (see orderingFilters). */
  private namedFilter(items: SelectItem[], scope: Scope, name: string): ColumnLineage['sources'] | undefined {
    const k = name.startsWith('#') ? Number(name.slice(1)) - 1 : items.findIndex((it) => it.alias?.toLowerCase() === name);
    const item = items[k];
    if (item === undefined || item.star) return undefined;
    // A comparing expression, or a column that may hold values from elsewhere (see orderingFilters).
    const mixed = item.expr.refs.some((r) => !this.resolve(r, scope).direct);
    if (!mixed && !this.compares(item.expr.start, item.expr.end)) return undefined;
    return this.lineageOf([item], scope)[0]?.sources;
  }

  /** Whether toks[a, b) holds something to compare a column with: a literal, a parameter, a variable, a subquery. */
  private compares(a: number, b: number): boolean {
    for (let k = a; k < b; k++) {
      const t = this.toks[k];
      if (t.type === 'string' || t.type === 'number' || t.type === 'param' || t.type === 'var' || t.type === 'sysvar' || (t.type === 'word' && (t.value === 'SELECT' || t.value === 'TRUE' || t.value === 'FALSE' || t.value === 'NULL'))) return true;
    }
    return false;
  }

  /**
   * ORDER BY, GROUP BY and window specifications over toks[a, b): the order or grouping of rows
   * by a classified column compared with something tells its values apart as a WHERE does
   * (`ORDER BY ssn = '…' DESC LIMIT 1` returns the id whose ssn that is). An item holding a
   * literal, parameter, variable or subquery is a filter on the columns it reads, and so is an
   * output column named there that is such an expression; sorting by a column (or an expression
   * of it alone, or a position) tests nothing and stays allowed.
   */
  private orderingFilters(info: ExprInfo, a: number, b: number, scope: Scope, named: (name: string) => ColumnLineage['sources'] | undefined): void {
    const isWord = (t: Token | undefined, ...w: string[]): boolean => t?.type === 'word' && w.includes(t.value);
    const items: [number, number][] = [];
    let depth = 0;
    let from = a;
    for (let k = a; k < b; k++) {
      const t = this.toks[k];
      if (t.type === 'punct' && t.value === '(') depth++;
      else if (t.type === 'punct' && t.value === ')') depth--;
      else if (depth === 0 && ((t.type === 'punct' && t.value === ',') || isWord(t, 'BY', 'ROWS', 'RANGE', 'GROUPS'))) {
        items.push([from, k]);
        from = k + 1;
        // A window frame (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) counts rows, it compares nothing.
        if (isWord(t, 'ROWS', 'RANGE', 'GROUPS')) from = b;
      }
    }
    items.push([from, b]);
    for (let [x, y] of items) {
      // Not part of the item: ASC / DESC, WITH ROLLUP, and the PARTITION / ORDER before a BY.
      while (y > x && isWord(this.toks[y - 1], 'ASC', 'DESC', 'ROLLUP', 'WITH', 'PARTITION', 'ORDER')) y--;
      const toks = stripParens(this.toks.slice(x, y));
      if (toks.length === 0) continue;
      if (toks.length === 1 && toks[0].type === 'number') {
        // A position: what that output column is.
        const out = named(`#${toks[0].value}`);
        if (out) this.addPredicates(out);
        continue;
      }
      if (toks.length === 1 && (toks[0].type === 'word' || toks[0].type === 'quoted')) {
        // An output column's name: a filter when that column is a comparing expression.
        const out = named(this.name(toks[0]).toLowerCase());
        if (out) {
          this.addPredicates(out);
          continue;
        }
      }
      const literal = this.compares(x, y);
      for (const r of info.refs) {
        if (r.at < x || r.at >= y) continue;
        // A column of a derived table or CTE that is not a plain column may hold values from
        // elsewhere (a UNION ALL with a literal, a CASE): sorting sorts them among the real ones.
        const res = this.resolve(r, scope);
        if (literal || !res.direct) this.addPredicates(res.sources);
      }
    }
  }

  /** The index of this SELECT's FROM (the first FROM outside parentheses before its other clauses), or -1. */
  private clauseFrom(): number {
    let depth = 0;
    for (let k = this.i; k < this.toks.length; k++) {
      const t = this.toks[k];
      if (t.type === 'punct') {
        if (t.value === '(') depth++;
        else if (t.value === ')' && --depth < 0) return -1;
        else if (t.value === ';' && depth === 0) return -1;
        continue;
      }
      if (depth !== 0 || t.type !== 'word') continue;
      if (t.value === 'FROM') return k;
      if (t.value !== 'INTO' && CLAUSE_STOP.has(t.value)) return -1;
    }
    return -1;
  }

  private selectItem(expr: ExprInfo): SelectItem {
    const toks = this.toks.slice(expr.start, expr.end);
    const item: SelectItem = { expr };
    const last = toks[toks.length - 1];
    const before = toks[toks.length - 2];
    const afterAs = before?.type === 'word' && before.value === 'AS';
    const aliasTok = last && (last.type === 'quoted' || last.type === 'string' || (last.type === 'word' && ((!CLAUSE_WORDS.has(last.value) && !EXPR_WORDS.has(last.value)) || (afterAs && NAME_KEYWORDS.has(last.value)))));
    if (toks.length >= 2 && aliasTok) {
      const explicit = before.type === 'word' && before.value === 'AS';
      const implicit = !explicit && (before.type === 'punct' ? before.value === ')' : before.type !== 'word' || !CLAUSE_WORDS.has(before.value)) && !(before.type === 'punct' && before.value === '.');
      // `a b` is an alias; `a.b`, `a + b` and `x AS` are not.
      if (explicit || (implicit && toks.length >= 2 && !(before.type === 'punct' && before.value !== ')'))) {
        item.alias = this.name(last);
        const aliasRefIndex = expr.refs.findIndex((r) => r.qualifier.length === 0 && r.column === item.alias);
        if (aliasRefIndex >= 0 && last.type !== 'string') expr.refs.splice(aliasRefIndex, 1);
        expr.end -= explicit ? 2 : 1;
      }
    }
    const single = expr.end - expr.start;
    if (expr.refs.length === 1 && expr.refs[0].column === '*' && single === 3) item.star = { qualifier: expr.refs[0].qualifier[expr.refs[0].qualifier.length - 1] };
    return item;
  }

  /** An ON condition ends at the next join, a clause, UPDATE's SET or a comma (`FROM a JOIN b ON … , c`). */
  private readonly joinConditionStop = (t: Token): boolean =>
    (t.type === 'word' && (CLAUSE_STOP.has(t.value) || t.value === 'SET' || (JOIN_WORDS.has(t.value) && !this.isPunct('(', 1)))) ||
    (t.type === 'punct' && (t.value === ',' || t.value === ';'));

  private predicate(scope: Scope, stop: (t: Token) => boolean = this.depth0Stop(CLAUSE_STOP)): ExprInfo {
    const info = this.scanExpr(stop, scope);
    for (const r of info.refs) this.addPredicates(this.resolve(r, scope).sources);
    // What a subquery returns is compared too: `'1' IN (SELECT ssn …)`, `(SELECT ssn …) = '1'`.
    for (const sub of info.subqueries) for (const c of sub) this.addPredicates(c.sources);
    return info;
  }

  // ---- FROM ----------------------------------------------------------------------------------

  /** table_references: factor { JOIN factor [ON|USING] | , factor }. Adds bindings to scope. */
  private parseTableRefs(scope: Scope, access: RelationAccess): Binding[] {
    const added: Binding[] = [];
    do {
      added.push(...this.parseTableFactor(scope, access));
      for (;;) {
        if (!(this.wordAt() !== undefined && JOIN_WORDS.has(this.wordAt()!))) break;
        const natural = this.isKw('NATURAL');
        while (this.wordAt() !== undefined && JOIN_WORDS.has(this.wordAt()!) && !this.isKw('JOIN') && !this.isKw('STRAIGHT_JOIN')) this.i++;
        if (!this.acceptKw('JOIN') && !this.acceptKw('STRAIGHT_JOIN')) this.fail('expected JOIN');
        added.push(...this.parseTableFactor(scope, access));
        // NATURAL JOIN compares every column the two sides share, which only the catalog knows:
        // every column of every table joined so far counts as a predicate column.
        if (natural) this.naturalJoin(scope);
        if (this.acceptKw('ON')) this.joinConditions.push(this.predicate(scope, this.joinConditionStop));
        else if (this.acceptKw('USING')) {
          this.usingColumns(scope);
          this.joinedByName = true;
        }
        if (natural) this.joinedByName = true;
      }
    } while (this.acceptPunct(','));
    return added;
  }

  /**
   * JOIN … USING (a, b): the join compares a and b of the tables on both sides, as `x.a = y.a` in
   * an ON would, so they are predicate columns (a join on a classified column is a filter on it).
   */
  private usingColumns(scope: Scope): void {
    for (const column of this.columnList()) {
      this.addPredicates(this.resolve({ qualifier: [], column, at: this.i }, scope).sources);
    }
  }

  private naturalJoin(scope: Scope): void {
    for (const b of scope.bindings) {
      if (b.cte) continue;
      if (b.derived) for (const c of b.derived) this.addPredicates(c.sources);
      else if (b.table !== undefined) this.addPredicates([{ ...(b.schema !== undefined ? { schema: b.schema } : {}), table: b.table, column: '*' }]);
    }
  }

  private parseTableFactor(scope: Scope, access: RelationAccess): Binding[] {
    if (this.acceptKw('LATERAL') || (this.isPunct('(') && this.startsQueryInParens(0))) {
      this.expectPunct('(');
      const lineage = this.parseQuery({ bindings: [], parent: scope });
      this.expectPunct(')');
      const alias = this.readAlias() ?? '';
      const b: Binding = { alias, derived: renamed(lineage, this.isPunct('(') ? this.columnList() : undefined) };
      scope.bindings.push(b);
      return [b];
    }
    if (this.acceptPunct('(')) {
      const inner = this.parseTableRefs(scope, access);
      this.expectPunct(')');
      return inner;
    }
    if (this.isKw('DUAL')) {
      this.i++;
      return [];
    }
    if (this.isKw('JSON_TABLE') && this.isPunct('(', 1)) {
      this.i++;
      this.addFunction(['json_table'], true);
      // JSON_TABLE(doc, path COLUMNS (…)): the rows come from `doc`; the column list holds
      // names and paths, not references to the tables in scope. How many rows it yields depends
      // on what `doc` holds, so what doc reads is filtered on: COUNT(*) over JSON_TABLE(CONCAT('["',
      // REPLACE(CONCAT('^', ssn), '^123-', '","'), '"]'), '$[*]' …) answers whether ssn starts 123-.
      this.expectPunct('(');
      const doc = this.predicate(scope, this.depth0Stop(new Set(), true));
      this.scanExpr(() => false, { bindings: [] });
      this.expectPunct(')');
      const b: Binding = { alias: '', derived: this.tableFunctionColumns(doc, scope) };
      b.alias = this.readAlias() ?? 'json_table';
      scope.bindings.push(b);
      return [b];
    }
    const parts = this.readQualified();
    if (this.isPunct('(')) {
      // A table function (MariaDB SEQUENCE engines aside, only JSON_TABLE is valid here); its
      // arguments decide its rows, as JSON_TABLE's document does.
      this.addFunction(parts, true);
      this.expectPunct('(');
      const args = this.predicate(scope, () => false);
      this.expectPunct(')');
      const b: Binding = { alias: '', derived: this.tableFunctionColumns(args, scope) };
      b.alias = this.readAlias() ?? parts[parts.length - 1];
      scope.bindings.push(b);
      return [b];
    }
    const rel = this.addRelation(parts, access);
    if (this.acceptKw('PARTITION')) this.skipParens();
    if (this.acceptKw('FOR', 'SYSTEM_TIME')) this.systemTime(scope);
    const alias = this.readAlias();
    this.skipIndexHints();
    const table = parts[parts.length - 1];
    const cte = parts.length === 1 ? findBinding(scope, table) : undefined;
    const b: Binding = cte?.derived && !rel ? { alias: alias ?? table, derived: cte.derived } : { alias: alias ?? table, table, schema: parts.length > 1 ? parts[0] : this.currentDb, ...(rel ? { rel } : {}) };
    scope.bindings.push(b);
    return [b];
  }

  /**
   * FOR SYSTEM_TIME { ALL | AS OF p | BETWEEN p AND p | FROM p TO p }, p = [TIMESTAMP | TRANSACTION]
   * expr ([MariaDB](https://mariadb.com/kb/en/system-versioned-tables/#querying-historical-data)).
   * Which rows of the history a point in time picks out: a filter on what its expression reads.
   */
  private systemTime(scope: Scope): void {
    if (this.acceptKw('ALL')) return;
    const ends = [...CLAUSE_STOP, 'AS', 'ON', 'USING', ...JOIN_WORDS];
    const point = (...more: string[]): void => {
      this.acceptKw('TIMESTAMP') || this.acceptKw('TRANSACTION');
      this.predicate(scope, this.depth0Stop(new Set([...ends, ...more]), true));
    };
    if (this.acceptKw('AS', 'OF')) point();
    else if (this.acceptKw('BETWEEN')) {
      point('AND');
      this.expectKw('AND');
      point();
    } else if (this.acceptKw('FROM')) {
      point('TO');
      this.expectKw('TO');
      point();
    } else this.fail('expected ALL, AS OF, BETWEEN or FROM after FOR SYSTEM_TIME');
  }

  /**
   * The columns of a table function (JSON_TABLE): their names and number are not followed, so
   * one column stands for all of them, carrying whatever the arguments carry. Without it, every
   * column read from the function would come out with no source at all, and pass in clear.
   */
  private tableFunctionColumns(args: ExprInfo, scope: Scope): ColumnLineage[] {
    const [l] = this.lineageOf([{ expr: args }], scope);
    return [{ index: 0, name: '*', sources: l?.sources ?? [], opaque: l?.opaque ?? true, direct: false }];
  }

  private readAlias(): string | undefined {
    if (this.acceptKw('AS')) {
      const a = this.peek() ?? this.fail('expected an alias');
      this.i++;
      return this.name(a);
    }
    const t = this.peek();
    if (t && (t.type === 'quoted' || (t.type === 'word' && !CLAUSE_WORDS.has(t.value) && !JOIN_WORDS.has(t.value) && !['USE', 'IGNORE', 'FORCE', 'SET', 'PARTITION', 'STRAIGHT_JOIN', 'ON', 'USING', 'READ', 'WRITE', 'LOW_PRIORITY'].includes(t.value)))) {
      this.i++;
      return this.name(t);
    }
    return undefined;
  }

  private skipIndexHints(): void {
    while ((this.isKw('USE') || this.isKw('IGNORE') || this.isKw('FORCE')) && (this.isKw('INDEX', 1) || this.isKw('KEY', 1))) {
      this.i += 2;
      if (this.acceptKw('FOR')) {
        this.acceptKw('JOIN') || this.acceptKw('ORDER', 'BY') || this.acceptKw('GROUP', 'BY');
      }
      this.skipParens();
    }
  }

  // ---- lineage -------------------------------------------------------------------------------

  /**
   * The columns a reference may read. A qualified one reads the innermost table of that name. An
   * unqualified one reads the innermost table that has such a column, which the server knows and
   * the parser does not: in `SELECT (SELECT email FROM orders) FROM users`, orders has no email
   * and the subquery reads users.email. So the tables of every enclosing query count too.
   */
  /** `direct`: every column the name may be is a table's column, or a derived table's plain one. */
  private resolve(ref: ColRef, scope: Scope): { sources: ColumnLineage['sources']; resolved: boolean; direct: boolean } {
    const q = ref.qualifier;
    const sources: ColumnLineage['sources'] = [];
    let resolved = false;
    let direct = true;
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      let candidates: Binding[];
      if (q.length > 0) {
        const alias = q[q.length - 1];
        const schema = q.length > 1 ? q[q.length - 2] : undefined;
        candidates = s.bindings.filter((b) => !b.cte && (b.alias === alias || b.table === alias) && (schema === undefined || b.schema === schema));
      } else {
        candidates = s.bindings.filter((b) => !b.cte && (b.alias !== '' || b.derived));
      }
      if (candidates.length === 0) continue;
      resolved = true;
      for (const b of candidates) {
        if (b.derived) {
          const cols = ref.column === '*' ? b.derived : b.derived.filter((c) => c.name.toLowerCase() === ref.column.toLowerCase());
          if (cols.length === 0) direct = false;
          for (const c of cols.length > 0 ? cols : b.derived) {
            sources.push(...c.sources);
            direct &&= c.direct;
          }
        } else if (b.table !== undefined) {
          sources.push({ ...(b.schema !== undefined ? { schema: b.schema } : {}), table: b.table, column: ref.column });
        }
      }
      if (q.length > 0) break;
    }
    return { sources: dedupeSources(sources), resolved, direct };
  }

  /** Whether `expr` is one column reference inside LOWER/UPPER/LCASE/UCASE calls only (ColumnLineage.caseMapped). */
  private caseMapsOneRef(expr: ExprInfo): boolean {
    if (expr.refs.length !== 1 || expr.subqueries.length !== 0) return false;
    const isPunct = (k: number, v: string): boolean => this.toks[k]?.type === 'punct' && this.toks[k].value === v;
    let a = expr.start;
    let b = expr.end;
    while (b - a > 3 && this.toks[a].type === 'word' && CASE_MAPS.has(this.toks[a].value) && isPunct(a + 1, '(') && isPunct(b - 1, ')') && balancedInside(this.toks.slice(a + 1, b))) {
      a += 2;
      b--;
    }
    return a > expr.start && expr.refs[0].at === a && b - a === 1 + 2 * expr.refs[0].qualifier.length;
  }

  private lineageOf(items: SelectItem[], scope: Scope): ColumnLineage[] {
    const out: ColumnLineage[] = [];
    for (const item of items) {
      if (item.star) {
        const bindings = item.star.qualifier === undefined ? scope.bindings : scope.bindings.filter((b) => b.alias === item.star!.qualifier || b.table === item.star!.qualifier);
        for (const b of bindings) {
          if (b.derived) for (const c of b.derived) out.push({ ...c, index: out.length });
          else if (b.table !== undefined)
            out.push({ index: out.length, name: '*', sources: [{ ...(b.schema !== undefined ? { schema: b.schema } : {}), table: b.table, column: '*' }], opaque: false, direct: true });
        }
        continue;
      }
      const { expr } = item;
      const sources: ColumnLineage['sources'] = [];
      let opaque = false;
      let plainSources = true;
      for (const r of expr.refs) {
        const res = this.resolve(r, scope);
        if (!res.resolved) opaque = true;
        plainSources &&= res.direct;
        sources.push(...res.sources);
      }
      for (const sub of expr.subqueries) {
        for (const c of sub) {
          sources.push(...c.sources);
          opaque ||= c.opaque;
        }
      }
      const isPlainRef = expr.refs.length === 1 && expr.subqueries.length === 0 && expr.end - expr.start === 1 + 2 * expr.refs[0].qualifier.length;
      const name = item.alias ?? (isPlainRef ? expr.refs[0].column : this.textOf(expr.start, expr.end));
      const caseMapped = !isPlainRef && plainSources && sources.length === 1 && !opaque && this.caseMapsOneRef(expr);
      out.push({ index: out.length, name, sources: dedupeSources(sources), opaque, direct: isPlainRef && plainSources && sources.length === 1, ...(caseMapped ? { caseMapped: true as const } : {}) });
    }
    return out;
  }

  // ---- statements ----------------------------------------------------------------------------

  classify(): Classified {
    const w = this.wordAt();
    if (this.isPunct('(')) return this.selectStatement();
    switch (w) {
      case 'SELECT':
      case 'TABLE':
      case 'VALUES':
        return this.selectStatement();
      case 'WITH':
        return this.withStatement();
      case 'INSERT':
      case 'REPLACE':
        return this.insert();
      case 'UPDATE':
        return this.update();
      case 'DELETE':
        return this.delete();
      case 'CREATE':
        return this.create();
      case 'ALTER':
        return this.alter();
      case 'DROP':
        return this.drop();
      case 'RENAME':
        return this.rename();
      case 'TRUNCATE':
        this.i++;
        this.acceptKw('TABLE');
        this.addRelation(this.readQualified(), 'write');
        this.rest();
        return { kind: 'truncate', tag: 'TRUNCATE TABLE' };
      case 'GRANT':
      case 'REVOKE':
        return this.grant(w);
      case 'SET':
        return this.set();
      case 'USE': {
        this.i++;
        const db = this.readIdent();
        this.rest();
        return { kind: 'set', tag: 'USE', settings: [{ name: 'database', value: db, local: false }] };
      }
      case 'BEGIN':
        if (this.isKw('NOT', 1)) return { kind: 'do', tag: 'BEGIN NOT ATOMIC', opaque: { reason: 'do-block', detail: 'anonymous compound statement (BEGIN NOT ATOMIC … END)' } };
        return this.transaction('BEGIN');
      case 'START':
        if (this.isKw('TRANSACTION', 1)) return this.transaction('START TRANSACTION');
        return this.admin('START');
      case 'COMMIT':
      case 'ROLLBACK':
      case 'SAVEPOINT':
      case 'RELEASE':
      case 'XA':
        return this.transaction(w);
      case 'LOCK':
        return this.lockTables();
      case 'UNLOCK':
        this.i = this.toks.length;
        return { kind: 'utility', tag: 'UNLOCK TABLES' };
      case 'SHOW':
      case 'GET': {
        // SHOW WARNINGS / SHOW ERRORS / SHOW COUNT(*) WARNINGS, GET [CURRENT|STACKED] DIAGNOSTICS;
        // SHOW [FULL] PROCESSLIST and SHOW ENGINE … STATUS quote other sessions' statements.
        const diagnostics = this.toks.some((t, k) => k > this.i && t.type === 'word' && ['WARNINGS', 'ERRORS', 'DIAGNOSTICS', 'PROCESSLIST', 'ENGINE'].includes(t.value));
        // SHOW … LIKE / WHERE takes any expression, subqueries and function calls included: skipped
        // unread, `SHOW TABLES WHERE EXTRACTVALUE(1, (SELECT ssn …))` read a value with no relation on record.
        this.i++;
        this.rest();
        return { kind: 'utility', tag: w, ...(diagnostics ? { diagnostics: true as const } : {}) };
      }
      case 'CHECKSUM':
        if (this.isKw('TABLE', 1)) return this.checksumTable();
        this.i++;
        this.rest();
        return { kind: 'utility', tag: w };
      case 'HELP':
      case 'SIGNAL':
      case 'RESIGNAL':
        this.i++;
        this.rest();
        return { kind: 'utility', tag: w };
      case 'DESCRIBE':
      case 'DESC':
      case 'EXPLAIN':
        return this.explain();
      case 'ANALYZE':
        if (this.isKw('TABLE', 1) || this.isKw('NO_WRITE_TO_BINLOG', 1) || this.isKw('LOCAL', 1)) return this.maintenance('ANALYZE TABLE');
        return this.explain();
      case 'OPTIMIZE':
      case 'CHECK':
      case 'REPAIR':
        return this.maintenance(`${w} TABLE`);
      case 'LOAD':
        return this.load();
      case 'HANDLER':
        return this.handler();
      case 'CALL': {
        this.i++;
        const parts = this.readQualified();
        this.addFunction(parts).procedure = true;
        this.rest();
        // A stored procedure's body is not analysed (compound statements): it may delete every
        // row of a table a rule protects, or drop one. Protected targets fail closed on it.
        return { kind: 'call', tag: 'CALL', opaque: { reason: 'opaque-function', detail: `CALL ${parts.join('.')}: the stored procedure's body is not analysed, and may change or read anything` } };
      }
      case 'DO':
        // MySQL's DO evaluates expressions and discards the result: a SELECT without rows.
        this.i++;
        this.rest();
        return { kind: 'select', tag: 'DO' };
      case 'PREPARE':
        return this.prepare();
      case 'EXECUTE':
        return this.execute();
      case 'DEALLOCATE':
        return this.deallocate();
      case 'KILL':
        // KILL, PURGE … BEFORE, HELP and SIGNAL take expressions too: read, not skipped.
        this.i++;
        this.rest();
        return { kind: 'admin', tag: 'KILL' };
      case 'BINLOG':
        // BINLOG '<base64>' replays raw replication events: arbitrary changes no parser can see.
        this.i = this.toks.length;
        return { kind: 'admin', tag: 'BINLOG', opaque: { reason: 'dynamic-sql', detail: 'BINLOG replays encoded row events' } };
      case 'INSTALL':
      case 'UNINSTALL':
        this.i = this.toks.length;
        // A plugin is a shared library loaded into the server: code execution.
        this.functions.push({ name: `${w} PLUGIN`, risks: ['program', 'admin'] });
        return { kind: 'admin', tag: `${w} PLUGIN` };
      case 'FLUSH':
      case 'RESET':
      case 'PURGE':
      case 'SHUTDOWN':
      case 'RESTART':
      case 'CHANGE':
      case 'STOP':
      case 'CACHE':
      case 'BACKUP':
        return this.admin(w);
      default:
        this.fail('unsupported statement');
    }
  }

  private selectStatement(): Classified {
    const lineage = this.parseQuery({ bindings: [] });
    if (!this.atEnd()) this.fail('unexpected token after query');
    return { kind: 'select', tag: 'SELECT', lineage };
  }

  /** WITH … SELECT, and MySQL 8's WITH … UPDATE / DELETE. */
  private withStatement(): Classified {
    const save = this.i;
    const scope: Scope = { bindings: [] };
    this.parseWith(scope);
    if (this.isKw('UPDATE')) return this.update(scope);
    if (this.isKw('DELETE')) return this.delete(scope);
    this.i = save;
    return this.selectStatement();
  }

  private insert(): Classified {
    const tag = this.wordAt()!;
    this.i++;
    while (this.acceptKw('LOW_PRIORITY') || this.acceptKw('DELAYED') || this.acceptKw('HIGH_PRIORITY') || this.acceptKw('IGNORE'));
    this.acceptKw('INTO');
    const scope: Scope = { bindings: [] };
    const parts = this.readQualified();
    this.addRelation(parts, 'write');
    const target: Binding = { alias: parts[parts.length - 1], table: parts[parts.length - 1], schema: parts.length > 1 ? parts[0] : this.currentDb };
    scope.bindings.push(target);
    if (this.acceptKw('PARTITION')) this.skipParens();
    const dest = tableOf(target);
    const columns: string[] = [];
    if (this.isPunct('(') && !this.startsQueryInParens(0)) {
      this.i++;
      while (!this.atEnd() && !this.isPunct(')')) {
        const t = this.peek()!;
        if (this.isIdent(t)) columns.push(this.name(t).toLowerCase());
        this.i++;
      }
      this.expectPunct(')');
    }
    let fromQuery = false;
    if (this.isKw('SELECT') || this.isKw('WITH') || this.isKw('TABLE') || this.isPunct('(')) {
      const read = this.relations.length;
      this.storeRows(this.parseQuery({ bindings: [] }), (k) => ({ ...dest, ...(columns[k] !== undefined ? { column: columns[k] } : {}) }));
      fromQuery = this.relations.length > read;
    } else if (this.acceptKw('VALUES') || this.acceptKw('VALUE') || this.acceptKw('SET')) {
      // Which value lands in which column is not followed here: any of them may land in any
      // column the statement names (any of the table's, when it names none).
      const expr = this.scanExpr(this.depth0Stop(new Set(['ON', 'AS', 'RETURNING'])), scope);
      if (columns.length === 0) this.pending.push({ into: dest, expr, scope });
      for (const column of columns) this.pending.push({ into: { ...dest, column }, expr, scope });
    } else this.fail('expected VALUES, SET or SELECT');
    if (this.acceptKw('AS')) this.readQualified();
    if (this.isPunct('(')) this.skipParens();
    let upsert = false;
    if (this.acceptKw('ON', 'DUPLICATE', 'KEY', 'UPDATE')) {
      upsert = true;
      do {
        const target = this.readQualified();
        if (!this.acceptPunct('=') && !this.acceptPunct(':=')) this.fail("expected '='");
        const value = this.scanExpr(this.depth0Stop(new Set(['RETURNING']), true), scope);
        this.pending.push({ into: { ...dest, column: target[target.length - 1].toLowerCase() }, expr: value, scope });
        this.assignmentCompares(target, value, scope);
      } while (this.acceptPunct(','));
    }
    if (this.acceptKw('RETURNING')) this.scanExpr(() => false, scope);
    if (!this.atEnd()) this.fail('unexpected token');
    // An upsert whose rows come from a query over tables updates every existing row that query
    // reaches, with no WHERE: judged like an UPDATE without one. Rows from VALUES are bounded.
    // REPLACE is an upsert too: it deletes each existing row a new row collides with.
    return { kind: 'insert', tag, ...(upsert || tag === 'REPLACE' ? { hasWhere: !fromQuery } : {}) };
  }

  private update(scope: Scope = { bindings: [] }): Classified {
    this.expectKw('UPDATE');
    while (this.acceptKw('LOW_PRIORITY') || this.acceptKw('IGNORE'));
    const ons = this.joinConditions.length;
    const bindings = this.parseTableRefs(scope, 'read');
    this.expectKw('SET');
    const written = new Set<Binding>();
    let unknownTarget = false;
    do {
      const target = this.readQualified();
      let b: Binding | undefined;
      if (target.length > 1) {
        b = bindings.find((x) => x.alias === target[target.length - 2]);
        if (b) written.add(b);
        else unknownTarget = true;
      } else if (bindings.filter((x) => x.rel).length === 1) written.add((b = bindings.find((x) => x.rel)!));
      else unknownTarget = true;
      if (!this.acceptPunct('=') && !this.acceptPunct(':=')) this.fail("expected '='");
      const value = this.scanExpr(this.depth0Stop(new Set(['WHERE', 'ORDER', 'LIMIT', 'RETURNING']), true), scope);
      const column = target[target.length - 1].toLowerCase();
      // An assignment to a column of a table the UPDATE cannot name stores into an unknown place.
      const into = b?.table !== undefined ? { ...tableOf(b), column } : { table: '?', column };
      this.pending.push({ into, expr: value, scope });
      this.assignmentCompares(target, value, scope);
    } while (this.acceptPunct(','));
    // When the written table is ambiguous, every table of the UPDATE counts as written.
    for (const b of bindings) if (b.rel && (unknownTarget || written.has(b))) b.rel.access = 'write';
    const hasWhere = this.whereTail(scope) && this.boundsEveryTarget(scope, this.joinConditions.slice(ons));
    return { kind: 'update', tag: 'UPDATE', hasWhere };
  }

  private delete(scope: Scope = { bindings: [] }): Classified {
    this.expectKw('DELETE');
    while (this.acceptKw('LOW_PRIORITY') || this.acceptKw('QUICK') || this.acceptKw('IGNORE'));
    if (this.isKw('HISTORY') && this.isKw('FROM', 1)) return this.deleteHistory(scope);
    let targets: string[][] = [];
    let bindings: Binding[];
    const ons = this.joinConditions.length;
    if (this.acceptKw('FROM')) {
      const save = this.i;
      targets = this.readTargetList();
      if (this.acceptKw('USING')) {
        bindings = this.parseTableRefs(scope, 'read');
      } else {
        this.i = save;
        targets = [];
        bindings = this.parseTableRefs(scope, 'write');
      }
    } else {
      targets = this.readTargetList();
      this.expectKw('FROM');
      bindings = this.parseTableRefs(scope, 'read');
    }
    for (const t of targets) {
      const name = t[t.length - 1];
      const b = bindings.find((x) => x.alias === name && (t.length === 1 || x.schema === t[0]));
      if (b?.rel) b.rel.access = 'write';
      else this.addRelation(t, 'write');
    }
    const hasWhere = this.whereTail(scope) && this.boundsEveryTarget(scope, this.joinConditions.slice(ons));
    return { kind: 'delete', tag: 'DELETE', hasWhere };
  }

  /**
   * MariaDB's DELETE HISTORY FROM t [BEFORE SYSTEM_TIME [TIMESTAMP | TRANSACTION] expr]: deletes
   * the table's history rows, every one older than the point: a write to t that no WHERE bounds.
   * (Read as a multi-table DELETE it wrote a table named `history` and only read t.)
   */
  private deleteHistory(scope: Scope): Classified {
    this.i += 2;
    this.addRelation(this.readQualified(), 'write');
    if (this.acceptKw('BEFORE')) {
      this.expectKw('SYSTEM_TIME');
      this.acceptKw('TIMESTAMP') || this.acceptKw('TRANSACTION');
      this.predicate(scope, () => false);
    }
    if (!this.atEnd()) this.fail('unexpected token');
    return { kind: 'delete', tag: 'DELETE HISTORY', hasWhere: false };
  }

  private readTargetList(): string[][] {
    const out: string[][] = [];
    do {
      out.push(this.readQualified());
      if (this.isPunct('.') && this.isPunct('*', 1)) this.i += 2;
    } while (this.acceptPunct(','));
    return out;
  }

  /**
   * Whether a WHERE picks out rows: every top-level disjunct names a column of the row, directly
   * or from a correlated subquery (`t.col` of a table of this statement), or is provably false.
   * One that names none (`NOW() > 0`, `?`, `EXISTS (SELECT 1)`, `@x IS NULL`) holds for every row
   * or for none, and when it holds so does the whole OR: `id = 1 OR @x IS NULL` restricts nothing.
   */
  private namesRows(info: ExprInfo, scope: Scope): boolean {
    return disjunctRanges(this.toks, info.start, info.end).every(([a, b]) => this.namesRowsIn(info, a, b, scope));
  }

  private namesRowsIn(info: ExprInfo, start: number, end: number, scope: Scope): boolean {
    // Provably false (`WHERE 1=0`): no row at all, which is as restricted as it gets.
    if (constantTruth(stripParens(this.toks.slice(start, end))) === false) return true;
    const names = new Set(scope.bindings.flatMap((b) => [b.alias, b.table ?? '']).filter(Boolean).map((n) => n.toLowerCase()));
    const written = new Set(scope.bindings.filter((b) => b.rel?.access === 'write' && b.table !== undefined).map((b) => b.table!.toLowerCase()));
    for (const [a, b] of conjunctRanges(this.toks, start, end)) {
      // `id IN (SELECT id FROM orders)` in a write to orders: a semi-join of the table with itself.
      if (written.size > 0 && this.selfSemiJoin(a, b, written, names)) continue;
      // `o.id = p.id` over orders o, orders p (or a derived table over orders): the table joined
      // with itself, which every row matches, as an ON would (see selfSemiJoin).
      if (this.selfJoinCondition(a, b, scope)) continue;
      if (info.refs.some((r) => r.at >= a && r.at < b)) return true;
      for (let k = a; k < b - 1; k++) {
        const t = this.toks[k];
        const next = this.toks[k + 1];
        if ((t.type === 'word' || t.type === 'quoted') && next.type === 'punct' && next.value === '.' && names.has(this.name(t).toLowerCase())) return true;
      }
    }
    return false;
  }

  /**
   * A multi-table UPDATE/DELETE writes every row of a written table that the WHERE does not tie
   * down: `DELETE orders FROM orders, users WHERE users.id = 1` deletes every order (the WHERE
   * picks one user, and every order joins it). Each written table must be bounded in every
   * disjunct of the WHERE: named by one of its conjuncts (`o.id = u.id` names both: the rows
   * that match, as before), or joined by an ON to a table that is. A bare column name may be
   * any table's, so it bounds them all; a NATURAL join or USING joins every side.
   */
  private boundsEveryTarget(scope: Scope, ons: readonly ExprInfo[]): boolean {
    const bindings = scope.bindings.filter((b) => !b.cte);
    const written = bindings.filter((b) => b.rel?.access === 'write');
    const where = this.lastWhere;
    if (bindings.length < 2 || written.length === 0 || where === undefined || this.joinedByName) return true;
    /** The bindings a reference may be a column of: its qualifier's, or any for a bare name. */
    const owners = (r: ColRef): Binding[] => {
      if (r.qualifier.length === 0) return bindings;
      const q = r.qualifier[r.qualifier.length - 1].toLowerCase();
      return bindings.filter((b) => b.alias.toLowerCase() === q);
    };
    const refsIn = (info: ExprInfo, a: number, b: number): ColRef[] => info.refs.filter((r) => r.at >= a && r.at < b);
    // Links: each ON that names columns of several tables joins them.
    const links: Binding[][] = ons.map((on) => [...new Set(refsIn(on, on.start, on.end).flatMap(owners))]);
    const isPunct = (k: number, v: string): boolean => this.toks[k]?.type === 'punct' && this.toks[k].value === v;
    return disjunctRanges(this.toks, where.start, where.end).every(([a, b]) => {
      if (constantTruth(stripParens(this.toks.slice(a, b))) === false) return true;
      // `(u.id = 1 AND o.user_id = u.id) OR …`: the conjuncts inside the parentheses.
      while (b - a >= 2 && isPunct(a, '(') && isPunct(b - 1, ')') && balancedInside(this.toks.slice(a, b))) {
        a++;
        b--;
      }
      const bounded = new Set<Binding>();
      for (const [c, d] of conjunctRanges(this.toks, a, b)) {
        for (const x of refsIn(where, c, d).flatMap(owners)) bounded.add(x);
      }
      for (let grew = true; grew; ) {
        grew = false;
        for (const group of links) {
          if (!group.some((x) => bounded.has(x)) || group.every((x) => bounded.has(x))) continue;
          for (const x of group) bounded.add(x);
          grew = true;
        }
      }
      return written.every((x) => bounded.has(x));
    });
  }

  /**
   * Whether toks[a, b) is only `x.c = y.c` (or `<=>`), x and y two bindings of the statement
   * over the same table (a derived table counts as the tables it reads).
   */
  private selfJoinCondition(a: number, b: number, scope: Scope): boolean {
    const toks = stripParens(this.toks.slice(a, b));
    const op = topLevelIndexOf(toks, (t) => t.type === 'punct' && (t.value === '=' || t.value === '<=>'));
    if (op < 0) return false;
    const table = (side: Token[]): Binding | undefined => {
      side = stripParens(side);
      const chain = (side.length === 3 || side.length === 5) && side.every((t, k) => (k % 2 === 1 ? t.type === 'punct' && t.value === '.' : t.type === 'word' || t.type === 'quoted'));
      if (!chain) return undefined;
      const q = this.name(side[side.length - 3]).toLowerCase();
      return scope.bindings.find((x) => !x.cte && (x.alias.toLowerCase() === q || x.table?.toLowerCase() === q));
    };
    const left = table(toks.slice(0, op));
    const right = table(toks.slice(op + 1));
    if (left === undefined || right === undefined || left === right) return false;
    // The same column on both sides: each row matches itself (`o.id = p.parent_id` may not).
    const column = (side: Token[]): string => this.name(stripParens(side).at(-1)!).toLowerCase();
    if (column(toks.slice(0, op)) !== column(toks.slice(op + 1))) return false;
    const tables = (x: Binding): string[] => [...new Set(x.derived ? x.derived.flatMap((c) => c.sources.map((s) => s.table.toLowerCase())) : x.table !== undefined ? [x.table.toLowerCase()] : [])];
    const l = tables(left);
    const r = tables(right);
    return l.length > 0 && l.length === r.length && l.every((t) => r.includes(t));
  }

  /**
   * Whether the conjunct toks[a, b) tests membership (`IN`, `= ANY`/`SOME`, `EXISTS`) in a
   * subquery over a written table that picks out no rows of its own: then it matches every row,
   * as a join of the table with itself does. The subquery picks out rows when it also reads
   * another table, has LIMIT or HAVING, or a WHERE conjunct that is no tautology and does not
   * name the outer query's tables (a correlation with the outer copy is the self-join itself).
   * A scalar subquery (`amount > (SELECT AVG(amount) FROM orders)`) is a value, not a membership.
   */
  private selfSemiJoin(a: number, b: number, written: ReadonlySet<string>, outer: ReadonlySet<string>): boolean {
    const toks = this.toks;
    const isWord = (k: number, ...w: string[]): boolean => toks[k]?.type === 'word' && w.includes(toks[k].value);
    const isPunct = (k: number, v: string): boolean => toks[k]?.type === 'punct' && toks[k].value === v;
    for (let k = a; k < b - 1; k++) {
      if (!isPunct(k, '(') || !isWord(k + 1, 'SELECT') || !isWord(k - 1, 'IN', 'ANY', 'SOME', 'EXISTS')) continue;
      // The subquery's tokens, up to its closing parenthesis.
      let depth = 0;
      let close = -1;
      for (let j = k; j < b; j++) {
        if (isPunct(j, '(')) depth++;
        else if (isPunct(j, ')') && --depth === 0) {
          close = j;
          break;
        }
      }
      if (close < 0) return false;
      const inner = toks.slice(k + 1, close);
      const readsWritten = inner.some((t) => (t.type === 'word' || t.type === 'quoted') && written.has(t.value.toLowerCase()));
      if (readsWritten && !this.subqueryPicksRows(k + 2, close, written, outer)) return true;
    }
    return false;
  }

  /** toks[from, to): a subquery's tokens after SELECT (see selfSemiJoin). */
  private subqueryPicksRows(from: number, to: number, written: ReadonlySet<string>, outer: ReadonlySet<string>): boolean {
    const toks = this.toks;
    const own = new Set<string>();
    let tables = 0;
    let where = -1;
    let whereEnd = to;
    let inFrom = false;
    let depth = 0;
    for (let k = from; k < to; k++) {
      const t = toks[k];
      if (t.type === 'punct' && t.value === '(') depth++;
      else if (t.type === 'punct' && t.value === ')') depth--;
      if (depth !== 0) continue;
      if (t.type === 'word' && (t.value === 'LIMIT' || t.value === 'HAVING')) return true;
      if (t.type === 'word' && t.value === 'UNION') return false;
      if (t.type === 'word' && t.value === 'FROM') inFrom = true;
      else if (t.type === 'word' && (t.value === 'WHERE' || t.value === 'GROUP' || t.value === 'ORDER')) {
        inFrom = false;
        if (t.value === 'WHERE') where = k + 1;
        else if (where >= 0 && whereEnd === to) whereEnd = k;
      } else if (inFrom && (t.type === 'word' || t.type === 'quoted') && !RESERVED_IN_FROM.has(t.value)) {
        // A table (or derived table) name or alias: another table means a join, which bounds.
        const prev = toks[k - 1];
        const name = t.value.toLowerCase();
        const isTableName = prev !== undefined && ((prev.type === 'word' && (prev.value === 'FROM' || prev.value === 'JOIN')) || (prev.type === 'punct' && prev.value === ','));
        if (!isTableName) {
          own.add(name);
          continue;
        }
        if (!written.has(name)) return true;
        tables++;
        // An aliased table is visible only by its alias: its own name then means the outer one.
        const after = toks[k + 1]?.type === 'word' && toks[k + 1].value === 'AS' ? toks[k + 2] : toks[k + 1];
        const aliased = after !== undefined && (after.type === 'quoted' || (after.type === 'word' && !RESERVED_IN_FROM.has(after.value) && !CLAUSE_STOP.has(after.value)));
        if (!aliased) own.add(name);
      }
    }
    if (where < 0) return false;
    const correlated = new Set([...outer].filter((n) => !own.has(n)));
    // One table in the subquery: its unqualified columns are its own (`WHERE o2.id = id` is `o2.id = o2.id`).
    const single = tables === 1 ? own : undefined;
    for (const [a, b] of conjunctRanges(toks, where, whereEnd)) {
      const part = toks.slice(a, b);
      if (part.length === 0 || isTautology(part, single)) continue;
      const namesOuter = part.some((t, j) => (t.type === 'word' || t.type === 'quoted') && part[j + 1]?.type === 'punct' && part[j + 1].value === '.' && correlated.has(t.value.toLowerCase()));
      if (!namesOuter) return true;
    }
    return false;
  }

  /**
   * `SET col = value` in an UPDATE or an upsert: the server compares each row's old value with
   * the new one, and tells (Changed: n, the affected-row count, ON UPDATE CURRENT_TIMESTAMP, a
   * history row) whether they differed, so `UPDATE users SET ssn = '<guess>' WHERE id = 1`
   * answers whether the guess was right (as `VALUES(ssn)` does in an upsert). The column is
   * compared with what the client chose. Two values choose nothing: NULL (it tells only what
   * NULL-ness tells, which masking keeps anyway) and a function of the column alone
   * (`SET email = LOWER(email)`: no literal, variable, parameter, subquery or other column).
   */
  private assignmentCompares(target: string[], value: ExprInfo, scope: Scope): void {
    const toks = this.toks.slice(value.start, value.end);
    if (toks.length === 1 && toks[0].type === 'word' && toks[0].value === 'NULL') return;
    const column = target[target.length - 1].toLowerCase();
    // VALUES(col) in an upsert is the value the INSERT brings, not the row's own.
    const chooses = toks.some((t) => t.type === 'string' || t.type === 'number' || t.type === 'param' || t.type === 'var' || t.type === 'sysvar' || (t.type === 'word' && (t.value === 'VALUES' || t.value === 'VALUE')));
    const itself = value.refs.length > 0 && value.refs.every((r) => r.column.toLowerCase() === column) && value.subqueries.length === 0;
    if (itself && !chooses) return;
    this.addPredicates(this.resolve({ qualifier: target.slice(0, -1), column: target[target.length - 1], at: value.start }, scope).sources);
  }

  /** [WHERE expr] [ORDER BY …] [LIMIT …] [RETURNING …]; returns whether WHERE restricts rows. */
  private whereTail(scope: Scope): boolean {
    let hasWhere = false;
    this.lastWhere = undefined;
    if (this.acceptKw('WHERE')) {
      const info = this.predicate(scope);
      this.lastWhere = info;
      hasWhere = !isTautology(this.toks.slice(info.start, info.end), this.singleTableNames(scope)) && this.namesRows(info, scope);
      // `WHERE id`: a column tested for truth alone. Of a key column that holds for every row
      // but id 0; the catalog knows which columns are keys (TargetRuntime.resolve).
      let a = info.start;
      let b = info.end;
      while (b - a >= 2 && this.toks[a].type === 'punct' && this.toks[a].value === '(' && this.toks[b - 1].type === 'punct' && this.toks[b - 1].value === ')') {
        a++;
        b--;
      }
      // `WHERE id IS NOT NULL` holds for the same rows (all of them, for a key column).
      const word = (k: number, w: string): boolean => this.toks[k]?.type === 'word' && this.toks[k].value === w;
      if (b - a >= 4 && word(b - 3, 'IS') && word(b - 2, 'NOT') && word(b - 1, 'NULL')) b -= 3;
      const last = this.toks[b - 1];
      const plain = b - a === 1 || (b - a === 3 && this.toks[a + 1].type === 'punct' && this.toks[a + 1].value === '.');
      if (hasWhere && plain && last !== undefined && this.isIdent(last)) this.bareWhereColumn = this.name(last).toLowerCase();
    }
    for (;;) {
      if (this.acceptKw('ORDER', 'BY') || this.acceptKw('LIMIT') || this.acceptKw('RETURNING')) this.scanExpr(this.depth0Stop(new Set(['ORDER', 'LIMIT', 'RETURNING'])), scope);
      else break;
    }
    if (!this.atEnd()) this.fail('unexpected token');
    return hasWhere;
  }

  /**
   * The names (alias and table) of the one table an UPDATE/DELETE reads, when it reads only one:
   * then `orders.id` and `id` are the same column, and `orders.id = id` compares it with itself.
   */
  private singleTableNames(scope: Scope): ReadonlySet<string> | undefined {
    const tables = scope.bindings.filter((b) => !b.cte);
    if (tables.length !== 1 || tables[0].table === undefined) return undefined;
    return new Set([tables[0].alias.toLowerCase(), tables[0].table.toLowerCase()]);
  }

  /** Skips CREATE's prefixes (OR REPLACE, DEFINER = …, ALGORITHM = …, TEMPORARY, …) up to the object type. */
  private objectType(types: string[]): { type: string; temporary: boolean; orReplace: boolean } {
    let temporary = false;
    let orReplace = false;
    for (let guard = 0; guard < 40 && !this.atEnd(); guard++) {
      const w = this.wordAt();
      if (w === 'TEMPORARY') temporary = true;
      if (w === 'REPLACE' && this.isKw('OR', -1)) orReplace = true;
      if (w !== undefined && types.includes(w)) {
        this.i++;
        return { type: w, temporary, orReplace };
      }
      this.i++;
    }
    this.fail('unsupported object type');
  }

  private create(): Classified {
    this.i++;
    const { type, temporary, orReplace } = this.objectType(['TABLE', 'VIEW', 'INDEX', 'DATABASE', 'SCHEMA', 'USER', 'ROLE', 'PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT', 'SERVER', 'SEQUENCE', 'TABLESPACE', 'PACKAGE']);
    this.acceptKw('IF', 'NOT', 'EXISTS');
    // MariaDB's CREATE OR REPLACE drops what has that name first, rows and all: a table, any
    // table a SEQUENCE is named after (a sequence is a table), a whole DATABASE with its tables.
    const object = type === 'SCHEMA' ? 'DATABASE' : type;
    const tag = orReplace && !temporary && DROPPED_BY_OR_REPLACE.has(object) ? `CREATE OR REPLACE ${object}` : `CREATE ${object}`;
    switch (type) {
      case 'TABLE': {
        this.addRelation(this.readQualified(), 'ddl');
        const parenLike = this.isPunct('(') && this.isKw('LIKE', 1);
        if (parenLike) this.i++;
        if (this.acceptKw('LIKE')) {
          this.addRelation(this.readQualified(), 'read', 'like');
          if (parenLike) this.expectPunct(')');
        }
        if (this.isPunct('(') && !this.startsQueryInParens(0)) this.skipParens();
        // Table options, then an optional [IGNORE|REPLACE] [AS] query.
        while (!this.atEnd() && !this.isKw('SELECT') && !this.isKw('WITH') && !this.isPunct('(') && !this.isKw('TABLE') && !this.isKw('VALUES')) this.i++;
        if (!this.atEnd()) {
          const rel = this.relations.find((r) => r.access === 'ddl');
          const dest = { ...(rel?.schema !== undefined ? { schema: rel.schema } : {}), table: rel?.name ?? '?' };
          this.storeRows(this.parseQuery({ bindings: [] }), (_k, name) => ({ ...dest, column: name.toLowerCase() }));
        }
        if (!this.atEnd()) this.fail('unexpected token');
        return { kind: 'create', tag, ...(temporary ? { changesResolution: true } : {}) };
      }
      case 'VIEW': {
        this.addRelation(this.readQualified(), 'ddl');
        if (this.isPunct('(')) this.skipParens();
        this.expectKw('AS');
        this.parseQuery({ bindings: [] });
        this.acceptKw('WITH');
        this.i = this.toks.length;
        return { kind: 'create', tag };
      }
      case 'INDEX': {
        this.readIdent();
        while (!this.atEnd() && !this.isKw('ON')) this.i++;
        this.expectKw('ON');
        this.addRelation(this.readQualified(), 'ddl');
        this.rest();
        return { kind: 'create', tag };
      }
      case 'DATABASE':
      case 'SCHEMA':
        this.addRelation([this.readIdent()], 'ddl', 'database');
        this.i = this.toks.length;
        return { kind: 'create', tag };
      case 'USER':
      case 'ROLE':
        this.i = this.toks.length;
        return { kind: 'role', tag };
      case 'TRIGGER': {
        this.addRelation(this.readQualified(), 'ddl', 'trigger');
        while (!this.atEnd() && !this.isKw('ON')) this.i++;
        this.expectKw('ON');
        this.addRelation(this.readQualified(), 'ddl');
        this.i = this.toks.length;
        return { kind: 'create', tag, changesResolution: true };
      }
      case 'FUNCTION': {
        const parts = this.readQualified();
        if (this.toks.some((t) => t.type === 'word' && t.value === 'SONAME')) {
          // A UDF from a shared library runs native code inside the server (sys_exec and friends).
          this.functions.push({ name: parts[parts.length - 1].toUpperCase(), risks: ['program'] });
          this.i = this.toks.length;
          return { kind: 'admin', tag: 'CREATE FUNCTION' };
        }
        this.addRelation(parts, 'ddl', 'routine');
        this.i = this.toks.length;
        return { kind: 'create', tag };
      }
      case 'PROCEDURE':
      case 'EVENT':
      case 'SEQUENCE':
      case 'PACKAGE':
        this.addRelation(this.readQualified(), 'ddl', type === 'SEQUENCE' ? undefined : 'routine');
        this.i = this.toks.length;
        return { kind: 'create', tag };
      case 'SERVER':
        this.i = this.toks.length;
        this.functions.push({ name: 'CREATE SERVER', risks: ['remote'] });
        return { kind: 'admin', tag };
      case 'TABLESPACE':
        this.i = this.toks.length;
        return { kind: 'admin', tag };
      default:
        this.fail('unsupported object type');
    }
  }

  private alter(): Classified {
    this.i++;
    const { type } = this.objectType(['TABLE', 'VIEW', 'DATABASE', 'SCHEMA', 'USER', 'ROLE', 'PROCEDURE', 'FUNCTION', 'EVENT', 'SERVER', 'SEQUENCE', 'TABLESPACE', 'INSTANCE', 'LOGFILE']);
    const tag = `ALTER ${type}`;
    switch (type) {
      case 'TABLE': {
        this.acceptKw('IF', 'EXISTS');
        const table = this.readQualified();
        this.addRelation(table, 'ddl');
        const actions = this.alterTableActions();
        // ALTER IGNORE TABLE turns the errors that keep rows and values into warnings: a new
        // UNIQUE key deletes every row that duplicates one, a retype cuts values even in strict mode.
        if (this.toks.slice(0, this.i).some((t) => t.type === 'word' && t.value === 'IGNORE')) actions.push(IGNORE_ACTION);
        this.alterTableStores(table);
        // The table's own columns, for what the ALTER tests on its rows.
        const own: Scope = { bindings: [{ alias: table[table.length - 1], table: table[table.length - 1], ...(table.length > 1 ? { schema: table[0] } : this.currentDb !== undefined ? { schema: this.currentDb } : {}) }] };
        let partitionedBy = false;
        while (!this.atEnd()) {
          if (this.acceptKw('RENAME')) {
            if (this.acceptKw('TO') || this.acceptKw('AS') || !this.isKw('COLUMN') && !this.isKw('INDEX') && !this.isKw('KEY')) {
              const to = this.readQualified();
              this.addRelation(to, 'ddl');
              this.renames(table, to);
            }
            continue;
          }
          // ADD CHECK (cond) checks every row: it fails exactly when a row does not meet cond,
          // so `CHECK (card NOT LIKE '4111%')` answers whether any card starts 4111.
          if (this.isKw('CHECK') && this.isPunct('(', 1)) {
            this.i += 2;
            this.predicate(own, () => false);
            this.expectPunct(')');
            continue;
          }
          if ((this.isKw('PARTITION') || this.isKw('SUBPARTITION')) && this.isKw('BY', 1)) {
            this.i += 2;
            this.partitioning(own);
            partitionedBy = true;
            continue;
          }
          // ADD UNIQUE / PRIMARY KEY (cols) compares every row's values with every other's: after
          // an INSERT of a guess, it fails exactly when a stored value equals the guess.
          if (this.isKw('UNIQUE') || (this.isKw('PRIMARY') && this.isKw('KEY', 1))) {
            this.i += this.isKw('PRIMARY') ? 2 : 1;
            this.acceptKw('KEY') || this.acceptKw('INDEX');
            if (!this.isPunct('(') && !this.isKw('USING') && this.isIdent(this.peek())) this.i++;
            if (this.acceptKw('USING')) this.i++;
            if (this.acceptPunct('(')) {
              // key_part: col [(length)] [ASC | DESC]
              do {
                const at = this.i;
                const column = this.readIdent();
                this.addPredicates(this.resolve({ qualifier: [], column, at }, own).sources);
                if (this.isPunct('(')) this.skipParens();
                this.acceptKw('ASC') || this.acceptKw('DESC');
              } while (this.acceptPunct(','));
              this.expectPunct(')');
            }
            continue;
          }
          if (this.isKw('CHECK') || this.isKw('PARTITION') || this.isKw('SUBPARTITION')) {
            this.i++;
            continue;
          }
          this.scanExpr(this.depth0Stop(new Set(['RENAME', 'CHECK', 'PARTITION', 'SUBPARTITION', 'UNIQUE', 'PRIMARY'])), { bindings: [] });
          if (this.isPunct(')')) this.fail('unbalanced parenthesis');
        }
        // Partition bounds (ADD / REORGANIZE PARTITION … VALUES LESS THAN / IN) compare the rows'
        // partitioning columns, which only the server knows, with values the client chose.
        const bounds = this.toks.some((t, k) => t.type === 'word' && t.value === 'VALUES' && (this.toks[k + 1]?.value === 'LESS' || this.toks[k + 1]?.value === 'IN'));
        if (bounds && !partitionedBy) this.addPredicates([{ ...tableOf(own.bindings[0]), column: '*' }]);
        return { kind: 'alter', tag, ...(actions.length > 0 ? { actions } : {}) };
      }
      case 'VIEW':
        this.addRelation(this.readQualified(), 'ddl');
        if (this.isPunct('(')) this.skipParens();
        this.expectKw('AS');
        this.parseQuery({ bindings: [] });
        this.i = this.toks.length;
        return { kind: 'alter', tag };
      case 'USER':
      case 'ROLE':
        this.i = this.toks.length;
        return { kind: 'role', tag };
      case 'SERVER':
      case 'INSTANCE':
      case 'TABLESPACE':
      case 'LOGFILE':
        this.i = this.toks.length;
        return { kind: 'admin', tag };
      default:
        this.acceptKw('IF', 'EXISTS');
        if (!this.atEnd()) this.addRelation(this.readQualified(), 'ddl', type === 'DATABASE' || type === 'SCHEMA' ? 'database' : 'routine');
        this.i = this.toks.length;
        return { kind: 'alter', tag };
    }
  }

  /**
   * PARTITION BY [LINEAR] {RANGE | LIST | HASH | KEY} [COLUMNS] [ALGORITHM = n] (expr | columns):
   * each row goes to the partition its values select, and `SELECT … FROM users PARTITION (p1)` or
   * information_schema.PARTITIONS then tells which rows those were (RANGE COLUMNS(ssn) with
   * bounds '123-45-6789' and '123-45-678:' picks out the one row whose ssn it is). The
   * partitioning columns are filtered on; KEY() partitions by the primary key, any column.
   */
  private partitioning(own: Scope): void {
    this.acceptKw('LINEAR');
    if (!this.acceptKw('RANGE') && !this.acceptKw('LIST') && !this.acceptKw('HASH') && !this.acceptKw('KEY')) this.fail('expected RANGE, LIST, HASH or KEY');
    this.acceptKw('COLUMNS');
    if (this.acceptKw('ALGORITHM')) {
      this.expectPunct('=');
      this.i++;
    }
    this.expectPunct('(');
    if (this.isPunct(')')) this.addPredicates([{ ...tableOf(own.bindings[0]), column: '*' }]);
    else this.predicate(own, () => false);
    this.expectPunct(')');
  }

  private drop(): Classified {
    this.i++;
    if (this.isKw('PREPARE')) {
      this.i--;
      return this.deallocate();
    }
    const { type } = this.objectType(['TABLE', 'TABLES', 'VIEW', 'INDEX', 'DATABASE', 'SCHEMA', 'USER', 'ROLE', 'PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT', 'SERVER', 'SEQUENCE', 'TABLESPACE', 'PACKAGE']);
    this.acceptKw('IF', 'EXISTS');
    const tag = `DROP ${type === 'TABLES' ? 'TABLE' : type}`;
    switch (type) {
      case 'TABLE':
      case 'TABLES':
      case 'VIEW':
      case 'SEQUENCE':
        do this.addRelation(this.readQualified(), 'ddl');
        while (this.acceptPunct(','));
        this.acceptKw('RESTRICT') || this.acceptKw('CASCADE');
        if (!this.atEnd()) this.fail('unexpected token');
        return { kind: 'drop', tag };
      case 'INDEX':
        this.readIdent();
        this.expectKw('ON');
        this.addRelation(this.readQualified(), 'ddl');
        this.i = this.toks.length;
        return { kind: 'drop', tag };
      case 'DATABASE':
      case 'SCHEMA':
        this.addRelation([this.readIdent()], 'ddl', 'database');
        this.i = this.toks.length;
        return { kind: 'drop', tag: 'DROP DATABASE' };
      case 'USER':
      case 'ROLE':
        this.i = this.toks.length;
        return { kind: 'role', tag };
      case 'SERVER':
      case 'TABLESPACE':
        this.i = this.toks.length;
        return { kind: 'admin', tag };
      default:
        this.addRelation(this.readQualified(), 'ddl', 'routine');
        this.i = this.toks.length;
        return { kind: 'drop', tag };
    }
  }

  private rename(): Classified {
    this.i++;
    if (this.acceptKw('USER')) {
      this.i = this.toks.length;
      return { kind: 'role', tag: 'RENAME USER' };
    }
    if (!this.acceptKw('TABLE') && !this.acceptKw('TABLES')) this.fail('expected TABLE');
    do {
      const from = this.readQualified();
      this.addRelation(from, 'ddl');
      if (this.acceptKw('WAIT')) this.i++;
      else this.acceptKw('NOWAIT');
      this.expectKw('TO');
      const to = this.readQualified();
      this.addRelation(to, 'ddl');
      this.renames(from, to);
      this.storeRenamedTable(from, to);
    } while (this.acceptPunct(','));
    if (!this.atEnd()) this.fail('unexpected token');
    return { kind: 'alter', tag: 'RENAME TABLE' };
  }

  /**
   * A table renamed takes its rows to the new name, where a rule on writes to the old name (the
   * model weights, frozen or held for review) no longer matches: `RENAME TABLE model_weights TO
   * w2` and then `UPDATE w2 …` wrote them freely. The rename is a write to both names, judged by
   * those rules (a table a rule protects moves only as that rule allows).
   */
  private renames(from: string[], to: string[]): void {
    this.addRelation(from, 'write', 'rename');
    this.addRelation(to, 'write', 'rename');
  }

  private grant(word: 'GRANT' | 'REVOKE'): Classified {
    // GRANT priv ON obj TO …  is a privilege grant; GRANT role TO user is role membership.
    const hasOn = this.toks.some((t) => t.type === 'word' && t.value === 'ON');
    this.i = this.toks.length;
    return hasOn ? { kind: 'grant', tag: word } : { kind: 'role', tag: `${word} ROLE` };
  }

  private set(): Classified {
    this.i++;
    if (this.acceptKw('STATEMENT')) return this.setStatement();
    if (this.acceptKw('PASSWORD')) {
      this.i = this.toks.length;
      return { kind: 'role', tag: 'SET PASSWORD' };
    }
    if (this.acceptKw('DEFAULT', 'ROLE')) {
      this.i = this.toks.length;
      return { kind: 'role', tag: 'SET DEFAULT ROLE' };
    }
    if (this.acceptKw('ROLE')) {
      const role = this.atEnd() ? null : this.name(this.peek()!);
      this.i = this.toks.length;
      return { kind: 'set', tag: 'SET ROLE', settings: [{ name: 'role', value: role, local: false }] };
    }
    const scopeWord = this.isKw('GLOBAL') || this.isKw('SESSION') || this.isKw('LOCAL') || this.isKw('PERSIST') || this.isKw('PERSIST_ONLY');
    if (this.isKw('TRANSACTION') || (scopeWord && this.isKw('TRANSACTION', 1))) {
      this.i = this.toks.length;
      return { kind: 'transaction', tag: 'SET TRANSACTION' };
    }
    if (this.acceptKw('NAMES') || this.acceptKw('CHARACTER', 'SET') || this.acceptKw('CHARSET')) {
      const value = this.atEnd() ? null : this.name(this.peek()!);
      this.i = this.toks.length;
      return { kind: 'set', tag: 'SET', settings: [{ name: 'names', value, local: false }] };
    }
    const settings: NonNullable<StatementFacts['settings']> = [];
    let global = false;
    do {
      let scope: 'global' | 'session' | 'user' = 'session';
      let name: string;
      const t = this.peek();
      if (this.acceptKw('GLOBAL') || this.acceptKw('PERSIST') || this.acceptKw('PERSIST_ONLY')) scope = 'global';
      else this.acceptKw('SESSION') || this.acceptKw('LOCAL');
      const v = this.peek();
      if (v?.type === 'var') {
        this.i++;
        scope = 'user';
        name = v.value;
      } else if (v?.type === 'sysvar') {
        this.i++;
        const m = /^(global|session|local)\.(.*)$/.exec(v.value);
        if (m?.[1] === 'global') scope = 'global';
        name = m ? m[2] : v.value;
      } else {
        if (!t) this.fail('expected a variable');
        name = this.readQualified().join('.').toLowerCase();
      }
      if (!this.acceptPunct('=') && !this.acceptPunct(':=')) this.fail("expected '='");
      const expr = this.scanExpr(this.depth0Stop(new Set(), true), { bindings: [] });
      if (expr.nonConstant) this.pending.push({ into: 'variable', expr, scope: { bindings: [] } });
      if (scope === 'global') global = true;
      if (scope !== 'user') settings.push({ name, value: this.settingValue(expr), local: false, ...(scope === 'global' ? { global: true as const } : {}) });
    } while (this.acceptPunct(','));
    if (!this.atEnd()) this.fail('unexpected token');
    // SET GLOBAL changes the server for every session: an administrative act.
    return { kind: global ? 'admin' : 'set', tag: global ? 'SET GLOBAL' : 'SET', settings };
  }

  private settingValue(expr: ExprInfo): string | null {
    const toks = this.toks.slice(expr.start, expr.end);
    if (toks.length === 1) {
      const t = toks[0];
      if (t.type === 'string' || t.type === 'number') return t.value;
      if (t.type === 'word' || t.type === 'quoted') return this.name(t);
    }
    // Computed at run time (CONCAT(@@sql_mode, …)): unknown to the analyser.
    return null;
  }

  /** MariaDB `SET STATEMENT var = value [, …] FOR statement`: the inner statement is what runs. */
  private setStatement(): Classified {
    const settings: NonNullable<StatementFacts['settings']> = [];
    do {
      const name = this.readQualified().join('.').toLowerCase();
      this.expectPunct('=');
      const expr = this.scanExpr(this.depth0Stop(new Set(['FOR']), true), { bindings: [] });
      settings.push({ name, value: this.settingValue(expr), local: true });
    } while (this.acceptPunct(','));
    this.expectKw('FOR');
    const inner = this.classify();
    return { ...inner, settings: [...settings, ...(inner.settings ?? [])] };
  }

  private transaction(tag: string): Classified {
    this.i = this.toks.length;
    return { kind: 'transaction', tag };
  }

  private lockTables(): Classified {
    this.i++;
    if (!this.acceptKw('TABLES') && !this.acceptKw('TABLE')) {
      this.i = this.toks.length;
      return { kind: 'utility', tag: 'LOCK' };
    }
    do {
      const parts = this.readQualified();
      this.readAlias();
      const write = this.isKw('WRITE') || this.isKw('LOW_PRIORITY');
      this.addRelation(parts, write ? 'write' : 'read', 'lock');
      while (!this.atEnd() && !this.isPunct(',')) this.i++;
    } while (this.acceptPunct(','));
    return { kind: 'utility', tag: 'LOCK TABLES' };
  }

  private explain(): Classified {
    const first = this.wordAt()!;
    this.i++;
    const analyze = first === 'ANALYZE' || this.acceptKw('ANALYZE');
    while (this.acceptKw('EXTENDED') || this.acceptKw('PARTITIONS') || this.acceptKw('FORMAT')) {
      if (this.acceptPunct('=')) this.i++;
    }
    const w = this.wordAt();
    const explainable = ['SELECT', 'WITH', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'TABLE', 'VALUES'];
    if (w !== undefined && explainable.includes(w)) {
      const inner = this.classify();
      // EXPLAIN ANALYZE (MySQL) and ANALYZE <stmt> (MariaDB) run the statement; plain EXPLAIN does not.
      if (analyze) return { ...inner, explainAnalyze: true };
      for (const r of this.relations) {
        r.access = 'read';
        r.via = 'explain';
      }
      return { kind: 'utility', tag: 'EXPLAIN' };
    }
    if (this.acceptKw('FOR', 'CONNECTION')) {
      this.i = this.toks.length;
      return { kind: 'utility', tag: 'EXPLAIN' };
    }
    // DESCRIBE t [col]
    if (!this.atEnd()) {
      this.addRelation(this.readQualified(), 'read', 'describe');
      this.i = this.toks.length;
    }
    return { kind: 'utility', tag: 'DESCRIBE' };
  }

  private maintenance(tag: string): Classified {
    this.i++;
    this.acceptKw('NO_WRITE_TO_BINLOG') || this.acceptKw('LOCAL');
    if (this.acceptKw('TABLE') || this.acceptKw('TABLES')) {
      do this.addRelation(this.readQualified(), 'ddl', 'maintenance');
      while (this.acceptPunct(','));
    }
    this.i = this.toks.length;
    return { kind: 'admin', tag };
  }

  /**
   * CHECKSUM TABLE t [, …] [QUICK | EXTENDED]: a CRC of every row, every column: a function of
   * the classified values (with the other rows deleted in a transaction, one row's CRC, to test
   * guesses against offline). It reads each table, and its Checksum column carries them all.
   */
  private checksumTable(): Classified {
    this.i += 2;
    const sources: ColumnLineage['sources'] = [];
    do {
      const parts = this.readQualified();
      this.addRelation(parts, 'read');
      const schema = parts.length > 1 ? parts[0] : this.currentDb;
      sources.push({ ...(schema !== undefined ? { schema } : {}), table: parts[parts.length - 1], column: '*' });
    } while (this.acceptPunct(','));
    this.acceptKw('QUICK') || this.acceptKw('EXTENDED');
    if (!this.atEnd()) this.fail('unexpected token');
    const lineage: ColumnLineage[] = [
      { index: 0, name: 'Table', sources: [], opaque: false, direct: false },
      { index: 1, name: 'Checksum', sources, opaque: false, direct: false },
    ];
    return { kind: 'select', tag: 'CHECKSUM TABLE', lineage };
  }

  private admin(tag: string): Classified {
    this.i++;
    this.rest();
    return { kind: 'admin', tag };
  }

  private load(): Classified {
    this.i++;
    if (!this.acceptKw('DATA') && !this.acceptKw('XML')) {
      this.i = this.toks.length;
      return { kind: 'admin', tag: 'LOAD INDEX' };
    }
    this.acceptKw('LOW_PRIORITY') || this.acceptKw('CONCURRENT');
    const local = this.acceptKw('LOCAL');
    this.expectKw('INFILE');
    // Reads a file: from the database host (INFILE) or, with LOCAL, from whatever the client chooses to send.
    this.addFileAccess(local ? 'LOAD DATA LOCAL INFILE' : 'LOAD DATA INFILE');
    while (!this.atEnd() && !this.isKw('INTO')) this.i++;
    this.expectKw('INTO');
    this.acceptKw('TABLE');
    this.addRelation(this.readQualified(), 'write');
    this.i = this.toks.length;
    return { kind: 'copy', tag: 'LOAD DATA' };
  }

  /**
   * A table renamed: every value of every column now lives under the new name, which masking
   * classifies by name. Recorded as a store of the whole row into the new table.
   */
  private storeRenamedTable(from: string[], to: string[]): void {
    const sch = (parts: string[]) => (parts.length > 1 ? { schema: parts[0] } : this.currentDb !== undefined ? { schema: this.currentDb } : {});
    this.stores.push({ into: { ...sch(to), table: to[to.length - 1] }, sources: [{ ...sch(from), table: from[from.length - 1], column: '*' }], opaque: false });
  }

  /**
   * Values an ALTER TABLE moves under another name: RENAME COLUMN a TO b, CHANGE a b …,
   * RENAME [TO] new_table, and a generated column (ADD x … AS (expr)), whose expression may read
   * any column of the row. Recorded as stores, so masking judges them as it judges INSERT … SELECT.
   */
  private alterTableStores(table: string[]): void {
    const sch = table.length > 1 ? { schema: table[0] } : this.currentDb !== undefined ? { schema: this.currentDb } : {};
    const name = table[table.length - 1];
    const ident = (k: number): string | undefined => {
      const t = this.toks[k];
      return t !== undefined && (t.type === 'quoted' || t.type === 'word') ? this.name(t).toLowerCase() : undefined;
    };
    const isWord = (k: number, w: string): boolean => this.toks[k]?.type === 'word' && this.toks[k].value === w;
    let depth = 0;
    let addingColumn = false;
    for (let k = this.i; k < this.toks.length; k++) {
      const t = this.toks[k];
      if (t.type === 'punct' && t.value === '(') depth++;
      if (t.type === 'punct' && t.value === ')') depth--;
      if (t.type === 'punct' && t.value === ',' && depth === 0) addingColumn = false;
      if (depth !== 0 || t.type !== 'word') continue;
      if (t.value === 'RENAME' && isWord(k + 1, 'COLUMN') && isWord(k + 3, 'TO')) {
        const a = ident(k + 2);
        const b = ident(k + 4);
        if (a && b) this.stores.push({ into: { ...sch, table: name, column: b }, sources: [{ ...sch, table: name, column: a }], opaque: false });
      } else if (t.value === 'RENAME' && !isWord(k + 1, 'COLUMN') && !isWord(k + 1, 'INDEX') && !isWord(k + 1, 'KEY')) {
        const at = isWord(k + 1, 'TO') || isWord(k + 1, 'AS') ? k + 2 : k + 1;
        const to = ident(at);
        if (to) this.storeRenamedTable(table, isWord(at + 1, '.') || this.toks[at + 1]?.value === '.' ? [to, ident(at + 2) ?? to] : [to]);
      } else if ((t.value === 'EXCHANGE' || t.value === 'CONVERT') && isWord(k + 1, 'PARTITION')) {
        // EXCHANGE PARTITION p WITH TABLE t swaps rows with t; CONVERT PARTITION p TO TABLE t moves
        // them out to a new table t: either way this table's values are then read as t's.
        const at = this.toks.findIndex((x, j) => j > k + 2 && x.type === 'word' && x.value === 'TABLE');
        const other = at > 0 ? this.qualifiedAt(at + 1) : undefined;
        if (other) {
          this.addRelation(other, 'ddl');
          this.storeRenamedTable(table, other);
          if (t.value === 'EXCHANGE') this.storeRenamedTable(other, table);
        }
      } else if (t.value === 'CONVERT' && isWord(k + 1, 'TABLE')) {
        // CONVERT TABLE t TO PARTITION p: t's rows become this table's, and t is gone.
        const other = this.qualifiedAt(k + 2);
        if (other) {
          this.addRelation(other, 'ddl');
          this.storeRenamedTable(other, table);
        }
      } else if (t.value === 'MODIFY') {
        // MODIFY x … AS (expr): the column becomes generated, its values computed from the row.
        addingColumn = true;
      } else if (t.value === 'CHANGE') {
        addingColumn = true;
        let at = k + 1;
        if (isWord(at, 'COLUMN')) at++;
        if (isWord(at, 'IF') && isWord(at + 1, 'EXISTS')) at += 2;
        const a = ident(at);
        const b = ident(at + 1);
        if (a && b) this.stores.push({ into: { ...sch, table: name, column: b }, sources: [{ ...sch, table: name, column: a }], opaque: false });
      } else if (t.value === 'ADD') {
        addingColumn = !(this.toks[k + 1]?.type === 'word' && NOT_A_COLUMN.has(this.toks[k + 1].value));
      } else if (t.value === 'AS' && addingColumn && this.toks[k + 1]?.type === 'punct' && this.toks[k + 1].value === '(') {
        // A generated column: its expression is not followed, so it counts as any column of the row.
        this.stores.push({ into: { ...sch, table: name }, sources: [{ ...sch, table: name, column: '*' }], opaque: true });
      }
    }
  }

  /** `name` or `db.name` at token k, when there is one. */
  private qualifiedAt(k: number): string[] | undefined {
    const part = (j: number): string | undefined => {
      const t = this.toks[j];
      return t !== undefined && (t.type === 'quoted' || (t.type === 'word' && !CLAUSE_WORDS.has(t.value))) ? this.name(t) : undefined;
    };
    const first = part(k);
    if (first === undefined) return undefined;
    const dot = this.toks[k + 1];
    const second = dot?.type === 'punct' && dot.value === '.' ? part(k + 2) : undefined;
    return second === undefined ? [first] : [first, second];
  }

  /** What the rest of an ALTER TABLE does to rows already there (see StatementFacts.actions). */
  private alterTableActions(): string[] {
    const out = new Set<string>();
    let depth = 0;
    const word = (k: number): string | undefined => {
      const t = this.toks[k];
      return t?.type === 'word' ? t.value : t?.type === 'string' || t?.type === 'quoted' ? this.name(t).toUpperCase() : undefined;
    };
    /** Inside a MODIFY / CHANGE clause (up to the next comma). */
    let retyping = false;
    for (let k = this.i; k < this.toks.length; k++) {
      const t = this.toks[k];
      if (t.type === 'punct' && t.value === '(') depth++;
      if (t.type === 'punct' && t.value === ')') depth--;
      if (depth === 0 && t.type === 'punct' && t.value === ',') retyping = false;
      if (depth !== 0 || t.type !== 'word') continue;
      const next = word(k + 1);
      // MODIFY x … AS (expr): every stored value of x is replaced by the expression's, strict mode or not.
      if (retyping && t.value === 'AS' && this.toks[k + 1]?.type === 'punct' && this.toks[k + 1].value === '(') out.add('ALTER TABLE OVERWRITE COLUMN');
      if (t.value === 'DROP' && next === 'PARTITION') out.add('ALTER TABLE DROP PARTITION');
      // CONVERT PARTITION p TO TABLE t takes the partition's rows out of the table; CONVERT TABLE t
      // TO PARTITION p makes table t part of this one (MariaDB 10.7+).
      if (t.value === 'CONVERT' && (next === 'PARTITION' || next === 'TABLE')) out.add('ALTER TABLE CONVERT PARTITION');
      else if (t.value === 'DROP' && next !== undefined && !NOT_A_COLUMN.has(next)) out.add('ALTER TABLE DROP COLUMN');
      if (t.value === 'TRUNCATE' && next === 'PARTITION') out.add('ALTER TABLE TRUNCATE PARTITION');
      if (t.value === 'EXCHANGE' && next === 'PARTITION') out.add('ALTER TABLE EXCHANGE PARTITION');
      if (t.value === 'DISCARD') out.add('ALTER TABLE DISCARD TABLESPACE');
      const engine = t.value === 'ENGINE' ? (next ?? word(k + 2)) : undefined;
      if (engine === 'BLACKHOLE') out.add('ALTER TABLE ENGINE BLACKHOLE');
      // Only some engines keep the rows they are given: MEMORY loses them at the next restart,
      // MERGE (MRG_MyISAM) and the remote ones (FEDERATED, CONNECT, SPIDER) hold none of their own.
      else if (engine !== undefined && !ENGINES_KEEPING_ROWS.has(engine)) out.add(ENGINE_DROPS_ROWS);
      // A new type or character set for stored values: lossless in strict mode, which refuses
      // values it cannot keep; without it they become 0, '' or '?' (src/broker/mysql-analyser.ts).
      if (t.value === 'MODIFY' || t.value === 'CHANGE' || (t.value === 'CONVERT' && next === 'TO')) out.add(RETYPE_ACTION);
      if (t.value === 'MODIFY' || t.value === 'CHANGE') {
        retyping = true;
        // Strict mode refuses a value that does not fit, not one it can round or cut to fit.
        let j = k + 1;
        if (word(j) === 'COLUMN') j++;
        if (word(j) === 'IF' && word(j + 1) === 'EXISTS') j += 2;
        const column = this.toks[j];
        j += t.value === 'CHANGE' ? 2 : 1;
        const type = this.toks[j]?.type === 'word' ? this.toks[j].value : undefined;
        if (column !== undefined && this.isIdent(column)) this.retypes.push({ column: this.name(column).toLowerCase(), type: type === undefined ? undefined : { name: type, typmods: [] }, rewrites: false });
        if (type !== undefined && ROUNDS_IN_STRICT_MODE.has(type) && word(j + 1) !== 'VARYING') out.add('ALTER TABLE OVERWRITE COLUMN');
      }
    }
    return [...out];
  }

  /** DEALLOCATE PREPARE name / DROP PREPARE name. */
  private deallocate(): Classified {
    this.i++;
    this.acceptKw('PREPARE');
    const name = this.atEnd() ? undefined : this.readIdent();
    this.i = this.toks.length;
    return { kind: 'utility', tag: 'DEALLOCATE PREPARE', ...(name !== undefined ? { deallocate: { name } } : {}) };
  }

  /**
   * HANDLER t OPEN [AS alias] / HANDLER name READ … / HANDLER name CLOSE. The handler's name (its
   * alias, else the table's name) is what READ and CLOSE use, so OPEN declares it like a cursor
   * over the table and READ fetches from it: masking follows the name to the table it was
   * opened on, and a name never opened in the session is rows of unknown origin.
   */
  private handler(): Classified {
    this.i++;
    const parts = this.readQualified();
    const op = this.wordAt();
    const table = parts[parts.length - 1];
    if (op === 'OPEN') {
      this.i++;
      const alias = this.acceptKw('AS') || this.isIdent(this.peek()) ? this.readIdent() : table;
      this.i = this.toks.length;
      this.addRelation(parts, 'read', 'handler');
      return { kind: 'utility', tag: 'HANDLER OPEN', cursor: { name: alias.toLowerCase(), op: 'declare' }, lineage: [{ index: 0, name: '*', sources: [{ ...(parts.length > 1 ? { schema: parts[0] } : {}), table, column: '*' }], opaque: false, direct: true }] };
    }
    if (op === 'READ') {
      this.i++;
      this.handlerFilters(parts);
      this.i = this.toks.length;
      this.addRelation(parts, 'read', 'handler');
      return { kind: 'select', tag: 'HANDLER', cursor: { name: table.toLowerCase(), op: 'fetch' } };
    }
    this.i = this.toks.length;
    return { kind: 'utility', tag: `HANDLER ${op ?? ''}`.trim(), ...(op === 'CLOSE' ? { cursor: { name: table.toLowerCase(), op: 'close' as const } } : {}) };
  }

  /**
   * HANDLER name READ [index] {FIRST|NEXT|…} | index {=|>=|…} (values) [WHERE …] [LIMIT …]: the
   * rows a READ returns tell whether they match, as a WHERE's do. A key lookup compares the
   * index's columns, which only the catalog knows: every column of the table counts. The names
   * are the handler's (its alias, or its table); the broker maps an alias to its table.
   */
  private handlerFilters(parts: string[]): void {
    const table = parts[parts.length - 1];
    const schema = parts.length > 1 ? parts[0] : this.currentDb;
    const at = (p: { table: string; column: string }): void => {
      if (!this.predicateColumns.some((x) => x.table === p.table && x.column === p.column)) this.predicateColumns.push({ ...(schema !== undefined ? { schema } : {}), ...p });
    };
    let depth = 0;
    while (!this.atEnd() && !(depth === 0 && (this.isKw('WHERE') || this.isKw('LIMIT')))) {
      const t = this.peek()!;
      if (t.type === 'punct' && t.value === '(') depth++;
      else if (t.type === 'punct' && t.value === ')') depth--;
      else if (depth === 0 && t.type === 'punct' && ['=', '>=', '<=', '<', '>'].includes(t.value)) at({ table, column: '*' });
      this.i++;
    }
    if (this.acceptKw('WHERE')) {
      const info = this.scanExpr(this.depth0Stop(new Set(['LIMIT'])), { bindings: [] });
      for (const r of info.refs) at({ table, column: r.column });
    }
  }

  private prepare(): Classified {
    this.i++;
    const name = this.readIdent();
    this.expectKw('FROM');
    const t = this.peek();
    this.i = this.toks.length;
    if (t?.type === 'string' && this.toks.length === this.toks.indexOf(t) + 1) {
      const inner = this.nested(t.value);
      this.relations.push(...inner.relations.map((r) => ({ ...r, via: 'prepare' })));
      this.functions.push(...inner.functions);
      return { kind: 'utility', tag: 'PREPARE', prepare: { name, inner }, ...(inner.opaque ? { opaque: inner.opaque } : {}) };
    }
    // PREPARE s FROM @sql: the text is only known at run time.
    return { kind: 'utility', tag: 'PREPARE', opaque: { reason: 'dynamic-sql', detail: 'PREPARE from a variable or expression' } };
  }

  private execute(): Classified {
    this.i++;
    if (this.acceptKw('IMMEDIATE')) {
      const t = this.peek();
      if (t?.type === 'string' && this.toks.length === this.i + 1) {
        this.i++;
        const inner = this.nested(t.value);
        this.relations.push(...inner.relations);
        this.functions.push(...inner.functions);
        const { kind, tag, hasWhere, opaque, settings, lineage } = inner;
        return { kind, tag, hasWhere, ...(opaque ? { opaque } : {}), ...(settings ? { settings } : {}), ...(lineage ? { lineage } : {}) };
      }
      this.i = this.toks.length;
      // EXECUTE IMMEDIATE @sql runs text built at run time.
      return { kind: 'unknown', tag: 'EXECUTE IMMEDIATE', opaque: { reason: 'dynamic-sql', detail: 'EXECUTE IMMEDIATE of a variable or expression' } };
    }
    const name = this.readIdent();
    this.i = this.toks.length;
    return { kind: 'utility', tag: 'EXECUTE', execute: { name } };
  }
}

/** A base-table binding as a stored value's destination. */
function tableOf(b: Binding): { schema?: string; table: string } {
  return { ...(b.schema !== undefined ? { schema: b.schema } : {}), table: b.table ?? '?' };
}

/**
 * A query's columns under the names a column list gives them (`WITH c(plan) AS (SELECT email …)`:
 * c.plan is email). By position; a `*` not yet expanded has no positions, so then every name
 * carries every column's sources.
 */
function renamed(lineage: ColumnLineage[], names: string[] | undefined): ColumnLineage[] {
  if (names === undefined) return lineage;
  if (lineage.some((c) => c.name === '*') || names.length !== lineage.length) {
    const all: ColumnLineage = { index: 0, name: '', sources: dedupeSources(lineage.flatMap((c) => c.sources)), opaque: lineage.some((c) => c.opaque) || names.length !== lineage.length, direct: false };
    return names.map((name, index) => ({ ...all, index, name }));
  }
  return lineage.map((c, k) => ({ ...c, name: names[k] }));
}

/** The index of the `)` closing the `(` at toks[open], or -1. */
function matchingParen(toks: Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < toks.length; k++) {
    if (toks[k].type === 'punct' && toks[k].value === '(') depth++;
    else if (toks[k].type === 'punct' && toks[k].value === ')' && --depth === 0) return k;
  }
  return -1;
}

function findBinding(scope: Scope, name: string): Binding | undefined {
  for (let s: Scope | undefined = scope; s; s = s.parent) {
    const b = s.bindings.find((x) => x.alias === name && x.derived);
    if (b) return b;
  }
  return undefined;
}

function dedupeSources(sources: ColumnLineage['sources']): ColumnLineage['sources'] {
  const seen = new Set<string>();
  return sources.filter((s) => {
    const k = `${s.schema ?? ''}.${s.table}.${s.column}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * A WHERE that is true for every row does not restrict anything: `1`, `1=1`, `TRUE`, `'a'='a'`,
 * `x = x` (in any spelling: `x + 0 = (x)`, `t.x = x COLLATE c`), `x LIKE '%'`, `P OR NOT P`,
 * `x IS NULL OR x IS NOT NULL`, or any of these OR-ed with something else. Everything else counts
 * as a restriction. `names`: the single table's alias and name, when the statement reads one.
 */
export function isTautology(toks: Token[], names?: ReadonlySet<string>): boolean {
  const disjuncts = disjunctRanges(toks, 0, toks.length).map(([a, b]) => stripParens(toks.slice(a, b)));
  return disjuncts.some((d) => constantTruth(d, names) === true) || excludedMiddle(disjuncts, names);
}

/**
 * `P OR NOT P` and `x IS <v> OR x IS NOT <v>`: one of two disjuncts holds for every row (but for
 * NULLs, as with `x = x`).
 */
function excludedMiddle(disjuncts: Token[][], names: ReadonlySet<string> | undefined): boolean {
  const keys = new Set(disjuncts.map((d) => shapeKey(d, names)));
  for (const d of disjuncts) {
    if (d.length > 1 && d[0].type === 'word' && d[0].value === 'NOT' && keys.has(shapeKey(stripParens(d.slice(1)), names))) return true;
    const is = topLevelIndex(d, 'IS');
    if (is > 0 && d[is + 1]?.type === 'word' && d[is + 1].value === 'NOT') {
      const positive = [...d.slice(0, is + 1), ...d.slice(is + 2)];
      if (keys.has(shapeKey(positive, names))) return true;
    }
  }
  return false;
}

/** A comparable key for an expression of the row (empty for one that may differ between two evaluations). */
function shapeKey(toks: Token[], names: ReadonlySet<string> | undefined): string {
  const n = sameSide(toks, names);
  if (n.length === 0 || n.some(mayDiffer)) return `\u0000${Math.random()}`;
  return n.map(tokenKey).join(' ');
}

/** Token ranges of the top-level disjuncts (split at OR / || outside parentheses) of toks[start, end). */
function disjunctRanges(toks: Token[], start: number, end: number): [number, number][] {
  return topLevelRanges(toks, start, end, 'OR', '||');
}

/** The same for conjuncts (AND / &&); the AND of a BETWEEN stays inside its term. */
function conjunctRanges(toks: Token[], start: number, end: number): [number, number][] {
  return topLevelRanges(toks, start, end, 'AND', '&&');
}

function topLevelRanges(toks: Token[], start: number, end: number, word: string, punct: string): [number, number][] {
  const out: [number, number][] = [];
  let depth = 0;
  let from = start;
  let between = 0;
  for (let k = start; k < end; k++) {
    const t = toks[k];
    if (t.type === 'punct' && t.value === '(') depth++;
    if (t.type === 'punct' && t.value === ')') depth--;
    if (depth !== 0) continue;
    if (t.type === 'word' && t.value === 'BETWEEN') between++;
    else if ((t.type === 'word' && t.value === word) || (t.type === 'punct' && t.value === punct)) {
      if (word === 'AND' && between > 0 && t.type === 'word') {
        between--;
        continue;
      }
      out.push([from, k]);
      from = k + 1;
    }
  }
  out.push([from, end]);
  return out;
}

/** StatementFacts.actions of an ALTER TABLE … ENGINE = an engine that does not keep the table's rows. */
export const ENGINE_DROPS_ROWS = 'ALTER TABLE ENGINE DROPS ROWS';

/** Storage engines that keep the rows an ALTER TABLE … ENGINE = gives them, durably. */
const ENGINES_KEEPING_ROWS = new Set(['INNODB', 'XTRADB', 'MYISAM', 'ARIA', 'ROCKSDB', 'TOKUDB', 'COLUMNSTORE', 'DEFAULT']);

/** StatementFacts.actions of ALTER IGNORE TABLE (MariaDB), which may delete rows and cut values. */
export const IGNORE_ACTION = 'ALTER TABLE IGNORE';

/** StatementFacts.actions of an ALTER TABLE that gives stored values a new type or character set. */
export const RETYPE_ACTION = 'ALTER TABLE RETYPE COLUMN';

/** Objects whose CREATE OR REPLACE drops an existing one of that name, with the rows it holds. */
const DROPPED_BY_OR_REPLACE = new Set(['TABLE', 'SEQUENCE', 'DATABASE']);

/** Words in a FROM list that are not table names or aliases. */
const RESERVED_IN_FROM = new Set(['AS', 'JOIN', 'INNER', 'CROSS', 'LEFT', 'RIGHT', 'OUTER', 'NATURAL', 'STRAIGHT_JOIN', 'ON', 'USING', 'USE', 'FORCE', 'IGNORE', 'INDEX', 'KEY', 'FOR', 'LATERAL', 'SELECT', 'DUAL']);

function stripParens(toks: Token[]): Token[] {
  while (toks.length >= 2 && toks[0].value === '(' && toks[toks.length - 1].value === ')' && balancedInside(toks)) toks = toks.slice(1, -1);
  return toks;
}

function balancedInside(toks: Token[]): boolean {
  let depth = 0;
  for (let k = 0; k < toks.length - 1; k++) {
    if (toks[k].type === 'punct' && toks[k].value === '(') depth++;
    if (toks[k].type === 'punct' && toks[k].value === ')') depth--;
    if (depth === 0) return false;
  }
  return true;
}

function literal(t: Token): string | number | boolean | undefined {
  if (t.type === 'number') return Number(t.text);
  if (t.type === 'string') return t.value;
  if (t.type === 'word' && t.value === 'TRUE') return true;
  if (t.type === 'word' && t.value === 'FALSE') return false;
  return undefined;
}

function truthy(v: string | number | boolean): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  return Number.parseFloat(v) !== 0 && !Number.isNaN(Number.parseFloat(v));
}

const COMPARISONS = new Set(['=', '<=>', '>=', '<=', 'LIKE']);
/** Comparisons that are false when both sides are the same value. */
const STRICT_COMPARISONS = new Set(['<>', '!=', '<', '>']);

function constantTruth(toks: Token[], names?: ReadonlySet<string>): boolean | undefined {
  if (toks.length === 0) return undefined;
  // By precedence, loosest first: XOR, then AND (`id = id AND 1` holds wherever `id = id` does).
  const xor = splitTopLevel(toks, (t) => t.type === 'word' && t.value === 'XOR');
  if (xor.length > 1) {
    const parts = xor.map((p) => valueOf(p, names));
    return parts.some((v) => v === undefined) ? undefined : parts.reduce<boolean>((acc, v) => acc !== truthy(v!), false);
  }
  const and = conjunctRanges(toks, 0, toks.length);
  if (and.length > 1) {
    const parts = and.map(([a, b]) => valueOf(toks.slice(a, b), names));
    if (parts.some((v) => v !== undefined && !truthy(v))) return false;
    return parts.every((v) => v !== undefined) ? true : undefined;
  }
  if (toks.length === 2 && toks[0].type === 'word' && toks[0].value === 'NOT') {
    const v = literal(toks[1]);
    return v === undefined ? undefined : !truthy(v);
  }
  // `NOT (x <> x)` is `x = x`.
  if (toks.length > 2 && toks[0].type === 'word' && toks[0].value === 'NOT') {
    const inner = constantTruth(stripParens(toks.slice(1)), names);
    return inner === undefined ? undefined : !inner;
  }
  if (toks.length === 1) {
    const v = literal(toks[0]);
    return v === undefined ? undefined : truthy(v);
  }
  // `<literal or tautology> IS TRUE`, `… IS NOT NULL`, `(x = x) IS NOT FALSE`.
  const is = topLevelIndex(toks, 'IS');
  if (is > 0) {
    const v = valueOf(toks.slice(0, is), names);
    const rest = toks.slice(is + 1).map((t) => t.value).join(' ');
    if (v !== undefined) {
      if (rest === 'NOT NULL') return true;
      if (rest === 'TRUE' || rest === 'NOT FALSE') return truthy(v);
      if (rest === 'FALSE' || rest === 'NOT TRUE') return !truthy(v);
    }
  }
  // `x BETWEEN x AND x`, `x IN (…, x, …)`: the same test as `x = x`.
  const between = topLevelIndex(toks, 'BETWEEN');
  if (between > 0) {
    const and = topLevelIndex(toks, 'AND', between);
    if (and > between && sameTokens(toks.slice(0, between), toks.slice(between + 1, and), names) && sameTokens(toks.slice(0, between), toks.slice(and + 1), names)) return true;
  }
  const inAt = topLevelIndex(toks, 'IN');
  if (inAt > 0 && toks[inAt + 1]?.value === '(' && toks[toks.length - 1].value === ')' && toks[inAt - 1].value !== 'NOT') {
    if (listItems(toks.slice(inAt + 2, -1)).some((item) => sameTokens(toks.slice(0, inAt), item, names))) return true;
  }
  // The comparison outside parentheses: in `(x = x) = TRUE` it is the second `=`.
  const opIndex = topLevelIndexOf(toks, (t) => (t.type === 'punct' || t.type === 'word') && (COMPARISONS.has(t.value) || STRICT_COMPARISONS.has(t.value)));
  if (opIndex > 0) {
    const left = toks.slice(0, opIndex);
    const right = toks.slice(opIndex + 1);
    const op = toks[opIndex].value;
    const strict = STRICT_COMPARISONS.has(op);
    // `x = x` holds for every non-NULL x, and `<=>` even for NULL: no restriction worth the name.
    // `x <> x`, `x < x` are false for every row, so nothing is selected.
    if (sameTokens(left, right, names)) return !strict;
    // `x LIKE '%'` matches every non-NULL x.
    if (op === 'LIKE' && right.length === 1 && right[0].type === 'string' && /^%+$/.test(right[0].value) && left.some((t) => t.type === 'word' || t.type === 'quoted')) return true;
    // Two constants (a literal, or a test that holds for every row: `(x = x) = TRUE`).
    const a = valueOf(left, names);
    const b = valueOf(right, names);
    if (a !== undefined && b !== undefined) {
      // MySQL compares mixed types numerically and strings case-insensitively under default collations.
      const norm = (v: string | number | boolean): string | number => (typeof v === 'string' && typeof (typeof a === 'string' ? b : a) !== 'string' ? Number.parseFloat(v) || 0 : typeof v === 'boolean' ? Number(v) : typeof v === 'string' ? v.toLowerCase() : v);
      const x = norm(a);
      const y = norm(b);
      if (op === '=' || op === '<=>' || op === 'LIKE') return x === y;
      if (op === '>=') return x >= y;
      if (op === '<=') return x <= y;
      if (op === '<>' || op === '!=') return x !== y;
      if (op === '<') return x < y;
      if (op === '>') return x > y;
    }
  }
  return undefined;
}

/** A literal, or the truth of a test that is constant (`(x = x)` is TRUE); undefined otherwise. */
function valueOf(toks: Token[], names: ReadonlySet<string> | undefined): string | number | boolean | undefined {
  toks = stripParens(toks);
  if (toks.length === 1) return literal(toks[0]);
  return constantTruth(toks, names);
}

/** toks split at the tokens outside parentheses for which `test` holds. */
function splitTopLevel(toks: Token[], test: (t: Token) => boolean): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')') depth--;
    if (depth === 0 && test(t)) out.push([]);
    else out[out.length - 1].push(t);
  }
  return out;
}

/** Index of the first token outside parentheses for which `test` holds; -1 when none does. */
function topLevelIndexOf(toks: Token[], test: (t: Token) => boolean): number {
  let depth = 0;
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k];
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')') depth--;
    else if (depth === 0 && test(t)) return k;
  }
  return -1;
}

/**
 * The same row expression twice (not a parameter, a variable or a volatile call, which may
 * differ), compared after dropping what does not change the value: parentheses, `+ 0`, `* 1`,
 * a unary `+`, BINARY, COLLATE, and the qualifier of the single table (see sameSide).
 */
function sameTokens(a: Token[], b: Token[], names?: ReadonlySet<string>): boolean {
  const x = sameSide(a, names);
  const y = sameSide(b, names);
  if (x.length === 0 || x.length !== y.length || !x.every((t, k) => tokenKey(t) === tokenKey(y[k]))) return false;
  return !x.some(mayDiffer);
}

/** Names compare case-insensitively, quoted or not (`id`, `ID` and `` `id` `` are one column). */
function tokenKey(t: Token): string {
  if (t.type === 'word' || t.type === 'quoted') return `name:${(t.type === 'quoted' ? t.value : t.text).toLowerCase()}`;
  return `${t.type}:${t.value}`;
}

function mayDiffer(t: Token): boolean {
  return t.type === 'param' || t.type === 'var' || (t.type === 'word' && ['RAND', 'UUID', 'NOW'].includes(t.value));
}

const numberIs = (t: Token | undefined, v: number): boolean => t?.type === 'number' && Number(t.text) === v;
const punctIs = (t: Token | undefined, p: string): boolean => t?.type === 'punct' && t.value === p;

/** One side of a comparison without what leaves its value as it is (see sameTokens). */
function sameSide(toks: Token[], names: ReadonlySet<string> | undefined): Token[] {
  for (;;) {
    const before = toks.length;
    toks = stripParens(toks);
    const n = toks.length;
    if (n > 1 && (punctIs(toks[0], '+') || (toks[0].type === 'word' && toks[0].value === 'BINARY'))) toks = toks.slice(1);
    else if (n > 2 && toks[n - 2].type === 'word' && toks[n - 2].value === 'COLLATE') toks = toks.slice(0, -2);
    else if (n > 2 && ((punctIs(toks[n - 2], '+') || punctIs(toks[n - 2], '-')) && numberIs(toks[n - 1], 0))) toks = toks.slice(0, -2);
    else if (n > 2 && ((punctIs(toks[n - 2], '*') || punctIs(toks[n - 2], '/')) && numberIs(toks[n - 1], 1))) toks = toks.slice(0, -2);
    else if (n > 2 && ((punctIs(toks[1], '+') && numberIs(toks[0], 0)) || (punctIs(toks[1], '*') && numberIs(toks[0], 1)))) toks = toks.slice(2);
    // `ANY (SELECT x)`, `(SELECT x)`, `(SELECT x FROM DUAL)`: a subquery with no table is its one value.
    else if (n > 2 && toks[0].type === 'word' && ['ANY', 'SOME', 'ALL'].includes(toks[0].value) && punctIs(toks[1], '(')) toks = toks.slice(1);
    else if (n > 1 && toks[0].type === 'word' && toks[0].value === 'SELECT') {
      const body = n > 3 && toks[n - 2].type === 'word' && toks[n - 2].value === 'FROM' && toks[n - 1].type === 'word' && toks[n - 1].value === 'DUAL' ? toks.slice(1, -2) : toks.slice(1);
      if (topLevelIndexOf(body, (t) => (t.type === 'word' && (CLAUSE_STOP.has(t.value) || SELECT_OPTIONS.has(t.value))) || punctIs(t, ',')) < 0) toks = body;
    }
    else if (names !== undefined && (n === 3 || n === 5) && toks.every((t, k) => (k % 2 === 1 ? punctIs(t, '.') : t.type === 'word' || t.type === 'quoted'))) {
      const table = toks[n - 3];
      if (names.has((table.type === 'quoted' ? table.value : table.text).toLowerCase())) toks = toks.slice(n - 1);
    }
    if (toks.length === before) return toks;
  }
}

/** Index of a keyword outside parentheses, from `from`; -1 when absent. */
function topLevelIndex(toks: Token[], word: string, from = 0): number {
  let depth = 0;
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k];
    if (t.type === 'punct' && t.value === '(') depth++;
    if (t.type === 'punct' && t.value === ')') depth--;
    if (k >= from && depth === 0 && t.type === 'word' && t.value === word) return k;
  }
  return -1;
}

/** Items of a comma-separated list (commas outside parentheses). */
function listItems(toks: Token[]): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (t.type === 'punct' && t.value === '(') depth++;
    if (t.type === 'punct' && t.value === ')') depth--;
    if (depth === 0 && t.type === 'punct' && t.value === ',') out.push([]);
    else out[out.length - 1].push(t);
  }
  return out;
}

function sameSource(a: ColumnLineage['sources'][number] | undefined, b: ColumnLineage['sources'][number] | undefined): boolean {
  return a !== undefined && b !== undefined && a.table === b.table && a.column === b.column && a.schema === b.schema;
}
