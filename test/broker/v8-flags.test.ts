import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyBrokerV8Flags, isBrokerStart } from '../../src/broker/v8-flags.js';

const ALL = ['--liftoff-only', '--semi-space-growth-factor=1'];

test('only `dbgov broker start` gets the broker V8 flags', () => {
  const cases: [string[], boolean][] = [
    [['broker', 'start'], true],
    [['broker', 'start', '--config', 'dbgov.yaml', '--json'], true],
    [['broker:start'], true],
    [['broker', '--help'], false],
    [['broker'], false],
    [['demo'], false],
    [['connect', 'broker', 'start'], false],
    [[], false],
  ];
  for (const [argv, expected] of cases) assert.equal(isBrokerStart(argv), expected, argv.join(' '));
});

test('an operator-set V8 option wins over the broker default', () => {
  const cases: [string[], string[]][] = [
    [[], ALL],
    [['--inspect', '--enable-source-maps'], ALL],
    [['--no-liftoff-only'], ['--semi-space-growth-factor=1']],
    [['--no-liftoff_only'], ['--semi-space-growth-factor=1']],
    [['--wasm-dynamic-tiering'], ['--semi-space-growth-factor=1']],
    [['--max-semi-space-size=16'], ['--liftoff-only']],
    [['--max_semi_space_size=16'], ['--liftoff-only']],
    [['--semi-space-growth-factor=2'], ['--liftoff-only']],
    [['--max-heap-size=512', '--no-liftoff-only'], []],
  ];
  for (const [nodeArgs, expected] of cases) {
    const set: string[] = [];
    assert.deepEqual(applyBrokerV8Flags(nodeArgs, (f) => set.push(f)), expected, nodeArgs.join(' '));
    assert.deepEqual(set, expected, nodeArgs.join(' '));
  }
});
