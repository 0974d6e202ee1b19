/**
 * Matchers: each returns whether one part of a rule's match holds, and a short reason that
 * `dbgov policy explain` prints. Keys AND together; items of a list OR.
 */
import { BlockList, isIP } from 'node:net';
import type { RelationRef, StatementFacts, StatementKind } from '../sql/facts.js';
import { IDENTITY_SETTINGS } from '../sql/postgres/functions.js';
import type { Identity, IdentityRef } from '../shared/types.js';
import type {
  AccessContext,
  AccessMatch,
  Cidr,
  ColumnPattern,
  ContextMatch,
  FactsMatch,
  Glob,
  IdentityMatch,
  NamePattern,
  StatementContext,
  TargetMatch,
  TimeWindow,
} from './types.js';

export interface Check {
  ok: boolean;
  why: string;
}

/**
 * How to treat a name the analyser could not pin down (unqualified, unresolved). Block and review
 * rules match what it *may* be; allow rules only what it *must* be, so uncertainty never loosens.
 */
export type Certainty = 'may' | 'must';

export function compileGlob(source: string): Glob {
  const body = source.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  // A pattern without wildcards is compared as a string: most tags and names are plain.
  return { source, re: new RegExp(`^${body}$`, 's'), ...(/[*?]/.test(source) ? {} : { exact: source }) };
}

export function compileNamePattern(source: string): NamePattern {
  const dot = source.lastIndexOf('.');
  if (dot <= 0) return { source, name: compileGlob(source) };
  return { source, schema: compileGlob(source.slice(0, dot)), name: compileGlob(source.slice(dot + 1)) };
}

export function compileColumnPattern(source: string): ColumnPattern {
  const parts = source.split('.');
  const column = compileGlob(parts[parts.length - 1]);
  if (parts.length === 1) return { source, column };
  if (parts.length === 2) return { source, table: compileGlob(parts[0]), column };
  return { source, schema: compileGlob(parts.slice(0, -2).join('.')), table: compileGlob(parts[parts.length - 2]), column };
}

const anyGlob = (globs: Glob[], value: string): boolean => {
  for (const g of globs) if (g.exact !== undefined ? g.exact === value : g.re.test(value)) return true;
  return false;
};
const list = (globs: { source: string }[]): string => `[${globs.map((g) => g.source).join(', ')}]`;
const fail = (why: string): Check => ({ ok: false, why });

/**
 * Matchers run on every statement, so reasons are only written when `explain` asks for them
 * (dbgov policy explain); the hot path compares and returns these two constants.
 */
const YES: Check = { ok: true, why: '' };
const NO: Check = { ok: false, why: '' };

/** Collects the reasons a match held, when explaining. */
class Reasons {
  private readonly whys: string[] | undefined;
  constructor(explain: boolean) {
    this.whys = explain ? [] : undefined;
  }
  add(why: () => string): void {
    this.whys?.push(why());
  }
  done(): Check {
    if (!this.whys) return YES;
    return { ok: true, why: this.whys.filter(Boolean).join('; ') || 'matches everything' };
  }
  get explaining(): boolean {
    return this.whys !== undefined;
  }
}

function identityRefMatches(m: { ids?: Glob[]; groups?: Glob[] }, who: IdentityRef, label: string, r: Reasons): Check | undefined {
  if (m.ids) {
    const ids = m.ids;
    if (!anyGlob(ids, who.id)) return r.explaining ? fail(`${label}id ${who.id} not in ${list(ids)}`) : NO;
    r.add(() => `${label}id ${who.id} in ${list(ids)}`);
  }
  if (m.groups) {
    const groups = m.groups;
    const hit = who.groups.find((g) => anyGlob(groups, g));
    if (hit === undefined) return r.explaining ? fail(`${label}groups [${who.groups.join(', ')}] not in ${list(groups)}`) : NO;
    r.add(() => `${label}group ${hit} in ${list(groups)}`);
  }
  return undefined;
}

function identityInto(m: IdentityMatch, identity: Identity, r: Reasons): Check | undefined {
  const miss = identityRefMatches(m, identity, '', r);
  if (miss) return miss;
  if (m.kinds) {
    const kinds = m.kinds;
    if (!kinds.includes(identity.kind)) return r.explaining ? fail(`kind ${identity.kind} not in [${kinds.join(', ')}]`) : NO;
    r.add(() => `kind ${identity.kind}`);
  }
  if (m.onBehalfOf) {
    if (!identity.onBehalfOf) return r.explaining ? fail('not acting on behalf of anyone') : NO;
    return identityRefMatches(m.onBehalfOf, identity.onBehalfOf, 'on behalf of: ', r);
  }
  return undefined;
}

export function identityMatches(m: IdentityMatch, identity: Identity, explain = false): Check {
  const r = new Reasons(explain);
  return identityInto(m, identity, r) ?? r.done();
}

function targetInto(m: TargetMatch, target: StatementContext['target'], r: Reasons): Check | undefined {
  if (m.names) {
    const names = m.names;
    if (!anyGlob(names, target.name)) return r.explaining ? fail(`target ${target.name} not in ${list(names)}`) : NO;
    r.add(() => `target ${target.name}`);
  }
  if (m.labels) {
    for (const key in m.labels) {
      const values = m.labels[key];
      const v = target.labels[key];
      if (v === undefined) return r.explaining ? fail(`target has no label ${key}`) : NO;
      if (!anyGlob(values, v)) return r.explaining ? fail(`${key}=${v} not in ${list(values)}`) : NO;
      r.add(() => `${key}=${v}`);
    }
  }
  if (m.protected !== undefined) {
    const is = isProtected(target);
    if (is !== m.protected) return r.explaining ? fail(is ? 'target is protected' : 'target is not protected') : NO;
    r.add(() => (is ? 'target is protected' : 'target is not protected'));
  }
  return undefined;
}

const PROTECTED_ENVS = new Set(['prod', 'production']);

/** Protected: `protected: true`, or an env label of prod/production (whatever `protected` says). */
export function isProtected(target: StatementContext['target']): boolean {
  // Both signals count so a target mislabelled `protected: false` but named env prod still fails closed.
  return target.protected || PROTECTED_ENVS.has((target.labels.env ?? '').toLowerCase());
}

function contextInto(m: ContextMatch, ctx: StatementContext | AccessContext, r: Reasons): Check | undefined {
  if (m.identity) {
    const miss = identityInto(m.identity, ctx.identity, r);
    if (miss) return miss;
  }
  if (m.target) {
    const miss = targetInto(m.target, ctx.target, r);
    if (miss) return miss;
  }
  if (m.databases) {
    const dbs = m.databases;
    if (!anyGlob(dbs, ctx.database)) return r.explaining ? fail(`database ${ctx.database} not in ${list(dbs)}`) : NO;
    r.add(() => `database ${ctx.database}`);
  }
  if (m.access) {
    const levels = m.access;
    if (!levels.includes(ctx.access)) return r.explaining ? fail(`access ${ctx.access} not in [${levels.join(', ')}]`) : NO;
    r.add(() => `access ${ctx.access}`);
  }
  return undefined;
}

export function contextMatches(m: ContextMatch, ctx: StatementContext | AccessContext, explain = false): Check {
  const r = new Reasons(explain);
  return contextInto(m, ctx, r) ?? r.done();
}

// ---- statement facts ----------------------------------------------------------------------

/** The name policy should judge: the resolved object when the gateway resolved it. */
function effectiveName(r: RelationRef): { schema?: string; name: string } {
  return r.resolved ? { schema: r.resolved.schema, name: r.resolved.name } : { schema: r.schema, name: r.name };
}

function qualified(n: { schema?: string; name: string }): string {
  return n.schema ? `${n.schema}.${n.name}` : n.name;
}

function nameMatches(p: NamePattern, n: { schema?: string; name: string }, certainty: Certainty): boolean {
  if (!p.name.re.test(n.name)) return false;
  if (!p.schema) return true;
  // Unqualified and unresolved: search_path decides the schema, so it may be any.
  if (n.schema === undefined) return certainty === 'may';
  return p.schema.re.test(n.schema);
}

interface ColumnRef {
  schema?: string;
  table?: string;
  column: string;
}

function columnMatches(p: ColumnPattern, c: ColumnRef, certainty: Certainty): boolean {
  // `*` (all columns, whole-row references) may carry the column the pattern names.
  if (c.column === '*') {
    if (certainty === 'must') return false;
  } else if (!p.column.re.test(c.column)) return false;
  if (p.table) {
    if (c.table === undefined) return certainty === 'may';
    if (!p.table.re.test(c.table)) return false;
  }
  if (p.schema) {
    if (c.schema === undefined) return certainty === 'may';
    if (!p.schema.re.test(c.schema)) return false;
  }
  return true;
}

function columnsOf(f: StatementFacts): ColumnRef[] {
  const out: ColumnRef[] = [];
  for (const r of f.relations) {
    const n = effectiveName(r);
    for (const column of r.columns ?? []) out.push({ schema: n.schema, table: n.name, column });
  }
  for (const p of f.predicateColumns ?? []) out.push(p);
  for (const l of f.lineage ?? []) for (const s of l.sources) out.push({ schema: s.schema, table: s.table, column: s.column });
  return out;
}

/** Kinds that never change anything by themselves (their relations and functions still count). */
const READ_ONLY_KINDS: ReadonlySet<StatementKind> = new Set(['select', 'utility', 'transaction', 'set', 'copy']);
const MUTATING_RISKS = new Set(['side-effect', 'file', 'program', 'admin', 'identity', 'remote', 'dynamic-sql']);

/** May this statement change data, schema, privileges, identity or server state? */
export function isMutating(f: StatementFacts): boolean {
  if (!READ_ONLY_KINDS.has(f.kind)) return true;
  if (f.opaque) return true;
  if (f.modifyingCte) return true;
  if (f.relations.some((r) => r.access !== 'read')) return true;
  if (f.functions.some((fn) => fn.risks.some((r) => MUTATING_RISKS.has(r)))) return true;
  return (f.settings ?? []).some((s) => IDENTITY_SETTINGS.has(s.name.toLowerCase()));
}

/**
 * The first predicate column (a `*` column: any of its table's; a `*` table: any table) that one
 * of `classified` names.
 * Those are masking's column patterns (`schema.table.column`, each part a glob: `*.users.ssn`),
 * compared part by part as masking compares them; an unqualified table may be the classified one
 * in any schema. Compared as strings, `*.users.ssn` would never equal the `app.users.ssn` a
 * MySQL predicate resolves to.
 */
function classifiedPredicate(f: StatementFacts, classified: ReadonlySet<string> | undefined): string | undefined {
  if (!classified || classified.size === 0) return undefined;
  for (const p of f.predicateColumns ?? []) {
    for (const pattern of classified) {
      const [schema, table, column] = columnPatternParts(pattern);
      // `*`: every column of the table (a NATURAL JOIN, a whole-row comparison) may be compared.
      if ((p.schema === undefined || schema.test(p.schema)) && (p.table === '*' || table.test(p.table)) && (p.column === '*' || column.test(p.column))) return p.schema === undefined || p.column === '*' ? pattern : `${p.schema}.${p.table}.${p.column}`;
    }
  }
  return undefined;
}

const columnPatterns = new Map<string, RegExp[]>();

/** A masking column pattern's three parts as case-insensitive globs (src/masking/config.ts). */
function columnPatternParts(pattern: string): RegExp[] {
  let parts = columnPatterns.get(pattern);
  if (parts === undefined) {
    const split = pattern.split('.');
    // Not three parts: no column can be told apart from it, so it names every one (fail closed).
    parts = split.length === 3 ? split.map((g) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i')) : [/.*/, /.*/, /.*/];
    if (columnPatterns.size > 1000) columnPatterns.clear();
    columnPatterns.set(pattern, parts);
  }
  return parts;
}

/** Context (who, where) and then facts (what): the whole of a statement rule's match. */
export function statementMatches(m: ContextMatch & { statement?: FactsMatch }, f: StatementFacts, ctx: StatementContext, certainty: Certainty, explain = false): Check {
  const r = new Reasons(explain);
  return contextInto(m, ctx, r) ?? (m.statement ? factsInto(m.statement, f, ctx, certainty, r) : undefined) ?? r.done();
}

function factsInto(m: FactsMatch, f: StatementFacts, ctx: StatementContext, certainty: Certainty, r: Reasons): Check | undefined {
  const x = r.explaining;
  if (m.kinds) {
    const kinds = m.kinds;
    if (!kinds.includes(f.kind)) return x ? fail(`kind ${f.kind} not in [${kinds.join(', ')}]`) : NO;
    r.add(() => `kind ${f.kind}`);
  }
  if (m.tags) {
    const tags = m.tags;
    // An ALTER TABLE's actions (DROP COLUMN, DROP PARTITION, …) match as tags of their own.
    const action = anyGlob(tags, f.tag) ? null : f.actions?.find((a) => anyGlob(tags, a));
    if (action === undefined) return x ? fail(`tag ${f.tag} not in ${list(tags)}`) : NO;
    r.add(() => (action === null ? `tag ${f.tag}` : `action ${action}`));
  }
  if (m.relations) {
    const rm = m.relations;
    const hit = f.relations.find((rel) => (!rm.access || rm.access.includes(rel.access)) && rm.names.some((p) => nameMatches(p, effectiveName(rel), certainty)));
    if (!hit) {
      if (!x) return NO;
      const seen = f.relations.map((rel) => `${rel.access} ${qualified(effectiveName(rel))}`).join(', ');
      return fail(`no relation ${rm.access ? `(${rm.access.join('/')}) ` : ''}in ${list(rm.names)} (touches: ${seen || 'none'})`);
    }
    r.add(() => `${hit.access} ${qualified(effectiveName(hit))}`);
  }
  if (m.columns) {
    const cols = m.columns;
    const refs = columnsOf(f);
    let found: string | undefined;
    for (const p of cols) {
      const hit = refs.find((c) => columnMatches(p, c, certainty));
      if (hit) {
        found = `column ${[hit.schema, hit.table, hit.column].filter(Boolean).join('.')} matches ${p.source}`;
        break;
      }
    }
    if (found === undefined) return x ? fail(`no column in ${list(cols)}`) : NO;
    const why = found;
    r.add(() => why);
  }
  if (m.functions) {
    const fns = m.functions;
    const hit = f.functions.find((fn) => fns.some((p) => nameMatches(p, fn, certainty)));
    if (!hit) return x ? fail(`calls no function in ${list(fns)}`) : NO;
    r.add(() => `calls ${qualified(hit)}`);
  }
  if (m.functionRisks) {
    const risks = m.functionRisks;
    const hit = f.functions.find((fn) => fn.risks.some((k) => risks.includes(k)));
    if (!hit) return x ? fail(`no function with risk in [${risks.join(', ')}]`) : NO;
    r.add(() => `${qualified(hit)} has risk ${hit.risks.filter((k) => risks.includes(k)).join('/')}`);
  }
  if (m.where) {
    if (f.hasWhere === null) return x ? fail(`${f.kind} has no WHERE to judge`) : NO;
    const missing = !f.hasWhere;
    if ((m.where === 'missing') !== missing) return x ? fail(missing ? 'no WHERE' : 'has a WHERE') : NO;
    r.add(() => (missing ? 'no WHERE (or a constant-true one)' : 'has a WHERE'));
  }
  const flags: ['multiStatement' | 'modifyingCte' | 'explainAnalyze', string][] = [
    ['multiStatement', 'multi-statement message'],
    ['modifyingCte', 'data-modifying CTE'],
    ['explainAnalyze', 'EXPLAIN ANALYZE'],
  ];
  for (const [key, label] of flags) {
    const want = m[key];
    if (want === undefined) continue;
    if ((f[key] ?? false) !== want) return x ? fail(want ? `not ${label}` : label) : NO;
    r.add(() => (want ? label : `not ${label}`));
  }
  if (m.opaque !== undefined) {
    const want = m.opaque;
    const reason = f.opaque?.reason;
    if (want === false) {
      if (reason) return x ? fail(`opaque (${reason})`) : NO;
      r.add(() => 'fully understood');
    } else {
      if (!reason) return x ? fail('fully understood') : NO;
      if (want !== true && !want.includes(reason)) return x ? fail(`opaque reason ${reason} not in [${want.join(', ')}]`) : NO;
      r.add(() => `opaque (${reason})`);
    }
  }
  if (m.settings) {
    const names = m.settings;
    const hit = (f.settings ?? []).find((st) => anyGlob(names, st.name.toLowerCase()));
    if (!hit) return x ? fail(`changes no setting in ${list(names)}`) : NO;
    r.add(() => `changes setting ${hit.name}`);
  }
  if (m.predicateOnClassified !== undefined) {
    const want = m.predicateOnClassified;
    const col = classifiedPredicate(f, ctx.classifiedColumns);
    if ((col !== undefined) !== want) return x ? fail(col ? `predicate on classified column ${col}` : 'no predicate on a classified column') : NO;
    r.add(() => (col ? `predicate on classified column ${col}` : 'no predicate on a classified column'));
  }
  if (m.mutating !== undefined) {
    const mutating = isMutating(f);
    if (mutating !== m.mutating) return x ? fail(mutating ? 'may change state' : 'read-only') : NO;
    r.add(() => (mutating ? 'may change state' : 'read-only'));
  }
  if (m.otherDatabase !== undefined) {
    const other = otherDatabase(f, ctx);
    if ((other !== undefined) !== m.otherDatabase) return x ? fail(other ? `reaches database ${other}` : `stays in database ${ctx.database}`) : NO;
    r.add(() => (other ? `reaches database ${other}, the credential is for ${ctx.database}` : `stays in database ${ctx.database}`));
  }
  return undefined;
}

/** Schemas every MySQL session may read: metadata the server already filters by privilege. */
const SHARED_MYSQL_SCHEMAS = new Set(['information_schema']);

/**
 * The database a statement reaches outside the credential's scope, if any. PostgreSQL scopes a
 * session to one database at connect time (its schemas are not databases); on MySQL a qualified
 * name or USE can reach any database the server account can, so it is checked per statement.
 */
function otherDatabase(f: StatementFacts, ctx: StatementContext): string | undefined {
  if (ctx.target.engine !== 'mysql') return undefined;
  const own = ctx.database.toLowerCase();
  for (const r of f.relations) {
    const schema = (r.resolved?.schema ?? r.schema)?.toLowerCase();
    if (schema !== undefined && schema !== own && !SHARED_MYSQL_SCHEMAS.has(schema)) return schema;
  }
  for (const s of f.settings ?? []) {
    if (s.name === 'database' && (s.value === null || s.value.toLowerCase() !== own)) return s.value ?? '(computed)';
  }
  return undefined;
}

// ---- access context -----------------------------------------------------------------------

const DAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function localTime(now: number, timezone: string): { day: number; minute: number } {
  let fmt = formatters.get(timezone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timezone, fmt);
  }
  const parts = Object.fromEntries(fmt.formatToParts(now).map((p) => [p.type, p.value]));
  return { day: DAY_INDEX[parts.weekday], minute: Number(parts.hour) * 60 + Number(parts.minute) };
}

function inWindow(w: TimeWindow, now: number): boolean {
  const { day, minute } = localTime(now, w.timezone);
  if (w.startMinute === w.endMinute) return w.days.includes(day);
  if (w.startMinute < w.endMinute) return w.days.includes(day) && minute >= w.startMinute && minute < w.endMinute;
  // Wraps past midnight: the early-morning part belongs to the window opened the day before.
  if (minute >= w.startMinute) return w.days.includes(day);
  return minute < w.endMinute && w.days.includes((day + 6) % 7);
}

/** Strips the IPv4-mapped IPv6 prefix (`::ffff:10.0.0.1`) that dual-stack sockets report. */
function normaliseIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1] : ip;
}

function inCidrs(cidrs: Cidr[], ip: string | undefined): Check {
  if (!ip) return fail('source address unknown');
  const addr = normaliseIp(ip);
  const family = isIP(addr) === 6 ? 'ipv6' : isIP(addr) === 4 ? 'ipv4' : undefined;
  if (!family) return fail(`source address ${ip} is not an IP address`);
  const hit = cidrs.find((c) => {
    if (c.family !== family) return false;
    const bl = new BlockList();
    bl.addSubnet(c.address, c.prefix, c.family);
    return bl.check(addr, family);
  });
  return hit ? { ok: true, why: `from ${addr} in ${hit.source}` } : fail(`from ${addr}, not in ${list(cidrs)}`);
}

/** Access requests are rare (one per credential), so they are always explained. */
export function accessMatches(m: AccessMatch, ctx: AccessContext): Check {
  const r = new Reasons(true);
  const miss = contextInto(m, ctx, r);
  if (miss) return miss;
  if (m.when) {
    const windows = m.when;
    if (!windows.some((w) => inWindow(w, ctx.now))) return fail(`outside ${windows.map((w) => w.source).join(' or ')}`);
    r.add(() => 'inside the time window');
  }
  if (m.sourceCidrs) {
    const c = inCidrs(m.sourceCidrs, ctx.sourceIp);
    if (!c.ok) return c;
    r.add(() => c.why);
  }
  return r.done();
}
