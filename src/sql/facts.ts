/**
 * Statement facts: what one SQL statement does, as the real parser sees it.
 * Produced by the dialect analysers (src/sql/postgres.ts, src/sql/mysql.ts), consumed by
 * policy (src/policy), masking (src/masking) and audit. Pure data, JSON-serialisable.
 */
import type { TypeRef } from './postgres/retype.js';

export const STATEMENT_KINDS = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'copy',
  'create',
  'alter',
  'drop',
  'truncate',
  'grant', // GRANT and REVOKE
  'role', // CREATE/ALTER/DROP ROLE|USER, role membership
  'set', // session settings: SET, RESET, SET ROLE, SET SESSION AUTHORIZATION
  'admin', // ALTER SYSTEM, CHECKPOINT, VACUUM FULL, LOAD, CREATE EXTENSION, …
  'transaction', // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION
  'utility', // SHOW, EXPLAIN (no ANALYZE), LISTEN, NOTIFY, DISCARD, DEALLOCATE, …
  'call', // CALL procedure
  'do', // anonymous code blocks
  'unknown', // did not parse or not classified: policy fails closed on it in protected envs
] as const;
export type StatementKind = (typeof STATEMENT_KINDS)[number];

export type RelationAccess = 'read' | 'write' | 'ddl';

export interface RelationRef {
  /** Schema as written, or as resolved (see `resolved`). Lower-cased unless quoted. */
  schema?: string;
  name: string;
  access: RelationAccess;
  /** Columns referenced, when known. `*` means all. */
  columns?: string[];
  /** Set once resolved against the catalog (search_path, temp shadowing): the real object. */
  resolved?: { schema: string; name: string; oid?: number };
  /** Where the reference came from: FROM, a data-modifying CTE, EXPLAIN ANALYZE, a rule, … */
  via?: string;
}

/** Risk classes of functions. A function may have several. */
export const FUNCTION_RISKS = [
  'file', // server file access: pg_read_file, lo_import, COPY … FROM '/path'
  'program', // program execution: COPY … PROGRAM
  'dynamic-sql', // runs SQL built at run time: EXECUTE in PL/pgSQL, query_to_xml, …
  'remote', // dblink-like: dblink, dblink_exec, postgres_fdw helpers
  'admin', // pg_terminate_backend, pg_reload_conf, set_config of security settings, …
  'identity', // switches identity: set_config('role'|'session_authorization', …)
  'side-effect', // writes or otherwise changes state (nextval, pg_advisory_lock, lo_unlink, …)
] as const;
export type FunctionRisk = (typeof FUNCTION_RISKS)[number];

export interface FunctionRef {
  schema?: string;
  name: string;
  risks: FunctionRisk[];
  /** Called from the FROM clause (a table function). */
  inFrom?: boolean;
  /** MySQL: the procedure a CALL names, not a function; the CALL rules judge it. */
  procedure?: boolean;
}
// PostgreSQL also reports pseudo-functions for risky statement forms: `copy_program` (COPY …
// PROGRAM, risk 'program'), `copy_file` (COPY to/from a server path, 'file') and `execute`
// (PL/pgSQL EXECUTE in a DO block or function body, 'dynamic-sql').

/**
 * A function reached through syntax rather than by name (src/sql/postgres/implicit-calls.ts): an
 * operator (`a ### b`, `OPERATOR(s.###)`, `= ANY (…)`, `ORDER BY … USING`) or a cast to a type
 * (`x::text`). Which function runs is the catalog's to say.
 */
export interface ImplicitCall {
  kind: 'operator' | 'cast';
  schema?: string;
  /** The operator's symbol, or the cast's target type name. */
  name: string;
}

/** Why a statement cannot be fully understood. Protected environments block these. */
export const OPAQUE_REASONS = [
  'parse-error',
  'do-block',
  'dynamic-sql',
  'unprepared-execute',
  'function-call-message',
  'unsupported-message',
  'unresolved-relation',
  'executable-comment',
  'unclassified-statement', // parsed, but a statement type the analyser has no rule for
  'opaque-function', // calls a function whose body may change data and cannot be judged
  'nonstandard-strings', // PostgreSQL with standard_conforming_strings off: a backslash may end a literal elsewhere than the parser thinks
] as const;
export type OpaqueReason = (typeof OPAQUE_REASONS)[number];

/** One output column of a result, and the source columns its value may carry. */
export interface ColumnLineage {
  /** Position in the result, 0-based. */
  index: number;
  /** Output name as the server would label it. */
  name: string;
  /**
   * Source columns whose values may flow into this output, possibly transformed.
   * `column: '*'` means every column of that relation (whole-row references, row_to_json(t)).
   */
  sources: { schema?: string; table: string; column: string }[];
  /** True when lineage could not be established (e.g. an unknown function over a relation). Mask. */
  opaque: boolean;
  /** True when the value is the source column itself, untransformed (a plain column reference). */
  direct: boolean;
  /**
   * The value is one source column through case mapping only (`LOWER(email)`): every character
   * where it was, so a mask that keeps some positions (partial) shows what it showed before.
   * Set by the MySQL analyser.
   */
  caseMapped?: true;
}

/** A value a statement stores (see StatementFacts.stores). */
export interface StoredValue {
  into: { schema?: string; table: string; column?: string } | 'variable' | 'file';
  /** Source columns the value may carry, as in ColumnLineage. */
  sources: ColumnLineage['sources'];
  /** Its origin could not be followed. */
  opaque: boolean;
  /** The value is one source column itself, untransformed (as ColumnLineage.direct). */
  direct?: boolean;
  /** As ColumnLineage.caseMapped. */
  caseMapped?: true;
}

export interface StatementFacts {
  kind: StatementKind;
  /** Command tag style name: `SELECT`, `DROP TABLE`, `ALTER SYSTEM`, … */
  tag: string;
  /** This statement's own text, sliced from the message. */
  text: string;
  /** Text with every literal replaced by a placeholder; safe to store in the audit log. */
  redacted: string;
  /** Stable fingerprint of the statement shape (libpg-query fingerprint for PostgreSQL). */
  fingerprint: string;
  relations: RelationRef[];
  functions: FunctionRef[];
  /** Operators and casts the statement uses (PostgreSQL): the catalog says what they call. */
  implicitCalls?: ImplicitCall[];
  /**
   * For UPDATE/DELETE (and MERGE): whether a WHERE restricts the rows. A constant-true WHERE
   * (`WHERE true`, `WHERE 1=1`, `WHERE 'a'='a'`) counts as none. Null for other kinds, except
   * that a statement with a data-modifying CTE reports false if any UPDATE/DELETE/MERGE in it
   * is unrestricted.
   */
  hasWhere: boolean | null;
  /** A CTE that inserts, updates or deletes (`WITH x AS (DELETE …) SELECT …`). */
  modifyingCte: boolean;
  /** The message carried more than one statement. Set on each of them. */
  multiStatement: boolean;
  /** EXPLAIN ANALYZE runs its statement: kind/relations are those of the inner statement. */
  explainAnalyze?: boolean;
  /** Present when the statement cannot be fully understood; protected envs block it. */
  opaque?: { reason: OpaqueReason; detail: string };
  /** SET/RESET and set_config effects the session must track (search_path, role, …). */
  settings?: {
    name: string;
    value: string | null;
    local: boolean;
    computed?: true;
    /** MySQL SET GLOBAL / PERSIST: the server's default for new sessions; this session keeps its own. */
    global?: true;
  }[];
  /**
   * PREPARE name AS …: the name and the inner facts. EXECUTE name: the name.
   * PostgreSQL: a PREPARE's own kind, relations, functions, hasWhere, opaque and lineage are
   * those of its inner statement (tag stays `PREPARE`), so policy judging the PREPARE judges
   * what EXECUTE will run — the same hoisting as EXPLAIN ANALYZE.
   */
  prepare?: { name: string; inner: StatementFacts };
  execute?: { name: string };
  /**
   * COPY's data format, as the statement sets it: how a row splits into fields depends on it, so
   * masking COPY output must follow it (a custom DELIMITER moves every column boundary).
   * `encoding`: COPY … TO's ENCODING option, the encoding its output is written in.
   */
  copy?: { format: 'text' | 'csv' | 'binary'; delimiter?: string; quote?: string; escape?: string; null?: string; header?: boolean; encoding?: string };
  /**
   * The column an UPDATE/DELETE's whole WHERE only tests for truth or non-NULL (`WHERE id`,
   * `WHERE id IS NOT NULL`). The broker counts the WHERE as missing when the catalog says that
   * column is part of the written table's primary key: it then holds for every row.
   */
  whereTruthOf?: string;
  /**
   * An UPDATE … FROM / DELETE … USING / MERGE that joins a base table and whose condition names
   * the target's rows only by bare column names: those names. A bare name may be a column of the
   * joined table instead (`DELETE FROM orders USING users WHERE email = 'x'`), the same for
   * every target row; the broker counts the condition as missing when the catalog says none of
   * them is a column of the written table.
   */
  whereBareNames?: string[];
  /**
   * What an ALTER TABLE does to existing data, beyond its tag: `ALTER TABLE DROP COLUMN`,
   * `ALTER TABLE OVERWRITE COLUMN` (a type change that may not keep every value; see `retypes`),
   * `ALTER TABLE DROP PARTITION`, `ALTER TABLE TRUNCATE PARTITION`, `ALTER TABLE EXCHANGE
   * PARTITION`, `ALTER TABLE CONVERT PARTITION` (MariaDB: a partition moved out to a table of its
   * own, or a table into a partition), `ALTER TABLE DISCARD TABLESPACE`, `ALTER TABLE ENGINE
   * BLACKHOLE`, `ALTER TABLE ENGINE DROPS ROWS` (another engine that does not keep them durably:
   * MEMORY, MERGE, FEDERATED, …), `ALTER TABLE IGNORE` (MariaDB's ALTER IGNORE TABLE). Policy `tags`
   * match these as well as the tag.
   */
  actions?: string[];
  /**
   * PostgreSQL ALTER TABLE … ALTER COLUMN … TYPE: each column and its new type as written
   * (undefined when it is not a plain type: an array, `%TYPE`), and whether a USING other than
   * the column itself computes the new values. The analyser reports `ALTER TABLE OVERWRITE
   * COLUMN` for every one of them; the broker withdraws that only when the catalog proves that
   * every conversion keeps every value (src/sql/postgres/retype.ts).
   */
  retypes?: { column: string; type: TypeRef | undefined; rewrites: boolean }[];
  /**
   * Type names this statement may define or change (lower case; `*` when it cannot tell): a
   * type or domain it creates or renames, a relation it creates (its row type), a table whose
   * column types it changes. The catalog learns of them only at its next reload, and an
   * unqualified type name may then mean this session's temp type: for the rest of the session,
   * a type change naming one of them is not proven to keep its values.
   */
  typesChanged?: string[];
  /**
   * Function names this statement may define or change (lower case, no schema; `*` when it cannot
   * tell): CREATE [OR REPLACE] FUNCTION / PROCEDURE / AGGREGATE, ALTER FUNCTION, a rename or a
   * schema move of one, an extension. The catalog learns of the new definition only after it
   * commits and a reload ran; until then a call of that name is not judged by what the catalog
   * says it is (a built-in `lower`, an old body), but as code dbgov has not read.
   */
  functionsChanged?: string[];
  /**
   * Returns or stores the texts of earlier statements' warnings and errors (MySQL SHOW WARNINGS,
   * SHOW ERRORS, GET DIAGNOSTICS): they quote the values those statements read. Also set on
   * statements returning the text of other sessions' statements (SHOW PROCESSLIST, SHOW ENGINE …
   * STATUS, information_schema.PROCESSLIST), whose literals are values too.
   */
  diagnostics?: true;
  /** DEALLOCATE name (null: DEALLOCATE ALL): the session forgets a prepared statement. */
  deallocate?: { name: string | null };
  /**
   * DECLARE name CURSOR, FETCH/MOVE name, CLOSE name (an empty name with close means CLOSE ALL).
   * MySQL's HANDLER OPEN / READ / CLOSE are the same to masking: READ returns rows of the table
   * the handler (or its alias) was opened on.
   */
  cursor?: { name: string; op: 'declare' | 'fetch' | 'move' | 'close' };
  /**
   * Output-column lineage for statements returning rows (SELECT, RETURNING, COPY … TO, cursors).
   * Names as written, before catalog resolution: an entry named `*` whose sources have
   * `column: '*'` stands for an unexpanded `*` over a table (its width is unknown, so later
   * indexes are provisional). `resolveLineage` (src/sql/lineage.ts) gives the exact list.
   */
  lineage?: ColumnLineage[];
  /** Columns referenced in predicates (WHERE/JOIN/HAVING), for the predicate-inference rule. */
  predicateColumns?: { schema?: string; table: string; column: string }[];
  /**
   * Values the statement stores and where: a table's column (INSERT/UPDATE/CREATE … SELECT; no
   * `column` when it cannot be told which) or `variable` (a user variable or session setting).
   * Set by analysers that work these out while parsing (MySQL); for PostgreSQL the broker works
   * them out from the parse tree when it needs them (src/sql/lineage.ts, resolveWriteFlows).
   */
  stores?: StoredValue[];
  /**
   * Names whose meaning this statement changes (lower case): a relation renamed or moved to
   * another schema (old and new name), a table whose columns were renamed; `*` when a schema is
   * renamed. Until the catalog has the change, what those names read is not what it says.
   */
  renamed?: string[];
  /**
   * The names a rename gives (PostgreSQL): a column's new name, a relation's new name or schema,
   * a schema's new name (`table: '*'`); `from` is the old name of a renamed column or schema. Masking is configured by name, so a
   * column renamed to a masked one's name is masked from then on.
   */
  renamesInto?: { schema?: string; table: string; column?: string; from?: string }[];
  /** A statement that creates a temp table, rule or trigger: the session must re-resolve. */
  changesResolution?: boolean;
  /**
   * Set on the statements of a LANGUAGE sql function or procedure body that this message calls:
   * policy judges them with the call (a hidden DELETE without WHERE is still one); they are not
   * part of the message's own text.
   */
  calledFrom?: string;
}

/** Analysis of one protocol message (one simple Query, or one Parse). */
export interface MessageAnalysis {
  statements: StatementFacts[];
}
