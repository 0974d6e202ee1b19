/**
 * Adversarial round on identity, credentials, approvals and the broker API: a malicious insider
 * (a developer, an auditor, an approver who is also an admin) or someone holding a stolen token
 * tries to get past the broker. Every probe asserts what must hold; probes the broker already
 * refused stay here as regression tests.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { makeProof, tunnelHello } from '../../src/auth/credentials.js';
import type { CredentialResponse } from '../../src/broker/api-types.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { nowSec, startTestIssuer, type TestIssuer } from '../auth/test-issuer.js';
import { FormBrowser, approveDeviceLogin } from '../../src/demo/form-browser.js';
import { HUMANS, SA_TOKENS, createTestDatabase, pgTarget, startTestBroker, testClientKey, tunnelClient, type TestBroker, type TestDatabase } from './harness.js';
import { SERVICE_ACCOUNTS, eventually, rogueTunnel, startIdentityBroker, type IdentityBroker } from './identity-harness.js';

/** Extra config accounts with literal tokens (the harness's env only carries the shared ones). */
const T = {
  dev: 'dev_9f3b1c0e7a5d4b2e8c6a0f1d3b5e7a9c',
  dev2: 'dev2_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d',
  // An admin who is also an approver: may create service accounts and vote.
  lead: 'lead_0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c',
  vpn: 'vpn_5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f',
  jit: 'jit_7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b',
  jit2: 'jit2_3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f',
};
// The harness reads secrets from the environment (dbgov.yaml refuses inline tokens).
Object.assign(process.env, { T_ADV_DEV: T.dev, T_ADV_DEV2: T.dev2, T_ADV_LEAD: T.lead, T_ADV_VPN: T.vpn, T_ADV_JIT: T.jit, T_ADV_JIT2: T.jit2 });
const EXTRA_ACCOUNTS = [
  { id: 'dev-bot', token: '${env:T_ADV_DEV}', groups: ['developers'], kind: 'workload' },
  { id: 'dev-bot-2', token: '${env:T_ADV_DEV2}', groups: ['developers'], kind: 'workload' },
  { id: 'lead-bot', token: '${env:T_ADV_LEAD}', groups: ['admins', 'approvers'], kind: 'workload' },
  { id: 'vpn-bot', token: '${env:T_ADV_VPN}', groups: ['ops'], kind: 'workload' },
  // Write access for these two is just-in-time only.
  { id: 'jit-bot', token: '${env:T_ADV_JIT}', groups: ['jit'], kind: 'workload' },
  { id: 'jit-bot-2', token: '${env:T_ADV_JIT2}', groups: ['jit'], kind: 'workload' },
];
const AUD = 'https://dbgov.adversarial.example';

interface ApiAnswer {
  status: number;
  text: string;
  body: { error?: { code?: string; message?: string; actions?: string[] } } & Record<string, unknown>;
}

describe('adversarial: identity, credentials, approvals and the broker API', () => {
  let db: TestDatabase;
  let other: TestDatabase;
  let tb: IdentityBroker;
  let issuer: TestIssuer;

  before(async () => {
    const setup = 'create table held (id int primary key, v int); insert into held values (1, 1), (2, 2);';
    [db, other] = await Promise.all([createTestDatabase('advid', setup), createTestDatabase('advid2', setup)]);
    issuer = await startTestIssuer({ alg: 'RS256' });
    tb = await startIdentityBroker({
      targets: { prod: pgTarget(db.name, { env: 'prod', databases: [other.name] }) },
      identity: {
        serviceAccounts: [...SERVICE_ACCOUNTS, ...EXTRA_ACCOUNTS],
        workload: [{ issuer: issuer.issuer, audience: AUD, rules: [{ match: { sub: 'repo:acme/api:ref:refs/heads/main' }, identity: 'gha:acme/api', groups: ['ci'] }] }],
      },
      policy: {
        access: [
          { name: 'jit-write', match: { identity: { groups: ['jit'] }, access: ['write'] }, action: 'review', approvers: { groups: ['approvers'] }, expires: '10m' },
          { name: 'vpn-only', match: { identity: { ids: ['vpn-bot'] }, sourceCidrs: ['10.0.0.0/8'] }, action: 'allow' },
          { name: 'vpn-elsewhere', match: { identity: { ids: ['vpn-bot'] } }, action: 'deny', message: 'vpn-bot only from the VPN' },
          { name: 'everyone', action: 'allow' },
        ],
        statements: [
          { name: 'held-review', match: { statement: { relations: { names: ['public.held'], access: ['write'] } } }, action: 'review', review: { approvers: { groups: ['approvers'] }, hold: '30s', window: '5m' } },
        ],
      },
    });
  });
  after(async () => {
    await tb?.close();
    await issuer?.close();
    await Promise.all([db?.drop(), other?.drop()]);
  });

  const api = async (method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> => {
    const res = await fetch(tb.apiUrl + path, {
      method,
      headers: {
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: ApiAnswer['body'] = {};
    try {
      parsed = JSON.parse(text) as ApiAnswer['body'];
    } catch {
      parsed = {};
    }
    return { status: res.status, text, body: parsed };
  };

  const newEvents = async (since: number, pred: (e: AuditEvent) => boolean): Promise<AuditEvent[]> => (await tb.events()).slice(since).filter(pred);
  const eventCount = async (): Promise<number> => (await tb.events()).length;

  /** Nothing a refusal says may carry a stack, a file path or a token. */
  const assertClean = (a: ApiAnswer, what: string): void => {
    assert.doesNotMatch(a.text, /\bat [\w.<>]+ \(|node:internal|\/src\/|\.ts:\d|\.js:\d/, `${what}: no stack or path in ${a.text}`);
    for (const t of [...Object.values(T), ...Object.values(SA_TOKENS)]) assert.ok(!a.text.includes(t), `${what}: no token in the body`);
  };

  const key = testClientKey;
  const credentialFor = async (token: string, req: Record<string, unknown> = {}): Promise<CredentialResponse['credential']> => {
    const k = await key();
    const out = await tb.client(token).requestCredential({ target: 'prod', publicKey: k.publicJwk as Record<string, unknown>, ...req });
    assert.equal(out.status, 'issued', JSON.stringify(out));
    return (out as CredentialResponse).credential;
  };

  describe('broker API authentication and authorisation', () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/v1/whoami'],
      ['GET', '/v1/targets'],
      ['POST', '/v1/credentials', { target: 'prod', publicKey: {} }],
      ['GET', '/v1/access-requests/ABCDEFGH'],
      ['POST', '/v1/revoke', { identity: 'ci-bot' }],
      ['GET', '/v1/activity?credential=cred_x'],
      ['GET', '/v1/requests'],
      ['GET', '/v1/requests/ABCDEFGH'],
      ['POST', '/v1/requests/ABCDEFGH/approve', {}],
      ['POST', '/v1/requests/ABCDEFGH/deny', { reason: 'no' }],
      ['GET', '/v1/audit/events'],
      ['GET', '/v1/audit/export'],
      ['GET', '/v1/audit/report'],
      ['GET', '/v1/sessions'],
      ['GET', '/v1/service-accounts'],
      ['POST', '/v1/service-accounts', { name: 'sneaky', groups: ['admins'] }],
      ['DELETE', '/v1/service-accounts/ci-bot'],
    ];
    const badTokens: [string, Record<string, string>][] = [
      ['no authorization header', {}],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['bearer of whitespace', { authorization: 'Bearer    ' }],
      ['a service-account token with a space inside', { authorization: `Bearer ${SA_TOKENS.admin.slice(0, 8)} ${SA_TOKENS.admin.slice(8)}` }],
      ['a service-account token with a suffix', { authorization: `Bearer ${SA_TOKENS.admin}x` }],
      ['a service-account token cut short', { authorization: `Bearer ${SA_TOKENS.admin.slice(0, -1)}` }],
      ['Basic scheme with the admin token', { authorization: `Basic ${SA_TOKENS.admin}` }],
      ['a JWT signed by another key', { authorization: 'Bearer eyJhbGciOiJFZERTQSIsInR5cCI6ImRiZ292LWF0K2p3dCJ9.eyJzdWIiOiJhZG1pbi1ib3QifQ.AAAA' }],
    ];
    for (const [what, headers] of badTokens) {
      test(`every authenticated route refuses ${what} with 401 and a clean body`, async () => {
        for (const [method, path, body] of routes) {
          const a = await api(method, path, undefined, body, headers);
          assert.equal(a.status, 401, `${method} ${path}: ${a.text}`);
          assert.ok(a.body.error?.code, `${method} ${path}: an error envelope`);
          assertClean(a, `${method} ${path}`);
        }
      });
    }

    test('a forged broker token (alg none, or HS256 keyed with the broker public key) is refused', async () => {
      const pub = tb.broker.core.info().auditPublicKeyPem;
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const claims = { iss: 'dbgov-broker', aud: 'dbgov-api', sub: 'admin-bot', iat: nowSec(), nbf: nowSec(), exp: nowSec() + 600, idn: { id: 'admin-bot', kind: 'workload', groups: ['admins'] } };
      const none = `${b64({ alg: 'none', typ: 'dbgov-at+jwt' })}.${b64(claims)}.`;
      const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'dbgov-at+jwt' }).sign(new TextEncoder().encode(pub));
      for (const t of [none, hs]) {
        const a = await api('GET', '/v1/service-accounts', t);
        assert.equal(a.status, 401, a.text);
      }
    });

    test('a database credential does not work as an API token', async () => {
      const cred = await credentialFor(SA_TOKENS.admin);
      const a = await api('GET', '/v1/service-accounts', cred.token);
      assert.equal(a.status, 401, a.text);
    });

    const forbidden: [string, string, string, unknown?][] = [
      ['audit report', 'GET', '/v1/audit/report'],
      ['list service accounts', 'GET', '/v1/service-accounts'],
      ['create a service account', 'POST', '/v1/service-accounts', { name: 'dev-made', groups: ['admins'] }],
      ['revoke a service account', 'DELETE', '/v1/service-accounts/approver-bot', undefined],
      ["search another identity's audit trail", 'GET', '/v1/audit/events?identity=ci-bot'],
      ["export another identity's audit trail", 'GET', '/v1/audit/events?identity=admin-bot&kind=login'],
      ['revoke another identity', 'POST', '/v1/revoke', { identity: 'ci-bot' }],
    ];
    test('a developer is refused on admin and auditor routes; each refusal is audited under the developer', async () => {
      for (const [what, method, path, body] of forbidden) {
        const before = await eventCount();
        const a = await api(method, path, T.dev, body);
        assert.equal(a.status, 403, `${what}: ${a.text}`);
        assertClean(a, what);
        const refused = await newEvents(before, (e) => e.kind === 'api.refused');
        assert.equal(refused.length, 1, `${what}: one api.refused record`);
        assert.equal(refused[0].identity?.id, 'dev-bot', what);
        // The route's pattern, not the raw path: ids in paths are the caller's to choose.
        assert.equal((refused[0].detail as { route?: string }).route, `${method} ${path.split('?')[0].replace('/approver-bot', '/:id')}`, what);
      }
      // And nothing was created.
      const list = await api('GET', '/v1/service-accounts', SA_TOKENS.admin);
      assert.ok(!JSON.stringify(list.body).includes('dev-made'));
    });

    test("a developer's audit search is narrowed to their own records, whatever the filter", async () => {
      await credentialFor(SA_TOKENS.ci);
      for (const q of ['', '?kind=credential.issued', '?text=ci-bot', '?identityKind=workload&limit=1000']) {
        const a = await api('GET', `/v1/audit/events${q}`, T.dev);
        assert.equal(a.status, 200, a.text);
        const events = (a.body.events ?? []) as AuditEvent[];
        assert.ok(events.every((e) => e.identity?.id === 'dev-bot' || e.identity?.onBehalfOf?.id === 'dev-bot'), `${q}: only dev-bot's records`);
      }
      const exp = await api('GET', '/v1/audit/export?format=jsonl', T.dev);
      assert.equal(exp.status, 200);
      for (const line of exp.text.split('\n').filter(Boolean)) assert.equal((JSON.parse(line) as AuditEvent).identity?.id, 'dev-bot', line);
    });

    test("approval requests are shown to approvers, auditors and the requester, not to other developers", async () => {
      const conn = await tb.connect(T.dev2, { target: 'prod', access: 'write' });
      const c = await tunnelClient(conn);
      try {
        const pending = c.query('update held set v = 9 where id = 1').catch((e: Error) => e);
        const id = await eventually(async () => ((await api('GET', '/v1/requests', SA_TOKENS.approver)).body.requests as { id: string; requester: { id: string } }[] | undefined)?.find((r) => r.requester.id === 'dev-bot-2')?.id, 5000, 'the held request');
        const mine = await api('GET', '/v1/requests', T.dev2);
        assert.ok(((mine.body.requests ?? []) as { id: string }[]).some((r) => r.id === id), 'the requester sees their request');
        const auditor = await api('GET', '/v1/requests', SA_TOKENS.auditor);
        assert.ok(((auditor.body.requests ?? []) as { id: string }[]).some((r) => r.id === id), 'an auditor sees it');
        const snoop = await api('GET', '/v1/requests?status=all', T.dev);
        assert.equal(snoop.status, 200);
        assert.ok(!((snoop.body.requests ?? []) as { id: string }[]).some((r) => r.id === id), "another developer does not see it in the list");
        const direct = await api('GET', `/v1/requests/${id}`, T.dev);
        assert.equal(direct.status, 404, `nor by id: ${direct.text}`);
        await tb.client(SA_TOKENS.approver).deny(id, 'probe');
        assert.match(String((await pending) as Error), /approval denied/);
      } finally {
        await c.end();
        await conn.close();
      }
    });

    test('ids with path traversal, encoded slashes or huge lengths are plain not-found', async () => {
      for (const id of ['..%2F..%2Fetc%2Fpasswd', '..%5C..%5Cstate', '%00', 'A'.repeat(5000), '__proto__', 'constructor']) {
        for (const [method, path] of [
          ['GET', `/v1/requests/${id}`],
          ['POST', `/v1/requests/${id}/approve`],
          ['DELETE', `/v1/service-accounts/${id}`],
        ] as const) {
          const a = await api(method, path, SA_TOKENS.admin, method === 'POST' ? {} : undefined);
          assert.ok([400, 403, 404, 414].includes(a.status), `${method} ${path.slice(0, 60)}: ${a.status} ${a.text.slice(0, 200)}`);
          assertClean(a, path.slice(0, 60));
        }
      }
    });

    test('malformed, oversized and mistyped bodies get a 4xx envelope, never a 500 or a stack', async () => {
      const cases: [string, string, string, Record<string, string>?][] = [
        ['POST', '/v1/credentials', '{"target": "prod", '],
        ['POST', '/v1/credentials', 'null'],
        ['POST', '/v1/credentials', '[]'],
        ['POST', '/v1/credentials', '{"target": ["prod"], "publicKey": {}}'],
        ['POST', '/v1/credentials', '{"target": "prod", "publicKey": null}'],
        ['POST', '/v1/credentials', '{"target": "prod", "publicKey": {"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"AAAA"}}'],
        ['POST', '/v1/credentials', '{"target": "prod", "publicKey": {"kty":"RSA","n":"AQAB","e":"AQAB"}}'],
        ['POST', '/v1/credentials', '{"target": "__proto__", "publicKey": {}}'],
        ['POST', '/v1/credentials', '{"target": "constructor", "publicKey": {}}'],
        ['POST', '/v1/credentials', '{"target": "prod", "database": {"x":1}, "publicKey": {}}'],
        ['POST', '/v1/credentials', '{"target": "prod", "access": "superuser", "publicKey": {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}'],
        ['POST', '/v1/credentials', '{"target": "prod", "ttlSeconds": "1e99", "publicKey": {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}'],
        ['POST', '/v1/credentials', '{"target": "prod", "agent": "../../x", "publicKey": {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}'],
        ['POST', '/v1/credentials', `{"target": "prod", "reason": "${'x'.repeat(2 * 1024 * 1024)}"}`],
        ['POST', '/v1/credentials', '<xml/>', { 'content-type': 'application/xml' }],
        ['POST', '/v1/revoke', '{"sessionId": {"$ne": null}}'],
        ['POST', '/v1/revoke', '{"credentialId": ["a","b"]}'],
        ['POST', '/v1/service-accounts', '{"name": "ok-name", "groups": "admins"}'],
        ['POST', '/v1/service-accounts', '{"name": "ok-name-2", "kind": "human"}'],
        ['POST', '/v1/service-accounts', '{"name": "ok-name-3", "groups": [{"x":1}]}'],
        ['POST', '/v1/auth/exchange', '{"grant": "oidc", "idToken": 5}'],
        ['POST', '/v1/auth/exchange', '{"grant": "password", "idToken": "x.y.z"}'],
        ['POST', '/v1/auth/exchange', '{"grant": "workload", "idToken": "not-a-jwt"}'],
      ];
      for (const [method, path, body, headers] of cases) {
        const a = await api(method, path, SA_TOKENS.admin, body, headers);
        assert.ok(a.status >= 400 && a.status < 500, `${path} ${body.slice(0, 80)}: ${a.status} ${a.text.slice(0, 300)}`);
        assert.ok(a.body.error?.code, `${path} ${body.slice(0, 80)}: an error envelope: ${a.text.slice(0, 200)}`);
        assertClean(a, `${path} ${body.slice(0, 80)}`);
      }
      const accounts = JSON.stringify((await api('GET', '/v1/service-accounts', SA_TOKENS.admin)).body);
      assert.ok(!/ok-name/.test(accounts), `no service account came out of a malformed body: ${accounts}`);
    });

    test('repeated, malformed and tampered query parameters get a 4xx, and never widen a search', async () => {
      for (const path of [
        '/v1/audit/events?kind=login&kind=login.failed',
        '/v1/audit/events?text=a&text=b',
        '/v1/audit/events?since=1h&since=2h',
        '/v1/audit/events?identity=dev-bot&identity=ci-bot',
        '/v1/audit/events?cursor=not-a-cursor',
        `/v1/audit/events?cursor=${Buffer.from('{"b":"1; drop"}').toString('base64url')}`,
        '/v1/audit/export?session=a&session=b',
        '/v1/requests?status=pending&status=all',
        '/v1/activity?credential=a&credential=b',
      ]) {
        const a = await api('GET', path, T.dev);
        assert.ok(a.status >= 400 && a.status < 500, `${path}: ${a.status} ${a.text.slice(0, 200)}`);
        assertClean(a, path);
      }
    });

    test('method confusion: GET on a POST route, POST on a GET route, TRACE', async () => {
      for (const [method, path] of [
        ['GET', '/v1/revoke'],
        ['GET', '/v1/requests/ABCDEFGH/approve'],
        ['POST', '/v1/audit/events'],
        ['PUT', '/v1/service-accounts/ci-bot'],
      ] as const) {
        const a = await api(method, path, SA_TOKENS.admin, method === 'GET' ? undefined : {});
        assert.ok([404, 405].includes(a.status), `${method} ${path}: ${a.status}`);
        assertClean(a, `${method} ${path}`);
      }
    });

    test('X-Forwarded-For does not move the source address policy sees', async () => {
      const k = await key();
      for (const headers of [{ 'x-forwarded-for': '10.1.2.3' }, { forwarded: 'for=10.1.2.3' }, { 'x-real-ip': '10.1.2.3' }] as Record<string, string>[]) {
        const before = await eventCount();
        const a = await api('POST', '/v1/credentials', T.vpn, { target: 'prod', publicKey: k.publicJwk }, headers);
        assert.equal(a.status, 403, `${JSON.stringify(headers)}: ${a.text}`);
        // One refusal, one record: credential.denied, with the real source address.
        const records = await newEvents(before, (e) => e.identity?.id === 'vpn-bot');
        assert.deepEqual(records.map((e) => e.kind), ['credential.denied']);
        assert.match(String((records[0].detail as { sourceIp?: string }).sourceIp), /127\.0\.0\.1/);
      }
    });
  });

  describe('revocation', () => {
    test("someone who may not revoke another person's session cannot end it by its id", async () => {
      const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod' });
      const c = await tunnelClient(conn);
      try {
        const sessionId = await eventually(async () => (await tb.client(SA_TOKENS.ci).sessions()).sessions.find((s) => s.credentialId === conn.credential.id)?.id, 5000, 'the live session');
        const before = await eventCount();
        const a = await api('POST', '/v1/revoke', T.dev, { sessionId });
        assert.equal(a.status, 404, a.text);
        assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }], 'the victim session still works');
        const refused = await newEvents(before, (e) => e.kind === 'api.refused');
        assert.equal(refused.length, 1);
        assert.equal(refused[0].identity?.id, 'dev-bot');
        assert.equal((await newEvents(before, (e) => e.kind === 'credential.revoked')).length, 0, 'no revocation recorded');
      } finally {
        await c.end();
        await conn.close();
      }
    });

    test("someone else's credential id is refused as not found (and audited), not silently accepted", async () => {
      const cred = await credentialFor(SA_TOKENS.ci);
      const before = await eventCount();
      const a = await api('POST', '/v1/revoke', T.dev, { credentialId: cred.id });
      assert.equal(a.status, 404, a.text);
      assert.equal((await tb.broker.core.store.getCredential(cred.id))?.revokedAt, undefined);
      const refused = await newEvents(before, (e) => e.kind === 'api.refused');
      assert.equal(refused[0]?.identity?.id, 'dev-bot');
    });

    test('revoking an identity also stops the broker token it logged in with from minting credentials', async () => {
      const claims: JWTPayload = { iss: issuer.issuer, aud: AUD, sub: 'repo:acme/api:ref:refs/heads/main', iat: nowSec(), nbf: nowSec(), exp: nowSec() + 300 };
      const ex = await tb.client().exchange({ grant: 'workload', idToken: await issuer.sign(claims) });
      const stolen = ex.accessToken;
      await credentialFor(stolen);
      const r = await api('POST', '/v1/revoke', SA_TOKENS.admin, { identity: 'gha:acme/api' });
      assert.equal(r.status, 200, r.text);
      const k = await key();
      const again = await api('POST', '/v1/credentials', stolen, { target: 'prod', publicKey: k.publicJwk });
      assert.equal(again.status, 401, again.text);
      assert.match(again.body.error?.message ?? '', /revoked/);
      // A fresh login after the revocation works again, even within the same second (revocation is not a ban).
      const fresh = await tb.client().exchange({ grant: 'workload', idToken: await issuer.sign({ ...claims, iat: nowSec() }) });
      await credentialFor(fresh.accessToken);
    });
  });

  describe('credentials at the gateway', () => {
    const attempt = async (hello: (binding: Buffer) => Buffer, database = db.name): Promise<{ ok: boolean; message: string }> => {
      const rogue = await rogueTunnel(tb.broker.gateway, hello);
      const c = new pg.Client({ host: '127.0.0.1', port: rogue.port, user: 'x', database, connectionTimeoutMillis: 10_000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.query('select 1');
        await c.end();
        return { ok: true, message: '' };
      } catch (e) {
        return { ok: false, message: (e as Error).message };
      } finally {
        await rogue.close();
      }
    };
    const honest = (cred: { id: string; token: string }, k: Awaited<ReturnType<typeof testClientKey>>) => (b: Buffer) =>
      tunnelHello({ credential: cred.token, proof: makeProof(k.privateKey, b, cred.id), publicJwk: k.publicJwk as Record<string, unknown>, clientVersion: 'probe' });

    test('tampering with any field of a signed credential is refused', async () => {
      const k = await key();
      const cred = await credentialFor(SA_TOKENS.ci);
      assert.equal((await attempt(honest(cred, k))).ok, true, 'the untampered credential works');
      const [h, p, s] = cred.token.split('.');
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      const edits: Record<string, unknown>[] = [{ acc: 'admin' }, { db: other.name }, { tgt: 'staging' }, { sub: 'admin-bot' }, { exp: nowSec() + 86_400 }, { knd: 'human' }, { jti: 'cred_other' }];
      for (const edit of edits) {
        const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, ...edit })).toString('base64url')}.${s}`;
        const r = await attempt(honest({ id: String(edit.jti ?? cred.id), token: forged }, k));
        assert.equal(r.ok, false, JSON.stringify(edit));
        assert.match(r.message, /not issued by this broker|malformed/, JSON.stringify(edit));
      }
    });

    test('a broker API token presented as a credential is refused', async () => {
      const k = await key();
      const ex = await tb.client().exchange({ grant: 'workload', idToken: await issuer.sign({ iss: issuer.issuer, aud: AUD, sub: 'repo:acme/api:ref:refs/heads/main', iat: nowSec(), nbf: nowSec(), exp: nowSec() + 300 }) });
      const r = await attempt(honest({ id: 'x', token: ex.accessToken }, k));
      assert.equal(r.ok, false);
      assert.match(r.message, /not issued by this broker/);
    });

    test('a credential for database X is refused on database Y, and a read credential cannot write', async () => {
      const k = await key();
      const cred = await credentialFor(SA_TOKENS.ci);
      const r = await attempt(honest(cred, k), other.name);
      assert.equal(r.ok, false);
      assert.match(r.message, /for database/);
      const conn = await tb.connect(SA_TOKENS.ci, { target: 'prod' });
      const c = await tunnelClient(conn);
      try {
        await assert.rejects(c.query('insert into held values (99, 99)'), /dbgov: blocked/);
      } finally {
        await c.end();
        await conn.close();
      }
    });

    test('a refused connection whose credential signature verified is audited under that identity', async () => {
      const k = await key();
      const cred = await credentialFor(SA_TOKENS.ci);
      await api('POST', '/v1/revoke', SA_TOKENS.ci, { credentialId: cred.id });
      const before = await eventCount();
      const r = await attempt(honest(cred, k));
      assert.equal(r.ok, false);
      assert.match(r.message, /revoked/);
      const refused = await newEvents(before, (e) => e.kind === 'session.refused');
      assert.equal(refused.length, 1);
      assert.equal(refused[0].identity?.id, 'ci-bot', 'the holder proved the key: the record names them');
      assert.equal((refused[0].detail as { credentialId?: string }).credentialId, cred.id);

      // A stolen credential replayed with another key names the credential, but not as the actor.
      const cred2 = await credentialFor(SA_TOKENS.ci);
      const thief = generateKeyPairSync('ed25519');
      const thiefJwk = { kty: 'OKP', crv: 'Ed25519', x: thief.publicKey.export({ format: 'jwk' }).x as string };
      const before2 = await eventCount();
      const r2 = await attempt((b) => tunnelHello({ credential: cred2.token, proof: makeProof(thief.privateKey, b, cred2.id), publicJwk: thiefJwk, clientVersion: 'probe' }));
      assert.equal(r2.ok, false);
      const refused2 = await newEvents(before2, (e) => e.kind === 'session.refused');
      assert.equal(refused2[0]?.identity, null, 'the thief is not recorded as the victim');
      assert.deepEqual([(refused2[0]?.detail as { credentialId?: string }).credentialId, (refused2[0]?.detail as { claimedIdentity?: string }).claimedIdentity], [cred2.id, 'ci-bot']);
    });
  });

  describe('approvals', () => {
    const heldRequest = async (token: string, sql: string, requester: string): Promise<{ id: string; result: Promise<unknown>; done(): Promise<void> }> => {
      const conn = await tb.connect(token, { target: 'prod', access: 'write' });
      const c = await tunnelClient(conn);
      const result = c.query(sql).then(
        () => 'ran',
        (e: Error) => e.message,
      );
      const id = await eventually(
        async () => ((await api('GET', '/v1/requests', SA_TOKENS.approver)).body.requests as { id: string; requester: { id: string }; status: string }[] | undefined)?.find((r) => r.requester.id === requester && r.status === 'pending')?.id,
        5000,
        'the held request',
      );
      return {
        id,
        result,
        done: async () => {
          await c.end().catch(() => undefined);
          await conn.close();
        },
      };
    };

    test("an admin-approver cannot approve a statement held for a service account they created", async () => {
      const created = await api('POST', '/v1/service-accounts', T.lead, { name: 'lead-pipeline', groups: ['developers'] });
      assert.equal(created.status, 201, created.text);
      const token = (created.body as { token: string }).token;
      const h = await heldRequest(token, 'update held set v = 7 where id = 2', 'lead-pipeline');
      try {
        const before = await eventCount();
        const a = await api('POST', `/v1/requests/${h.id}/approve`, T.lead, {});
        assert.equal(a.status, 403, a.text);
        assert.match(a.body.error?.message ?? '', /your own request/);
        const votes = await newEvents(before, (e) => e.kind === 'approval.vote');
        assert.equal(votes[0]?.identity?.id, 'lead-bot');
        await api('POST', `/v1/requests/${h.id}/deny`, SA_TOKENS.approver, { reason: 'probe' });
        assert.match(String(await h.result), /approval denied/);
      } finally {
        await h.done();
      }
    });

    test('votes on a closed, unknown or foreign request are refused and audited under the voter', async () => {
      const h = await heldRequest(T.dev, 'update held set v = 5 where id = 1', 'dev-bot');
      try {
        await tb.client(SA_TOKENS.approver).deny(h.id, 'no');
        assert.match(String(await h.result), /approval denied/);
        for (const [who, token, path] of [
          ['a second approver, after the deny', SA_TOKENS.approver2, `/v1/requests/${h.id}/approve`],
          ['an unknown id', SA_TOKENS.approver2, '/v1/requests/ZZZZZZZZ/approve'],
          ['a developer', T.dev2, `/v1/requests/${h.id}/approve`],
        ] as const) {
          const before = await eventCount();
          const a = await api('POST', path, token, {});
          assert.ok([403, 404, 409].includes(a.status), `${who}: ${a.text}`);
          const votes = await newEvents(before, (e) => e.kind === 'approval.vote' || e.kind === 'api.refused');
          assert.equal(votes.length, 1, `${who}: one record`);
          assert.ok(votes[0].identity?.id && votes[0].identity.id !== 'dev-bot', `${who}: under the voter`);
        }
        assert.equal((await tb.broker.core.approvals.get(h.id)).status, 'denied');
      } finally {
        await h.done();
      }
    });

    test('an approved access request buys one credential, for the database and level approved only', async () => {
      const k = await key();
      const ask = await tb.client(T.jit).requestCredential({ target: 'prod', access: 'write', publicKey: k.publicJwk as Record<string, unknown> });
      assert.equal(ask.status, 'pending');
      const requestId = (ask as { requestId: string }).requestId;
      await tb.client(SA_TOKENS.approver).approve(requestId);
      // Another database of the same target, with the approval for the default one.
      const wrongDb = await api('POST', '/v1/credentials', T.jit, { target: 'prod', database: other.name, access: 'write', requestId, publicKey: k.publicJwk });
      assert.equal(wrongDb.status, 403, wrongDb.text);
      // Someone else spending it.
      const thief = await api('POST', '/v1/credentials', T.jit2, { target: 'prod', access: 'write', requestId, publicKey: k.publicJwk });
      assert.equal(thief.status, 403, thief.text);
      // Two racing spends: exactly one credential.
      const race = await Promise.all([0, 1, 2].map(() => api('POST', '/v1/credentials', T.jit, { target: 'prod', access: 'write', requestId, publicKey: k.publicJwk })));
      assert.deepEqual(race.map((r) => r.status).sort(), [201, 403, 403], race.map((r) => r.text).join('\n'));
    });

    test('a statement approval is not released for another text (whitespace, comment or case variants)', async () => {
      const approvals = tb.broker.core.approvals;
      const sql = 'update held set v = 3 where id = 2';
      const h = await heldRequest(T.dev, sql, 'dev-bot');
      try {
        const dev = (await tb.client(T.dev).whoami()).identity;
        await approvals.vote(h.id, (await tb.client(SA_TOKENS.approver).whoami()).identity, 'approve');
        assert.equal(await h.result, 'ran');
        for (const variant of [sql, `${sql} `, `${sql} -- x`, sql.toUpperCase(), `/* */${sql}`]) {
          assert.equal(await approvals.consume(dev, 'prod', db.name, variant), undefined, `already used: ${variant}`);
        }
      } finally {
        await h.done();
      }
    });
  });

  describe('workload tokens', () => {
    const good = (): JWTPayload => ({ iss: issuer.issuer, aud: AUD, sub: 'repo:acme/api:ref:refs/heads/main', iat: nowSec(), nbf: nowSec(), exp: nowSec() + 300 });
    test('alg confusion, foreign kid, embedded jwk, jku, nbf in the future, look-alike subs and huge tokens are refused', async () => {
      const { publicKey, privateKey } = await generateKeyPair('RS256');
      const pem = await fetch(issuer.jwksUri).then((r) => r.text());
      const evilJwk = await exportJWK(publicKey);
      const cases: [string, () => Promise<string>][] = [
        ['HS256 keyed with the JWKS text', () => new SignJWT(good()).setProtectedHeader({ alg: 'HS256', kid: 'test-key-1' }).sign(new TextEncoder().encode(pem))],
        ['a kid the issuer does not publish', () => issuer.sign(good(), { key: privateKey, kid: 'attacker-key' })],
        ['an embedded jwk header', () => new SignJWT(good()).setProtectedHeader({ alg: 'RS256', jwk: evilJwk }).sign(privateKey)],
        ['a jku header', () => new SignJWT(good()).setProtectedHeader({ alg: 'RS256', kid: 'test-key-1', jku: 'http://127.0.0.1:1/jwks' }).sign(privateKey)],
        ['nbf 10 minutes ahead', () => issuer.sign({ ...good(), nbf: nowSec() + 600 })],
        ['sub with a regex-looking wildcard', () => issuer.sign({ ...good(), sub: 'repo:acme/api:ref:refs/heads/.*' })],
        ['sub with a suffix', () => issuer.sign({ ...good(), sub: 'repo:acme/api:ref:refs/heads/main:extra' })],
        ['sub with a newline', () => issuer.sign({ ...good(), sub: 'repo:acme/api:ref:refs/heads/main\n' })],
        ['sub as an array', () => issuer.sign({ ...good(), sub: ['repo:acme/api:ref:refs/heads/main'] as unknown as string })],
        ['a huge token', () => issuer.sign({ ...good(), pad: 'x'.repeat(900_000) })],
        ['a 20 KiB token from the trusted issuer', () => issuer.sign({ ...good(), pad: 'x'.repeat(20_000) })],
      ];
      for (const [what, make] of cases) {
        const before = await eventCount();
        const a = await api('POST', '/v1/auth/exchange', undefined, { grant: 'workload', idToken: await make() });
        assert.ok(a.status === 401 || a.status === 413, `${what}: ${a.status} ${a.text.slice(0, 200)}`);
        assertClean(a, what);
        if (a.status === 401) assert.equal((await newEvents(before, (e) => e.kind === 'login.failed')).length, 1, `${what}: login.failed`);
      }
    });

    test('an unauthenticated caller cannot make login.failed records large (issuer, grant and token size are bounded)', async () => {
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const bigIss = `https://${'a'.repeat(12_000)}.example`;
      const bodies = [
        { grant: 'workload', idToken: `${b64({ alg: 'RS256' })}.${b64({ ...good(), iss: bigIss })}.sig` },
        { grant: 'workload', idToken: `${b64({ alg: 'RS256' })}.${b64({ ...good(), iss: `https://${'b'.repeat(300_000)}.example` })}.sig` },
        { grant: 'g'.repeat(200_000), idToken: 'x.y.z' },
      ];
      for (const body of bodies) {
        const before = await eventCount();
        const a = await api('POST', '/v1/auth/exchange', undefined, body);
        assert.equal(a.status, 401, a.text.slice(0, 200));
        const failed = await newEvents(before, (e) => e.kind === 'login.failed');
        assert.equal(failed.length, 1);
        assert.ok(JSON.stringify(failed[0]).length < 2048, `a bounded record (${JSON.stringify(failed[0]).length} bytes)`);
      }
    });
  });

  describe('device login at the built-in IdP', () => {
    let idb: TestBroker;
    before(async () => {
      idb = await startTestBroker({ targets: { prod: pgTarget(db.name) }, builtinIdp: true });
    });
    after(async () => {
      await idb?.close();
    });

    const idp = () => idb.broker.idp as NonNullable<TestBroker['broker']['idp']>;
    const startDevice = async (): Promise<{ device_code: string; user_code: string; verification_uri_complete: string }> => {
      const res = await fetch(`${idp().issuer}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: idp().clientId, scope: 'openid email groups' }) });
      assert.equal(res.status, 200);
      return (await res.json()) as { device_code: string; user_code: string; verification_uri_complete: string };
    };
    const poll = async (deviceCode: string): Promise<{ status: number; body: { error?: string; id_token?: string } }> => {
      const res = await fetch(`${idp().issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, client_id: idp().clientId }),
      });
      return { status: res.status, body: (await res.json()) as { error?: string; id_token?: string } };
    };

    test('a device code is good for one token response; a guessed or reused one gets nothing', async () => {
      const d = await startDevice();
      assert.equal((await poll(`${d.device_code}x`)).body.error, 'invalid_grant', 'a guessed device code');
      assert.equal((await poll(d.device_code)).body.error, 'authorization_pending');
      await approveDeviceLogin(d.verification_uri_complete, HUMANS[0].email, HUMANS[0].password);
      const first = await poll(d.device_code);
      assert.ok(first.body.id_token, JSON.stringify(first.body));
      const again = await poll(d.device_code);
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'invalid_grant', 'the code was spent');
    });

    test('password guessing locks the account after a few failures, even for the right password; another account is unaffected', async () => {
      const d = await startDevice();
      const browser = new FormBrowser();
      let page = await browser.request(d.verification_uri_complete);
      page = await browser.submitForm(page);
      page = await browser.submitForm(page);
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        page = await browser.submitForm(page, { email: HUMANS[1].email, password: `guess-${i}` });
        statuses.push(page.status);
      }
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
      page = await browser.submitForm(page, { email: HUMANS[1].email, password: HUMANS[1].password });
      assert.equal(page.status, 429, 'the right password does not get through the lock');
      assert.match(page.html, /Too many failed sign-ins/);
      assert.equal((await poll(d.device_code)).body.error, 'authorization_pending');
      // Someone else signing in on the same page is not locked out by those guesses.
      page = await browser.submitForm(page, { email: HUMANS[2].email, password: HUMANS[2].password });
      assert.ok(page.status < 400, page.html.slice(0, 200));
      assert.ok((await poll(d.device_code)).body.id_token, 'the device login completed for the other account');
    });
  });

  test.todo('broker access tokens are bearer tokens: a copied login (or DBGOV_TOKEN) mints credentials bound to the thief\'s own key. Binding broker tokens to the CLI key (DPoP, RFC 9449) would close this; it changes the exchange and every API call, so it is left for a design change (revocation by identity now ends such a token at once).');
});
