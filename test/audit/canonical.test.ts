import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AuditEvent } from '../../src/audit/event.js';
import { canonicalJson, eventHash, fastJson, sealEvent, stringifiesCanonically } from '../../src/audit/canonical.js';
import { auditIdentity } from '../../src/broker/audit-identity.js';

/** The canonical form as first specified: verification of old logs depends on it, byte for byte. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return reference(withToJson.toJSON());
  if (Array.isArray(value)) return `[${value.map((v) => reference(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    parts.push(`${JSON.stringify(k)}:${reference(v)}`);
  }
  return `{${parts.join(',')}}`;
}

const key = fc.oneof(fc.constantFrom('seq', 'id', 'a', 'B', '10', '9', '__x', 'é', 'kind', 'statement'), fc.string({ maxLength: 6 }));
const leaf = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.date({ noInvalidDate: true }));
const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 8 })),
})).v;

/** No class instances (dates) anywhere: what fastJson always writes once keys are sorted. */
function candidateIsPlain(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return typeof v !== 'function' && typeof v !== 'symbol' && typeof v !== 'bigint';
  if (v instanceof Date) return false;
  return Object.values(v).every(candidateIsPlain);
}

describe('canonical JSON', () => {
  it('matches the reference form on generated values', () => {
    fc.assert(
      fc.property(value, (v) => assert.equal(canonicalJson(v), reference(v))),
      { numRuns: 3000, seed: 3 },
    );
  });

  it('hashes an event exactly as prevHash + canonical JSON without its hash', () => {
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 10 }), fc.stringMatching(/^[0-9a-f]{64}$/), (extra, prevHash) => {
        const event = { ...extra, seq: 7, prevHash, hash: 'ignored' } as unknown as AuditEvent;
        const { hash: _omit, ...body } = event;
        assert.equal(eventHash(event), createHash('sha256').update(prevHash).update(reference(body)).digest('hex'));
      }),
      { numRuns: 1000, seed: 5 },
    );
  });

  it('stringifiesCanonically is true only where JSON.stringify already writes the canonical form', () => {
    fc.assert(
      fc.property(value, (v) => {
        if (stringifiesCanonically(v) && v !== undefined) assert.equal(JSON.stringify(v), reference(v));
      }),
      { numRuns: 3000, seed: 11 },
    );
    // Sorted plain data is recognised (this is what keeps the statement path on the fast form).
    assert.equal(stringifiesCanonically({ a: 1, b: [{ c: null, d: 'x' }], e: { f: true } }), true);
    assert.equal(stringifiesCanonically({ b: 1, a: 2 }), false);
    assert.equal(stringifiesCanonically({ 9: 1, 10: 2 }), false, 'integer keys come first in property order but not in sorted order');
    assert.equal(stringifiesCanonically({ a: new Date(0) }), false);
    assert.equal(stringifiesCanonically({ a: () => 1 }), false);
    assert.equal(stringifiesCanonically([Symbol('s')]), false);
  });

  /** Freezes some objects of a value (shallow, so some frozen objects hold unfrozen ones). */
  const freezeSome = (v: unknown, pick: () => boolean): unknown => {
    if (v === null || typeof v !== 'object' || v instanceof Date) return v;
    for (const k of Object.keys(v)) freezeSome((v as Record<string, unknown>)[k], pick);
    if (pick()) Object.freeze(v);
    return v;
  };

  it('fastJson writes the canonical form wherever it answers, also for frozen values it remembers', () => {
    fc.assert(
      fc.property(value, fc.infiniteStream(fc.boolean()), (v, coins) => {
        const it = coins[Symbol.iterator]();
        const sorted = sortedDeep(v);
        for (const candidate of [v, sorted, freezeSome(sortedDeep(v), () => it.next().value as boolean)]) {
          const j = fastJson(candidate);
          if (j !== undefined) assert.equal(j, reference(candidate));
          // Asked twice (the second answer may come from its memory): the same text.
          assert.equal(fastJson(candidate), j);
        }
        // Plain sorted data without dates always takes the fast form.
        if (sorted !== undefined && candidateIsPlain(sorted) && stringifiesCanonically(sorted)) assert.notEqual(fastJson(sorted), undefined);
      }),
      { numRuns: 3000, seed: 17 },
    );
  });

  it('fastJson never reuses the text of a frozen value whose inner values can still change', () => {
    const inner = { b: 1 };
    const outer = Object.freeze({ a: inner, list: Object.freeze(['x']) });
    assert.equal(fastJson(outer), '{"a":{"b":1},"list":["x"]}');
    inner.b = 2;
    assert.equal(fastJson(outer), '{"a":{"b":2},"list":["x"]}');
    const deep = Object.freeze({ a: Object.freeze({ b: 1 }) });
    assert.equal(fastJson(deep), '{"a":{"b":1}}');
    assert.equal(fastJson(deep), '{"a":{"b":1}}');
    assert.equal(fastJson({ b: 1, a: 2 }), undefined, 'unsorted keys take the general path');
    assert.equal(fastJson({ a: new Date(0) }), undefined);
    assert.equal(fastJson(['\u2028', 'é', '"q"', '\ud800']), JSON.stringify(['\u2028', 'é', '"q"', '\ud800']));
    assert.equal(fastJson([1e21, -0, NaN, 0.1 + 0.2]), JSON.stringify([1e21, -0, NaN, 0.1 + 0.2]));
  });

  const scalar = fc.oneof(fc.string({ maxLength: 8 }), fc.constant(null));
  const sortedDeep = (v: unknown): unknown =>
    v === null || typeof v !== 'object' || v instanceof Date ? v : Array.isArray(v) ? v.map(sortedDeep) : Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortedDeep((v as Record<string, unknown>)[k])]));
  const eventArb = fc.record(
    {
      seq: fc.integer({ min: 1, max: 2 ** 40 }),
      id: fc.string({ maxLength: 12 }),
      time: fc.constant('2026-11-28T10:00:00.000Z'),
      kind: fc.constantFrom('statement', 'statement.result', 'session.start', 'login'),
      broker: fc.string({ maxLength: 6 }),
      identity: fc.oneof(fc.constant(null), value),
      target: scalar,
      database: scalar,
      sessionId: scalar,
      access: fc.constantFrom('read', 'write', undefined),
      statement: value,
      detail: value,
      prevHash: fc.stringMatching(/^[0-9a-f]{64}$/),
      sorted: fc.boolean(),
    },
    { requiredKeys: ['seq', 'id', 'time', 'kind', 'broker', 'identity', 'target', 'database', 'sessionId', 'prevHash', 'sorted'] },
  );

  it('seals an event into the hash eventHash gives and a line that parses back to the same event', () => {
    fc.assert(
      fc.property(eventArb, ({ sorted, ...raw }) => {
        const e = (sorted ? { ...raw, identity: sortedDeep(raw.identity), statement: sortedDeep(raw.statement), detail: sortedDeep(raw.detail) } : raw) as unknown as Omit<AuditEvent, 'hash'>;
        const { hash, line } = sealEvent(e);
        assert.equal(hash, eventHash(e));
        assert.ok(line.startsWith(`{"seq":${e.seq},`), line.slice(0, 30));
        const parsed = JSON.parse(line) as AuditEvent;
        assert.equal(parsed.hash, hash);
        assert.equal(eventHash(parsed), hash, 'verification recomputes the same hash from the stored line');
        assert.deepEqual(parsed, JSON.parse(JSON.stringify({ ...e, hash })));
      }),
      { numRuns: 2000, seed: 13 },
    );
  });

  const text = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('SELECT * FROM users WHERE id = $1', 'naïve "quoted" \\ text', '\u0000\n'));
  const statementRecord = fc.record(
    {
      decision: fc.constantFrom('allow', 'block', 'review'),
      durationMs: fc.oneof(fc.constant(null), fc.double(), fc.integer()),
      error: fc.record({ message: text, sqlstate: fc.constantFrom('42501', '23505') }),
      fingerprint: text,
      kind: text,
      maskedColumns: fc.array(text, { maxLength: 3 }),
      protocol: fc.constantFrom('simple', 'extended', undefined),
      ref: text,
      requestId: text,
      rows: fc.oneof(fc.constant(null), fc.integer()),
      rule: fc.oneof(fc.constant(null), text),
      tables: fc.array(text, { maxLength: 3 }).map((t) => Object.freeze(t)),
      text,
      unmaskedColumns: fc.array(text, { maxLength: 2 }),
      extra: value,
    },
    { requiredKeys: ['decision', 'durationMs', 'fingerprint', 'kind', 'maskedColumns', 'rows', 'rule', 'tables', 'text'] },
  );

  it('seals statement records (any members, any order) to the hash and line of the general form', () => {
    fc.assert(
      fc.property(statementRecord, fc.boolean(), fc.boolean(), (st, shuffled, frozenIdentity) => {
        const statement = shuffled ? Object.fromEntries(Object.entries(st).reverse()) : st;
        const identity = frozenIdentity ? auditIdentity({ id: 'a', kind: 'human', groups: ['g'] } as Parameters<typeof auditIdentity>[0]) : { groups: ['g'], id: 'a', kind: 'human' };
        const e = { seq: 3, id: 'evt_1', time: '2026-11-28T10:00:00.000Z', kind: 'statement', broker: 'b', identity, target: 'prod', database: 'app', sessionId: 'ses_1', statement, prevHash: '0'.repeat(64) } as unknown as Omit<AuditEvent, 'hash'>;
        const { hash, line } = sealEvent(e);
        assert.equal(hash, eventHash(e));
        assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify({ ...e, hash })));
        assert.equal(eventHash(JSON.parse(line) as AuditEvent), hash);
      }),
      { numRuns: 2000, seed: 19 },
    );
  });

  it('serialises the broker statement records natively: their members are in sorted order', () => {
    const identity = auditIdentity({ id: 'ci', kind: 'agent', groups: ['b', 'a'], onBehalfOf: { id: 'alice', kind: 'human', groups: ['dev'] } } as Parameters<typeof auditIdentity>[0]);
    assert.equal(stringifiesCanonically(identity), true);
  });
});
