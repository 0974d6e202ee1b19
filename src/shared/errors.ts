/**
 * Every error dbgov raises on purpose is a DbgovError. Each boundary translates it once:
 * the CLI into its JSON envelope and exit code, each wire engine into its protocol's error.
 * Anything that is not a DbgovError is an internal fault: logged, and reported generically.
 */
export const ExitCodes = {
  generic: 1,
  usage: 2,
  auth: 3,
  denied: 4,
  unreachable: 5,
  config: 6,
  notFound: 7,
  upstream: 8,
  conflict: 9,
  timeout: 10,
} as const;
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

export interface DbgovErrorOptions {
  /** Next commands or steps for the user, shown under the message. */
  actions?: string[];
  exitCode?: ExitCode;
  cause?: unknown;
  /** Extra machine-readable detail for --json output and logs. Never PII. */
  detail?: Record<string, unknown>;
}

export class DbgovError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly actions: string[];
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: DbgovErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? ExitCodes.generic;
    this.actions = options.actions ?? [];
    this.detail = options.detail;
  }

  toJSON(): { name: string; code: string; message: string; actions: string[]; detail?: Record<string, unknown> } {
    return { name: this.name, code: this.code, message: this.message, actions: this.actions, ...(this.detail ? { detail: this.detail } : {}) };
  }
}

export class UsageError extends DbgovError {
  constructor(message: string, options: DbgovErrorOptions = {}) {
    super('usage', message, { exitCode: ExitCodes.usage, ...options });
  }
}

/** A config problem: always names the file, the line and the fix. */
export class ConfigError extends DbgovError {
  readonly file: string;
  readonly line: number | undefined;
  readonly fix: string;
  constructor(file: string, line: number | undefined, problem: string, fix: string, options: DbgovErrorOptions = {}) {
    super('config', `${file}${line === undefined ? '' : `:${line}`}: ${problem}`, {
      ...options,
      exitCode: ExitCodes.config,
      // The fix comes first; extra actions follow it rather than replace it.
      actions: [fix, ...(options.actions ?? [])],
    });
    this.file = file;
    this.line = line;
    this.fix = fix;
  }
}

/** Not logged in, token expired, credential invalid. Actions name the command to run. */
export class AuthError extends DbgovError {
  constructor(code: string, message: string, options: DbgovErrorOptions = {}) {
    super(code, message, { exitCode: ExitCodes.auth, ...options });
  }
}

/** Policy said no (access request or statement). */
export class DeniedError extends DbgovError {
  constructor(code: string, message: string, options: DbgovErrorOptions = {}) {
    super(code, message, { exitCode: ExitCodes.denied, ...options });
  }
}

export class UnreachableError extends DbgovError {
  constructor(code: string, message: string, options: DbgovErrorOptions = {}) {
    super(code, message, { exitCode: ExitCodes.unreachable, ...options });
  }
}

export class NotFoundError extends DbgovError {
  constructor(code: string, message: string, options: DbgovErrorOptions = {}) {
    super(code, message, { exitCode: ExitCodes.notFound, ...options });
  }
}

export class UpstreamError extends DbgovError {
  constructor(code: string, message: string, options: DbgovErrorOptions = {}) {
    super(code, message, { exitCode: ExitCodes.upstream, ...options });
  }
}

/** `--exec`: the user's command failed. dbgov exits with its code, as a shell would. */
export class CommandFailedError extends DbgovError {
  constructor(command: string, code: number) {
    // Any code 1-255 the command chose: it is the command's, not one of dbgov's own ExitCodes.
    super('command_failed', `${command} exited with code ${code}`, {
      exitCode: code as ExitCode,
      actions: [`${command}'s own output says why (with --json it is on stderr)`],
      detail: { exitCode: code },
    });
  }
}

/**
 * Malformed or hostile wire bytes. Closing the one session that sent them is the only
 * correct reaction; the broker and every other session carry on.
 */
export class ProtocolError extends DbgovError {
  constructor(message: string, options: DbgovErrorOptions = {}) {
    super('protocol', message, options);
  }
}

export function isDbgovError(e: unknown): e is DbgovError {
  return e instanceof DbgovError;
}
