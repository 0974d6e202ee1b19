import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { analyseMysql } from './src/sql/mysql/analyse.js';
import { decideStatements } from './src/policy/decide.js';
import { compilePolicy } from './src/policy/compile.js';
const cases = parse(readFileSync(process.argv[2], 'utf8')) as { sql: string }[];
const policy = compilePolicy({});
const out = [];
for (const c of cases) {
  const a = analyseMysql(c.sql, { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' });
  const d = decideStatements(policy, { identity: { id: 'dev', kind: 'workload', groups: ['ci'], source: 'service-account' } as never, target: { name: 'prod', engine: 'mysql', labels: { env: 'prod' }, database: 'app', protected: true } as never, database: 'app', access: 'write', classifiedColumns: new Set(), prepared: new Map() }, a.statements);
  out.push({ sql: c.sql, action: d.action, rule: d.rule, kinds: a.statements.map((s) => s.kind) });
}
console.log(JSON.stringify(out));
