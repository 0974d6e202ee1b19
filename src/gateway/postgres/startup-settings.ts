/**
 * The settings a client's startup packet makes, read the way the server reads them, so that what
 * the gateway forwards and what it tells the broker (the search_path names resolve under) are one
 * and the same thing.
 *
 * The server applies the `options` switches first, in order, then the packet's own parameters, in
 * order; the last value of a setting wins. Setting names are case-insensitive, and a switch's
 * name may spell `_` as `-` (`-c search-path=x`).
 * https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-OPTIONS
 * (postinit.c process_startup_options, pg_split_opts; guc.c ParseLongOption)
 */

/** Startup settings a client may pass to the server: formatting and session defaults only. */
const PASSABLE_SETTINGS = new Set([
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'intervalstyle',
  'extra_float_digits',
  'search_path',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'bytea_output',
  'default_transaction_read_only',
]);

/** Packet fields that are not settings: the target supplies `user` and `database`. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication']);

export interface StartupSettings {
  /** Effective settings (lower-case names, last value wins), to forward as the packet's own parameters. */
  settings: Map<string, string>;
  /** Parameters (or `options` switches) not forwarded: they could switch role or protocol mode behind policy's back. */
  dropped: string[];
}

export function startupSettings(params: ReadonlyMap<string, string>): StartupSettings {
  const settings = new Map<string, string>();
  const dropped: string[] = [];
  const set = (name: string, value: string): void => {
    // Re-inserted so that the map's order is the order the server applies them in.
    settings.delete(name);
    settings.set(name, value);
  };
  // The server compares these four field names exactly; `Options` would be a (failing) setting.
  const options = params.get('options');
  if (options !== undefined) {
    const parsed = optionSwitches(options);
    // All or nothing: forwarding part of what the client asked for would run a session it did not ask for.
    if (parsed === undefined) dropped.push('options');
    else for (const [name, value] of parsed) set(name, value);
  }
  for (const [name, value] of params) {
    if (NOT_SETTINGS.has(name)) {
      if (name === 'replication') dropped.push(name);
      continue;
    }
    const lower = name.toLowerCase();
    if (PASSABLE_SETTINGS.has(lower)) set(lower, value);
    else dropped.push(name);
  }
  return { settings, dropped };
}

/**
 * The `-c name=value` and `--name=value` switches of an `options` string, or undefined when any
 * switch is something else (or names a setting outside the allow-list).
 */
function optionSwitches(options: string): [string, string][] | undefined {
  const tokens = splitOptions(options);
  const out: [string, string][] = [];
  for (let i = 0; i < tokens.length; i++) {
    let setting: string | undefined;
    if (tokens[i] === '-c') setting = tokens[++i];
    else if (tokens[i].startsWith('--')) setting = tokens[i].slice(2);
    else if (tokens[i].startsWith('-c')) setting = tokens[i].slice(2);
    if (setting === undefined) return undefined;
    const eq = setting.indexOf('=');
    if (eq <= 0) return undefined;
    const name = setting.slice(0, eq).toLowerCase().replace(/-/g, '_');
    if (!PASSABLE_SETTINGS.has(name)) return undefined;
    out.push([name, setting.slice(eq + 1)]);
  }
  return out;
}

/** pg_split_opts: whitespace separates, a backslash takes the next character literally. */
function splitOptions(options: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && isSpace(options[i])) i++;
    if (i >= options.length) break;
    let token = '';
    let escaped = false;
    for (; i < options.length; i++) {
      const ch = options[i];
      if (isSpace(ch) && !escaped) break;
      if (!escaped && ch === '\\') escaped = true;
      else {
        escaped = false;
        token += ch;
      }
    }
    tokens.push(token);
  }
  return tokens;
}

/** C isspace() in the "C" locale. */
function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';
}
