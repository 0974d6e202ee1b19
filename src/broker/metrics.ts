/**
 * Prometheus metrics for the broker (`GET /metrics`). DESIGN: nothing on the statement path
 * waits on metrics, and metrics read from the log afterwards. So the statement counters are not
 * incremented by the gateway: each scrape reads the audit events appended since the previous
 * one (from the broker's start) and counts them, and gauges are read from memory when scraped.
 * A broker nobody scrapes pays nothing; one that is scraped every 15 s pays one pass over the
 * log's new lines per scrape.
 *
 * prom-client (the standard Node.js client) writes the exposition format and the process
 * metrics (CPU, memory, event-loop delay), which start at the first scrape.
 *
 * Labels stay low-cardinality and hold no PII: target, decision, statement kind, event kind,
 * identity kind. Never identity ids, table names or statement text: those are the audit log's.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TailSource } from '../audit/sinks/runner.js';
import type { AuditEvent } from '../audit/event.js';
import type { LiveSession } from './sessions.js';
import type { ApprovalRequest } from '../store/store.js';

export interface MetricsSources {
  /** The audit log, read after the fact. */
  log: Pick<TailSource, 'lastSeq' | 'streamAfter'>;
  sessions: () => LiveSession[];
  pendingRequests: () => Promise<ApprovalRequest[]>;
}

/** Statement durations: a point read through the gateway takes well under a millisecond. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class BrokerMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  /** Events up to this seq are counted. */
  private cursor: number;
  private catchingUp: Promise<void> | undefined;
  private processMetrics = false;

  private readonly events = new Counter({ name: 'dbgov_audit_events_total', help: 'Audit events written since the broker started, by kind.', labelNames: ['kind'] as const, registers: [this.registry] });
  private readonly statements = new Counter({
    name: 'dbgov_statements_total',
    help: 'Statements judged by the gateway since the broker started, by target, decision (allow, block, review, approved, denied, timeout, error) and statement kind.',
    labelNames: ['target', 'decision', 'kind', 'identity_kind'] as const,
    registers: [this.registry],
  });
  private readonly masked = new Counter({ name: 'dbgov_statements_masked_total', help: 'Statements whose result had at least one column masked, by target.', labelNames: ['target'] as const, registers: [this.registry] });
  private readonly unmasked = new Counter({ name: 'dbgov_statements_unmasked_total', help: 'Statements that returned a classified column in clear (an unmask rule or an approval allowed it), by target.', labelNames: ['target'] as const, registers: [this.registry] });
  private readonly rows = new Counter({ name: 'dbgov_statement_rows_total', help: 'Rows returned or changed by statements, by target.', labelNames: ['target'] as const, registers: [this.registry] });
  private readonly errors = new Counter({ name: 'dbgov_statement_errors_total', help: 'Statements the database answered with an error, by target and SQLSTATE class.', labelNames: ['target', 'sqlstate_class'] as const, registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'dbgov_statement_duration_seconds',
    help: 'Time from forwarding a statement to its completion, by target.',
    labelNames: ['target'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly refusedSessions = new Counter({ name: 'dbgov_sessions_refused_total', help: 'Gateway connections refused (no, expired, revoked or wrong credential), by target.', labelNames: ['target'] as const, registers: [this.registry] });

  constructor(private readonly src: MetricsSources) {
    this.cursor = src.log.lastSeq;
    const self = this;
    new Gauge({
      name: 'dbgov_sessions_active',
      help: 'Gateway sessions open now, by target and identity kind.',
      labelNames: ['target', 'identity_kind'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of self.src.sessions()) this.inc({ target: s.target, identity_kind: s.identity.kind });
      },
    });
    new Gauge({
      name: 'dbgov_approval_requests_pending',
      help: 'Approval requests waiting for a decision, by type (statement, access) and target.',
      labelNames: ['type', 'target'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await self.src.pendingRequests()) this.inc({ type: r.type, target: r.target });
      },
    });
    new Gauge({
      name: 'dbgov_audit_last_seq',
      help: 'Sequence number of the newest audit event (it grows by one per event; a scrape that sees it stall while statements run is worth a look).',
      registers: [this.registry],
      collect() {
        this.set(self.src.log.lastSeq);
      },
    });
  }

  /** The exposition text: counts the log's new events first. */
  async render(): Promise<string> {
    if (!this.processMetrics) {
      // Started by the first scrape, so an unscraped broker runs no sampling timer for them.
      collectDefaultMetrics({ register: this.registry });
      this.processMetrics = true;
    }
    await this.catchUp();
    return this.registry.metrics();
  }

  /** Reads the events appended since the last pass; concurrent scrapes share one pass. */
  catchUp(): Promise<void> {
    this.catchingUp ??= this.readNew().finally(() => (this.catchingUp = undefined));
    return this.catchingUp;
  }

  private async readNew(): Promise<void> {
    // Up to the newest event now: a busy log must not keep one scrape reading forever.
    const until = this.src.log.lastSeq;
    if (until <= this.cursor) return;
    for await (const e of this.src.log.streamAfter(this.cursor)) {
      if (e.seq > until) break;
      this.count(e);
      this.cursor = e.seq;
    }
    // Pruned away under us (retention): what is gone cannot be counted; do not read it again.
    this.cursor = Math.max(this.cursor, until);
  }

  private count(e: AuditEvent): void {
    this.events.inc({ kind: e.kind });
    const target = e.target ?? '';
    const st = e.statement;
    if (e.kind === 'statement' && st) {
      this.statements.inc({ target, decision: st.decision, kind: st.kind, identity_kind: e.identity?.kind ?? '' });
    } else if (e.kind === 'statement.result' && st) {
      if (st.maskedColumns?.length) this.masked.inc({ target });
      if (st.unmaskedColumns?.length) this.unmasked.inc({ target });
      if (typeof st.rows === 'number' && st.rows > 0) this.rows.inc({ target }, st.rows);
      if (typeof st.durationMs === 'number') this.duration.observe({ target }, st.durationMs / 1000);
      if (st.error) this.errors.inc({ target, sqlstate_class: st.error.sqlstate.slice(0, 2) });
    } else if (e.kind === 'session.refused') {
      this.refusedSessions.inc({ target });
    }
  }
}
