import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mysqlAnalyser } from '../../src/broker/mysql-analyser.js';
import { UNKNOWN_SETTING } from '../../src/broker/statement-hooks.js';

const params = (p: Record<string, string> = {}): ReadonlyMap<string, string> => new Map(Object.entries({ database: 'app', ...p }));

describe('mysql analyser cache', () => {
  it('shares one analysis between point queries that differ only in WHERE literals', () => {
    const analyse = mysqlAnalyser(null, 100);
    const a = analyse('SELECT v FROM kv WHERE id = 1', params());
    const b = analyse('SELECT v FROM kv WHERE id = 2', params());
    assert.equal(a, b);
    assert.equal(a.statements[0].redacted, 'SELECT v FROM kv WHERE id = ?');
    assert.deepEqual(
      a.statements[0].relations.map((r) => `${r.schema}.${r.name}`),
      ['app.kv'],
    );
    // The database is part of the key: the same text in another database is another analysis.
    const c = analyse('SELECT v FROM kv WHERE id = 3', params({ database: 'other' }));
    assert.notEqual(c, a);
    assert.equal(c.statements[0].relations[0].schema, 'other');
  });

  it('judges tautologies and exotic texts by their own text', () => {
    const analyse = mysqlAnalyser(null, 100);
    assert.equal(analyse('DELETE FROM kv WHERE id = 1', params()).statements[0].hasWhere, true);
    assert.equal(analyse('DELETE FROM kv WHERE 1 = 1', params()).statements[0].hasWhere, false);
    assert.equal(analyse("DELETE FROM kv WHERE id = 1 OR 'a' = 'a'", params()).statements[0].hasWhere, false);
    const exec = analyse('SELECT v FROM kv WHERE id = 1 /*!50000 ; DROP TABLE kv */', params());
    assert.deepEqual(
      exec.statements.map((s) => s.kind),
      ['select', 'drop'],
    );
  });

  it('reports a shape that does not parse with the text the client sent', () => {
    const analyse = mysqlAnalyser(null, 100);
    const sql = 'UPDATE kv SET v = 1 WHERE id = 12345 GROUP BY v';
    const [f] = analyse(sql, params()).statements;
    assert.equal(f.kind, 'unknown');
    assert.equal(f.text, sql);
  });

  it('still checks every quoting mode when sql_mode is unknown', () => {
    const analyse = mysqlAnalyser(null, 100);
    assert.equal(analyse('SELECT v FROM kv WHERE id = 1', params({ sql_mode: UNKNOWN_SETTING })).statements[0].opaque, undefined);
    assert.equal(analyse('SELECT "a\\" FROM kv WHERE id = 1', params({ sql_mode: UNKNOWN_SETTING })).statements[0].opaque?.reason, 'parse-error');
  });

  it('an ALTER that retypes a column overwrites data unless the mode the session runs it under is strict', () => {
    const analyse = mysqlAnalyser(null, 100);
    const actions = (sql: string, mode: string): string[][] => analyse(sql, params({ sql_mode: mode })).statements.map((f) => f.actions ?? []);
    const overwrites = (sql: string, mode: string): boolean[] => actions(sql, mode).map((a) => a.includes('ALTER TABLE OVERWRITE COLUMN'));
    assert.deepEqual(overwrites('ALTER TABLE orders MODIFY status INT', 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'), [false]);
    assert.deepEqual(overwrites('ALTER TABLE orders MODIFY status INT', 'TRADITIONAL'), [false]);
    assert.deepEqual(overwrites('ALTER TABLE orders MODIFY status INT', 'NO_ENGINE_SUBSTITUTION'), [true]);
    assert.deepEqual(overwrites('ALTER TABLE orders CHANGE status status INT', ''), [true]);
    assert.deepEqual(overwrites('ALTER TABLE orders CONVERT TO CHARACTER SET latin1', ''), [true]);
    assert.deepEqual(overwrites('ALTER TABLE orders MODIFY status INT', UNKNOWN_SETTING), [true]);
    // A SET earlier in the same message is the mode the ALTER runs under.
    assert.deepEqual(overwrites("SET SESSION sql_mode = ''; ALTER TABLE orders MODIFY status INT", 'STRICT_ALL_TABLES'), [false, true]);
    assert.deepEqual(overwrites("SET sql_mode = 'STRICT_ALL_TABLES'; ALTER TABLE orders MODIFY status INT", ''), [false, false]);
    // After a computed mode, the rest of the message cannot even be lexed: it is opaque (blocked on protected targets).
    assert.equal(analyse("SET sql_mode = CONCAT('STRICT_', 'ALL_TABLES'); ALTER TABLE orders MODIFY status INT", params({ sql_mode: 'STRICT_ALL_TABLES' })).statements[1].opaque?.reason, 'parse-error');
    // Adding a column changes no stored value.
    assert.deepEqual(overwrites('ALTER TABLE orders ADD COLUMN note TEXT', ''), [false]);
    // MariaDB's SET STATEMENT gives the ALTER its own mode, whatever the session's (round 5:
    // this cut every status to one character on a protected target), and leaves the session's alone.
    assert.deepEqual(overwrites("SET STATEMENT sql_mode = '' FOR ALTER TABLE orders MODIFY status VARCHAR(1)", 'STRICT_TRANS_TABLES'), [true]);
    assert.deepEqual(overwrites("SET STATEMENT sql_mode = 'STRICT_ALL_TABLES' FOR ALTER TABLE orders MODIFY status INT", ''), [false]);
    assert.deepEqual(overwrites("SET STATEMENT sql_mode = '' FOR SELECT 1; ALTER TABLE orders MODIFY status INT", 'STRICT_ALL_TABLES'), [false, false]);
    // A prepared ALTER runs under the mode of a later EXECUTE, after a SET sql_mode = '' perhaps
    // (round 5: PREPARE under strict mode, SET sql_mode = '', EXECUTE cut every card on prod).
    const inner = analyse("PREPARE s FROM 'ALTER TABLE orders MODIFY card VARCHAR(2)'", params({ sql_mode: 'STRICT_TRANS_TABLES' })).statements[0].prepare?.inner;
    assert.ok(inner?.actions?.includes('ALTER TABLE OVERWRITE COLUMN'));
    const viaProtocol = analyse('ALTER TABLE orders MODIFY card VARCHAR(2)', params({ sql_mode: 'STRICT_TRANS_TABLES' }), true).statements[0];
    assert.ok(viaProtocol.actions?.includes('ALTER TABLE OVERWRITE COLUMN'));
  });
});

describe('SET sql_mode = DEFAULT', () => {
  // A server whose global sql_mode quotes identifiers with double quotes.
  const catalog = { serverInfo: () => ({ version: 101119, mariadb: true, sqlMode: 'ANSI_QUOTES,STRICT_TRANS_TABLES' }) } as unknown as Parameters<typeof mysqlAnalyser>[0];
  it('gives the session the server\'s global mode, not a mode named DEFAULT', () => {
    const analyse = mysqlAnalyser(catalog, 100);
    const after = analyse('SELECT CONCAT("full_name", \'\') FROM users', params({ sql_mode: 'default' }));
    assert.deepEqual(after.statements[0].lineage?.[0].sources.map((s) => s.column), ['full_name']);
  });
  it('in the same message too', () => {
    const analyse = mysqlAnalyser(catalog, 100);
    const [, f] = analyse('SET sql_mode = DEFAULT; SELECT CONCAT("full_name", \'\') FROM users', params({ sql_mode: '' })).statements;
    assert.deepEqual(f.lineage?.[0].sources.map((s) => s.column), ['full_name']);
  });
});
