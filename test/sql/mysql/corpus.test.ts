import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { analyseMysql } from '../../../src/sql/mysql/analyse.js';

interface Case {
  sql: string;
  kind?: string;
  kinds?: string[];
  relations?: string[];
  risks?: string[];
  hasWhere?: boolean | null;
  opaque?: string | null;
  multi?: boolean;
}

const cases = parse(readFileSync('test/corpus/mysql-guardrails.yaml', 'utf8')) as Case[];
const opts = { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' };

describe('mysql guardrail corpus', () => {
  it('has at least 80 statements', () => assert.ok(cases.length >= 80, `${cases.length}`));
  for (const c of cases) {
    it(c.sql, () => {
      const { statements } = analyseMysql(c.sql, opts);
      const kinds = statements.map((s) => s.kind);
      if (c.kinds) assert.deepEqual(kinds, c.kinds);
      else assert.deepEqual(kinds, [c.kind]);
      if (c.relations) {
        const rels = statements.flatMap((s) => s.relations.map((r) => `${r.schema ?? ''}.${r.name}:${r.access}`));
        assert.deepEqual(new Set(rels), new Set(c.relations));
      }
      if (c.risks) assert.deepEqual(statements.flatMap((s) => s.functions.map((f) => `${f.name}:${f.risks.join(',')}`)), c.risks);
      if (c.hasWhere !== undefined) assert.equal(statements[statements.length - 1].hasWhere, c.hasWhere);
      if (c.opaque !== undefined) assert.equal(statements.find((s) => s.opaque)?.opaque?.reason ?? null, c.opaque);
      if (c.multi) assert.ok(statements.every((s) => s.multiStatement));
    });
  }
});
