/**
 * oclif's own answer to an unknown command is a bare "command x not found" on stderr, even with
 * --json. This hook keeps the CLI contract there too: one envelope on stdout with --json, exit 2,
 * and the next step (the closest command, then `dbgov --help`).
 */
import { loadHelpClass, type Hook } from '@oclif/core';
import { UsageError } from '../../shared/errors.js';
import { reportError, wantsJson } from '../base-command.js';

const hook: Hook<'command_not_found'> = async function ({ id, argv, config }) {
  const words = id.split(':');
  const typed = words.join(' ');
  const json = wantsJson([...words, ...(argv ?? [])]);
  // `dbgov help audit search` is how many people ask; it is the same as `dbgov audit search --help`.
  const asked = words[0] === 'help' ? [...words.slice(1), ...(argv ?? [])].filter((w) => !w.startsWith('-')) : [];
  const known = asked.length === 0 || config.findCommand(asked.join(':')) !== undefined || config.findTopic(asked.join(':')) !== undefined;
  if (words[0] === 'help' && !json && known) {
    const Help = await loadHelpClass(config);
    await new Help(config).showHelp(asked);
    return;
  }
  const wanted = words[0] === 'help' && asked.length > 0 ? asked.join(' ') : typed;
  const commands = config.commandIDs.map((c) => c.replaceAll(':', ' '));
  const near = closest(wanted, commands);
  const error = typed.startsWith('-')
    ? new UsageError('dbgov needs a command before its flags', { actions: ['e.g. `dbgov whoami --json`', 'see `dbgov --help` for every command'] })
    : new UsageError(`dbgov has no command "${wanted}"`, {
        actions: [...near.map((c) => `did you mean \`dbgov ${c}\`?`), 'see `dbgov --help` for every command'],
      });
  throw reportError(error, json);
};

export default hook;

/** The commands a typo most likely meant: within two edits, or starting with what was typed. */
function closest(typed: string, commands: readonly string[]): string[] {
  const scored = commands
    .map((c) => ({ c, d: c.startsWith(`${typed} `) ? 0 : distance(typed, c) }))
    .filter((x) => x.d <= 2)
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c));
  return scored.slice(0, 3).map((x) => x.c);
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
