import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SA_TOKENS, startTestBroker } from './harness.js';
import { createMysqlDatabase, mysqlTarget, mysqlTunnelClient, mariadbCli } from './mysql-harness.js';
test('smoke', async () => {
  const db = await createMysqlDatabase('smoke', 'CREATE TABLE users (id int primary key, email varchar(100)); INSERT INTO users VALUES (1,"a@b.c")');
  const tb = await startTestBroker({ targets: { my: mysqlTarget(db.name, { env: 'staging' }) }, policy: { access: [{ name: 'any', action: 'allow' }] } });
  try {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'my', access: 'write' });
    const c = await mysqlTunnelClient(conn, { multipleStatements: true });
    console.log(await c.query('SELECT * FROM users'));
    console.log(await c.execute('SELECT * FROM users WHERE id = ?', [1]));
    console.log(await c.query('SELECT 1; SELECT 2'));
    await c.end();
    console.log(await mariadbCli(conn, 'select * from users'));
    await conn.close();
  } finally { await tb.close(); await db.drop(); }
});
