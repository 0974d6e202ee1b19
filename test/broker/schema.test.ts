import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { dbgovJsonSchema } from '../../src/broker/schema.js';

test('schema/dbgov.schema.json is the generated schema (regenerate: node bin/run.js config schema > schema/dbgov.schema.json)', () => {
  const committed = JSON.parse(readFileSync(resolve(process.cwd(), 'schema/dbgov.schema.json'), 'utf8')) as unknown;
  assert.deepEqual(committed, JSON.parse(JSON.stringify(dbgovJsonSchema())));
});

test('the example config validates against the published schema, and a typo does not', () => {
  const validate = new Ajv({ strict: false, allErrors: true }).compile(dbgovJsonSchema());
  const example = parse(readFileSync(resolve(process.cwd(), 'examples/dbgov.yaml'), 'utf8')) as Record<string, unknown>;
  assert.ok(validate(example), JSON.stringify(validate.errors));
  const typo = structuredClone(example) as { policy: { statements: Record<string, unknown>[] } };
  typo.policy.statements[0].acton = 'block';
  assert.ok(!validate(typo));
});
