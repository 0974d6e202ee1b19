import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, formatDuration } from '../../src/shared/clock.js';

test('parseDuration reads the units people type', () => {
  const cases: [string, number | undefined][] = [
    ['30m', 1_800_000],
    ['1h', 3_600_000],
    ['90s', 90_000],
    ['7d', 604_800_000],
    ['15', 15_000],
    ['250ms', 250],
    ['soon', undefined],
    ['-5m', undefined],
  ];
  for (const [text, want] of cases) assert.equal(parseDuration(text), want, text);
});

test('formatDuration rounds to the largest sensible unit', () => {
  assert.equal(formatDuration(500), '500ms');
  assert.equal(formatDuration(90_000), '90s');
  assert.equal(formatDuration(1_800_000), '30m');
  assert.equal(formatDuration(3 * 86_400_000), '3d');
});
