/**
 * Everything the CLI shows a person: tables, colours, relative times, spinners, the live activity
 * line and CSV. Pure string builders where possible, so they are tested without a terminal.
 */
import { Chalk } from 'chalk';
import type { ActivityEvent } from '../broker/api-types.js';
import { formatDuration } from '../shared/clock.js';

export interface Style {
  ok(text: string): string;
  bad(text: string): string;
  warn(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
  accent(text: string): string;
}

/** Colours only on a terminal: piped output and logs stay plain text. NO_COLOR always wins. */
export function styleFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Style {
  const enabled = stream.isTTY === true && env.NO_COLOR === undefined && env.TERM !== 'dumb';
  const chalk = new Chalk({ level: enabled ? 1 : 0 });
  return {
    ok: (t) => chalk.green(t),
    bad: (t) => chalk.red(t),
    warn: (t) => chalk.yellow(t),
    dim: (t) => chalk.dim(t),
    bold: (t) => chalk.bold(t),
    accent: (t) => chalk.cyan(t),
  };
}

export const plainStyle: Style = styleFor({ isTTY: false });

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  align?: 'left' | 'right';
  /** May be cut (with …) to fit the terminal; keep ids and names whole. */
  shrink?: boolean;
  color?: (text: string, row: T) => string;
}

export interface TableOptions {
  /** Total width to fit in; unset means no truncation (piped output keeps every character). */
  width?: number;
  style?: Style;
}

const GAP = '  ';
const MIN_SHRUNK = 8;

export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[], options: TableOptions = {}): string {
  const style = options.style ?? plainStyle;
  const cells = rows.map((row) => columns.map((c) => oneLine(c.value(row))));
  const widths = columns.map((c, i) => Math.max(length(c.header), ...cells.map((r) => length(r[i]))));

  if (options.width !== undefined) {
    let excess = widths.reduce((a, b) => a + b, 0) + GAP.length * (columns.length - 1) - options.width;
    // Take from the widest shrinkable column first, so short columns stay readable.
    while (excess > 0) {
      let widest = -1;
      for (let i = 0; i < columns.length; i++) {
        const floor = Math.max(MIN_SHRUNK, length(columns[i].header));
        if (columns[i].shrink && widths[i] > floor && (widest === -1 || widths[i] > widths[widest])) widest = i;
      }
      if (widest === -1) break;
      widths[widest]--;
      excess--;
    }
  }

  const line = (values: string[], paint: (text: string, i: number) => string): string =>
    values
      .map((v, i) => {
        const text = truncate(v, widths[i]);
        const pad = ' '.repeat(widths[i] - length(text));
        const last = i === values.length - 1;
        const painted = paint(text, i);
        if (columns[i].align === 'right') return pad + painted;
        return last ? painted : painted + pad;
      })
      .join(GAP);

  const out = [line(columns.map((c) => c.header), (t) => style.bold(t))];
  rows.forEach((row, r) => out.push(line(cells[r], (t, i) => columns[i].color?.(t, row) ?? t)));
  return out.join('\n');
}

export function truncate(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 1 ? '…'.slice(0, width) : chars.slice(0, width - 1).join('') + '…';
}

function length(text: string): number {
  return [...text].length;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

/** `3m ago`, `in 2h`, `just now`: how long from now, the way a person reads it. */
export function relativeTime(at: number, now: number): string {
  const delta = at - now;
  if (Math.abs(delta) < 5_000) return 'just now';
  const span = formatDuration(Math.abs(delta));
  return delta > 0 ? `in ${span}` : `${span} ago`;
}

/** A spinner on stderr for waits; without a terminal it only prints the final line. */
export class Spinner {
  private static readonly FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private text = '';

  constructor(private readonly stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr) {}

  get active(): boolean {
    return this.timer !== undefined;
  }

  start(text: string): void {
    this.text = text;
    if (this.stream.isTTY !== true || this.timer) return;
    this.timer = setInterval(() => this.draw(), 80);
    this.timer.unref();
    this.draw();
  }

  update(text: string): void {
    this.text = text;
  }

  stop(final?: string): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.stream.write('\r\x1b[K');
    }
    if (final !== undefined) this.stream.write(`${final}\n`);
  }

  private draw(): void {
    this.stream.write(`\r\x1b[K${Spinner.FRAMES[this.frame++ % Spinner.FRAMES.length]} ${this.text}`);
  }
}

/** One line of `dbgov connect`'s live view: `✔ SELECT 12 rows 3 ms`, `✖ blocked: …`, `⏸ waiting for approval ABC123`. */
export function formatActivity(event: ActivityEvent, style: Style = plainStyle): string {
  switch (event.type) {
    case 'session.start':
      return style.dim(`→ session ${event.sessionId} opened`);
    case 'session.end':
      return style.dim(`← session ${event.sessionId} closed${event.message ? `: ${event.message}` : ''}`);
    case 'held': {
      const head = `⏸ waiting for approval ${event.requestId ?? ''}`.trimEnd();
      // The broker's message often says just that; print it only when it adds something.
      return style.warn(head) + (event.message && event.message !== head.slice(2) ? style.dim(` (${event.message})`) : '');
    }
    case 'refused':
      return style.bad(`✖ refused: ${event.message ?? 'no reason given'}`);
    case 'statement':
      return formatStatement(event, style);
    default: {
      const unknown: never = event.type;
      return style.dim(`? ${String(unknown)}`);
    }
  }
}

function formatStatement(event: ActivityEvent, style: Style): string {
  const kind = (event.statementKind ?? 'statement').toUpperCase();
  const request = event.requestId ? ` (request ${event.requestId})` : '';
  switch (event.decision) {
    case 'block':
      // The gateway's refusal reads "dbgov: blocked: <why>"; the line already says blocked.
      return style.bad(`✖ blocked: ${event.message?.replace(/^dbgov: (?:blocked: )?/, '') ?? kind}`);
    case 'denied':
      return style.bad(`✖ approval denied${request}${event.message ? `: ${event.message}` : ''}`);
    case 'timeout':
      return style.bad(`✖ approval timed out${request}`);
    case 'review':
      return style.warn(`⏸ waiting for approval ${event.requestId ?? ''}`.trimEnd());
    case 'allow':
    case 'approved':
    case undefined: {
      const parts = [kind];
      if (event.rows !== undefined && event.rows !== null) parts.push(event.rows === 1 ? '1 row' : `${event.rows} rows`);
      if (event.durationMs !== undefined && event.durationMs !== null) parts.push(`${formatMs(event.durationMs)}`);
      let line = `${style.ok('✔')} ${parts.join(' ')}`;
      if (event.decision === 'approved') line += style.dim(` approved${request}`);
      if (event.maskedColumns?.length) line += style.accent(` masked: ${event.maskedColumns.join(', ')}`);
      if (event.message) line += style.dim(` ${event.message}`);
      return line;
    }
    default: {
      const unknown: never = event.decision;
      return style.dim(`? ${kind} ${String(unknown)}`);
    }
  }
}

function formatMs(ms: number): string {
  return ms < 10 ? `${Math.round(ms * 10) / 10} ms` : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One RFC 4180 CSV record, CRLF-terminated. Objects become JSON so nested fields survive. */
export function csvLine(values: readonly unknown[]): string {
  return values.map(csvField).join(',') + '\r\n';
}

function csvField(value: unknown): string {
  const text = cellText(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * A database value as text, the way psql shows it: NULL is empty, a timestamp ISO 8601, bytes
 * `\x…` hex, JSON and arrays as JSON. Tables and CSV share it, so the two never disagree.
 */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A database value for --json: bytes as `\x…` hex text rather than Node's {"type":"Buffer"} shape. */
export function jsonValue(value: unknown): unknown {
  return Buffer.isBuffer(value) ? cellText(value) : value;
}
