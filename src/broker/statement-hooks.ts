/**
 * The statement path, as the broker implements the hooks an engine calls:
 *
 *   check ─► analyse (cached) ─► resolve against the session ─► decide ─► allow / block / hold
 *   executing ─► audit record written to the OS before the engine forwards (fail closed)
 *   describe ─► mask plan from column origins and lineage
 *   completed ─► audit outcome (rows, time), live activity
 */
import type { AuditEventInput, Decision, StatementRecord } from '../audit/event.js';
import type { ClientError, CopyMaskPlan, MaskPlan, ResultColumn, StatementHandle, StatementHooks, StatementOutcome, StatementRequest, Verdict } from '../gateway/engine.js';
import { decideStatements } from '../policy/decide.js';
import type { Policy, StatementContext, StatementDecision } from '../policy/types.js';
import type { MessageAnalysis, RelationRef, StatementFacts } from '../sql/facts.js';
import type { ApprovalRequest, AuditLog } from '../store/store.js';
import { mysqlCharsetUnsafe, mysqlCollationUnsafe, pgEncodingUnsafe } from '../shared/client-encodings.js';
import { DbgovError } from '../shared/errors.js';
import { newId, shortId } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { Approvals } from './approvals.js';
import { AuditBatcher } from './audit-batcher.js';
import { unknownRows } from '../masking/row-source.js';
import { auditIdentity } from './audit-identity.js';
import type { LiveSession, SessionRegistry } from './sessions.js';

/** Per-session state that changes how names resolve and what EXECUTE runs. */
export interface SessionState {
  searchPath: string[] | null;
  /**
   * Every other search_path this session has had, and whether one was computed at run time.
   * The gateway applies SET when the statement is sent, but a ROLLBACK (or ROLLBACK TO, or an
   * error in an implicit transaction, or the end of a transaction for SET LOCAL) can put an
   * earlier one back without a word on the wire. So names are resolved under all of them, and
   * policy and masking judge every relation a name may be (see TargetRuntime).
   */
  pastSearchPaths: (string[] | null)[];
  searchPathComputed: boolean;
  /** Since the server was last idle: a ROLLBACK ran or search_path was SET LOCAL, so the old paths stay candidates. */
  searchPathUnsettled: boolean;
  /** Since the server was last idle: search_path was SET, last to a literal value or to a computed one. */
  searchPathSet: false | 'literal' | 'computed';
  /** The paths above as one string, for cache keys; changes whenever they do. */
  pathKey: string;
  /**
   * Views this session created (lower-case name → the relations their query reads). Until the
   * catalog has them, a write through one is judged on those relations, and rows read through
   * one are of unknown origin (see TargetRuntime).
   */
  createdViews: Map<string, RelationRef[]>;
  /**
   * Names whose meaning this session changed (StatementFacts.renamed; `*`: a schema). The catalog
   * cannot see a rename before it commits, and learns of it only at its next reload: for the rest
   * of the session, rows read through those names are of unknown origin and writes to them are
   * opaque (see TargetRuntime).
   */
  renamed: Set<string>;
  /**
   * Type names this session defined or changed (StatementFacts.typesChanged; `*`: unknown ones).
   * For the rest of the session a column type change that names one (as its table or its new
   * type) is not proven to keep its values (see TargetRuntime).
   */
  typesChanged: Set<string>;
  /** Statements since the server was last idle that changed the schema: reload the catalog (and note their views again) when it is. */
  changedSinceIdle?: StatementFacts[];
  /** SQL-level PREPARE name → what it runs. */
  prepared: Map<string, StatementFacts>;
  params: Map<string, string>;
  /**
   * Temp tables this session created. The broker's catalog connection cannot see another
   * session's temp schema, so shadowing is tracked here: an unqualified name in this set
   * resolves to the session's own pg_temp table, as the server resolves it.
   */
  tempTables: Set<string>;
  /** DECLAREd cursors → the query they return rows of (FETCH results are masked by it). */
  cursors: Map<string, StatementFacts>;
  /**
   * What this session's DDL changed since it was last idle, not yet read by the catalog: the
   * functions it holds as unread in every session (TargetServices.functionsChanging), the names
   * (lower case) of everything it created, renamed or changed, and of those, the names a new
   * relation took (which may shadow an older one). Moved into `settling` when the session is idle.
   */
  changes?: { holds: FunctionHold[]; names: Set<string>; shadow: Set<string> };
  /**
   * Changes of earlier transactions waiting for the catalog reload that reads them (see check):
   * `CREATE TABLE users (LIKE public.users)` in a schema first on the path, then `INSERT INTO
   * users SELECT * FROM public.users`, was judged as a copy within public.users.
   */
  settling?: { names: Set<string>; done: Promise<void> }[];
}

/** Function names held as unread until the catalog has them (TargetServices.functionsChanging). */
export interface FunctionHold {
  readonly names: readonly string[];
}

/** What a target provides to its sessions (src/broker/target-runtime.ts). */
export interface TargetServices {
  /** Analysis in the target's dialect, under this session's settings (MySQL: sql_mode, database). */
  /** `runsLater`: a protocol-level prepare (MySQL COM_STMT_PREPARE), run by later executes. */
  analyse(sql: string, state: SessionState, runsLater?: boolean): MessageAnalysis;
  resolve(facts: StatementFacts[], state: SessionState): StatementFacts[];
  classifiedColumnsFor(session: LiveSession): ReadonlySet<string>;
  maskPlan(session: LiveSession, facts: StatementFacts[], columns: ResultColumn[], state: SessionState): Promise<MaskPlan | ClientError | null> | MaskPlan | ClientError | null;
  copyMaskPlan(session: LiveSession, facts: StatementFacts[], format: 'text' | 'csv' | 'binary', columnCount: number, state: SessionState): Promise<CopyMaskPlan | null> | CopyMaskPlan | null;
  scrub(session: LiveSession, facts: StatementFacts[] | undefined, fields: { message: string; detail?: string; hint?: string; where?: string }): { message: string; detail?: string; hint?: string; where?: string };
  estimateRows(sql: string, facts: StatementFacts[]): Promise<number | null>;
  /**
   * Before execution: a refusal when masking is configured to block results it cannot prove
   * safe (`masking.onUnprovable: block`) and this statement's lineage is such a result.
   */
  preflight(session: LiveSession, facts: StatementFacts[], state: SessionState): ClientError | null;
  /** DDL or a resolution-changing statement ran (`facts`: which): refresh the catalog. */
  schemaChanged(facts?: readonly StatementFacts[]): void;
  /**
   * A statement that defines or changes functions (StatementFacts.functionsChanged) is about to
   * run: until the catalog has read them, calls of those names in any session are code dbgov has
   * not read. Given back with functionsSettled once a reload after the session's idle has run.
   */
  functionsChanging?(names: string[]): FunctionHold;
  functionsSettled?(hold: FunctionHold): void;
  /** Resolves once a catalog reload that starts now has succeeded (failed ones are retried). */
  reloadNow?(): Promise<void>;
}

export interface HooksDeps {
  session: LiveSession;
  policy: () => Policy;
  target: StatementContext['target'];
  services: TargetServices;
  audit: AuditLog;
  /** Group commit for statement records; defaults to writing each at once. */
  batcher?: AuditBatcher;
  approvals: Approvals;
  registry: SessionRegistry;
  holdMs: number;
  protocol: string;
  log: Logger;
}

/** The decision of a statement still waiting for the catalog (see check): none yet. */
const WAITING: StatementDecision = { action: 'allow', rule: 'waiting-for-catalog', message: '', detail: '', hint: '', statements: [] };
/** How long a statement waits for the catalog to read its session's schema change before it is refused. */
const CATALOG_WAIT_MS = 30_000;

class Stmt implements StatementHandle {
  readonly id = newId('st');
  startedAt = 0;
  decisionLabel: Decision = 'allow';
  maskedColumns: string[] = [];
  unmaskedColumns: string[] = [];
  requestId: string | undefined;
  auditId: string | undefined;
  executions = 0;
  constructor(
    readonly sql: string,
    readonly facts: StatementFacts[],
    readonly decision: StatementDecision,
    /** What runs: `facts`, and for an EXECUTE the statement it runs as prepared now (see runsOf). */
    readonly ran: StatementFacts[] = facts,
  ) {}
}

const BLOCK_SQLSTATE = '42501';

/** A session's state before its first statement. */
export function newSessionState(): SessionState {
  return { searchPath: null, pastSearchPaths: [], searchPathComputed: false, searchPathUnsettled: false, searchPathSet: false, pathKey: '', createdViews: new Map(), renamed: new Set(), typesChanged: new Set(), prepared: new Map(), params: new Map(), tempTables: new Set(), cursors: new Map() };
}

export function createStatementHooks(d: HooksDeps): StatementHooks & { state: SessionState } {
  const state = newSessionState();
  const { session } = d;
  const identity = auditIdentity(session.identity);

  /** Policy hints name `<target>` generically; the user needs the real name to paste. */
  const hintFor = (hint: string): string => hint.replaceAll('<target>', session.target);

  const ctxFor = (): StatementContext => ({
    identity: session.identity,
    target: d.target,
    database: session.database,
    access: session.access,
    classifiedColumns: d.services.classifiedColumnsFor(session),
    prepared: state.prepared,
  });

  /**
   * The statement's audit record. Members are written in sorted key order, and absent ones are
   * left out, so the event the log returns is the one its stored line parses back to. The
   * outcome adds rows, time, the decision record's id and any error.
   */
  const record = (s: Stmt, outcome?: { rows: number | null; durationMs: number | null; ref?: string; error?: StatementRecord['error'] }): StatementRecord => {
    const sum = summaryOf(s.ran);
    return {
      decision: s.decisionLabel,
      durationMs: outcome ? outcome.durationMs : null,
      ...(outcome?.error ? { error: outcome.error } : {}),
      fingerprint: sum.fingerprint,
      kind: sum.kind,
      maskedColumns: s.maskedColumns,
      protocol: d.protocol,
      ...(outcome?.ref ? { ref: outcome.ref } : {}),
      ...(s.requestId ? { requestId: s.requestId } : {}),
      rows: outcome ? outcome.rows : null,
      rule: s.decision.rule === 'default' && s.decision.action === 'allow' ? null : s.decision.rule,
      tables: sum.tables,
      text: sum.text,
      ...(s.unmaskedColumns.length ? { unmaskedColumns: s.unmaskedColumns } : {}),
    };
  };

  const batcher = d.batcher ?? new AuditBatcher(d.audit, d.log);
  const decisionInput = (s: Stmt): AuditEventInput => ({
    kind: 'statement',
    identity,
    target: session.target,
    database: session.database,
    sessionId: session.id,
    statement: record(s),
  });
  const writeDecision = (s: Stmt): void => {
    s.auditId = batcher.now(decisionInput(s)).id;
  };

  /** DESIGN: an audit record that cannot be made durable blocks the statement. */
  const auditUnavailable = (e: unknown): DbgovError => {
    const err = new DbgovError('audit-unavailable', 'dbgov: blocked: the audit record could not be written', { cause: e });
    (err as DbgovError & { clientError?: ClientError }).clientError = { sqlstate: '58030', message: 'dbgov: blocked: the audit log is unavailable, so the statement was not run', hint: 'try again shortly; the platform team has been alerted in the broker log' };
    d.log.error({ err: e }, 'audit append failed: refusing statement');
    return err;
  };

  const activity = (s: Stmt, extra: { decision: 'allow' | 'block' | 'review' | 'approved' | 'denied' | 'timeout'; rows?: number | null; durationMs?: number | null; message?: string }): void => {
    // Most sessions have nobody watching: build the event only for a live view.
    if (!d.registry.watching(session.credentialId)) return;
    d.registry.emitActivity(session.credentialId, {
      time: new Date().toISOString(),
      sessionId: session.id,
      type: extra.decision === 'review' ? 'held' : 'statement',
      statementKind: s.facts[0]?.tag ?? s.facts[0]?.kind,
      ...extra,
      ...(s.requestId ? { requestId: s.requestId } : {}),
      ...(s.maskedColumns.length ? { maskedColumns: s.maskedColumns } : {}),
    });
  };

  const blockWith = (s: Stmt, error: ClientError, label: Decision): Extract<Verdict, { action: 'block' }> => {
    s.decisionLabel = label;
    try {
      writeDecision(s);
    } catch (e) {
      // The statement is refused either way; losing its audit record is logged loudly.
      d.log.error({ err: e }, 'audit write failed for a refused statement');
    }
    activity(s, { decision: label === 'denied' ? 'denied' : label === 'timeout' ? 'timeout' : 'block', message: error.message });
    return { action: 'block', stmt: s, error };
  };

  /**
   * What a running DDL statement changes, kept until the catalog has read it (SessionState.changes):
   * functions it defines are held as unread in every session; later statements of this session
   * naming what it changed wait for the reload (see check); a relation it creates may shadow an
   * older one of that name. PostgreSQL only: its engine reports idle, which starts that reload.
   */
  const noteChanges = (facts: StatementFacts[]): void => {
    if (d.protocol !== 'postgres' || !d.services.reloadNow) return;
    for (const f of facts) {
      if (f.kind !== 'create' && f.kind !== 'alter' && f.kind !== 'drop' && !f.renamed && !f.typesChanged && !f.functionsChanged) continue;
      const c = (state.changes ??= { holds: [], names: new Set(), shadow: new Set() });
      if (f.functionsChanged && d.services.functionsChanging) c.holds.push(d.services.functionsChanging(f.functionsChanged));
      for (const n of [...(f.typesChanged ?? []), ...(f.functionsChanged ?? []), ...(f.renamed ?? [])]) c.names.add(n.toLowerCase());
      // What an ALTER or DROP changes; what a CREATE makes is in typesChanged (a relation's row type).
      if (f.kind !== 'create') for (const r of f.relations) if (r.access === 'ddl') c.names.add(r.name.toLowerCase());
      for (const n of [...(f.kind === 'create' ? (f.typesChanged ?? []) : []), ...(f.renamed ?? [])]) if (n !== '*') c.shadow.add(n.toLowerCase());
    }
  };
  /** Idle (committed or rolled back) or gone: a reload now reads what the changes did, then lets them go. */
  const settleChanges = (): void => {
    const c = state.changes;
    state.changes = undefined;
    if (!c || !d.services.reloadNow) return;
    const entry = { names: c.names, done: d.services.reloadNow() };
    (state.settling ??= []).push(entry);
    void entry.done.then(() => {
      for (const h of c.holds) d.services.functionsSettled?.(h);
      state.settling = state.settling?.filter((x) => x !== entry);
    });
  };
  /** The reload a statement must wait for: one that reads a change to a name it uses. */
  const waitFor = (facts: StatementFacts[]): Promise<void> | undefined => {
    if (!state.settling?.length) return undefined;
    const uses = (names: Set<string>): boolean =>
      names.has('*') || facts.some((f) => f.relations.some((r) => names.has(r.name.toLowerCase())) || f.functions.some((fn) => names.has(fn.name.toLowerCase())));
    const pending = state.settling.filter((x) => uses(x.names));
    return pending.length === 0 ? undefined : Promise.all(pending.map((x) => x.done)).then(() => undefined);
  };
  /**
   * Inside the transaction that created (or renamed to) a relation, the catalog cannot see it, and
   * still resolves its name to an older relation it may shadow: `CREATE TABLE users (LIKE
   * public.users)` under `SET search_path = s, public`, then `INSERT INTO users SELECT * FROM
   * public.users` would be judged as a copy within public.users. For an identity that sees
   * classified data masked, a statement naming such a relation is refused until COMMIT.
   */
  const shadowedInTransaction = (facts: StatementFacts[]): ClientError | null => {
    const names = state.changes?.shadow;
    if (!names || names.size === 0 || d.services.classifiedColumnsFor(session).size === 0) return null;
    const r = facts.flatMap((f) => f.relations).find((x) => x.schema === undefined && x.resolved !== undefined && x.resolved.schema !== 'pg_temp' && names.has(x.name.toLowerCase()));
    if (!r) return null;
    return {
      sqlstate: '42501',
      message: `dbgov: blocked: ${r.name} was created or renamed in this transaction, and until it commits dbgov reads the name as ${r.resolved!.schema}.${r.resolved!.name}, while classified data is masked for you`,
      detail: 'rule: masking (a relation created in an open transaction is not in the catalog yet)',
      hint: 'COMMIT first, or qualify the name with its schema',
    };
  };

  /** One statement resolved in this session as it stands (search_path, temp tables, views). */
  const resolveOne = (f: StatementFacts): StatementFacts => d.services.resolve([f], state)[0] ?? f;

  /** An approved statement runs as an allowed one does: what it prepares is remembered. */
  const release = (s: Stmt): Extract<Verdict, { action: 'allow' }> => {
    s.decisionLabel = 'approved';
    rememberPrepared(state, s.facts, d.protocol, resolveOne);
    return { action: 'allow', stmt: s };
  };

  /** A new request to approve `s`, under the id the caller reserved (a notice may name it already). */
  const ask = async (s: Stmt, review: NonNullable<StatementDecision['review']>, id: string): Promise<ApprovalRequest> => {
    s.requestId = id;
    const sum = summaryOf(s.ran);
    // The approver reads what runs: the statement an EXECUTE runs, a called function's body.
    const runs = s.ran.filter((f) => f.calledFrom !== undefined).map((f) => `\n-- ${f.calledFrom} runs: ${f.redacted}`);
    const estimatedRows = await d.services.estimateRows(s.sql, s.facts).catch(() => null);
    return d.approvals.createStatementRequest({
      id,
      requester: session.identity,
      target: session.target,
      database: session.database,
      sessionId: session.id,
      ...(session.reason ? { reason: session.reason } : {}),
      sql: approvalKey(s),
      redacted: sum.text + runs.join(''),
      fingerprint: sum.fingerprint,
      kind: sum.kind,
      tables: sum.tables,
      estimatedRows,
      rule: s.decision.rule,
      approvers: review.approvers,
      expiresMs: review.expiresMs,
      windowMs: review.windowMs,
    });
  };

  const hold = (s: Stmt, review: NonNullable<StatementDecision['review']>): Verdict => {
    const holdMs = Math.min(review.holdMs, d.holdMs);
    // DESIGN: once approved, the same identity may re-run the same statement once within the
    // approval window (how a hold of 0 works, and how a statement that timed out is run after
    // all). An approval it can spend releases it without a new request or a wait.
    const reused = d.approvals.consume(session.identity, session.target, session.database, approvalKey(s), undefined, session.id);
    // The notice names the request, so its id is reserved before the row estimate and store write.
    const requestId = shortId(8);
    const created = reused.then((r) => r ?? ask(s, review, requestId));
    const decided = Promise.all([reused, created]).then(async ([spent, req]): Promise<Exclude<Verdict, { action: 'hold' }>> => {
      if (spent !== undefined) {
        s.requestId = spent.id;
        return release(s);
      }
      // With no hold the refusal is the statement's one record; otherwise the wait is recorded.
      if (holdMs <= 0) return blockWith(s, requiredError(req.id, s.decision), 'review');
      s.decisionLabel = 'review';
      writeDecision(s);
      activity(s, { decision: 'review', message: `waiting for approval ${req.id}` });
      const outcome = await d.approvals.wait(req.id, holdMs);
      if (outcome === 'approved') {
        const used = await d.approvals.consume(session.identity, session.target, session.database, approvalKey(s), req.id, session.id);
        if (used) return release(s);
      }
      if (outcome === 'denied') {
        const r = await d.approvals.get(req.id);
        const why = r.votes.find((v) => v.decision === 'deny');
        return blockWith(
          s,
          {
            sqlstate: BLOCK_SQLSTATE,
            message: `dbgov: approval denied (request ${req.id})${why ? ` by ${why.identity}` : ''}`,
            detail: `rule: ${s.decision.rule}${why?.comment ? `; reason: ${why.comment}` : ''}`,
            hint: 'talk to the approver, change the statement, or ask again with a reason',
          },
          'denied',
        );
      }
      return blockWith(s, requiredError(req.id, s.decision), 'timeout');
    });
    return {
      action: 'hold',
      stmt: s,
      notice: reused.then(
        (r) => (r === undefined ? `dbgov: waiting for approval ${requestId}` : undefined),
        () => undefined,
      ),
      decided: decided.catch((e: unknown) => {
        d.log.error({ err: e }, 'approval flow failed');
        return blockWith(s, { sqlstate: BLOCK_SQLSTATE, message: 'dbgov: blocked: the approval could not be recorded', hint: 'try again; if it persists, tell your platform team' }, 'error');
      }),
    };
  };

  /**
   * Decisions already made in this session, by (cached, resolved) facts array: policy is pure,
   * so a statement seen again is decided once per policy. EXECUTE is judged by what this session
   * has prepared since, so it is always decided afresh.
   */
  const decisions = new WeakMap<StatementFacts[], { policy: Policy; decision: StatementDecision }>();
  const decide = (facts: StatementFacts[]): StatementDecision => {
    const policy = d.policy();
    const hit = decisions.get(facts);
    if (hit !== undefined && hit.policy === policy) return hit.decision;
    const decision = decideStatements(policy, ctxFor(), facts);
    if (!facts.some((f) => f.execute)) decisions.set(facts, { policy, decision });
    return decision;
  };

  /** The statement's record, written with every other session's at the end of this turn; it starts once durable. */
  const writeBatched = (s: Stmt): Promise<void> =>
    new Promise((resolve, reject) => {
      batcher.soon(decisionInput(s), (ev, err) => {
        if (ev === undefined) return reject(auditUnavailable(err));
        s.auditId = ev.id;
        // The statement starts now that its record is durable, as with `executing`.
        s.startedAt = performance.now();
        s.executions++;
        session.statements++;
        applySettings(state, s.facts);
        noteChanges(s.facts);
        resolve();
      });
    });

  /**
   * An approval releases one run. A statement prepared once and executed again (a named
   * statement, a COM_STMT_EXECUTE) is another run: it spends another approval of the same text
   * by the same identity, or is refused at once with a new request to approve, as with a hold of 0.
   */
  const runAgain = async (s: Stmt, review: NonNullable<StatementDecision['review']>): Promise<void> => {
    const spent = await d.approvals.consume(session.identity, session.target, session.database, approvalKey(s), undefined, session.id);
    if (spent !== undefined) {
      s.requestId = spent.id;
      s.decisionLabel = 'approved';
      return;
    }
    const req = await ask(s, review, shortId(8));
    const { error } = blockWith(s, requiredError(req.id, s.decision), 'review');
    throw Object.assign(new DbgovError('approval-required', error.message), { clientError: error });
  };

  const hooks: StatementHooks & { state: SessionState } = {
    state,

    check(req: StatementRequest): Verdict {
      const analysis = d.services.analyse(req.sql, state, req.via === 'prepare');
      // It names what this session's DDL just changed: judge it once the catalog has read that,
      // and refuse it if that does not happen in time (the target is down: it would fail anyway).
      const wait = waitFor(analysis.statements);
      if (wait) {
        const waiting = new Stmt(req.sql, analysis.statements, WAITING);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<Verdict>((resolve) => {
          timer = setTimeout(() => resolve(blockWith(waiting, { sqlstate: '57014', message: 'dbgov: blocked: the catalog could not be read again after your schema change, so this statement could not be judged', hint: 'try again in a moment; if it persists, the target may be down' }, 'block')), CATALOG_WAIT_MS);
          timer.unref();
        });
        const next = Promise.race([wait.then(() => hooks.check(req)), timedOut]).finally(() => clearTimeout(timer));
        return {
          action: 'hold',
          // Stands for the statement while it waits (the engine logs its id); the decision is the re-check's.
          stmt: waiting,
          notice: next.then((v) => (v.action === 'hold' ? v.notice : undefined)),
          decided: next.then((v) => (v.action === 'hold' ? v.decided : v)),
        };
      }
      const facts = d.services.resolve(analysis.statements, state);
      const decision = decide(facts);
      const s = new Stmt(req.sql, facts, decision, runsOf(facts, state));
      // Before policy: no rule may let a session switch to an encoding the gateway cannot read.
      const encoding = encodingRefusal(state, facts);
      if (encoding) return blockWith(s, encoding, 'block');
      switch (decision.action) {
        case 'allow': {
          const refusal = d.services.preflight(session, facts, state) ?? shadowedInTransaction(facts);
          if (refusal) return blockWith(s, refusal, 'block');
          rememberPrepared(state, facts, d.protocol, resolveOne);
          return { action: 'allow', stmt: s };
        }
        case 'block':
          return blockWith(s, { sqlstate: BLOCK_SQLSTATE, message: decision.message, detail: decision.detail, hint: hintFor(decision.hint) }, 'block');
        case 'review': {
          if (!decision.review) return blockWith(s, { sqlstate: BLOCK_SQLSTATE, message: decision.message, detail: decision.detail, hint: hintFor(decision.hint) }, 'block');
          // An approval does not unmask: what masking refuses is refused before anyone is asked.
          const refusal = d.services.preflight(session, facts, state) ?? shadowedInTransaction(facts);
          if (refusal) return blockWith(s, refusal, 'block');
          return hold(s, decision.review);
        }
        default: {
          const never: never = decision.action;
          throw new Error(`unhandled action ${String(never)}`);
        }
      }
    },

    opaque(reason, detail): Verdict {
      const facts: StatementFacts[] = [
        {
          kind: 'unknown',
          tag: reason,
          text: '',
          redacted: `<${reason}>`,
          fingerprint: reason,
          relations: [],
          functions: [],
          hasWhere: null,
          modifyingCte: false,
          multiStatement: false,
          opaque: { reason, detail },
        },
      ];
      const decision = decideStatements(d.policy(), ctxFor(), facts);
      const s = new Stmt('', facts, decision);
      if (decision.action === 'allow') return { action: 'allow', stmt: s };
      return blockWith(s, { sqlstate: BLOCK_SQLSTATE, message: decision.action === 'block' ? decision.message : `dbgov: blocked: ${detail}`, detail: decision.detail, hint: hintFor(decision.hint) }, 'block');
    },

    executing(stmt: StatementHandle, resumed = false): void {
      const s = stmt as Stmt;
      // Without a wait there is no asking again: a further run of an approved statement is refused.
      if (!resumed && s.executions > 0 && s.decision.action === 'review') {
        const clientError: ClientError = { sqlstate: BLOCK_SQLSTATE, message: 'dbgov: approval required: an approval covers one run of the statement', hint: 'run the statement again (not a prepared copy of it) to ask for another approval' };
        throw Object.assign(new DbgovError('approval-required', clientError.message), { clientError });
      }
      s.startedAt = performance.now();
      s.executions++;
      session.statements++;
      try {
        writeDecision(s);
      } catch (e) {
        throw auditUnavailable(e);
      }
      applySettings(state, s.facts);
      noteChanges(s.facts);
    },

    executingBatched(stmt: StatementHandle, resumed = false): Promise<void> {
      const s = stmt as Stmt;
      if (!resumed && s.executions > 0 && s.decision.review !== undefined && s.decision.action === 'review') {
        return runAgain(s, s.decision.review).then(() => writeBatched(s));
      }
      return writeBatched(s);
    },

    describe(stmt: StatementHandle, columns: ResultColumn[]) {
      const s = stmt as Stmt;
      const out = d.services.maskPlan(session, s.facts, columns, state);
      const take = (p: MaskPlan | ClientError | null): MaskPlan | null => {
        if (p === null) return null;
        if ('sqlstate' in p) {
          // Lineage could not prove the result safe and policy says block: mask every column.
          return { columns: columns.map((c) => ({ index: c.index, mask: () => null })), maskedColumns: columns.map((c) => c.name) };
        }
        s.maskedColumns = p.maskedColumns;
        s.unmaskedColumns = p.unmaskedColumns ?? [];
        // Nothing to rewrite: rows go out as zero-copy slices.
        return p.columns.length > 0 ? p : null;
      };
      return out instanceof Promise ? out.then(take) : take(out);
    },

    describeCopy(stmt, format, columnCount) {
      const s = stmt as Stmt;
      const out = d.services.copyMaskPlan(session, s.facts, format, columnCount, state);
      const take = (p: CopyMaskPlan | null): CopyMaskPlan | null => {
        if (p) {
          s.maskedColumns = p.maskedColumns;
          s.unmaskedColumns = p.unmaskedColumns ?? [];
        }
        return p;
      };
      return out instanceof Promise ? out.then(take) : take(out);
    },

    completed(stmt: StatementHandle, outcome: StatementOutcome): void {
      const s = stmt as Stmt;
      // A failed message may have stopped before its SET sql_mode ran (MariaDB stops a
      // multi-statement message at the first error): how later statements lex is then unknown.
      if (outcome.error && s.facts.some((f) => settingsOf(state, f).some((x) => x.name === 'sql_mode' && !x.local && !x.global))) state.params.set('sql_mode', UNKNOWN_SETTING);
      const durationMs = s.startedAt ? Math.round((performance.now() - s.startedAt) * 1000) / 1000 : null;
      try {
        batcher.later({
          kind: 'statement.result',
          identity,
          target: session.target,
          database: session.database,
          sessionId: session.id,
          statement: record(s, {
            rows: outcome.rows,
            durationMs,
            ...(s.auditId ? { ref: s.auditId } : {}),
            ...(outcome.error ? { error: { message: d.services.scrub(session, s.facts, { message: outcome.error.message }).message, sqlstate: outcome.error.sqlstate } } : {}),
          }),
        });
      } catch (e) {
        d.log.error({ err: e }, 'audit append failed for a statement outcome');
      }
      // A new global sql_mode is what new sessions (and SET sql_mode = DEFAULT) start from: the catalog reads it.
      // s.ran: an EXECUTE of a prepared CREATE VIEW changes the schema too.
      if (s.ran.some((f) => f.changesResolution || f.kind === 'create' || f.kind === 'alter' || f.kind === 'drop' || f.settings?.some((x) => x.global && x.name === 'sql_mode'))) {
        d.services.schemaChanged(s.ran);
        (state.changedSinceIdle ??= []).push(...s.ran);
      }
      activity(s, { decision: s.decisionLabel === 'approved' ? 'approved' : 'allow', rows: outcome.rows, durationMs, ...(outcome.error ? { message: `error ${outcome.error.sqlstate}` } : {}) });
    },

    reset(): void {
      // sql_mode is the server's default again (the one the analyser assumes with none set);
      // what the session prepared or declared is gone. The current database stays.
      state.params.delete('sql_mode');
      state.prepared.clear();
      state.cursors.clear();
      state.tempTables.clear();
    },

    idle(errored: boolean): void {
      // Outside a transaction after a SET search_path, with no failure, ROLLBACK or SET LOCAL
      // since the last time: that SET is committed, so the path it set is the only one.
      // A value computed at run time is not known even then.
      if (state.searchPathSet === 'literal' && !errored && !state.searchPathUnsettled && (state.pastSearchPaths.length > 0 || state.searchPathComputed)) setSearchPath(state, state.searchPath, true);
      state.searchPathSet = false;
      state.searchPathUnsettled = false;
      // DDL inside a transaction is invisible to the catalog's reload until it commits: reload
      // again now that it has (or has been rolled back).
      // Views it (re)defined are noted again: a reload from now on reads them as committed.
      if (state.changedSinceIdle) d.services.schemaChanged(state.changedSinceIdle);
      state.changedSinceIdle = undefined;
      settleChanges();
    },

    ended(): void {
      settleChanges();
    },

    scrub(stmt, fields) {
      return d.services.scrub(session, (stmt as Stmt | undefined)?.facts, fields);
    },

    parameter(name: string, value: string): void {
      // The first report (at startup) is what RESET goes back to.
      if (name === SCS && !state.params.has(SCS_DEFAULT)) state.params.set(SCS_DEFAULT, value);
      state.params.set(name, value);
      // The engine reports startup settings as the server applies them (`options` read into them).
      if (name === 'search_path') setSearchPath(state, splitSearchPath(value), true);
    },
  };
  return hooks;
}

interface Summary {
  fingerprint: string;
  text: string;
  kind: string;
  tables: string[];
}

/**
 * What audit records and approval requests say about a message's statements. Computed once per
 * (cached, resolved) facts array: every execution of a prepared statement shares it.
 */
const summaries = new WeakMap<StatementFacts[], Summary>();
function summaryOf(facts: StatementFacts[]): Summary {
  let sum = summaries.get(facts);
  if (sum) return sum;
  // Function-body statements count for tables touched, not for the text the client sent.
  const own = facts.filter((x) => !x.calledFrom);
  const f = own.length > 0 ? own : facts;
  sum = {
    fingerprint: f.length === 1 ? f[0].fingerprint : f.map((x) => x.fingerprint).join(','),
    text: f.map((x) => x.redacted).join('; '),
    kind: f.length === 1 ? f[0].kind : [...new Set(f.map((x) => x.kind))].join(','),
    // Frozen: every record of these facts shares the list, and the audit log writes it once.
    tables: Object.freeze([...new Set(facts.flatMap((x) => x.relations.map((r) => qualified(r))))]) as string[],
  };
  summaries.set(facts, sum);
  return sum;
}

/**
 * The facts of what a message runs: an EXECUTE brings the statement it runs, as this session has
 * it prepared now, marked as called from the EXECUTE. Audit records then name the tables it
 * touches, and an approval of `EXECUTE p` is an approval of what `p` was.
 */
function runsOf(facts: StatementFacts[], state: SessionState): StatementFacts[] {
  if (!facts.some((f) => f.execute !== undefined)) return facts;
  return facts.flatMap((f) => {
    const inner = f.execute ? state.prepared.get(f.execute.name) : undefined;
    return inner ? [f, { ...inner, calledFrom: `EXECUTE ${f.execute!.name}` }] : [f];
  });
}

/**
 * What an approval is of: the exact text, the tables it resolves to (another search_path can
 * point the same text elsewhere), and the text of everything it runs (the statement an EXECUTE
 * runs, the statements of a called SQL function's body). Prepare something else under the
 * name, or replace the function, and the same text is another statement to approve.
 */
function approvalKey(s: { sql: string; ran: StatementFacts[] }): string {
  const called = s.ran.filter((f) => f.calledFrom !== undefined).map((f) => `${f.calledFrom}\u0000${f.text}`);
  return [s.sql, summaryOf(s.ran).tables.join(','), ...called].join('\u0000');
}

function requiredError(id: string, decision: StatementDecision): ClientError {
  return {
    sqlstate: BLOCK_SQLSTATE,
    message: `dbgov: approval required (request ${id})`,
    detail: `rule: ${decision.rule}${decision.message ? `; ${decision.message}` : ''}`,
    hint: `ask an approver to run \`dbgov approve ${id}\`, then run the same statement again`,
  };
}

function qualified(r: StatementFacts['relations'][number]): string {
  if (r.resolved) return `${r.resolved.schema}.${r.resolved.name}`;
  return r.schema ? `${r.schema}.${r.name}` : r.name;
}

/**
 * PREPARE: what a later EXECUTE runs. On PostgreSQL a name already prepared makes PREPARE fail
 * and the old statement stays (names leave only by DEALLOCATE or DISCARD ALL, which the session
 * follows); MySQL replaces it.
 */
function rememberPrepared(state: SessionState, facts: StatementFacts[], engine: string, resolve: (f: StatementFacts) => StatementFacts): void {
  for (const f of facts) {
    if (!f.prepare) continue;
    if (engine === 'postgres' && state.prepared.has(f.prepare.name)) continue;
    // Names are bound when the statement is prepared (as the server does): a later EXECUTE is
    // judged on what they resolved to then, views followed to their tables.
    state.prepared.set(f.prepare.name, resolve(f.prepare.inner));
  }
}

/**
 * DECLARE (or HANDLER OPEN) of a name that is open already fails at the server, which keeps the
 * first; but the gateway may have missed its end (a transaction ending closes cursors), so it
 * cannot tell which query the name runs. Until CLOSE, its rows are of unknown origin.
 */
function declareCursor(state: SessionState, f: StatementFacts, name: string): void {
  state.cursors.set(name, state.cursors.has(name) ? unknownRows(f, name) : f);
}

/**
 * A statement that would make the server read later statements in a client encoding where a
 * multi-byte character can end in `\` (see src/shared/client-encodings.ts). Whatever policy
 * says, it is refused: after it, the analyser and the server would read different statements.
 */
function encodingRefusal(state: SessionState, facts: StatementFacts[]): ClientError | null {
  // COPY … TO (ENCODING 'SJIS') writes its rows in that encoding: a character ending in `\` in one
  // field escapes the delimiter after it for the gateway's COPY reader, so the next field (a
  // classified one) would be taken for part of this one and go out unmasked.
  const copy = facts.find((f) => f.copy?.encoding !== undefined && pgEncodingUnsafe(f.copy.encoding));
  if (copy) {
    return {
      sqlstate: BLOCK_SQLSTATE,
      message: `dbgov: blocked: COPY output in encoding ${copy.copy!.encoding} is not supported through dbgov`,
      detail: 'In this encoding a character can end in a backslash, so dbgov would split the rows into columns differently from the database.',
      hint: 'Leave out the ENCODING option (the output comes in your client encoding, UTF-8) and convert the file afterwards, e.g. with iconv.',
    };
  }
  // Every statement is checked: nothing to read (or allocate) for the many that set nothing.
  if (!facts.some((f) => f.settings !== undefined || f.execute !== undefined)) return null;
  for (const settings of settingsIn(state, facts)) {
    for (const s of settings) {
      let unsafe: boolean;
      if (s.name === 'client_encoding') unsafe = s.computed === true || (s.value !== null && pgEncodingUnsafe(s.value));
      else if (s.name === 'names' || s.name === 'character_set_client') {
        // A number names a collation by id; null is a value computed at run time (= @v).
        const v = s.value;
        unsafe = v === null || (/^\d+$/.test(v.trim()) ? mysqlCollationUnsafe(Number(v)) : mysqlCharsetUnsafe(v.trim()));
      } else continue;
      if (unsafe) {
        return {
          sqlstate: BLOCK_SQLSTATE,
          message: `dbgov: blocked: client encoding ${s.value ?? '(computed at run time)'} is not supported through dbgov`,
          detail: 'In this encoding a character can end in a backslash or a letter, so the database would read statements differently from the checks dbgov makes.',
          hint: 'Use UTF8 (utf8mb4 on MySQL): set your client or driver encoding to UTF-8.',
        };
      }
    }
  }
  return null;
}

/**
 * The settings a statement changes: its own, and for EXECUTE those of what was prepared (MySQL
 * can prepare `SET sql_mode = …`, which changes how every later statement lexes).
 */
export function settingsOf(state: SessionState, f: StatementFacts): NonNullable<StatementFacts['settings']> {
  const run = f.execute ? state.prepared.get(f.execute.name)?.settings : undefined;
  return run ? [...(f.settings ?? []), ...run] : (f.settings ?? []);
}

/**
 * The settings each statement of a message may change, before the message runs: its own, and for
 * an EXECUTE those of what the name may run, prepared by the session or by a PREPARE earlier in
 * the message (PREPAREs are remembered only once the whole message is allowed).
 */
export function settingsIn(state: SessionState, facts: readonly StatementFacts[]): NonNullable<StatementFacts['settings']>[] {
  if (!facts.some((f) => f.execute)) return facts.map((f) => f.settings ?? []);
  const local = new Map<string, StatementFacts>();
  return facts.map((f) => {
    const own = f.settings ?? [];
    const runs = f.execute ? [local.get(f.execute.name), state.prepared.get(f.execute.name)] : [];
    if (f.prepare) local.set(f.prepare.name, f.prepare.inner);
    const more = runs.flatMap((r) => r?.settings ?? []);
    return more.length > 0 ? [...own, ...more] : own;
  });
}

/** SET search_path and friends take effect for the statements after this one. */
function applySettings(state: SessionState, facts: StatementFacts[]): void {
  for (const f of facts) {
    for (const s of settingsOf(state, f)) {
      if (s.name === 'search_path') {
        if (s.computed) state.searchPathComputed = true;
        if (s.local) state.searchPathUnsettled = true;
        state.searchPathSet = s.computed ? 'computed' : 'literal';
        setSearchPath(state, s.value === null ? null : splitSearchPath(s.value));
      }
      // MySQL: how later statements lex depends on sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES);
      // a value computed at run time is unknown, and analysis then fails closed.
      // SET GLOBAL sql_mode leaves this session's mode as it is (the catalog learns the new default).
      if (s.name === 'sql_mode' && !s.local && !s.global) state.params.set('sql_mode', s.value ?? UNKNOWN_SETTING);
      if (s.name === 'database' && s.value !== null) state.params.set('database', s.value);
      if (s.name === 'standard_conforming_strings' || s.name === 'all') expectConformingStrings(state, s);
    }
    // ROLLBACK, ROLLBACK TO SAVEPOINT, ABORT: what the transaction SET is undone.
    if (f.tag.startsWith('ROLLBACK') || f.tag === 'ABORT') state.searchPathUnsettled = true;
    const view = createdViewRun(f, state);
    if (view) state.createdViews.set(view.name, view.reads);
    for (const name of f.renamed ?? []) state.renamed.add(name);
    for (const name of f.typesChanged ?? []) state.typesChanged.add(name);
    if (f.tag === 'DROP VIEW') for (const r of f.relations) state.createdViews.delete(r.name.toLowerCase());
    if (f.deallocate) {
      if (f.deallocate.name === null) state.prepared.clear();
      else state.prepared.delete(f.deallocate.name);
    }
    for (const r of f.relations) {
      if (r.schema === 'pg_temp' && f.kind === 'create') state.tempTables.add(r.name);
      // DROP of an unqualified name drops the shadowing temp table first, as the server does.
      if (f.kind === 'drop' && (r.schema === 'pg_temp' || r.schema === undefined)) state.tempTables.delete(r.name);
    }
    if (f.tag === 'DISCARD ALL' || f.tag === 'DISCARD TEMP') state.tempTables.clear();
    if (f.cursor?.op === 'declare') declareCursor(state, f, f.cursor.name);
    if (f.cursor?.op === 'close') {
      if (f.cursor.name === '') state.cursors.clear();
      else state.cursors.delete(f.cursor.name);
    }
    if (f.tag === 'DISCARD ALL') {
      state.cursors.clear();
      state.prepared.clear();
    }
  }
}

const SCS = 'standard_conforming_strings';
const SCS_DEFAULT = 'standard_conforming_strings (default)';

/**
 * A SET (or RESET, RESET ALL, DISCARD ALL) of standard_conforming_strings was sent. How the server
 * lexes backslashes from now on is known once it reports the new value (ParameterStatus); until
 * then it is 'pending', and texts with a backslash are not analysed (postgresSessionAnalyser).
 * A value equal to the current one changes nothing, and the server reports nothing.
 */
function expectConformingStrings(state: SessionState, s: { name: string; value: string | null; computed?: true }): void {
  const current = state.params.get(SCS);
  const bool = (v: string | null | undefined): string | undefined => {
    const w = v?.trim().toLowerCase();
    return w === undefined ? undefined : ['on', 'true', 'yes', '1'].includes(w) ? 'on' : ['off', 'false', 'no', '0'].includes(w) ? 'off' : undefined;
  };
  const next = s.name === 'all' || (s.value === null && !s.computed) ? state.params.get(SCS_DEFAULT) : s.computed ? undefined : bool(s.value);
  if (next === undefined || next !== current) state.params.set(SCS, 'pending');
}

/**
 * The session's search_path is now `next`. Set by a statement, the one before stays a candidate
 * (see SessionState); reported by the server (startup options, ParameterStatus), it is certain.
 */
export function setSearchPath(state: SessionState, next: string[] | null, certain = false): void {
  const key = (p: string[] | null): string => (p === null ? '' : p.join(','));
  if (certain) {
    state.pastSearchPaths = [];
    state.searchPathComputed = false;
  } else if (key(state.searchPath) !== key(next) && !state.pastSearchPaths.some((p) => key(p) === key(state.searchPath))) {
    state.pastSearchPaths.push(state.searchPath);
  }
  state.pastSearchPaths = state.pastSearchPaths.filter((p) => key(p) !== key(next));
  state.searchPath = next;
  state.pathKey = state.pastSearchPaths.length === 0 && !state.searchPathComputed ? key(next) : JSON.stringify([next, state.pastSearchPaths, state.searchPathComputed]);
}

/** A session setting changed to a value only known at run time. */
export const UNKNOWN_SETTING = '\u0000unknown';

export function splitSearchPath(value: string): string[] {
  return value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => (p.startsWith('"') && p.endsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p.toLowerCase()));
}

/** CREATE [OR REPLACE] VIEW / ALTER VIEW: the view's name and the relations its query reads. */
/** The view `f` creates, itself or as the EXECUTE of a prepared CREATE VIEW. */
export function createdViewRun(f: StatementFacts, state: SessionState): { name: string; reads: RelationRef[] } | undefined {
  const inner = f.execute ? state.prepared.get(f.execute.name) : undefined;
  return createdView(f) ?? (inner ? createdView(inner) : undefined);
}

export function createdView(f: StatementFacts): { name: string; reads: RelationRef[] } | undefined {
  if (f.tag !== 'CREATE VIEW' && f.tag !== 'ALTER VIEW') return undefined;
  const view = f.relations.find((r) => r.access === 'ddl');
  return view ? { name: view.name.toLowerCase(), reads: f.relations.filter((r) => r.access === 'read') } : undefined;
}
