/** Time flags (`--since 1h`, `--until 2026-01-31T12:00Z`) shared by the audit commands. */
import { Flags } from '@oclif/core';
import { parseDuration } from '../shared/clock.js';
import { UsageError } from '../shared/errors.js';

/**
 * A point in time as milliseconds since the epoch: `now`, a duration back from now (`90s`, `15m`,
 * `1h`, `30d`, `2w`) or an ISO 8601 date or date-time (`2026-01-31`, `2026-01-31T12:00:00Z`).
 */
export function parseTimeFlag(text: string, now: number): number {
  const value = text.trim();
  if (value.toLowerCase() === 'now') return now;
  // A bare number is ambiguous (seconds? a year?), so only durations with a unit are accepted here.
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/i.test(value)) return now - (parseDuration(value) as number);
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const at = Date.parse(value);
    if (!Number.isNaN(at)) return at;
  }
  throw new UsageError(`"${text}" is not a time dbgov understands`, {
    actions: ['use a duration back from now (15m, 1h, 30d, 2w), an ISO date (2026-01-31) or date-time (2026-01-31T12:00:00Z), or `now`'],
  });
}

export const timeFlag = Flags.custom<number>({
  helpValue: '1h|ISO',
  parse: async (input) => parseTimeFlag(input, Date.now()),
});

/** Rejects a range that ends before it starts, which would silently return nothing. */
export function checkRange(since: number | undefined, until: number | undefined): void {
  if (since !== undefined && until !== undefined && since > until) {
    throw new UsageError(`--since (${new Date(since).toISOString()}) is after --until (${new Date(until).toISOString()})`, {
      actions: ['swap the two values, or drop --until to mean "up to now"'],
    });
  }
}
