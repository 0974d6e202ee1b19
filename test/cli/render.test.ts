import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ActivityEvent } from '../../src/broker/api-types.js';
import { csvLine, formatActivity, relativeTime, renderTable, styleFor, truncate } from '../../src/cli/render.js';
import { checkRange, parseTimeFlag } from '../../src/cli/time-flags.js';

describe('renderTable', () => {
  const rows = [
    { name: 'prod', db: 'app', access: 'read, write (approval)' },
    { name: 'staging-eu', db: 'analytics_warehouse', access: 'read' },
  ];
  const cols = [
    { header: 'NAME', value: (r: (typeof rows)[number]) => r.name },
    { header: 'DATABASE', value: (r: (typeof rows)[number]) => r.db, shrink: true },
    { header: 'ACCESS', value: (r: (typeof rows)[number]) => r.access, shrink: true },
  ];

  it('aligns columns and keeps piped output whole', () => {
    assert.equal(
      renderTable(rows, cols),
      ['NAME        DATABASE             ACCESS', 'prod        app                  read, write (approval)', 'staging-eu  analytics_warehouse  read'].join('\n'),
    );
  });

  it('fits the terminal by cutting the widest shrinkable column with …, never the names', () => {
    const out = renderTable(rows, cols, { width: 44 });
    for (const line of out.split('\n')) assert.ok([...line].length <= 44, line);
    assert.match(out, /staging-eu/);
    assert.match(out, /…/);
  });

  it('right-aligns numbers and puts rows on one line', () => {
    const out = renderTable([{ n: 7, t: 'a\nb' }, { n: 1234, t: 'c' }], [
      { header: 'N', value: (r) => String(r.n), align: 'right' },
      { header: 'T', value: (r) => r.t },
    ]);
    assert.equal(out, '   N  T\n   7  a b\n1234  c');
  });

  it('colours only on a TTY, and never with NO_COLOR', () => {
    assert.equal(styleFor({ isTTY: false }).bad('x'), 'x');
    assert.notEqual(styleFor({ isTTY: true }, {}).bad('x'), 'x');
    assert.equal(styleFor({ isTTY: true }, { NO_COLOR: '1' }).bad('x'), 'x');
  });

  it('truncate counts characters, not bytes', () => {
    assert.equal(truncate('héllo wörld', 6), 'héllo…');
    assert.equal(truncate('short', 10), 'short');
  });
});

describe('formatActivity', () => {
  const base = { time: '2026-01-01T00:00:00.000Z', sessionId: 'ses_1' };
  const cases: [string, ActivityEvent, string][] = [
    ['allowed select', { ...base, type: 'statement', decision: 'allow', statementKind: 'select', rows: 12, durationMs: 3 }, '✔ SELECT 12 rows 3 ms'],
    ['one row', { ...base, type: 'statement', decision: 'allow', statementKind: 'update', rows: 1, durationMs: 0.42 }, '✔ UPDATE 1 row 0.4 ms'],
    ['masked', { ...base, type: 'statement', decision: 'allow', statementKind: 'select', rows: 2, durationMs: 15, maskedColumns: ['email', 'ssn'] }, '✔ SELECT 2 rows 15 ms masked: email, ssn'],
    ['blocked', { ...base, type: 'statement', decision: 'block', statementKind: 'drop', message: 'DROP is not allowed in prod (rule prod-no-ddl)' }, '✖ blocked: DROP is not allowed in prod (rule prod-no-ddl)'],
    ['held', { ...base, type: 'held', requestId: 'ABC123' }, '⏸ waiting for approval ABC123'],
    ['blocked, as the gateway words it: "blocked" once', { ...base, type: 'statement', decision: 'block', statementKind: 'drop', message: 'dbgov: blocked: DROP is not allowed on a protected target' }, '✖ blocked: DROP is not allowed on a protected target'],
    ['held, with the broker\'s message that repeats it: said once', { ...base, type: 'held', requestId: 'ABC123', message: 'waiting for approval ABC123' }, '⏸ waiting for approval ABC123'],
    ['held, with a message that adds something', { ...base, type: 'held', requestId: 'ABC123', message: 'hold 5m' }, '⏸ waiting for approval ABC123 (hold 5m)'],
    ['review decision', { ...base, type: 'statement', decision: 'review', requestId: 'ABC123' }, '⏸ waiting for approval ABC123'],
    ['approved then ran', { ...base, type: 'statement', decision: 'approved', statementKind: 'update', rows: 3, durationMs: 1200, requestId: 'ABC123' }, '✔ UPDATE 3 rows 1.2 s approved (request ABC123)'],
    ['denied', { ...base, type: 'statement', decision: 'denied', requestId: 'ABC123', message: 'add a WHERE' }, '✖ approval denied (request ABC123): add a WHERE'],
    ['timeout', { ...base, type: 'statement', decision: 'timeout', requestId: 'ABC123' }, '✖ approval timed out (request ABC123)'],
    ['refused', { ...base, type: 'refused', message: 'credential revoked' }, '✖ refused: credential revoked'],
    ['session start', { ...base, type: 'session.start' }, '→ session ses_1 opened'],
  ];
  for (const [name, event, expected] of cases) it(name, () => assert.equal(formatActivity(event), expected));
});

describe('relativeTime', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  it('past, future and now', () => {
    assert.equal(relativeTime(now - 5 * 60_000, now), '5m ago');
    assert.equal(relativeTime(now + 3 * 3_600_000, now), 'in 3h');
    assert.equal(relativeTime(now - 1000, now), 'just now');
    assert.equal(relativeTime(now - 3 * 86_400_000, now), '3d ago');
  });
});

describe('csvLine', () => {
  it('quotes only what needs it, doubles quotes, and keeps nested values as JSON', () => {
    assert.equal(csvLine(['a', 1, null, undefined, 'x,y', 'say "hi"', 'l1\nl2', { k: ['v'] }]), 'a,1,,,"x,y","say ""hi""","l1\nl2","{""k"":[""v""]}"\r\n');
  });
});

describe('time flags', () => {
  const now = Date.parse('2026-03-10T12:00:00Z');
  const ok: [string, number][] = [
    ['1h', now - 3_600_000],
    ['30d', now - 30 * 86_400_000],
    ['90s', now - 90_000],
    ['2w', now - 14 * 86_400_000],
    ['now', now],
    ['2026-01-31', Date.parse('2026-01-31T00:00:00Z')],
    ['2026-01-31T12:30:00Z', Date.parse('2026-01-31T12:30:00Z')],
    ['2026-01-31T12:30:00+02:00', Date.parse('2026-01-31T10:30:00Z')],
  ];
  for (const [text, expected] of ok) it(`parses ${text}`, () => assert.equal(parseTimeFlag(text, now), expected));
  for (const bad of ['yesterday', '10', '1 fortnight', '2026-13-45', '']) {
    it(`rejects "${bad}" as a usage error`, () => assert.throws(() => parseTimeFlag(bad, now), (e: { exitCode?: number }) => e.exitCode === 2));
  }
  it('rejects a range that ends before it starts', () => {
    assert.throws(() => checkRange(now, now - 1), /is after --until/);
    assert.doesNotThrow(() => checkRange(now - 1, now));
  });
});
