/**
 * `dbgov audit --json` names a topic, not a command. oclif would print the topic's help text on
 * stdout and exit 0, which a script reading one JSON envelope cannot tell from success. With
 * --json it is a usage error that lists the topic's commands; without --json the help stays.
 */
import type { Hook } from '@oclif/core';
import { UsageError } from '../../shared/errors.js';
import { reportError, wantsJson } from '../base-command.js';

const hook: Hook<'init'> = async function ({ id, argv, config }) {
  if (id === undefined || !wantsJson(argv) || config.findCommand(id) !== undefined || config.findTopic(id) === undefined) return;
  const topic = id.replaceAll(':', ' ');
  const commands = config.commandIDs.filter((c) => c.startsWith(`${id}:`)).map((c) => `dbgov ${c.replaceAll(':', ' ')}`);
  throw reportError(
    new UsageError(`"dbgov ${topic}" is a group of commands; name one of them`, { actions: [...commands.map((c) => `\`${c} --json\``), `see \`dbgov ${topic} --help\``] }),
    true,
  );
};

export default hook;
