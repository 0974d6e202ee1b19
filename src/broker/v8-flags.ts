/**
 * V8 settings for the broker process. `dbgov broker start` is a long-running proxy that should
 * sit in a small, steady amount of memory; V8's defaults suit short, allocation-heavy scripts.
 * bin/run.js applies these before it loads anything else, because both only take effect for
 * code compiled and memory allocated afterwards.
 */
import { setFlagsFromString } from 'node:v8';

interface BrokerV8Flag {
  flag: string;
  /** An operator who sets any of these V8 options (command line or NODE_OPTIONS) keeps their own. */
  yieldsTo: string[];
}

export const BROKER_V8_FLAGS: readonly BrokerV8Flag[] = [
  {
    // libpg-query is a large WASM module. V8 re-compiles its hot functions with TurboFan on
    // background threads, and the parser's huge functions need about 90 MB of compiler scratch
    // memory, which glibc keeps in those threads' malloc arenas for the life of the process.
    // Liftoff code costs about 3 µs more per parse, and only statements not yet in the facts
    // cache are parsed.
    flag: '--liftoff-only',
    yieldsTo: ['liftoff-only', 'liftoff', 'wasm-tier-up', 'wasm-dynamic-tiering'],
  },
  {
    // Keeps the young generation at its initial 1 MB semi-spaces instead of letting it grow to
    // 16 MB each (32 MB resident once used). Socket reads are Buffers outside the JS heap, freed
    // only when a scavenge finds their small JS objects dead, so a large young generation also
    // lets a streamed result hold tens of MB of read chunks between collections. The price is
    // more scavenges: GC time per statement grows with the bytes each statement allocates.
    // Only a runtime setting holds: V8 raises a command-line factor below 2 back to 2.
    flag: '--semi-space-growth-factor=1',
    yieldsTo: ['semi-space-growth-factor', 'max-semi-space-size', 'min-semi-space-size', 'max-heap-size'],
  },
];

/** `dbgov broker start …` (oclif also accepts `broker:start`). */
export function isBrokerStart(argv: readonly string[]): boolean {
  return (argv[0] === 'broker' && argv[1] === 'start') || argv[0] === 'broker:start';
}

/**
 * Sets the broker's V8 flags, except those the operator set themselves (on node's command line
 * or in NODE_OPTIONS). Returns the flags it set.
 */
export function applyBrokerV8Flags(nodeArgs: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)], set: (flag: string) => void = setFlagsFromString): string[] {
  const given = new Set(nodeArgs.filter((a) => a.startsWith('--')).map(optionName));
  const applied: string[] = [];
  for (const f of BROKER_V8_FLAGS) {
    if (f.yieldsTo.some((name) => given.has(name))) continue;
    set(f.flag);
    applied.push(f.flag);
  }
  return applied;
}

/** `--no-max_semi-space-size=4` → `max-semi-space-size`: V8 accepts `_` for `-` and a `no-` prefix. */
function optionName(arg: string): string {
  const name = arg.slice(2).split('=')[0].replace(/_/g, '-');
  return name.startsWith('no-') ? name.slice(3) : name;
}
