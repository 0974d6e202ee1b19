/**
 * The analysis a MySQL/MariaDB target gives its sessions: src/sql/mysql analysis, cached.
 *
 * MySQL analysis depends on the server's version and flavour (executable comments) and on the
 * session's sql_mode (NO_BACKSLASH_ESCAPES changes where a string ends; ANSI_QUOTES makes "x" an
 * identifier) and database. The mode comes from the session's own SET statements, else the
 * server default.
 *
 * Cache entries are keyed by mode, database and text, and an entry always holds the analysis of
 * exactly its key's text. COM_QUERY texts in the plain subset of src/sql/mysql/normalise.ts are
 * looked up by their literal-normalised text (`… WHERE id = ?`), so a point query with a new
 * literal costs a scan and a lookup instead of a parse; their facts' `text` is that normalised
 * text. Every statement is still decided and audited: only the analysis is shared.
 */
import type { MessageAnalysis, StatementFacts } from '../sql/facts.js';
import { createFactsCache, sameFacts } from '../sql/cache.js';
import { analyseMysql, isDefaultSetting, sqlModeFlags, sqlModeStrict } from '../sql/mysql/analyse.js';
import type { MysqlDialect } from '../sql/mysql/lexer.js';
import { normaliseLiterals } from '../sql/mysql/normalise.js';
import { RETYPE_ACTION } from '../sql/mysql/parser.js';
import type { MysqlTargetCatalog } from './mysql-catalog.js';
import { UNKNOWN_SETTING } from './statement-hooks.js';
import type { TargetCatalog } from './target-runtime.js';

type SqlMode = MysqlDialect['sqlMode'];

/** A server we have not read yet is assumed to be a recent MariaDB (the widest executable-comment rules). */
const UNKNOWN_SERVER = { version: 101100, mariadb: true, sqlMode: '' };
/** Distinct sql_mode texts remembered; sessions use a handful. */
const MODE_CACHE_ENTRIES = 64;

export function mysqlAnalyser(catalog: TargetCatalog | null, maxEntries: number): (sql: string, params: ReadonlyMap<string, string>, runsLater?: boolean) => MessageAnalysis {
  const cache = createFactsCache(maxEntries);
  /** Per normalised text: whether it may stand for its texts (see `run`). */
  const verdicts = new Map<string, boolean>();
  const server = (catalog as MysqlTargetCatalog | null)?.serverInfo;
  const modes = new Map<string, SqlMode>();
  const flagsOf = (modeText: string): SqlMode => {
    let m = modes.get(modeText);
    if (m === undefined) {
      if (modes.size >= MODE_CACHE_ENTRIES) modes.clear();
      m = sqlModeFlags(modeText);
      modes.set(modeText, m);
    }
    return m;
  };

  const run = (sql: string, mode: SqlMode, db: string | undefined): MessageAnalysis => {
    const info = server?.() ?? UNKNOWN_SERVER;
    // The server's mode is in the key too: a `SET sql_mode = DEFAULT` in the text switches to it.
    const prefix = `${mode.noBackslashEscapes ? 1 : 0}${mode.ansiQuotes ? 1 : 0}|${info.sqlMode}|${db ?? ''}|`;
    const analyse = (text: string): MessageAnalysis => {
      return analyseMysql(text, { serverVersion: info.version, mariadb: info.mariadb, sqlMode: { ...mode }, defaultSqlMode: info.sqlMode, ...(db ? { currentDb: db } : {}) });
    };
    const shape = normaliseLiterals(sql);
    if (shape !== undefined) {
      const key = prefix + shape;
      let usable = verdicts.get(key);
      if (usable === undefined) {
        // First text of this shape: analysed both ways, and the shape stands for its texts only
        // if it parses and every fact agrees (the argument above, checked for each shape).
        const sent = analyse(sql);
        const shared = cache.get(key, () => analyse(shape));
        usable = !shared.statements.some((f) => f.opaque) && sameFacts(shared, sent);
        verdicts.set(key, usable);
        if (verdicts.size > maxEntries) verdicts.delete(verdicts.keys().next().value as string);
        return usable ? shared : cache.get(prefix + sql, () => sent);
      }
      if (usable) return cache.get(key, () => analyse(shape));
    }
    return cache.get(prefix + sql, () => analyse(sql));
  };

  return (sql, params, runsLater = false) => {
    const db = params.get('database');
    const set = params.get('sql_mode');
    // Never set, or SET sql_mode = DEFAULT: the server's global mode (ANSI_QUOTES there counts too).
    const modeText = (set === undefined || isDefaultSetting(set) ? server?.().sqlMode : set) ?? '';
    // A statement prepared now runs later, under whatever sql_mode the session has then.
    const runMode = runsLater ? UNKNOWN_SETTING : modeText;
    if (modeText !== UNKNOWN_SETTING) return retypesUnderMode(run(sql, flagsOf(modeText), db), runMode);
    // The session set sql_mode to a value computed at run time: the text is only safe to judge
    // if it means the same thing under every quoting mode.
    const variants = [false, true].flatMap((nbe) => [false, true].map((aq) => run(sql, { noBackslashEscapes: nbe, ansiQuotes: aq }, db)));
    // Lineage and stores too: `"full_name"` is a constant in one mode and a column in the other.
    const shape = (a: MessageAnalysis): string => JSON.stringify(a.statements.map((f) => [f.kind, f.tag, f.relations, f.functions, f.settings, f.lineage, f.stores, f.predicateColumns, f.hasWhere]));
    if (variants.every((v) => shape(v) === shape(variants[0]))) return retypesUnderMode(variants[0], runMode);
    // Its result columns cannot be traced either: without lineage, masking treats them as unknown.
    return {
      statements: variants[0].statements.map((f) => ({ ...f, lineage: undefined, opaque: { reason: 'parse-error' as const, detail: 'sql_mode was set to a value computed at run time, and this statement reads differently under different modes' } })),
    };
  };
}

const OVERWRITE_ACTION = 'ALTER TABLE OVERWRITE COLUMN';

/** Strict sql_mode; an unknown one (computed at run time) counts as not strict. */
function strictMode(mode: string): boolean {
  return mode !== UNKNOWN_SETTING && sqlModeStrict(mode);
}

/**
 * An ALTER TABLE that retypes a column (MODIFY, CHANGE, CONVERT TO) keeps every value in strict
 * mode: the server refuses the ALTER when a value does not fit. Without strict mode it stores 0,
 * '' or '?' instead, so the ALTER overwrites data. The mode is the one the statement runs under:
 * its own (MariaDB's SET STATEMENT sql_mode = … FOR), else the session's (its own, the server's
 * default, or one a SET earlier in the same message gave it; a computed one counts as not strict).
 * A prepared ALTER (PREPARE … FROM, COM_STMT_PREPARE) runs under the mode of each later EXECUTE,
 * which a SET in between may have made non-strict: it counts as not strict.
 */
function retypesUnderMode(a: MessageAnalysis, modeText: string): MessageAnalysis {
  const retypes = (f: StatementFacts): boolean => f.actions?.includes(RETYPE_ACTION) === true;
  if (!a.statements.some((f) => retypes(f) || (f.prepare !== undefined && retypes(f.prepare.inner)))) return a;
  let strict = strictMode(modeText);
  return {
    ...a,
    statements: a.statements.map((f) => {
      // SET STATEMENT sql_mode = '' FOR ALTER TABLE …: the mode the statement itself runs under.
      const own = f.settings?.find((s) => s.name === 'sql_mode' && s.local);
      const strictHere = own ? own.value !== null && strictMode(own.value) : strict;
      let out = !strictHere && retypes(f) && !f.actions!.includes(OVERWRITE_ACTION) ? { ...f, actions: [...f.actions!, OVERWRITE_ACTION] } : f;
      if (f.prepare !== undefined && retypes(f.prepare.inner) && !f.prepare.inner.actions!.includes(OVERWRITE_ACTION)) out = { ...out, prepare: { ...f.prepare, inner: { ...f.prepare.inner, actions: [...f.prepare.inner.actions!, OVERWRITE_ACTION] } } };
      for (const s of f.settings ?? []) if (s.name === 'sql_mode' && !s.global && !s.local) strict = s.value !== null && strictMode(s.value);
      return out;
    }),
  };
}
