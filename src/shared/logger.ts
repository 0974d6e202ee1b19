import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One structured logger for the process. The broker logs JSON to stderr; the CLI keeps it
 * quiet (warn) unless DBGOV_LOG_LEVEL says otherwise, so command output stays clean.
 */
let root: Logger | undefined;

export function rootLogger(): Logger {
  root ??= pino({ level: process.env.DBGOV_LOG_LEVEL ?? 'warn', base: { app: 'dbgov' } }, pino.destination({ fd: 2, sync: false }));
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}

export function childLogger(bindings: Record<string, unknown>): Logger {
  return rootLogger().child(bindings);
}

/** A logger that drops everything: for tests and pure code paths. */
export const silentLogger: Logger = pino({ level: 'silent' });
