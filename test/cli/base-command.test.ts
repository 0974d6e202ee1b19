import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Whoami from '../../src/commands/whoami.js';
import { loginStore } from '../../src/cli/login-store.js';
import { apiError, deadBrokerUrl, runCommand, startFakeBroker, tempHome, type FakeBroker } from './helpers.js';

const identity = { id: 'ci-bot', kind: 'workload', groups: ['ci'], source: 'service-account' };

describe('JSON envelope (fake broker)', () => {
  let broker: FakeBroker;
  let home: Awaited<ReturnType<typeof tempHome>>;
  before(async () => {
    home = await tempHome();
    broker = await startFakeBroker({
      'GET /v1/whoami': (req) => {
        if (req.headers.authorization === 'Bearer good') return { body: { identity, expiresAt: null } };
        if (req.headers.authorization === 'Bearer forbidden') return apiError(403, 'denied', 'service accounts may not ask who they are', ['ask an admin']);
        if (req.headers.authorization === 'Bearer garbage') return { raw: 'not json', contentType: 'application/json' };
        if (req.headers.authorization === 'Bearer not-a-broker') return { status: 404, raw: '<html>Not Found</html>', contentType: 'text/html' };
        if (req.headers.authorization === 'Bearer expired-session') return apiError(401, 'token_invalid', 'your dbgov session token is not valid for this broker', ['run `dbgov login`']);
        return apiError(401, 'invalid_token', 'the broker does not accept this token');
      },
    });
  });
  after(async () => {
    await broker.close();
    await home.cleanup();
  });

  it('success prints {status:0,result,warnings} and sends DBGOV_TOKEN as a bearer token', async () => {
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'good', DBGOV_HOME: home.dir });
    assert.equal(r.error, undefined);
    assert.deepEqual(r.json, { status: 0, result: { broker: broker.url, source: 'service-account', identity, expiresAt: null }, warnings: [] });
    assert.equal(broker.seen.at(-1)?.headers.authorization, 'Bearer good');
  });

  it('--broker wins over DBGOV_BROKER', async () => {
    const dead = await deadBrokerUrl();
    const r = await runCommand(Whoami, ['--json', '--broker', broker.url], { DBGOV_BROKER: dead, DBGOV_TOKEN: 'good', DBGOV_HOME: home.dir });
    assert.equal(r.json.status, 0);
  });

  const cases: { name: string; token: string; status: number; errName: string; action: RegExp }[] = [
    { name: '401 with a service-account token → auth (3), names DBGOV_TOKEN', token: 'bad', status: 3, errName: 'AuthError', action: /DBGOV_TOKEN/ },
    { name: '403 → denied (4), keeps the broker actions', token: 'forbidden', status: 4, errName: 'DeniedError', action: /ask an admin/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: c.token, DBGOV_HOME: home.dir });
      assert.equal(r.error?.exitCode, c.status);
      assert.deepEqual(Object.keys(r.json).sort(), ['actions', 'message', 'name', 'status']);
      assert.equal(r.json.status, c.status);
      assert.equal(r.json.name, c.errName);
      assert.ok(r.json.actions.some((a: string) => c.action.test(a)), JSON.stringify(r.json.actions));
    });
  }

  it('401 for DBGOV_TOKEN: the advice is about DBGOV_TOKEN, not the broker\'s "run `dbgov login`" (DBGOV_TOKEN would still win)', async () => {
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'expired-session', DBGOV_HOME: home.dir });
    assert.equal(r.json.status, 3);
    assert.match(r.json.actions[0], /^check DBGOV_TOKEN/);
    assert.ok(!r.json.actions.includes('run `dbgov login`'), JSON.stringify(r.json.actions));
    assert.equal(new Set(r.json.actions).size, r.json.actions.length);
  });

  it('a server that is not the broker API (gateway port, IdP, a path) → exit 5 saying so, not "404 Not Found" with no next step', async () => {
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'not-a-broker', DBGOV_HOME: home.dir });
    assert.equal(r.json.status, 5);
    assert.match(r.json.message, /answered 404 Not Found, which is not an answer of the dbgov broker API/);
    assert.match(r.json.actions[0], /DBGOV_BROKER/);
  });

  it('an unexpected fault → status 1 with a generic message that leaks nothing', async () => {
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'garbage', DBGOV_HOME: home.dir });
    assert.equal(r.json.status, 1);
    assert.equal(r.json.message, 'dbgov hit an unexpected internal error');
    assert.doesNotMatch(r.stdout, /not json|SyntaxError/);
  });

  it('a broker that is down → exit 5 with the URL and what to do', async () => {
    const dead = await deadBrokerUrl();
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: dead, DBGOV_TOKEN: 'good', DBGOV_HOME: home.dir });
    assert.equal(r.error?.exitCode, 5);
    assert.equal(r.json.status, 5);
    assert.equal(r.json.name, 'UnreachableError');
    assert.match(r.json.message, new RegExp(`^dbgov: cannot reach the broker at ${dead}`));
    assert.ok(r.json.actions.some((a: string) => a.includes('DBGOV_BROKER')));
    assert.ok(r.json.actions.some((a: string) => a.includes('dbgov broker start')));
  });

  it('an expired saved login with no refresh token → exit 3 naming `dbgov login`, without calling the broker', async () => {
    const before = broker.seen.length;
    await loginStore({ DBGOV_HOME: home.dir }).save({
      brokerUrl: broker.url,
      brokerAccessToken: 'old',
      expiresAt: Date.now() - 3 * 3_600_000,
      identity: { ...identity, kind: 'human', source: 'oidc', id: 'alice' } as never,
    });
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_HOME: home.dir });
    assert.equal(r.json.status, 3);
    assert.match(r.json.message, /expired 3h ago/);
    assert.deepEqual(r.json.actions, ['run `dbgov login`']);
    assert.equal(broker.seen.length, before);
  });

  it('not logged in and no DBGOV_TOKEN → exit 3 with both ways out', async () => {
    const fresh = await tempHome();
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_HOME: fresh.dir });
    await fresh.cleanup();
    assert.equal(r.json.status, 3);
    assert.ok(r.json.actions.includes('run `dbgov login`'));
    assert.ok(r.json.actions.some((a: string) => a.includes('DBGOV_TOKEN')));
  });

  it('not logged in with DBGOV_ID_TOKEN set → exit 3 naming the one missing step, `dbgov login --workload`', async () => {
    const fresh = await tempHome();
    const r = await runCommand(Whoami, ['--json'], { DBGOV_BROKER: broker.url, DBGOV_HOME: fresh.dir, DBGOV_ID_TOKEN: 'gha-jwt' });
    await fresh.cleanup();
    assert.equal(r.json.status, 3);
    assert.match(r.json.actions[0], /DBGOV_ID_TOKEN is set: run `dbgov login --workload` once/);
  });

  it('no broker configured anywhere → usage (2) telling how to set one', async () => {
    const fresh = await tempHome();
    const r = await runCommand(Whoami, ['--json'], { DBGOV_HOME: fresh.dir });
    await fresh.cleanup();
    assert.equal(r.json.status, 2);
    assert.ok(r.json.actions.some((a: string) => a.includes('export DBGOV_BROKER=')));
  });

  it('an unknown flag → usage (2) in the envelope', async () => {
    const r = await runCommand(Whoami, ['--json', '--nope'], { DBGOV_BROKER: broker.url, DBGOV_TOKEN: 'good', DBGOV_HOME: home.dir });
    assert.equal(r.json.status, 2);
    assert.equal(r.json.name, 'UsageError');
    assert.match(r.json.message, /--nope/);
  });

  it('without --json, an error prints the message and the actions for a person on stderr, nothing on stdout', async () => {
    const dead = await deadBrokerUrl();
    const r = await runCommand(Whoami, [], { DBGOV_BROKER: dead, DBGOV_TOKEN: 'good', DBGOV_HOME: home.dir });
    assert.equal(r.error?.exitCode, 5);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /✖ dbgov: cannot reach the broker at/);
    assert.match(r.stderr, /→ start a broker with `dbgov broker start/);
  });
});
