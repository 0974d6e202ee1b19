import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AuditEvent } from '../../src/audit/event.js';
import { canonicalJson, eventHash, sealEvent, stringifiesCanonically } from '../../src/audit/canonical.js';
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

  it('serialises the broker statement records natively: their members are in sorted order', () => {
    const identity = auditIdentity({ id: 'ci', kind: 'agent', groups: ['b', 'a'], onBehalfOf: { id: 'alice', kind: 'human', groups: ['dev'] } } as Parameters<typeof auditIdentity>[0]);
    assert.equal(stringifiesCanonically(identity), true);
  });
});
