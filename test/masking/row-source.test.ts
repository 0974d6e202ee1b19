import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planRelations } from '../../src/masking/row-source.js';
import { analyseMysql, type MysqlAnalyseOptions } from '../../src/sql/mysql/analyse.js';
import { analysePostgres, loadSqlParser } from '../../src/sql/postgres.js';

const MARIA: MysqlAnalyseOptions = { serverVersion: 101119, mariadb: true, sqlMode: { noBackslashEscapes: false, ansiQuotes: false } };

describe('planRelations', () => {
  it('lists what an understood statement reads', () => {
    const rels = planRelations(analyseMysql('SELECT CONCAT(full_name, 1) FROM users', MARIA).statements);
    assert.deepEqual(
      rels?.map((r) => r.name),
      ['users'],
    );
  });

  // The analyser's relation list of a statement it could not parse is what it saw before it
  // stopped, not what the server reads: masking must assume the worst, not "nothing classified".
  it('is unknown for a statement the analyser could not parse', () => {
    const facts = analyseMysql('SELECT CONCAT(full_name, 1) FROM users WHERE id = 1 ) x', MARIA).statements;
    assert.equal(facts[0].opaque?.reason, 'parse-error');
    assert.equal(planRelations(facts), undefined);
  });

  it('is unknown when any statement of the message is opaque', async () => {
    await loadSqlParser();
    const facts = analysePostgres("SELECT 1; EXECUTE never_prepared; DO $$ BEGIN END $$").statements;
    assert.ok(facts.some((f) => f.opaque));
    assert.equal(planRelations(facts), undefined);
    assert.ok(planRelations(analysePostgres('SELECT email FROM users').statements));
  });
});
