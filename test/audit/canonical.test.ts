import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AuditEvent } from '../../src/audit/event.js';
import { canonicalJson, eventHash } from '../../src/audit/canonical.js';

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
});
