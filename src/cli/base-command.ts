/**
 * The base of every dbgov command. It owns the CLI contract (DESIGN.md "Contracts: CLI"):
 *   success → {"status":0,"result":…,"warnings":[…]}
 *   failure → {"status":N,"name":"…","message":"…","actions":[…]} and exit N (DbgovError.exitCode)
 * Without --json, failures are written for a person: what happened, then the next commands.
 * Commands return a typed result from run(); oclif prints it through toSuccessJson with --json.
 */
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { input } from '@inquirer/prompts';
import { DbgovError, ExitCodes, UsageError, isDbgovError } from '../shared/errors.js';
import { childLogger } from '../shared/logger.js';
import { styleFor, type Style } from './render.js';
import { defaultSessionDeps, resolveSession, type BrokerSession, type SessionDeps } from './session.js';

export interface SuccessEnvelope<R> {
  status: 0;
  result: R;
  warnings: string[];
}

export interface ErrorEnvelope {
  status: number;
  name: string;
  message: string;
  actions: string[];
}

export abstract class DbgovCommand<R> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    broker: Flags.string({
      summary: 'Broker API URL. Default: DBGOV_BROKER, else the broker you last logged in to.',
      helpValue: 'URL',
      helpGroup: 'GLOBAL',
    }),
  };

  private readonly warnings: string[] = [];

  abstract override run(): Promise<R>;

  /** The broker and credentials for this command: DBGOV_TOKEN, else the saved login. */
  protected session(broker: string | undefined, options: { requireAuth?: boolean } = {}): Promise<BrokerSession> {
    return resolveSession({ broker, ...options }, this.sessionDeps());
  }

  protected sessionDeps(): SessionDeps {
    return defaultSessionDeps();
  }

  /** Prompts are for people: never with --json, and never when nobody is at a terminal (CI, pipes). */
  protected canPrompt(): boolean {
    return !this.jsonEnabled() && process.stdin.isTTY === true && process.stdout.isTTY === true;
  }

  /** Asks for a missing value on a terminal; elsewhere fails at once with the flag to pass. */
  protected async ask(message: string, flagHint: string): Promise<string> {
    if (!this.canPrompt()) {
      throw new UsageError(`${message.replace(/[:?]\s*$/, '')}: no value given, and dbgov does not prompt without a terminal or with --json`, {
        actions: [`pass ${flagHint}`],
      });
    }
    return input({ message, validate: (v) => v.trim() !== '' || 'a value is required' });
  }

  protected get style(): Style {
    return styleFor(process.stdout);
  }

  /** Terminal width for tables; undefined when piped, so no text is cut. */
  protected get width(): number | undefined {
    return process.stdout.isTTY ? process.stdout.columns : undefined;
  }

  /** Collected into the envelope with --json; printed to stderr otherwise. */
  override warn(input: string | Error): string | Error {
    const text = typeof input === 'string' ? input : input.message;
    this.warnings.push(text);
    if (!this.jsonEnabled()) process.stderr.write(`${styleFor(process.stderr).warn('warning:')} ${text}\n`);
    return input;
  }

  protected override toSuccessJson(result: unknown): SuccessEnvelope<unknown> {
    return { status: 0, result, warnings: [...this.warnings] };
  }

  protected override toErrorJson(err: unknown): ErrorEnvelope {
    return errorEnvelope(toDbgovError(err));
  }

  /** Plain JSON, never colourized: the envelope is for machines even on a terminal. */
  protected override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  }

  protected override async catch(err: Interfaces.CommandError): Promise<never> {
    // oclif's own exit (this.exit) already carries its code and prints nothing.
    if (err instanceof Errors.ExitError) throw err;
    const e = toDbgovError(err, this.id);
    if (!isDbgovError(err) && !(err instanceof Errors.CLIError)) {
      // Debug level: a person sees the generic message and how to get this; never a stack trace.
      childLogger({ command: this.id }).debug({ err }, 'internal error');
    }
    throw reportError(e, this.jsonEnabled());
  }
}

/**
 * Prints a failure the one way the contract allows (the envelope on stdout with --json, else the
 * message and next steps on stderr) and returns it marked so that oclif's handler only exits with
 * its code. Used by every command and by the hooks that run before a command is found.
 */
export function reportError(e: DbgovError, json: boolean): DbgovError {
  if (json) process.stdout.write(`${JSON.stringify(errorEnvelope(e), null, 2)}\n`);
  else process.stderr.write(formatError(e, styleFor(process.stderr)));
  return Object.assign(e, { skipOclifErrorHandling: true, oclif: { exit: e.exitCode } });
}

export function errorEnvelope(e: DbgovError): ErrorEnvelope {
  return { status: e.exitCode, name: e.name, message: e.message, actions: e.actions };
}

/** True when --json comes before any `--` (after it, the words belong to the user's command). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** Turns anything thrown into the DbgovError the user sees; unknown faults say nothing internal. */
export function toDbgovError(err: unknown, commandId?: string): DbgovError {
  if (err instanceof Error) err.message = unwrapFlagParseMessage(err.message);
  if (isDbgovError(err)) return err;
  if (err instanceof Errors.CLIError) {
    // Flag and argument mistakes from oclif's parser; their text is already written for people.
    const message = parseErrorMessage(err);
    const help = commandId ? `see \`dbgov ${commandId.replaceAll(':', ' ')} --help\`` : 'see `dbgov --help`';
    return (err.oclif?.exit ?? ExitCodes.usage) === ExitCodes.usage ? new UsageError(message, { actions: [help] }) : new DbgovError('cli', message);
  }
  const fileError = fromFileSystemError(err);
  if (fileError) return fileError;
  return new DbgovError('internal', 'dbgov hit an unexpected internal error', {
    actions: ['run the command again with DBGOV_LOG_LEVEL=debug to see the details', 'if it happens again, report it with that output'],
  });
}

/**
 * A path the user gave (--out, --file, a key file) that cannot be opened, written or created is
 * their input to fix, not an internal fault: say which path and why.
 */
const PATH_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
};

export function fromFileSystemError(err: unknown, shownPath?: string): DbgovError | undefined {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.path !== 'string' || e.code === undefined || PATH_ERRORS[e.code] === undefined) return undefined;
  return new UsageError(`cannot use ${shownPath ?? e.path}: ${PATH_ERRORS[e.code]} (${e.code})`, {
    actions: ['check the path you passed and its folder\'s permissions, or choose another path'],
  });
}

/**
 * oclif's parse errors put the substance after the first line ("Missing 1 required arg:\ntarget
 * …", "The following error occurred:\n  --sql=x cannot also be provided when using --file"):
 * one line that still says what is missing or wrong.
 */
function parseErrorMessage(err: Error & { args?: { name: string; description?: string }[] }): string {
  const lines = err.message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^See more help with --help$/.test(l));
  const first = lines[0] ?? 'the command line could not be read';
  if (/^Missing \d+ required args?/.test(first) && err.args?.length) {
    const names = err.args.map((a) => `${a.name.toUpperCase()}${a.description ? ` — ${a.description.replace(/\.$/, '')}` : ''}`);
    return `missing required argument${names.length === 1 ? '' : 's'} ${names.join('; ')}`;
  }
  return first.endsWith(':') && lines.length > 1 ? `${first.slice(0, -1)}: ${lines.slice(1).join('; ')}` : first;
}

/** oclif wraps a flag's parse error as "Parsing --f \n\t<why>\nSee more help with --help"; keep it to one line. */
function unwrapFlagParseMessage(message: string): string {
  const m = /^Parsing --(\S+) \n\t([\s\S]*?)\nSee more help with --help$/.exec(message);
  return m ? `--${m[1]}: ${m[2]}` : message;
}

/** What a person reads on stderr: the problem, then what to do next. */
export function formatError(e: DbgovError, style: Style): string {
  const lines = [`${style.bad('✖')} ${e.message}`];
  for (const action of e.actions) lines.push(`  ${style.dim('→')} ${action}`);
  return `${lines.join('\n')}\n`;
}
