import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../src/broker/config.js';
import { ConfigError } from '../../src/shared/errors.js';

const GOOD = `broker:
  api: 127.0.0.1:7080
  gateway: 127.0.0.1:7443
  store: ./dbgov-data
identity:
  serviceAccounts:
    - { id: ci-bot, token: "\${env:CI_BOT_TOKEN}", groups: [ci], kind: workload }
targets:
  prod:
    engine: postgres
    env: prod
    host: 10.0.0.5
    port: 5432
    database: app
    user: dbgov_admin
    password: "\${env:PROD_DB_PASSWORD}"
  staging:
    engine: mysql
    host: 10.0.0.6
    database: app
    user: dbgov
    password: "\${env:STAGING_DB_PASSWORD}"
`;
const ENV = { CI_BOT_TOKEN: 'ci-bot-token-0123456789', PROD_DB_PASSWORD: 'pw1', STAGING_DB_PASSWORD: 'pw2' };

test('the DESIGN.md example config loads, with secrets from the environment', () => {
  const c = parseConfig(GOOD, 'dbgov.yaml', ENV);
  assert.equal(c.broker.api.port, 7080);
  assert.equal(c.broker.gateway.host, '127.0.0.1');
  assert.equal(c.targets.prod.password, 'pw1');
  assert.equal(c.targets.prod.protected, true, 'env prod is protected by default');
  assert.equal(c.targets.staging.protected, false);
  assert.equal(c.targets.staging.port, 3306, 'mysql default port');
  assert.equal(c.targets.staging.labels.env, 'staging', 'env defaults to the target name');
  assert.equal(c.identity.serviceAccounts[0].token, 'ci-bot-token-0123456789');
  assert.equal(c.broker.store.kind, 'embedded');
});

test('${file:PATH} reads a secret relative to the config folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbgov-cfg-'));
  try {
    writeFileSync(join(dir, 'pw.txt'), 's3cret\n');
    writeFileSync(join(dir, 'dbgov.yaml'), GOOD.replace('${env:PROD_DB_PASSWORD}', '${file:pw.txt}'));
    const c = loadConfig(join(dir, 'dbgov.yaml'), ENV);
    assert.equal(c.targets.prod.password, 's3cret');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const BAD: { name: string; yaml: string; env?: Record<string, string>; line: number | undefined; message: RegExp; fix: RegExp }[] = [
  { name: 'unknown key', yaml: GOOD.replace('    port: 5432\n', '    prot: 5432\n'), line: 13, message: /unknown key "prot"/, fix: /spelling/ },
  { name: 'bad engine', yaml: GOOD.replace('engine: postgres', 'engine: oracle'), line: 10, message: /must be one of postgres, mysql/, fix: /postgres, mysql/ },
  { name: 'missing env var', yaml: GOOD, env: { CI_BOT_TOKEN: 'ci-bot-token-0123456789', STAGING_DB_PASSWORD: 'x' }, line: 16, message: /PROD_DB_PASSWORD.*not set/, fix: /export PROD_DB_PASSWORD/ },
  { name: 'inline password', yaml: GOOD.replace('"${env:PROD_DB_PASSWORD}"', 'hunter2'), line: 16, message: /secret written inline/, fix: /\$\{env:/ },
  { name: 'missing host', yaml: GOOD.replace('    host: 10.0.0.5\n', ''), line: 10, message: /missing "host"/, fix: /add host/ },
  { name: 'yaml syntax', yaml: GOOD.replace('    port: 5432', '    port: [5432'), line: 14, message: /YAML syntax error/, fix: /syntax/ },
  { name: 'bad listen address', yaml: GOOD.replace('api: 127.0.0.1:7080', 'api: localhost'), line: 2, message: /broker\.api/, fix: /host:port/ },
  { name: 'a misspelled reference kind', yaml: GOOD.replace('host: 10.0.0.6', 'host: "${envv:STAGING_HOST}"'), line: 19, message: /\$\{envv:STAGING_HOST\}, which is not a reference/, fix: /\$\{env:NAME\}/ },
  { name: 'a shell-style reference', yaml: GOOD.replace('"\${env:PROD_DB_PASSWORD}"', '"\${PROD_DB_PASSWORD}"'), line: 16, message: /\$\{PROD_DB_PASSWORD\}, which is not a reference/, fix: /\$\{env:NAME\}/ },
  { name: 'bad duration', yaml: GOOD.replace('  store: ./dbgov-data\n', '  store: ./dbgov-data\n  approvalHold: soon\n'), line: 5, message: /not a duration/, fix: /30m/ },
];

for (const c of BAD) {
  test(`a bad config names the file, the line and the fix: ${c.name}`, () => {
    assert.throws(
      () => parseConfig(c.yaml, 'conf/dbgov.yaml', c.env ?? ENV),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.message, /^conf\/dbgov\.yaml:\d+: /);
        assert.equal(e.line, c.line, e.message);
        assert.match(e.message, c.message);
        assert.match(e.actions[0], c.fix);
        assert.equal(e.exitCode, 6);
        return true;
      },
    );
  });
}

test('offline (policy lint/explain): unset ${env:} and unreadable ${file:} are placeholders listed in unresolved; the broker load still fails on them', () => {
  const yaml = GOOD.replace('"${env:STAGING_DB_PASSWORD}"', '"${file:/nonexistent/dbgov-pw}"');
  const config = parseConfig(yaml, 'conf/dbgov.yaml', {}, { offline: true });
  assert.deepEqual(config.unresolved, ['CI_BOT_TOKEN (identity.serviceAccounts.0.token)', 'PROD_DB_PASSWORD (targets.prod.password)', '/nonexistent/dbgov-pw (targets.staging.password)']);
  assert.deepEqual(Object.keys(config.targets), ['prod', 'staging']);
  assert.throws(() => parseConfig(yaml, 'conf/dbgov.yaml', {}), /CI_BOT_TOKEN.*not set/);
  assert.equal(parseConfig(GOOD, 'conf/dbgov.yaml', ENV).unresolved, undefined);
});

test('every schema problem is reported in one pass, in line order, each with its line and fix (the first fix kept first)', () => {
  const yaml = GOOD.replace('engine: postgres', 'engine: postgress').replace('    port: 5432\n', '    port: "abc"\n').replace('    user: dbgov\n', '    user: dbgov\n    colour: blue\n');
  assert.throws(
    () => parseConfig(yaml, 'conf/dbgov.yaml', ENV),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, 'conf/dbgov.yaml:10: targets.prod.engine must be one of postgres, mysql');
      assert.deepEqual(e.actions, [
        'change it to one of: postgres, mysql',
        'also conf/dbgov.yaml:13: targets.prod.port must be integer (write targets.prod.port as an integer)',
        'also conf/dbgov.yaml:22: unknown key "colour" in targets.staging (remove it or check its spelling against schema/dbgov.schema.json)',
      ]);
      return true;
    },
  );
});
