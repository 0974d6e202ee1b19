/**
 * Group commit for the statement path. A decision record must reach the OS before its statement
 * is forwarded, so it is written at once; outcome records (rows, time) are not a durability
 * point, so they wait for the next write: the next decision record, or the end of this
 * event-loop turn. Under load, one write then carries many sessions' records.
 */
import type { AuditEvent, AuditEventInput } from '../audit/event.js';
import type { AuditLog } from '../store/store.js';
import type { Logger } from '../shared/logger.js';

type ManyLog = AuditLog & { appendManySync?(inputs: AuditEventInput[]): AuditEvent[] };

export class AuditBatcher {
  private pending: AuditEventInput[] = [];
  /** Decision records whose statements wait for this turn's write (see `soon`). */
  private waiting: { input: AuditEventInput; done: (event: AuditEvent | undefined, err?: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly log: ManyLog,
    private readonly logger: Logger,
  ) {}

  /** Written before return (with any pending outcomes in the same write); throws if it cannot be. */
  now(input: AuditEventInput): AuditEvent {
    if (this.pending.length === 0 || !this.log.appendManySync) return this.log.appendSync(input);
    const batch = this.pending;
    this.pending = [];
    const events = this.log.appendManySync([...batch, input]);
    return events[events.length - 1];
  }

  /** Written with the next write, at the latest at the end of this event-loop turn. */
  later(input: AuditEventInput): void {
    this.pending.push(input);
    this.schedule();
  }

  /**
   * A decision record, written at the end of this event-loop turn in one write with every
   * record queued by then; `done` gets the event once it reached the OS, or the error (the
   * statement must then not run). Sessions that wait for it share one write per turn.
   */
  soon(input: AuditEventInput, done: (event: AuditEvent | undefined, err?: unknown) => void): void {
    this.waiting.push({ input, done });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0 && this.waiting.length === 0) return;
    const batch = this.pending;
    const waiting = this.waiting;
    this.pending = [];
    this.waiting = [];
    let events: AuditEvent[] | undefined;
    try {
      const inputs = waiting.length === 0 ? batch : [...batch, ...waiting.map((w) => w.input)];
      if (this.log.appendManySync) events = this.log.appendManySync(inputs);
      else events = inputs.map((e) => this.log.appendSync(e));
    } catch (e) {
      // Outcomes of statements that already ran: nothing to refuse any more, so say it loudly.
      if (batch.length > 0) this.logger.error({ err: e, lost: batch.length }, 'audit: outcome records could not be written');
      for (const w of waiting) w.done(undefined, e);
      return;
    }
    for (let i = 0; i < waiting.length; i++) waiting[i].done(events[batch.length + i]);
  }
}
