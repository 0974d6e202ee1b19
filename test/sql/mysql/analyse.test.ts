import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyseMysql, sqlModeFlags, sqlModeStrict, type MysqlAnalyseOptions } from '../../../src/sql/mysql/analyse.js';
import { runsStoredCode, type KnownFunctions } from '../../../src/sql/mysql/functions.js';
import type { FunctionRef } from '../../../src/sql/facts.js';

const MARIA: MysqlAnalyseOptions = { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false } };
const MYSQL8: MysqlAnalyseOptions = { serverVersion: 80036, mariadb: false, sqlMode: { noBackslashEscapes: false, ansiQuotes: false } };
const MYSQL57: MysqlAnalyseOptions = { serverVersion: 50744, mariadb: false, sqlMode: { noBackslashEscapes: false, ansiQuotes: false } };
const kinds = (sql: string, o: MysqlAnalyseOptions): string[] => analyseMysql(sql, o).statements.map((s) => s.kind);

describe('executable comments run exactly when the server would run them', () => {
  const table: [string, MysqlAnalyseOptions, string[]][] = [
    ['SELECT 1 /*! ; DROP TABLE x */', MYSQL8, ['select', 'drop']],
    ['SELECT 1 /*! ; DROP TABLE x */', MARIA, ['select', 'drop']],
    ['SELECT 1 /*!50000 ; DROP TABLE x */', MYSQL57, ['select', 'drop']],
    ['SELECT 1 /*!80000 ; DROP TABLE x */', MYSQL57, ['select']],
    ['SELECT 1 /*!80000 ; DROP TABLE x */', MYSQL8, ['select', 'drop']],
    // MariaDB ignores /*! versions 50700–99999 (MySQL-only syntax), verified against MariaDB 10.11.
    ['SELECT 1 /*!80000 ; DROP TABLE x */', MARIA, ['select']],
    ['SELECT 1 /*!50700 ; DROP TABLE x */', MARIA, ['select']],
    ['SELECT 1 /*!50699 ; DROP TABLE x */', MARIA, ['select', 'drop']],
    ['SELECT 1 /*!100100 ; DROP TABLE x */', MARIA, ['select', 'drop']],
    ['SELECT 1 /*M! ; DROP TABLE x */', MARIA, ['select', 'drop']],
    ['SELECT 1 /*M! ; DROP TABLE x */', MYSQL8, ['select']],
    ['SELECT 1 /*M!50700 ; DROP TABLE x */', MARIA, ['select', 'drop']],
    ['SELECT 1 /*M!100100 ; DROP TABLE x */', MARIA, ['select', 'drop']],
    ['SELECT 1 /*M!110000 ; DROP TABLE x */', MARIA, ['select']],
    ['SELECT 1 /* ; DROP TABLE x */', MARIA, ['select']],
    ['/*!DROP TABLE x*/', MYSQL8, ['drop']],
    ['SELECT 1 /*!', MARIA, ['unknown']],
  ];
  for (const [sql, o, want] of table) it(`${sql} on ${o.mariadb ? 'MariaDB' : 'MySQL'} ${o.serverVersion}`, () => assert.deepEqual(kinds(sql, o), want));
});

describe('quoting and sql_mode', () => {
  const ansi = { ...MARIA, sqlMode: { noBackslashEscapes: false, ansiQuotes: true } };
  const nbe = { ...MARIA, sqlMode: { noBackslashEscapes: true, ansiQuotes: false } };
  const table: [string, MysqlAnalyseOptions, string[], string[]][] = [
    ['SELECT * FROM `drop; table`', MARIA, ['select'], ['drop; table:read']],
    ['SELECT * FROM `a``b`', MARIA, ['select'], ['a`b:read']],
    ['SELECT "x; DROP TABLE t"', MARIA, ['select'], []],
    ['SELECT * FROM "users"', ansi, ['select'], ['users:read']],
    // Under ANSI_QUOTES this is a column named `; DROP TABLE t`, not a string and not a DROP.
    ['SELECT "; DROP TABLE t"', ansi, ['select'], []],
    // With backslash escapes, \' does not end the string; without them it does.
    ["SELECT 'a\\'; DROP TABLE t; -- '", MARIA, ['select'], []],
    ["SELECT 'a\\'; DROP TABLE t; -- '", nbe, ['select', 'drop'], ['t:ddl']],
    ["SET sql_mode='ANSI_QUOTES'; SELECT * FROM \"t\"", MARIA, ['set', 'select'], ['t:read']],
    ["SET sql_mode='NO_BACKSLASH_ESCAPES'; SELECT 'a\\'; DROP TABLE t; -- '", MARIA, ['set', 'select', 'drop'], ['t:ddl']],
  ];
  for (const [sql, o, wantKinds, wantRels] of table) {
    it(sql, () => {
      const { statements } = analyseMysql(sql, o);
      assert.deepEqual(
        statements.map((s) => s.kind),
        wantKinds,
      );
      assert.deepEqual(
        statements.flatMap((s) => s.relations.map((r) => `${r.name}:${r.access}`)),
        wantRels,
      );
    });
  }
});

describe('USE tracking, redaction, fingerprint, lineage', () => {
  it('resolves unqualified names against the database chosen by USE in the same message', () => {
    const { statements } = analyseMysql('SELECT * FROM t; USE b; SELECT * FROM t', { ...MARIA, currentDb: 'a' });
    assert.deepEqual(
      statements.map((s) => s.relations.map((r) => r.schema)),
      [['a'], [], ['b']],
    );
    assert.deepEqual(statements[1].settings, [{ name: 'database', value: 'b', local: false }]);
  });

  it('redacts every literal and shares a fingerprint across literal values', () => {
    const a = analyseMysql("SELECT * FROM users WHERE email = 'a@b.c' AND id IN (1, 2, 3) /* secret */", MARIA).statements[0];
    const b = analyseMysql("select * from users where email = 'z@y.x' and id in (9)", MARIA).statements[0];
    assert.equal(a.redacted, 'SELECT * FROM users WHERE email = ? AND id IN (?, ?, ?)');
    assert.equal(a.fingerprint, b.fingerprint);
    assert.doesNotMatch(a.redacted, /a@b|secret/);
  });

  const lineage: [string, string[]][] = [
    ['SELECT email FROM users', ['email<-users.email=']],
    ['SELECT u.email AS e FROM users u', ['e<-users.email=']],
    ['SELECT CONCAT(first, last) AS n FROM users', ['n<-users.first,users.last']],
    ['SELECT * FROM users', ['*<-users.*=']],
    ['SELECT x FROM (SELECT email AS x FROM users) d', ['x<-users.email=']],
    ['SELECT (SELECT email FROM users LIMIT 1) AS e', ['e<-users.email']],
    ['SELECT a.id, b.ssn FROM a JOIN b ON a.id = b.id', ['id<-a.id=', 'ssn<-b.ssn=']],
    ['SELECT email FROM users UNION SELECT phone FROM contacts', ['email<-users.email,contacts.phone']],
    // A string after a column is its alias, not a typed literal (DATE '…', _utf8mb4 '…', N'…').
    ["SELECT email 'e', ssn \"s\" FROM users", ['e<-users.email=', 's<-users.ssn=']],
    ["SELECT DATE '2024-01-01' AS d, _utf8mb4 'x' AS c FROM users", ['d<-', 'c<-']],
    // A table value constructor has lineage, as a statement, a derived table or a set operand.
    ["VALUES ((SELECT ssn FROM users LIMIT 1)), ('x')", ['(SELECT ssn FROM users LIMIT 1)<-users.ssn']],
    ['SELECT * FROM (VALUES ((SELECT address FROM users WHERE id = 1))) v', ['(SELECT address FROM users WHERE id = 1)<-users.address']],
    ["SELECT CONCAT(a, '') AS c FROM (VALUES ('a') UNION ALL SELECT address FROM users) AS t", ['c<-users.address']],
    // JSON_TABLE's columns carry what its document carries; its COLUMNS clause names no column.
    // A JSON_TABLE column is what a path finds in a document, not the column itself (JSON_ARRAY(u.full_name, '<guess>')).
    ["SELECT j.v FROM users u, JSON_TABLE(JSON_ARRAY(u.full_name), '$[*]' COLUMNS (v VARCHAR(200) PATH '$')) AS j", ['v<-users.full_name']],
    ["SELECT s.card FROM (SELECT card FROM users) s", ['card<-users.card=']],
    ["SELECT v FROM (SELECT card AS v FROM users UNION ALL SELECT 'x') s", ['v<-users.card']],
    ["SELECT * FROM JSON_TABLE((SELECT JSON_ARRAYAGG(email) FROM users), '$[*]' COLUMNS (v TEXT PATH '$', n FOR ORDINALITY)) j", ['*<-users.email']],
    ["SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (v INT PATH '$')) j", ['*<-']],
  ];

  it('INTO after a UNION stores what every branch carries', () => {
    const f = analyseMysql("SELECT email FROM users WHERE id = 1 UNION SELECT phone FROM contacts LIMIT 1 INTO @v", MARIA).statements[0];
    assert.deepEqual(f.stores?.map((st) => [st.into, st.sources.map((s) => `${s.table}.${s.column}`)]), [['variable', ['users.email', 'contacts.phone']]]);
  });
  for (const [sql, want] of lineage) {
    it(`lineage: ${sql}`, () => {
      const l = analyseMysql(sql, MARIA).statements[0].lineage ?? [];
      assert.deepEqual(
        l.map((c) => `${c.name}<-${c.sources.map((s) => `${s.table}.${s.column}`).join(',')}${c.opaque ? '!' : ''}${c.direct ? '=' : ''}`),
        want,
      );
    });
  }
});

describe('sql_mode', () => {
  it('combination modes that include ANSI_QUOTES switch double quotes to identifiers', () => {
    for (const mode of ['ANSI_QUOTES', 'ansi', 'ORACLE', 'POSTGRESQL', 'MSSQL', 'DB2', 'MAXDB', 'STRICT_TRANS_TABLES, oracle']) {
      assert.equal(sqlModeFlags(mode).ansiQuotes, true, mode);
    }
    for (const mode of ['', 'STRICT_TRANS_TABLES,NO_ZERO_DATE', 'TRADITIONAL', 'NO_BACKSLASH_ESCAPES']) assert.equal(sqlModeFlags(mode).ansiQuotes, false, mode);
    // Under ORACLE mode "full_name" is a column, so it reaches the lineage.
    const f = analyseMysql(`SET sql_mode = 'ORACLE'; SELECT CONCAT("full_name", '') FROM users`, MARIA).statements[1];
    assert.deepEqual(f.lineage?.[0].sources.map((s) => s.column), ['full_name']);
  });
  it('a number sets the modes of its bits (SET sql_mode = 4 is ANSI_QUOTES)', () => {
    assert.deepEqual(sqlModeFlags('4'), { ansiQuotes: true, noBackslashEscapes: false });
    assert.deepEqual(sqlModeFlags('1048576'), { ansiQuotes: false, noBackslashEscapes: true });
    assert.equal(sqlModeFlags('262144').ansiQuotes, true, 'ANSI');
    assert.equal(sqlModeStrict('2097152'), true, 'STRICT_TRANS_TABLES');
    assert.deepEqual(kinds("SET sql_mode = 1048576; SELECT 'a\\'; DROP TABLE x; -- '", MARIA), ['set', 'select', 'drop']);
  });
  it('SET GLOBAL sql_mode leaves the session\'s mode (and how the rest of the message lexes) as it is', () => {
    assert.deepEqual(kinds("SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'a\\'; DROP TABLE x; -- '", MARIA), ['admin', 'select']);
    assert.deepEqual(kinds("SET @@global.sql_mode = 'ANSI_QUOTES', SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'a\\'; DROP TABLE x; -- '", MARIA), ['admin', 'select', 'drop']);
    assert.deepEqual(analyseMysql("SET GLOBAL sql_mode = ''", MARIA).statements[0].settings, [{ name: 'sql_mode', value: '', local: false, global: true }]);
  });
});

describe('ALTER TABLE actions, diagnostics and handlers', () => {
  const first = (sql: string) => analyseMysql(sql, MARIA).statements[0];
  it('names what an ALTER TABLE does to rows already there', () => {
    assert.deepEqual(first('ALTER TABLE t DROP COLUMN x').actions, ['ALTER TABLE DROP COLUMN']);
    assert.deepEqual(first('ALTER TABLE t DROP x, ADD y INT').actions, ['ALTER TABLE DROP COLUMN']);
    assert.equal(first('ALTER TABLE t DROP INDEX i, DROP PRIMARY KEY, DROP FOREIGN KEY f').actions, undefined);
    assert.deepEqual(first('ALTER TABLE t TRUNCATE PARTITION ALL').actions, ['ALTER TABLE TRUNCATE PARTITION']);
    assert.deepEqual(first('ALTER TABLE t DROP PARTITION p0').actions, ['ALTER TABLE DROP PARTITION']);
    assert.deepEqual(first('ALTER TABLE t DISCARD TABLESPACE').actions, ['ALTER TABLE DISCARD TABLESPACE']);
    assert.deepEqual(first('ALTER TABLE t ENGINE = BLACKHOLE').actions, ['ALTER TABLE ENGINE BLACKHOLE']);
    assert.equal(first('ALTER TABLE t ENGINE = InnoDB, ADD COLUMN z INT').actions, undefined);
  });
  it('marks statements that return or store earlier warnings', () => {
    assert.equal(first('SHOW WARNINGS').diagnostics, true);
    assert.equal(first('SHOW COUNT(*) ERRORS').diagnostics, true);
    assert.equal(first('GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT').diagnostics, true);
    assert.equal(first('SHOW TABLES').diagnostics, undefined);
  });
  it('follows HANDLER names like cursors', () => {
    assert.deepEqual(first('HANDLER users OPEN AS h').cursor, { name: 'h', op: 'declare' });
    assert.deepEqual(first('HANDLER users OPEN').cursor, { name: 'users', op: 'declare' });
    assert.deepEqual(first('HANDLER H READ FIRST').cursor, { name: 'h', op: 'fetch' });
    assert.deepEqual(first('HANDLER h CLOSE').cursor, { name: 'h', op: 'close' });
    assert.deepEqual(first('HANDLER users OPEN AS h').lineage?.[0].sources, [{ table: 'users', column: '*' }]);
  });
  it('DEALLOCATE names the statement', () => {
    assert.deepEqual(first('DEALLOCATE PREPARE s1').deallocate, { name: 's1' });
    assert.deepEqual(first('DROP PREPARE s2').deallocate, { name: 's2' });
  });
});

describe('a parenthesised subquery that starts an expression is not a query in parentheses', () => {
  const f = (sql: string) => analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0];
  it('reads the subquery as a value of the expression', () => {
    // These were parse errors: `((SELECT …), x)` was read as a parenthesised query.
    assert.deepEqual(f("SELECT CONCAT((SELECT full_name FROM users LIMIT 1), '') AS x").lineage?.map((c) => c.sources), [[{ schema: 'app', table: 'users', column: 'full_name' }]]);
    assert.deepEqual(f("SELECT ((SELECT ssn FROM users LIMIT 1) = 'x') AS z").predicateColumns, [{ schema: 'app', table: 'users', column: 'ssn' }]);
    assert.equal(f('SELECT IFNULL((SELECT email FROM users LIMIT 1), 0) + 1 AS n').kind, 'select');
  });
  it('still reads a query in parentheses as one', () => {
    assert.equal(f('SELECT ((SELECT 1) UNION (SELECT 2)) AS y').kind, 'select');
    assert.deepEqual(f('SELECT * FROM ((SELECT id FROM users) UNION (SELECT id FROM orders)) t').lineage?.map((c) => c.sources), [[{ schema: 'app', table: 'users', column: 'id' }, { schema: 'app', table: 'orders', column: 'id' }]]);
    assert.deepEqual(f('SELECT (((SELECT email FROM users LIMIT 1))) AS e').lineage?.map((c) => c.sources), [[{ schema: 'app', table: 'users', column: 'email' }]]);
  });
});

describe('DDL that moves values under another name counts as a store', () => {
  const stores = (sql: string) => analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0].stores;
  it('renames of columns and tables, and generated columns', () => {
    assert.deepEqual(stores('ALTER TABLE users RENAME COLUMN full_name TO nick'), [{ into: { schema: 'app', table: 'users', column: 'nick' }, sources: [{ schema: 'app', table: 'users', column: 'full_name' }], opaque: false }]);
    assert.deepEqual(stores('ALTER TABLE users CHANGE COLUMN full_name nick VARCHAR(50)'), [{ into: { schema: 'app', table: 'users', column: 'nick' }, sources: [{ schema: 'app', table: 'users', column: 'full_name' }], opaque: false }]);
    assert.deepEqual(stores('RENAME TABLE users TO people'), [{ into: { schema: 'app', table: 'people' }, sources: [{ schema: 'app', table: 'users', column: '*' }], opaque: false }]);
    assert.deepEqual(stores('ALTER TABLE users RENAME TO people'), [{ into: { schema: 'app', table: 'people' }, sources: [{ schema: 'app', table: 'users', column: '*' }], opaque: false }]);
    assert.deepEqual(stores('ALTER TABLE users ADD COLUMN leak VARCHAR(200) AS (full_name) VIRTUAL'), [{ into: { schema: 'app', table: 'users' }, sources: [{ schema: 'app', table: 'users', column: '*' }], opaque: true }]);
    assert.equal(stores('ALTER TABLE users ADD COLUMN z INT DEFAULT 1, ADD INDEX i (z)'), undefined);
    assert.equal(stores('ALTER TABLE users RENAME INDEX a TO b'), undefined);
    assert.deepEqual(stores("SELECT full_name FROM users INTO OUTFILE '/tmp/x'"), [{ into: 'file', sources: [{ schema: 'app', table: 'users', column: 'full_name' }], opaque: false, direct: true }]);
    assert.deepEqual(stores("SELECT email INTO DUMPFILE '/tmp/y' FROM users LIMIT 1"), [{ into: 'file', sources: [{ schema: 'app', table: 'users', column: 'email' }], opaque: false, direct: true }]);
  });
});

describe('a WHERE that only tests a column for truth', () => {
  const first = (sql: string) => analyseMysql(sql, MARIA).statements[0];
  it('names the column, for the broker to check against the catalog', () => {
    assert.equal(first('DELETE FROM orders WHERE id').whereTruthOf, 'id');
    assert.equal(first('DELETE FROM orders WHERE (o.`ID`)').whereTruthOf, 'id');
    assert.equal(first('UPDATE orders SET flag = 0 WHERE flag').whereTruthOf, 'flag');
    assert.equal(first('DELETE FROM orders WHERE id IS NOT NULL').whereTruthOf, 'id');
    assert.equal(first('DELETE FROM orders WHERE id IS NULL').whereTruthOf, undefined);
    assert.equal(first('DELETE FROM orders WHERE id = 3').whereTruthOf, undefined);
    assert.equal(first('DELETE FROM orders WHERE NOT id').whereTruthOf, undefined);
  });
});

describe('calls that may run stored code', () => {
  const fnsOf = (sql: string): FunctionRef[] => analyseMysql(sql, MARIA).statements.flatMap((s) => s.functions);
  const known: KnownFunctions = { stored: new Set(['GET_NAME']), builtins: new Set(['CONCAT', 'UPPER', 'VARCHAR', 'INT']) };
  const table: [string, KnownFunctions, string[]][] = [
    // A stored function returns what its body reads: its result cannot be traced, so it is opaque.
    ['SELECT get_name(1)', known, ['GET_NAME']],
    ['SELECT CONCAT(UPPER(x), 1) FROM t', known, []],
    // Qualified calls are never built-ins.
    ['SELECT app.concat(1)', known, ['CONCAT']],
    // Created after the catalog was read: unknown to it, and not a built-in.
    ['SELECT zz_f1()', known, ['ZZ_F1']],
    // Without the server's list of built-ins, only known stored functions count.
    ['SELECT zz_f1(), get_name(1)', { stored: new Set(['GET_NAME']) }, ['GET_NAME']],
    // The procedure a CALL names is judged by the CALL rules, not as a function; its arguments are calls.
    ['CALL cleanup(zz_f1())', known, ['ZZ_F1']],
    // Spatial built-ins, which the server's list leaves out, are built-ins all the same.
    ['SELECT ST_AsText(POINT(1, 2)), MBRContains(g, g), ST_Distance_Sphere(g, g) FROM t', known, []],
    // Index names in DDL are not calls.
    ['CREATE TABLE t (id INT(11), v VARCHAR(20), KEY ix_v (v), UNIQUE KEY u1 (v), INDEX `ix 2` (id), FULLTEXT ft (v))', known, []],
    ['ALTER TABLE t ADD INDEX ix3 (v), ADD UNIQUE u4 (id)', known, []],
  ];
  for (const [sql, k, want] of table) {
    it(sql, () =>
      assert.deepEqual(
        fnsOf(sql)
          .filter((f) => runsStoredCode(f, k))
          .map((f) => f.name),
        want,
      ));
  }
});

describe('WHERE that restricts nothing', () => {
  const table: [string, boolean | null][] = [
    // Self-comparisons in other spellings than `x = x`.
    ['DELETE FROM orders WHERE id BETWEEN id AND id', false],
    ['DELETE FROM orders WHERE id IN (id, 1)', false],
    ['DELETE FROM orders WHERE id BETWEEN 1 AND 5', true],
    ['DELETE FROM orders WHERE id IN (1, 2)', true],
    ['DELETE FROM orders WHERE id NOT IN (id, 1)', true],
    // A disjunct that names no row (a variable, a placeholder) holds for every row or for none.
    ['DELETE FROM orders WHERE id = 1 OR @x IS NULL', false],
    ['DELETE FROM orders WHERE id = 1 OR ?', false],
    ["DELETE FROM orders WHERE id = 1 OR status = 'x'", true],
    ['DELETE FROM orders o WHERE id = 1 OR EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id)', true],
    ['DELETE FROM orders WHERE id = 1 AND @x IS NULL', true],
    // REPLACE deletes every row its new rows collide with: from a query, it is an unbounded upsert.
    ['REPLACE INTO orders SELECT * FROM orders', false],
    ["REPLACE INTO orders VALUES (1, 1, 0, 'x')", true],
    // A membership subquery over the written table is a semi-join of the table with itself:
    // every row, unless the subquery picks out rows of its own (a filter, another table, LIMIT).
    ['DELETE FROM orders WHERE id IN (SELECT id FROM orders)', false],
    ['DELETE FROM orders WHERE id = ANY (SELECT id FROM orders)', false],
    ['DELETE FROM orders WHERE EXISTS (SELECT 1 FROM orders p WHERE p.id = orders.id)', false],
    ['DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM orders p WHERE p.id = o.id)', false],
    ['UPDATE orders SET x = 1 WHERE id IN (SELECT id FROM (SELECT id FROM orders) s)', false],
    ['DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE 1 = 1)', false],
    ['DELETE FROM orders WHERE id IN (SELECT id FROM orders) OR id = 3', false],
    ["DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE status = 'x')", true],
    ["DELETE FROM orders WHERE EXISTS (SELECT 1 FROM orders p WHERE p.id = orders.parent_id AND p.status = 'x')", true],
    ['DELETE FROM orders WHERE id IN (SELECT id FROM orders LIMIT 5)', true],
    ['DELETE FROM orders WHERE user_id IN (SELECT id FROM users)', true],
    ['DELETE FROM orders WHERE id IN (SELECT o.id FROM orders o JOIN users u ON u.id = o.user_id)', true],
    ["DELETE FROM orders WHERE status = 'x' AND id IN (SELECT id FROM orders)", true],
    ['DELETE FROM orders WHERE id BETWEEN 1 AND 5 AND id IN (SELECT id FROM orders)', true],
    // A scalar subquery is a value the column is compared with.
    ['DELETE FROM orders WHERE amount > (SELECT AVG(amount) FROM orders)', true],
  ];
  for (const [sql, want] of table) it(sql, () => assert.equal(analyseMysql(sql, MARIA).statements[0].hasWhere, want));
});

describe('round 3: the lexer reads what the server reads', () => {
  const table: [string, string[]][] = [
    // `--` then DEL is a comment to the server (my_iscntrl): the quote after it is not code.
    ["SELECT 1 --\x7f '\n; DROP TABLE x; -- '", ['select', 'drop']],
    ['SELECT 1 --\x7f; DROP TABLE x', ['select']],
    // A skipped versioned comment may hold one comment of its own: its `*/` does not end the outer one.
    ["SELECT 1 /*!99999 /* */ ' */; DROP TABLE x; -- '", ['select', 'drop']],
    ["SELECT 1 /*M!999999 /* */ ' */; DROP TABLE x; -- '", ['select', 'drop']],
    ['SELECT 1 /*!99999 /* /* */ ; DROP TABLE x */', ['select']],
    ['SELECT 1 /*!99999 /* */', ['unknown']],
    // Only one level: a plain comment does not nest at all.
    ["SELECT 1 /* /* */ ; DROP TABLE x", ['select', 'drop']],
  ];
  for (const [sql, want] of table) it(JSON.stringify(sql), () => assert.deepEqual(kinds(sql, MARIA), want));

  // In GBK, Big5 or SJIS the byte after a non-ASCII one may be half of the same character.
  const ambiguous = ["SELECT '中\\'; DROP TABLE x; -- '", 'SELECT `名前` FROM t', "SELECT 'é|'", 'SELECT \ufffd\\'];
  for (const sql of ambiguous) it(`${JSON.stringify(sql)} is refused: a multi-byte client character set reads it differently`, () => assert.deepEqual(kinds(sql, MARIA), ['unknown']));
  const plain = ["SELECT '中文', 'é' FROM t WHERE name = 'Zoë'", 'SELECT `名前a` FROM t', "SELECT '中\n'"];
  for (const sql of plain) it(`${JSON.stringify(sql)} reads the same in every client character set`, () => assert.deepEqual(kinds(sql, MARIA), ['select']));
});

describe('round 3: a column of an enclosing query', () => {
  const sources = (sql: string): string[][] => (analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0].lineage ?? []).map((l) => l.sources.map((s) => `${s.table}.${s.column}`).sort());
  const predicates = (sql: string): string[] => (analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0].predicateColumns ?? []).map((p) => `${p.table}.${p.column}`).sort();
  it('an unqualified name in a select-list subquery may be the outer table\'s column', () => assert.deepEqual(sources('SELECT (SELECT email FROM orders LIMIT 1) AS x FROM users'), [['orders.email', 'users.email']]));
  it('a qualified one is the innermost table of that name', () => assert.deepEqual(sources('SELECT (SELECT o.card) AS x FROM orders o, users u'), [['orders.card']]));
  it('in a WHERE subquery too', () => assert.deepEqual(predicates("SELECT id FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE ssn LIKE '1%')"), ['orders.ssn', 'users.ssn']));
  it('in a select-list subquery\'s WHERE', () => assert.deepEqual(predicates("SELECT (SELECT 1 FROM orders WHERE ssn = 'x' LIMIT 1) FROM users"), ['orders.ssn', 'users.ssn']));
  it('a CTE definition is a name for FROM, not a table in scope', () => assert.deepEqual(sources('WITH a AS (SELECT email FROM users), b AS (SELECT plan FROM users) SELECT plan FROM b'), [['users.plan']]));
  it('EXTRACT(… FROM …) is not the FROM clause', () => assert.deepEqual(sources('SELECT EXTRACT(YEAR FROM created) AS y FROM users'), [['users.created', 'users.year']]));
});

describe('round 3: WHERE that restricts nothing, in other spellings', () => {
  const table: [string, boolean | null][] = [
    ['DELETE FROM orders WHERE id + 0 = id', false],
    ['DELETE FROM orders WHERE (id) = id * 1', false],
    ['DELETE FROM orders WHERE orders.id = id', false],
    ['DELETE FROM orders o WHERE o.id = `ID`', false],
    ["UPDATE orders SET s = 'x' WHERE status = status COLLATE utf8mb4_bin", false],
    ['DELETE FROM orders WHERE BINARY status = status', false],
    ['DELETE FROM orders WHERE status IS NULL OR status IS NOT NULL', false],
    ["DELETE FROM orders WHERE status = 'x' OR NOT status = 'x'", false],
    ["DELETE FROM orders WHERE status LIKE '%'", false],
    ['DELETE FROM orders WHERE NOT (id <> id)', false],
    ['DELETE FROM orders WHERE (id = id) IS TRUE', false],
    ['DELETE FROM orders WHERE (id = id) = TRUE', false],
    ['DELETE FROM orders WHERE id = (SELECT id)', false],
    ['DELETE FROM orders WHERE id IN (SELECT id)', false],
    ['DELETE FROM orders WHERE id = ANY (SELECT id FROM DUAL)', false],
    ['DELETE FROM orders WHERE id IN (SELECT o2.id FROM orders o2 WHERE o2.id = id)', false],
    ['DELETE FROM orders WHERE id = id AND 1', false],
    ['DELETE FROM orders WHERE id = id && (id) = id + 0', false],
    ['DELETE FROM orders WHERE id = id XOR FALSE', false],
    // Still restrictions.
    ['DELETE FROM orders WHERE id <> id', true],
    ["DELETE FROM orders WHERE id = id AND status = 'x'", true],
    ["DELETE FROM orders WHERE id = 1 XOR status = 'x'", true],
    ['DELETE FROM orders WHERE 1 = 0 AND id = id', true],
    ["DELETE FROM orders WHERE status LIKE '%x'", true],
    ['DELETE FROM orders WHERE id = (SELECT id + 1)', true],
    ['DELETE FROM orders WHERE id = (SELECT MAX(id) FROM orders)', true],
    ['DELETE FROM orders WHERE id = 1 OR id IS NULL', true],
    ['DELETE FROM orders WHERE id = RAND() + 0', true],
    ["DELETE FROM orders WHERE id IN (SELECT o2.id FROM orders o2 WHERE o2.status = 'x')", true],
    // The table joined with itself on the same column: every row matches itself.
    ['DELETE o FROM orders o, orders p WHERE o.id = p.id', false],
    ["UPDATE orders o JOIN orders p ON p.id = o.id SET o.status = 'x' WHERE p.id = o.id", false],
    ['DELETE o FROM orders o JOIN (SELECT id FROM orders) p ON p.id = o.id WHERE (o.id) = p.id', false],
    ["DELETE o FROM orders o JOIN orders p ON p.id = o.id WHERE o.status = 'x'", true],
    ['DELETE o FROM orders o, orders p WHERE o.id = p.parent_id', true],
    // Two tables: `o.id = u.id` compares two columns.
    ["UPDATE orders o JOIN users u ON u.id = o.user_id SET o.status = 'x' WHERE o.id = u.id", true],
  ];
  for (const [sql, want] of table) it(sql, () => assert.equal(analyseMysql(sql, MARIA).statements[0].hasWhere, want));
});

describe('round 3: ALTER TABLE that moves or overwrites rows', () => {
  const facts = (sql: string) => analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0];
  it('CONVERT PARTITION … TO TABLE moves rows out, and stores them in the new table', () => {
    const f = facts('ALTER TABLE orders CONVERT PARTITION p0 TO TABLE zz');
    assert.ok(f.actions?.includes('ALTER TABLE CONVERT PARTITION'));
    assert.deepEqual(f.stores, [{ into: { schema: 'app', table: 'zz' }, sources: [{ schema: 'app', table: 'orders', column: '*' }], opaque: false }]);
  });
  it('EXCHANGE PARTITION swaps rows both ways', () => assert.deepEqual(facts('ALTER TABLE orders EXCHANGE PARTITION p0 WITH TABLE zz').stores?.map((s) => (typeof s.into === 'object' ? s.into.table : s.into)), ['zz', 'orders']));
  it('CONVERT TABLE … TO PARTITION', () => assert.ok(facts('ALTER TABLE orders CONVERT TABLE zz TO PARTITION p2 VALUES LESS THAN (9)').actions?.includes('ALTER TABLE CONVERT PARTITION')));
  for (const sql of ["ALTER TABLE orders CHANGE status status VARCHAR(10) AS ('x') STORED", 'ALTER TABLE orders MODIFY total INT GENERATED ALWAYS AS (0) VIRTUAL']) {
    it(`${sql}: every value overwritten, and the column now carries the row`, () => {
      const f = facts(sql);
      assert.ok(f.actions?.includes('ALTER TABLE OVERWRITE COLUMN'));
      assert.ok(f.stores?.some((s) => s.opaque && s.sources.some((x) => x.column === '*')));
    });
  }
  for (const sql of ['ALTER TABLE orders ENGINE=MEMORY', "ALTER TABLE orders ENGINE 'heap'", 'ALTER TABLE orders ENGINE = `MRG_MyISAM`', 'ALTER TABLE orders ENGINE=MyISAM, ENGINE=MERGE', 'ALTER TABLE orders ENGINE=FEDERATED']) {
    it(`${sql}: the engine does not keep the rows`, () => assert.ok(facts(sql).actions?.includes('ALTER TABLE ENGINE DROPS ROWS')));
  }
  for (const sql of ['ALTER TABLE orders ENGINE=InnoDB', 'ALTER TABLE orders ENGINE = Aria', "ALTER TABLE orders ENGINE='MyISAM'"]) {
    it(`${sql} keeps them`, () => assert.ok(!facts(sql).actions?.some((a) => a.startsWith('ALTER TABLE ENGINE'))));
  }
  it('ALTER IGNORE TABLE may delete rows and cut values', () => assert.ok(facts('ALTER IGNORE TABLE orders ADD UNIQUE KEY (status)').actions?.includes('ALTER TABLE IGNORE')));
  it('a plain MODIFY overwrites nothing in strict mode', () => assert.ok(!facts('ALTER TABLE orders MODIFY status VARCHAR(20), ADD CHECK (status <> 1)').actions?.includes('ALTER TABLE OVERWRITE COLUMN')));
});

describe('round 3: column lists rename a CTE\'s or derived table\'s columns', () => {
  const sources = (sql: string): string[][] => (analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0].lineage ?? []).map((l) => l.sources.map((s) => `${s.table}.${s.column}`).sort());
  it('by position', () => assert.deepEqual(sources('WITH c(plan, x) AS (SELECT email, plan FROM users) SELECT plan FROM c'), [['users.email']]));
  it('of a derived table (MySQL 8)', () => assert.deepEqual(sources('SELECT plan FROM (SELECT email, plan FROM users) AS d(plan, x)'), [['users.email']]));
  it('over a star: every name may be any column', () => assert.deepEqual(sources('WITH c(a, b) AS (SELECT * FROM users) SELECT b FROM c'), [['users.*']]));
});

describe('round 3: joins that compare columns, and other sessions\' statement texts', () => {
  const facts = (sql: string) => analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0];
  const predicates = (sql: string): string[] => (facts(sql).predicateColumns ?? []).map((p) => `${p.table}.${p.column}`).sort();
  it('JOIN … USING (c) compares c on both sides', () => assert.deepEqual(predicates('SELECT users.id FROM users JOIN g USING (ssn)'), ['g.ssn', 'users.ssn']));
  it('NATURAL JOIN compares every shared column: all of them count', () => assert.deepEqual(predicates('SELECT id FROM users NATURAL JOIN g'), ['g.*', 'users.*']));
  for (const sql of [
    'SHOW FULL PROCESSLIST',
    'SHOW PROCESSLIST',
    'SHOW ENGINE INNODB STATUS',
    'SELECT INFO FROM information_schema.PROCESSLIST',
    'SELECT trx_query FROM INFORMATION_SCHEMA.innodb_trx',
    'SELECT SQL_TEXT FROM performance_schema.events_statements_history_long',
    'SELECT PROCESSLIST_INFO FROM performance_schema.threads',
    'SELECT query FROM sys.`x$processlist`',
    'SELECT current_statement FROM sys.session',
  ]) {
    it(`${sql} returns texts that quote values`, () => assert.equal(facts(sql).diagnostics, true));
  }
  it('SHOW TABLES does not', () => assert.equal(facts('SHOW TABLES').diagnostics, undefined));
  it('nor does a performance_schema table of counters', () => assert.equal(facts('SELECT * FROM performance_schema.file_summary_by_instance').diagnostics, undefined));
});

describe('round 3: keywords MariaDB also takes as bare column names', () => {
  const sources = (sql: string): string[][] => (analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0].lineage ?? []).map((l) => l.sources.map((s) => `${s.table}.${s.column}`).sort());
  const table: [string, string[][]][] = [
    ['WITH c AS (SELECT full_name AS full FROM users) SELECT full FROM c', [['users.full_name']]],
    ['SELECT UPPER(escape) FROM (SELECT email AS escape FROM users) d', [['users.email']]],
    ['SELECT CONCAT(row, unknown, window, `end`) FROM (SELECT address AS `row`, email AS `unknown`, ssn AS `window`, phone AS `end` FROM users) d', [['users.address', 'users.email', 'users.phone', 'users.ssn']]],
    ["SELECT CONCAT(plan LIKE 'x', escape) FROM (SELECT email AS escape, plan FROM users) d", [['users.email', 'users.plan']]],
    // Where they are syntax they stay syntax.
    ["SELECT CASE WHEN id = 1 THEN plan END AS x FROM users WHERE plan LIKE 'a!%' ESCAPE '!'", [['users.id', 'users.plan']]],
    ['SELECT 1 IS UNKNOWN AS x, 2 = ANY (SELECT 2) AS y', [[], []]],
  ];
  for (const [sql, want] of table) it(sql, () => assert.deepEqual(sources(sql), want));
  it('a CASE … END in a WHERE still names no column', () => assert.equal(analyseMysql('DELETE FROM orders WHERE CASE WHEN 1 THEN 1 END', MARIA).statements[0].hasWhere, false));
});

describe('round 3: ordering, grouping and HAVING on an output column are filters', () => {
  const predicates = (sql: string): string[] => (analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements[0].predicateColumns ?? []).map((p) => `${p.table}.${p.column}`).sort();
  const table: [string, string[]][] = [
    ["SELECT id FROM users ORDER BY ssn = '1' DESC LIMIT 1", ['users.ssn']],
    ["SELECT MIN(id) FROM users GROUP BY ssn LIKE '1%'", ['users.ssn']],
    ['SELECT MIN(id) FROM users GROUP BY LEFT(ssn, 1)', ['users.ssn']],
    ["SELECT id, ROW_NUMBER() OVER (PARTITION BY plan ORDER BY ssn = '1' DESC) AS r FROM users", ['users.ssn']],
    ["SELECT id, ssn = '1' AS m FROM users ORDER BY m DESC", ['users.ssn']],
    // UNION (not ALL) compares rows: each column beside another branch's value is compared with it.
    ["SELECT id, ssn = '1' AS m FROM users UNION SELECT 0, 0 ORDER BY m DESC", ['users.id', 'users.ssn']],
    // A guess sorted, grouped or deduplicated among the real values (through a UNION ALL beside it).
    ["SELECT ssn FROM users UNION SELECT '123-45-6789'", ['users.ssn']],
    ["SELECT ssn FROM users INTERSECT SELECT '123-45-6789'", ['users.ssn']],
    ['SELECT ssn FROM users UNION SELECT ssn FROM users', []],
    ["SELECT id, ssn FROM users UNION ALL SELECT 0, '200' ORDER BY 2", ['users.ssn']],
    ["SELECT id, ssn FROM users UNION ALL SELECT 0, '200' ORDER BY ssn", ['users.ssn']],
    ["SELECT id FROM (SELECT id, ssn FROM users UNION ALL SELECT 0, '200') s ORDER BY ssn", ['users.ssn']],
    ["SELECT id, ROW_NUMBER() OVER (ORDER BY ssn) AS r FROM (SELECT id, ssn FROM users UNION ALL SELECT 0, '200') s", ['users.ssn']],
    ["SELECT ssn, COUNT(*) FROM (SELECT ssn FROM users UNION ALL SELECT '200') s GROUP BY ssn", ['users.ssn']],
    ["SELECT DISTINCT v FROM (SELECT ssn AS v FROM users UNION ALL SELECT '200') s", ['users.ssn']],
    ["SELECT DISTINCT CASE WHEN id = 1 THEN '200' ELSE ssn END AS v FROM users", ['users.id', 'users.ssn']],
    ["SELECT COUNT(DISTINCT v) FROM (SELECT ssn AS v FROM users UNION ALL SELECT '200') s", ['users.ssn']],
    ["SELECT GROUP_CONCAT(id ORDER BY v SEPARATOR ',') FROM (SELECT id, ssn AS v FROM users UNION ALL SELECT 0, '200') s", ['users.ssn']],
    ["SELECT COUNT(DISTINCT CASE WHEN id = 1 THEN '200' ELSE ssn END) FROM users", ['users.id', 'users.ssn']],
    // Sorting or deduplicating the real values alone tests nothing.
    ['SELECT COUNT(DISTINCT ssn), GROUP_CONCAT(id ORDER BY ssn SEPARATOR \', \') FROM users', []],
    ['SELECT id FROM users ORDER BY ssn', []],
    ['SELECT DISTINCT ssn FROM users', []],
    ['SELECT id FROM (SELECT id, ssn FROM users) s ORDER BY ssn', []],
    ['SELECT id, ssn FROM users UNION ALL SELECT id, ssn FROM users ORDER BY 2', []],
    ["SELECT id, ssn AS s FROM users HAVING s LIKE '123%'", ['users.s', 'users.ssn']],
    ["SELECT id, UPPER(email) AS e FROM users HAVING e = 'X'", ['users.e', 'users.email']],
    // What a subquery in a WHERE returns is compared; what an EXISTS subquery returns is not.
    ["SELECT id FROM users u WHERE '1' IN (SELECT ssn FROM users v WHERE v.id = u.id)", ['users.id', 'users.ssn']],
    ["SELECT id FROM users u WHERE (SELECT full_name FROM users v WHERE v.id = u.id) = 'x'", ['users.full_name', 'users.id']],
    ['SELECT id FROM orders o WHERE EXISTS (SELECT * FROM users u WHERE u.id = o.user_id)', ['orders.user_id', 'users.id']],
    // Sorting by a column, an expression of it alone, or a position tests nothing.
    ['SELECT id FROM users ORDER BY email, 1 DESC', []],
    ['SELECT UPPER(email) AS e FROM users ORDER BY e, UPPER(email)', []],
    ['SELECT full_name, COUNT(*) FROM users GROUP BY full_name WITH ROLLUP', []],
    ['SELECT id, ROW_NUMBER() OVER (ORDER BY email ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS r FROM users', []],
  ];
  for (const [sql, want] of table) it(sql, () => assert.deepEqual(predicates(sql), want));
});

describe('round 3: a classified value that steers a condition or an error anywhere is a filter on it', () => {
  const predicates = (sql: string): string[] => [...new Set(analyseMysql(sql, { ...MARIA, currentDb: 'app' }).statements.flatMap((s) => s.predicateColumns ?? []).map((p) => `${p.table}.${p.column}`))].sort();
  // Tested: an operator, a condition, a search, an unknown or stored function, a cast that can reject a value.
  const tested: [string, string[]][] = [
    ["SELECT IF(ssn = '123-45-6789', EXP(1000), 0) AS x FROM users", ['users.ssn']],
    ["SELECT CASE WHEN LOCATE('Alice', full_name) THEN EXP(1000) ELSE 0 END AS x FROM users", ['users.full_name']],
    ["SELECT CASE ssn WHEN 'x' THEN 1 END FROM users", ['users.ssn']],
    ["SELECT NULLIF(ssn, '123-45-6789') FROM users", ['users.ssn']],
    ["SELECT FIELD(full_name, 'Alice Liddell') AS f, ELT(1, address) AS e FROM users", ['users.address', 'users.full_name']],
    ["SELECT JSON_EXTRACT(CONCAT('[', full_name, ']'), '$[0]') FROM users", ['users.full_name']],
    ["SELECT REGEXP_SUBSTR(full_name, '^A') AS a, ssn REGEXP '^1' AS b FROM users", ['users.full_name', 'users.ssn']],
    ['SELECT CAST(ssn AS SIGNED) AS a, CONVERT(email, DATE) AS b, EXP(ssn) AS c, ssn + 0 AS d FROM users', ['users.email', 'users.ssn']],
    ['SELECT FROM_BASE64(ssn) AS a, `concat`(email) AS b, app.f(full_name) AS c FROM users', ['users.email', 'users.full_name', 'users.ssn']],
    ['SELECT SUBSTRING(plan FROM ssn) AS a, LEFT(plan, email) AS b FROM users', ['users.email', 'users.ssn']],
    ["SELECT IF(d.s = 'x', EXP(1000), 0) AS x FROM (SELECT ssn AS s FROM users) d", ['users.ssn']],
    ['SELECT IF(users.ssn = g.ssn, EXP(1000), 0) AS x FROM users, g', ['g.ssn', 'users.ssn']],
    ["SELECT (SELECT ssn FROM users WHERE id = 1) = 'x' AS x", ['users.id', 'users.ssn']],
    ["SELECT GROUP_CONCAT(id ORDER BY ssn = 'x' SEPARATOR ',') AS g FROM users", ['users.ssn']],
    ["DO (SELECT ssn FROM users WHERE id = 1) = '123-45-6789'", ['users.id', 'users.ssn']],
    ["UPDATE users SET plan = IF(ssn = 'x', EXP(1000), 0) WHERE id = 1", ['users.id', 'users.plan', 'users.ssn']],
  ];
  for (const [sql, want] of tested) it(`tests: ${sql}`, () => assert.deepEqual(predicates(sql), want));
  // Passed on: projections and value transforms whose result lineage masks, NULL-ness included.
  const passed = [
    "SELECT ssn, CONCAT(ssn, 'x') AS a, UPPER(full_name), LOWER(email) e, REVERSE(ssn) FROM users",
    "SELECT SUBSTRING(ssn, 1, 11) AS s, LEFT(card, 19) AS c, REPLACE(card, ' ', '') AS d, TRIM(BOTH 'x' FROM address) AS t, SUBSTRING(full_name FROM 1) AS u FROM users",
    'SELECT CAST(ssn AS CHAR) AS s, CAST(email AS CHAR(200)) AS e, CONVERT(full_name USING utf8mb4) AS n, CONVERT(ssn, CHAR) AS c, BINARY address AS b FROM users',
    "SELECT JSON_OBJECT('email', email, 'ssn', ssn) AS j, JSON_ARRAY(id, phone) AS k, COALESCE(NULL, phone) AS p, IF(plan = 'pro', email, address) AS x FROM users",
    "SELECT CASE WHEN plan = 'pro' THEN ssn ELSE 'n/a' END AS s, FROM_BASE64(TO_BASE64(ssn)) AS b FROM users",
    "SELECT MAX(email) AS mx, MIN(ssn) AS mn, COUNT(DISTINCT ssn) AS n, GROUP_CONCAT(full_name ORDER BY full_name SEPARATOR ';') AS g FROM users",
    'SELECT FIRST_VALUE(email) OVER (ORDER BY plan) AS f, LAG(full_name) OVER (PARTITION BY ssn ORDER BY email) AS l FROM users',
    'SELECT (SELECT email FROM users i WHERE i.plan = o.status) AS e FROM orders o',
    'SELECT plan ssn, email AS full_name FROM users ORDER BY full_name DESC, ssn',
  ];
  for (const sql of passed) it(`passes: ${sql}`, () => assert.deepEqual(predicates(sql).filter((c) => !/^(users|orders)\.(id|plan|status)$/.test(c)), []));
});
