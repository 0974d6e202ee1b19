import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import assert from 'node:assert/strict';
import { parseDocument, LineCounter } from 'yaml';
import { Ajv } from 'ajv';
import { compilePolicy } from '../../src/policy/compile.js';
import { policyJsonSchema } from '../../src/policy/schema.js';
import { ConfigError } from '../../src/shared/errors.js';

/** Parses a dbgov.yaml snippet the way the loader does and hands policy + lineOf to compilePolicy. */
function compileYaml(text: string) {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const lineOf = (path: (string | number)[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lc.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return compilePolicy((doc.toJS() as { policy?: unknown }).policy, { file: 'dbgov.yaml', lineOf });
}

const bad: { name: string; yaml: string; line: number; problem: RegExp }[] = [
  { name: 'unknown kind', yaml: 'policy:\n  statements:\n    - name: x\n      action: block\n      match:\n        statement:\n          kinds: [dropp]\n', line: 7, problem: /must be one of/ },
  { name: 'unknown key', yaml: 'policy:\n  statements:\n    - name: x\n      action: block\n      mtach: {}\n', line: 5, problem: /unknown key "mtach"/ },
  { name: 'missing action', yaml: 'policy:\n  statements:\n    - name: x\n', line: 3, problem: /missing "action"/ },
  { name: 'bad action', yaml: 'policy:\n  statements:\n    - name: x\n      action: deny\n', line: 4, problem: /must be one of allow, review, block/ },
  { name: 'duplicate names', yaml: 'policy:\n  statements:\n    - name: x\n      action: block\n    - name: x\n      action: allow\n', line: 5, problem: /used twice/ },
  { name: 'review settings on a block rule', yaml: 'policy:\n  statements:\n    - name: x\n      action: block\n      review: { hold: 0 }\n', line: 5, problem: /review settings but action block/ },
  { name: 'bad duration', yaml: 'policy:\n  statements:\n    - name: x\n      action: review\n      review: { expires: soon }\n', line: 5, problem: /expires/ },
  { name: 'bad regex', yaml: 'policy:\n  access:\n    - name: x\n      action: allow\n      reason: { pattern: "([" }\n', line: 5, problem: /not a valid regular expression/ },
  { name: 'bad timezone', yaml: 'policy:\n  access:\n    - name: x\n      action: allow\n      match:\n        when:\n          - { timezone: Mars/Olympus }\n', line: 7, problem: /unknown time zone/ },
  { name: 'bad cidr', yaml: 'policy:\n  access:\n    - name: x\n      action: allow\n      match:\n        sourceCidrs: [10.0.0.0/33]\n', line: 6, problem: /not a network address/ },
  { name: 'approvers on a deny rule', yaml: 'policy:\n  access:\n    - name: x\n      action: deny\n      approvers: { groups: [a] }\n', line: 5, problem: /names approvers but its action is deny/ },
];

test('compilePolicy: errors name file, line and fix', () => {
  for (const c of bad) {
    assert.throws(
      () => compileYaml(c.yaml),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, c.name);
        assert.equal(e.file, 'dbgov.yaml', c.name);
        assert.equal(e.line, c.line, `${c.name}: ${e.message}`);
        assert.match(e.message, c.problem, c.name);
        assert.ok(e.fix.length > 0, c.name);
        return true;
      },
      c.name,
    );
  }
});

test('compilePolicy: an absent policy gets the defaults', () => {
  const p = compilePolicy(undefined);
  assert.equal(p.statements.length, 0);
  assert.ok(p.defaults.some((r) => r.name === 'block-drop'));
  assert.deepEqual(p.approvers, { groups: ['dbgov-approvers'], quorum: 1 });
});

test('compilePolicy: durations and review defaults', () => {
  const p = compileYaml('policy:\n  approvers: { groups: [dba] }\n  statements:\n    - name: r\n      action: review\n      review: { hold: 30, window: 5m }\n');
  assert.deepEqual(p.statements[0].review, { approvers: { groups: ['dba'], quorum: 1 }, holdMs: 30_000, expiresMs: 3_600_000, windowMs: 300_000 });
});

test('policyJsonSchema compiles under ajv (draft-07) and every property has a description', () => {
  assert.doesNotThrow(() => new Ajv({ strict: false }).compile(policyJsonSchema));
  const missing: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (n.properties && typeof n.properties === 'object') {
      for (const [k, v] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
        if (!v.description) missing.push(`${path}.${k}`);
        walk(v, `${path}.${k}`);
      }
    }
    if (n.items) walk(n.items, `${path}[]`);
  };
  walk(policyJsonSchema, 'policy');
  assert.deepEqual(missing, []);
});

test('schema/policy.schema.json is the exported schema (regenerate it when this fails)', () => {
  const onDisk: unknown = JSON.parse(readFileSync(resolve(process.cwd(), 'schema/policy.schema.json'), 'utf8'));
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(policyJsonSchema)));
});
