/**
 * Adversarial round 6 on identity, credentials, approvals and audit evidence: shapes the earlier
 * rounds (adversarial-identity, identity-*, approvals, audit*, protocol-hostile-*) did not try.
 * Every probe asserts what must hold and has a control that ordinary work still runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminQuery, createTestDatabase, pgTarget, SA_TOKENS, startTestBroker, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import { RawPg, errorsOf, fe, field, rowsOf } from './pg-raw.js';
import { createMysqlDatabase, mysqlAdmin, mysqlTarget, mysqlTunnelClient, type MysqlTestDatabase } from './mysql-harness.js';
import type { Connection } from '../../src/cli/connect.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealEvent } from '../../src/audit/canonical.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { SERVICE_ACCOUNTS, cli, cliHome, envelope, startIdentityBroker, type Envelope, type IdentityBroker } from './identity-harness.js';

describe('r6: startup settings are read as the server reads them', () => {
  let db: TestDatabase;
  let tb: TestBroker;
  let conn: Connection;

  before(async () => {
    db = await createTestDatabase(
      'id6su',
      `create schema secure;
       create table secure.accounts (id int primary key, v int); insert into secure.accounts values (1, 1);
       create table public.accounts (id int primary key, v int); insert into public.accounts values (1, 1);`,
    );
    tb = await startTestBroker({
      targets: { prod: pgTarget(db.name, { env: 'staging' }) },
      policy: { statements: [{ name: 'secure-frozen', match: { statement: { relations: { names: ['secure.accounts'], access: ['write'] } } }, action: 'block', message: 'secure.accounts is frozen' }] },
    });
    conn = await tb.connect(SA_TOKENS.ci, { target: 'prod', access: 'write' });
  });
  after(async () => {
    await conn?.close();
    await tb?.close();
    await db?.drop();
  });

  const secureValue = async (): Promise<number> => (await adminQuery<{ v: number }>('select v from secure.accounts where id = 1', [], db.name)).rows[0].v;

  // Each packet makes the server's search_path `secure`; the gateway once read only the first
  // `-c search_path=` literally (or only the exact field name), and judged `accounts` as public's.
  const aimedAtSecure: { name: string; params: Record<string, string> }[] = [
    { name: 'two -c search_path switches, the last wins', params: { options: '-c search_path=public -c search_path=secure' } },
    { name: 'an upper-case setting name in options', params: { options: '-c SEARCH_PATH=secure' } },
    { name: 'a dashed setting name in options', params: { options: '-c search-path=secure' } },
    { name: 'a --long switch with dashes', params: { options: '--search-path=secure' } },
    { name: 'a mixed-case packet field', params: { Search_Path: 'secure' } },
    { name: 'a packet field beats options', params: { search_path: 'secure', options: '-c search_path=public' } },
  ];
  for (const c of aimedAtSecure) {
    test(`a write through ${c.name} is judged against the table the server writes`, async () => {
      const before = await secureValue();
      const raw = await RawPg.openWith(conn.tunnel.port, { user: conn.credential.identity.id, database: conn.credential.database, ...c.params });
      try {
        raw.send(fe.query('SELECT current_setting(\'search_path\')'));
        const shown = await raw.ready();
        assert.deepEqual(rowsOf(shown), [['secure']], `the server runs with search_path secure: ${errorsOf(shown).join('; ')}`);
        raw.send(fe.query('UPDATE accounts SET v = v + 1 WHERE id = 1'));
        const out = await raw.ready();
        const err = out.find((m) => m.type === 'E');
        assert.ok(err, `refused: ${JSON.stringify(rowsOf(out))}`);
        assert.equal(field(err, 'C'), '42501');
        assert.match(field(err, 'D') ?? '', /secure-frozen/);
      } finally {
        raw.end();
      }
      assert.equal(await secureValue(), before, 'secure.accounts unchanged');
    });
  }

  test('a search_path the database sets for its sessions (ALTER DATABASE … SET) is the one names resolve under', async () => {
    await adminQuery(`ALTER DATABASE ${db.name} SET search_path = secure, public`);
    try {
      const before = await secureValue();
      const raw = await RawPg.openWith(conn.tunnel.port, { user: conn.credential.identity.id, database: conn.credential.database });
      try {
        raw.send(fe.query("SELECT current_setting('search_path')"));
        assert.deepEqual(rowsOf(await raw.ready()), [['secure, public']]);
        raw.send(fe.query('UPDATE accounts SET v = v + 1 WHERE id = 1'));
        const err = (await raw.ready()).find((m) => m.type === 'E');
        assert.ok(err, 'refused');
        assert.match(field(err, 'D') ?? '', /secure-frozen/);
        // Control: a qualified write elsewhere runs.
        raw.send(fe.query('UPDATE public.accounts SET v = v + 1 WHERE id = 1'));
        assert.deepEqual(errorsOf(await raw.ready()), []);
      } finally {
        raw.end();
      }
      assert.equal(await secureValue(), before);
    } finally {
      await adminQuery(`ALTER DATABASE ${db.name} RESET search_path`);
    }
  });

  test('control: options with a plain search_path still apply, and writes to the public table run', async () => {
    const raw = await RawPg.openWith(conn.tunnel.port, { user: conn.credential.identity.id, database: conn.credential.database, options: '-c search_path=public -c statement_timeout=5s', application_name: 'id6' });
    try {
      raw.send(fe.query("SELECT current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')"));
      assert.deepEqual(rowsOf(await raw.ready()), [['public', '5s', 'id6']]);
      raw.send(fe.query('UPDATE accounts SET v = v + 1 WHERE id = 1'));
      const out = await raw.ready();
      assert.deepEqual(errorsOf(out), []);
    } finally {
      raw.end();
    }
  });

  test('options naming a setting outside the allow-list are not forwarded at all', async () => {
    const raw = await RawPg.openWith(conn.tunnel.port, { user: conn.credential.identity.id, database: conn.credential.database, options: '-c search_path=secure -c session_authorization=postgres' });
    try {
      raw.send(fe.query("SELECT current_setting('search_path')"));
      assert.deepEqual(rowsOf(await raw.ready()), [['"$user", public']]);
    } finally {
      raw.end();
    }
  });
});

describe('r6: the audit log as evidence against someone who can write the store folder', () => {
  let db: TestDatabase;
  const dir = mkdtempSync(join(tmpdir(), 'id6-audit-'));
  const home = cliHome();
  let tb: IdentityBroker | undefined;

  const start = async (): Promise<IdentityBroker> => startIdentityBroker({ targets: { prod: pgTarget(db.name) }, dir });
  const segmentsOf = (): string[] =>
    readdirSync(join(dir, 'segments'))
      .filter((n) => n.endsWith('.jsonl'))
      .sort()
      .map((n) => join(dir, 'segments', n));
  /** A few events, then a signed checkpoint over them; returns the checkpoint event's seq. */
  const someEventsThenCheckpoint = (b: IdentityBroker, n: number): number => {
    const audit = b.broker.core.store.audit;
    for (let i = 0; i < n; i++) audit.appendSync({ kind: 'api.refused', identity: null, target: null, database: null, sessionId: null, detail: { route: 'GET /id6', code: 'probe', message: `probe ${i}`, ip: '127.0.0.1' } });
    return audit.checkpoint('export')!.seq;
  };
  /** Cuts the newest segment right after the event `seq`. */
  const cutAfter = (seq: number): void => {
    const path = segmentsOf().at(-1)!;
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    writeFileSync(path, lines.filter((l) => Number(/^\{"seq":(\d+)/.exec(l)![1]) <= seq).join('\n') + '\n');
  };
  const verifyOnline = async (b: IdentityBroker): Promise<Envelope<{ problems: { kind: string }[] }>> =>
    envelope(await cli(['audit', 'verify', '--json'], { DBGOV_BROKER: b.apiUrl, DBGOV_TOKEN: SA_TOKENS.auditor, DBGOV_HOME: home.home }));

  before(async () => {
    db = await createTestDatabase('id6au');
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
    home.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('online verify sees a tail cut right after an older checkpoint (the chain alone looks whole)', async () => {
    tb = await start();
    const first = someEventsThenCheckpoint(tb, 3);
    someEventsThenCheckpoint(tb, 3);
    await tb.broker.core.store.audit.sync();
    const ok = await verifyOnline(tb);
    assert.equal(ok.status, 0, `control: the untouched log verifies: ${ok.message}`);

    cutAfter(first);
    const cut = await verifyOnline(tb);
    assert.notEqual(cut.status, 0, 'the cut is reported');
    assert.match(cut.message ?? '', /tail was cut/);
    await tb.broker.close();
    tb = undefined;
  });

  test('a broker does not start on segments cut short or swapped for an older copy; a clean restart does', async () => {
    rmSync(dir, { recursive: true, force: true });
    tb = await start();
    someEventsThenCheckpoint(tb, 2);
    await tb.broker.close();
    tb = await start();
    assert.ok(tb, 'control: a clean restart on the same folder starts');
    const older = segmentsOf().map((p) => [p, readFileSync(p)] as const);
    someEventsThenCheckpoint(tb, 4);
    await tb.broker.close();
    tb = undefined;

    const newest = segmentsOf().map((p) => [p, readFileSync(p)] as const);
    for (const [p, bytes] of older) writeFileSync(p, bytes);
    await assert.rejects(start(), (e: Error) => /vouches for events up to \d+: segments were cut or replaced by an older copy/.test(e.message));

    // Rewritten after the checkpoint the checkpoints file recorded last: that event is not the one signed.
    for (const [p, bytes] of newest) writeFileSync(p, bytes);
    const path = segmentsOf().at(-1)!;
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    const last = JSON.parse(lines.at(-1)!) as AuditEvent;
    assert.equal(last.kind, 'checkpoint');
    const { hash: _hash, ...unsealed } = last;
    lines[lines.length - 1] = sealEvent({ ...unsealed, time: new Date(Date.parse(last.time) + 1000).toISOString() }).line;
    writeFileSync(path, lines.join('\n') + '\n');
    await assert.rejects(start(), (e: Error) => /is not the checkpoint the checkpoints file recorded/.test(e.message));

    for (const [p, bytes] of newest) writeFileSync(p, bytes);
    tb = await start();
    const ok = await verifyOnline(tb);
    assert.equal(ok.status, 0, `restored, it starts and verifies: ${ok.message}`);
  });

  test('the published audit key is the one checkpoints name', async () => {
    tb ??= await start();
    const published = await tb.client(SA_TOKENS.auditor).auditPublicKey();
    const { checkpoints } = await tb.client(SA_TOKENS.auditor).auditCheckpoints();
    assert.ok(checkpoints.length > 0);
    for (const cp of checkpoints) assert.equal(cp.keyId, published.keyId);
  });

  test('events appended without the key while the broker was down are named, signed, when it starts again', async () => {
    tb ??= await start();
    someEventsThenCheckpoint(tb, 1);
    await tb.broker.close();
    tb = undefined;
    const cleanSpans = async (): Promise<{ from: number; to: number }[]> => {
      tb = await start();
      const r = await verifyOnline(tb);
      assert.equal(r.status, 0, r.message);
      return (r.result as unknown as { recovered: { from: number; to: number }[] }).recovered;
    };
    const before = await cleanSpans();
    await tb!.broker.close();
    tb = undefined;
    assert.deepEqual(await cleanSpans(), before, 'control: a clean restart adds no span');
    await tb!.broker.close();
    tb = undefined;

    // A well-formed, correctly chained event (sha-256 needs no key) after the close checkpoint.
    const path = segmentsOf().at(-1)!;
    const last = JSON.parse(readFileSync(path, 'utf8').trimEnd().split('\n').at(-1)!) as AuditEvent;
    const forged = { seq: last.seq + 1, id: 'evt_forged', time: last.time, kind: 'approval.vote' as const, broker: last.broker, identity: { id: 'approver-bot', kind: 'workload' as const, groups: ['approvers'] }, target: null, database: null, sessionId: null, detail: { requestId: 'x', decision: 'approve' }, prevHash: last.hash };
    writeFileSync(path, readFileSync(path, 'utf8') + sealEvent(forged).line + '\n');
    const spans = await cleanSpans();
    assert.ok(spans.some((r) => r.from <= forged.seq && forged.seq <= r.to), `the forged event is in a recovered span: ${JSON.stringify(spans)}`);
  });

  test('only auditors read the checkpoints', async () => {
    tb ??= await start();
    await assert.rejects(tb.client(SA_TOKENS.ci).auditCheckpoints(), (e: { exitCode?: number }) => e.exitCode === 4);
    assert.ok((await tb.client(SA_TOKENS.auditor).auditCheckpoints()).checkpoints.length > 0);
  });
});

describe('r6: a vote cast with a service account counts for the person who owns it', () => {
  process.env.T_ID6_LEAD = 'id6lead_4c1d9e2f7a3b5c8d0e6f1a2b3c4d5e6f';
  let db: TestDatabase;
  let tb: IdentityBroker;

  before(async () => {
    db = await createTestDatabase('id6ap');
    tb = await startIdentityBroker({
      targets: { prod: pgTarget(db.name) },
      // An admin who is also an approver, as a team lead often is.
      identity: { serviceAccounts: [...SERVICE_ACCOUNTS, { id: 'id6-lead', token: '${env:T_ID6_LEAD}', groups: ['admins', 'approvers'], kind: 'workload' }] },
    });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  const held = async (requesterToken: string, quorum: number): Promise<string> => {
    const requester = await tb.broker.core.authenticate(requesterToken);
    const r = await tb.broker.core.approvals.createStatementRequest({
      requester,
      target: 'prod',
      database: db.name,
      sessionId: 'ses_id6',
      sql: 'UPDATE accounts SET v = 0 WHERE id = 1',
      redacted: 'UPDATE accounts SET v = $1 WHERE id = $2',
      fingerprint: 'id6',
      kind: 'update',
      tables: ['public.accounts'],
      estimatedRows: 1,
      rule: 'id6-review',
      approvers: { groups: ['approvers'], quorum },
      expiresMs: 60_000,
      windowMs: 60_000,
    });
    return r.id;
  };
  const stampFor = async (ownerToken: string, name: string): Promise<string> => (await tb.client(ownerToken).createServiceAccount({ name, groups: ['approvers'], kind: 'workload' })).token;

  test('an admin cannot approve their own held statement with a service account they created', async () => {
    const stamp = await stampFor(SA_TOKENS.admin, 'id6-admin-stamp');
    const id = await held(SA_TOKENS.admin, 1);
    await assert.rejects(tb.client(stamp).approve(id), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /your own request/.test(e.message ?? ''));
    assert.equal((await tb.client(SA_TOKENS.auditor).request(id)).status, 'pending');
    // Control: someone else's vote releases it.
    assert.equal((await tb.client(SA_TOKENS.approver).approve(id)).status, 'approved');
  });

  test("a service account cannot be named as a person: its votes and records would read as theirs", async () => {
    for (const name of ['bob@example.com', 'Bob@Example.com']) {
      await assert.rejects(tb.client(SA_TOKENS.admin).createServiceAccount({ name, groups: ['approvers'], kind: 'workload' }), (e: { exitCode?: number; message?: string }) => e.exitCode === 2 && /names a person/.test(e.message ?? ''), name);
    }
    assert.ok(!(await tb.client(SA_TOKENS.admin).serviceAccounts()).accounts.some((a) => a.id.includes('@')));
    // Control: an ordinary name is created.
    assert.equal((await tb.client(SA_TOKENS.admin).createServiceAccount({ name: 'id6-deployer', groups: ['ci'], kind: 'workload' })).account.id, 'id6-deployer');
  });

  test('a quorum of two is two people: an approver and the service account they own are one', async () => {
    const stamp = await stampFor('id6lead_4c1d9e2f7a3b5c8d0e6f1a2b3c4d5e6f', 'id6-lead-stamp');
    const id = await held(SA_TOKENS.ci, 2);
    assert.equal((await tb.client('id6lead_4c1d9e2f7a3b5c8d0e6f1a2b3c4d5e6f').approve(id)).status, 'pending');
    await assert.rejects(tb.client(stamp).approve(id), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /already voted/.test(e.message ?? ''));
    assert.equal((await tb.client(SA_TOKENS.auditor).request(id)).status, 'pending', 'one person has voted');
    // The other order: the owned account first, then its owner.
    const id2 = await held(SA_TOKENS.ci, 2);
    assert.equal((await tb.client(stamp).approve(id2)).status, 'pending');
    await assert.rejects(tb.client('id6lead_4c1d9e2f7a3b5c8d0e6f1a2b3c4d5e6f').approve(id2), (e: { exitCode?: number; message?: string }) => e.exitCode === 4 && /already voted/.test(e.message ?? ''));
    // Control: a second person completes the quorum, and the vote names whose it was.
    const done = await tb.client(SA_TOKENS.approver).approve(id);
    assert.equal(done.status, 'approved');
    const decided = await tb.events((e) => e.kind === 'approval.vote' && (e.detail as { requestId?: string }).requestId === id2);
    assert.ok(decided.some((e) => e.identity?.id === 'id6-lead-stamp' && (e.detail as { refused?: string }).refused === undefined));
  });
});

describe('r6: revoking an identity closes the approvals it has not spent', () => {
  let db: TestDatabase;
  let tb: IdentityBroker;
  const UPDATE = 'UPDATE held SET v = v + 1 WHERE id = 1';

  before(async () => {
    db = await createTestDatabase(
      'id6rv',
      // Code that planning would run: an IMMUTABLE function (folded), an operator bound to one, a view that calls one.
      `create table held (id int primary key, v int); insert into held values (1, 1);
       create sequence id6_seq;
       create function id6_f() returns int immutable language plpgsql as $$ begin perform nextval('id6_seq'); return 1; end $$;
       create function id6_eq(int, int) returns boolean immutable language plpgsql as $$ begin perform nextval('id6_seq'); return $1 = $2; end $$;
       create operator ==== (leftarg = int, rightarg = int, function = id6_eq);
       create view held_v as select * from held where id = id6_f();`,
    );
    tb = await startIdentityBroker({
      targets: { prod: pgTarget(db.name, { env: 'staging' }) },
      policy: {
        statements: [
          { name: 'held-review', match: { statement: { relations: { names: ['public.held'], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '0s', window: '5m' } },
        ],
      },
    });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  const heldValue = async (): Promise<number> => (await adminQuery<{ v: number }>('select v from held where id = 1', [], db.name)).rows[0].v;
  /** Runs UPDATE as `token`: the request id it was refused with, or null when it ran. */
  const runAs = (token: string): Promise<string | null> => runSqlAs(token, UPDATE);
  const runSqlAs = async (token: string, sql: string): Promise<string | null> => {
    const conn = await tb.connect(token, { target: 'prod', access: 'write' });
    const c = await tunnelClient(conn);
    try {
      await c.query(sql);
      return null;
    } catch (e) {
      const m = /approval required \(request (\w+)\)/.exec((e as Error).message);
      assert.ok(m, (e as Error).message);
      return m[1];
    } finally {
      await c.end();
      await conn.close();
    }
  };

  test("a held statement's row estimate runs none of the statement's own code before it is approved", async () => {
    const calls = async (): Promise<boolean> => (await adminQuery<{ is_called: boolean }>('select is_called from id6_seq', [], db.name)).rows[0].is_called;
    const estimateOf = async (id: string): Promise<number | null> => (await tb.client(SA_TOKENS.auditor).request(id)).estimatedRows ?? null;
    for (const sql of ['UPDATE held SET v = 9 WHERE id = id6_f()', 'UPDATE held SET v = 9 WHERE id ==== 1', 'UPDATE held_v SET v = 9 WHERE id = 1', 'DELETE FROM held WHERE id IN (SELECT id6_f())']) {
      const id = await runSqlAs(SA_TOKENS.ci, sql);
      assert.ok(id, `${sql}: held`);
      assert.equal(await calls(), false, `${sql}: id6_f ran before approval`);
      assert.equal(await estimateOf(id), null, sql);
    }
    // Control: a statement of built-ins over a base table still shows the approver an estimate.
    const plain = await runSqlAs(SA_TOKENS.ci, 'UPDATE held SET v = v + 1 WHERE id = 1 AND abs(v) >= 0');
    assert.ok(plain);
    assert.equal(typeof (await estimateOf(plain)), 'number');
  });

  test('control: approved, the same service account re-runs it once', async () => {
    const { token } = await tb.client(SA_TOKENS.admin).createServiceAccount({ name: 'id6-runner', groups: ['ci'], kind: 'workload' });
    const id = await runAs(token);
    assert.ok(id);
    await tb.client(SA_TOKENS.approver).approve(id);
    const before = await heldValue();
    assert.equal(await runAs(token), null);
    assert.equal(await heldValue(), before + 1);
  });

  test('a service account revoked and created again under its name does not spend the old one\'s approval', async () => {
    const first = await tb.client(SA_TOKENS.admin).createServiceAccount({ name: 'id6-deployer', groups: ['ci'], kind: 'workload' });
    const id = await runAs(first.token);
    assert.ok(id);
    await tb.client(SA_TOKENS.approver).approve(id);
    await tb.client(SA_TOKENS.admin).revokeServiceAccount('id6-deployer');
    assert.equal((await tb.client(SA_TOKENS.auditor).request(id)).status, 'cancelled');

    const second = await tb.client(SA_TOKENS.admin).createServiceAccount({ name: 'id6-deployer', groups: ['ci'], kind: 'workload' });
    const before = await heldValue();
    const again = await runAs(second.token);
    assert.ok(again && again !== id, 'a new request, not the old approval');
    assert.equal(await heldValue(), before, 'nothing ran');
    const cancelled = await tb.events((e) => e.kind === 'approval.decided' && (e.detail as { requestId?: string }).requestId === id);
    assert.ok(cancelled.some((e) => (e.detail as { status?: string }).status === 'cancelled'), 'the cancellation is on record');
  });
});

describe('r6: MySQL: a held statement\'s row estimate runs no stored code before it is approved', () => {
  let db: MysqlTestDatabase;
  let tb: IdentityBroker;

  before(async () => {
    db = await createMysqlDatabase(
      'id6my',
      `CREATE TABLE held (id INT PRIMARY KEY, v INT); INSERT INTO held VALUES (1, 1);
       CREATE TABLE ran (n INT);
       CREATE FUNCTION id6_f() RETURNS INT DETERMINISTIC MODIFIES SQL DATA BEGIN INSERT INTO ran VALUES (1); RETURN 1; END;
       CREATE VIEW held_v AS SELECT * FROM held WHERE id = id6_f();
       CREATE TABLE other (id INT PRIMARY KEY); INSERT INTO other VALUES (1);
       CREATE VIEW other_v AS SELECT id FROM other WHERE id = id6_f();`,
    );
    tb = await startIdentityBroker({
      targets: { orders: mysqlTarget(db.name, { env: 'staging' }) },
      policy: {
        statements: [
          { name: 'held-review', match: { statement: { relations: { names: [`${db.name}.held`], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '0s', window: '5m' } },
        ],
      },
    });
  });
  after(async () => {
    await tb?.close();
    await db?.drop();
  });

  const heldAs = async (sql: string): Promise<string> => {
    const conn = await tb.connect(SA_TOKENS.ci, { target: 'orders', access: 'write' });
    const c = await mysqlTunnelClient(conn);
    try {
      await c.query(sql);
      assert.fail(`${sql}: ran without approval`);
    } catch (e) {
      const m = /approval required \(request (\w+)\)/.exec((e as Error).message);
      assert.ok(m, (e as Error).message);
      return m[1];
    } finally {
      await c.end();
      await conn.close();
    }
  };

  // MariaDB's EXPLAIN runs stored functions, in the statement or in a view it reads.
  test('through a view that calls a stored function: no estimate, nothing ran; a plain table still gets one', async () => {
    for (const sql of ['UPDATE held_v SET v = 9 WHERE id = 1', 'UPDATE held SET v = 9 WHERE id IN (SELECT id FROM other_v)']) {
      const id = await heldAs(sql);
      assert.deepEqual(await mysqlAdmin('SELECT * FROM ran', db.name), [], `${sql}: id6_f did not run`);
      assert.equal((await tb.client(SA_TOKENS.auditor).request(id)).estimatedRows ?? null, null, sql);
    }
    const plain = await heldAs('UPDATE held SET v = v + 1 WHERE id = 1');
    assert.equal(typeof (await tb.client(SA_TOKENS.auditor).request(plain)).estimatedRows, 'number');
  });
});
