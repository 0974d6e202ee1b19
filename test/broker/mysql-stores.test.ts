import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newSessionState, type SessionState } from '../../src/broker/statement-hooks.js';
import { TargetRuntime, type TargetCatalog } from '../../src/broker/target-runtime.js';
import type { LiveSession } from '../../src/broker/sessions.js';
import { compileMasking } from '../../src/masking/config.js';
import { rootLogger } from '../../src/shared/logger.js';
import type { StatementFacts } from '../../src/sql/facts.js';
import type { WriteFlow } from '../../src/sql/lineage.js';
import { analyseMysql } from '../../src/sql/mysql/analyse.js';

const fresh = (): SessionState => newSessionState();
const session = { identity: { id: 'dev', kind: 'human', groups: ['dev'] } } as unknown as LiveSession;
// Stores as the analyser lists them, one flow each (what mysqlTargetCatalog.resolveWriteFlows does for plain columns).
const catalog = {
  loaded: () => true,
  isBaseTable: () => true,
  resolveRelation: () => undefined,
  relations: () => [],
  resolveWriteFlows: (f: StatementFacts): WriteFlow[] =>
    (f.stores ?? []).map((st, index) => {
      const into = st.into as { schema?: string; table: string; column?: string };
      return { dest: { ...(into.schema !== undefined ? { schema: into.schema } : {}), table: into.table }, column: into.column ?? '*', created: false, value: { index, name: 'x', sources: st.sources, opaque: st.opaque, direct: st.direct === true && st.sources.length === 1, ...(st.caseMapped === true && st.sources.length === 1 ? { caseMapped: true as const } : {}) } };
    }),
} as unknown as TargetCatalog;
const masking = compileMasking({
  key: 'stores-test-key-0123456789',
  classes: { card: { function: 'hash' } },
  columns: { '*.users.ssn': 'ssn', '*.users.phone': 'phone', '*.users.card': 'card', '*.orders.card': 'card', '*.users.email': 'email' },
});
const rt = new TargetRuntime({ name: 'staging', config: {} as never, analyse: () => ({ statements: [] }), catalog, masking, log: rootLogger() });
const refused = (sql: string): boolean => {
  const facts = analyseMysql(sql, { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' }).statements;
  return rt.preflight(session, facts, fresh()) !== null;
};

test('a classified value may move only into a column masked the same way', () => {
  // A phone mask keeps the last digits: the SSN's would show.
  assert.equal(refused('UPDATE users SET phone = ssn WHERE id = 1'), true);
  assert.equal(refused('UPDATE users SET phone = card WHERE id = 1'), true);
  assert.equal(refused('UPDATE users SET plan = ssn WHERE id = 1'), true);
  // Same class, same mask.
  assert.equal(refused('UPDATE users SET email = LOWER(email) WHERE id = 1'), false);
  assert.equal(refused('INSERT INTO orders (id, card) SELECT id, card FROM users'), false);
  // card is masked as a token: a value of the client's choosing stored there reads back as the token of a guess.
  assert.equal(refused("INSERT INTO orders (id, card) VALUES (9, '4111 1111 1111 1111')"), true);
  assert.equal(refused('INSERT INTO orders (id, card) SELECT id, LEFT(card, 4) FROM users'), true);
  assert.equal(refused("UPDATE users SET card = '5500 0055 5555 5559' WHERE id = 3"), true);
});

test('a partially masked column takes a classified value only as it is, or case mapped (round 6)', () => {
  // The catalog stub above, passing caseMapped on as mysqlTargetCatalog does.
  const shaped = {
    ...catalog,
    resolveWriteFlows: (f: StatementFacts): WriteFlow[] =>
      (catalog.resolveWriteFlows!(f, null) ?? []).map((w, k) => ({ ...w, value: { ...w.value, ...(f.stores?.[k]?.caseMapped ? { caseMapped: true as const } : {}) } })),
  } as TargetCatalog;
  const my = new TargetRuntime({ name: 'staging', config: { engine: 'mysql' } as never, analyse: () => ({ statements: [] }), catalog: shaped, masking, log: rootLogger() });
  const blocks = (sql: string): boolean => my.preflight(session, analyseMysql(sql, { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false }, currentDb: 'app' }).statements, fresh()) !== null;
  // The phone mask keeps the last four digits: reversed, or cut short, other digits land there.
  assert.equal(blocks('UPDATE users SET phone = REVERSE(phone) WHERE id = 1'), true);
  assert.equal(blocks('INSERT INTO users (id, email, phone) SELECT 98, email, LEFT(phone, 6) FROM users WHERE id = 2'), true);
  assert.equal(blocks("UPDATE users SET email = CONCAT(SUBSTRING_INDEX(email, '@', -1), '@x.org') WHERE id = 1"), true);
  assert.equal(blocks('UPDATE users SET email = TRIM(email) WHERE id = 1'), true);
  // As it is, or with its case changed: the same positions show.
  assert.equal(blocks('UPDATE users SET email = LOWER(email) WHERE id = 1'), false);
  assert.equal(blocks('UPDATE users SET email = UPPER(LCASE(users.email)), phone = phone WHERE id = 1'), false);
  assert.equal(blocks('INSERT INTO users (id, email, phone) SELECT 97, email, phone FROM users WHERE id = 2'), false);
  assert.equal(blocks("INSERT INTO users (id, email, phone) VALUES (96, 'z@x.org', '+1 555 0100')"), false);
  // A redacted column shows nothing of what it holds: a rearranged SSN stays hidden there.
  assert.equal(blocks('UPDATE users SET ssn = REVERSE(ssn) WHERE id = 1'), false);
});
