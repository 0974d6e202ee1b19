import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from '../../src/broker/broker.js';
import { parseConfig } from '../../src/broker/config.js';
import { ConfigError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';

for (const key of ['api', 'gateway'] as const) {
  test(`a broker.${key} port already in use names the key, its line and the fix`, async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'dbgov-listen-'));
    try {
      const yaml = `broker:\n  api: 127.0.0.1:${key === 'api' ? port : 0}\n  gateway: 127.0.0.1:${key === 'gateway' ? port : 0}\n  store: ${dir}\ntargets:\n  t: { engine: postgres, env: staging, host: 127.0.0.1, database: test, user: postgres }\n`;
      await assert.rejects(startBroker(parseConfig(yaml, 'dbgov.yaml'), { log: silentLogger }), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.message, new RegExp(`^dbgov\\.yaml:${key === 'api' ? 2 : 3}: broker\\.${key} 127\\.0\\.0\\.1:${port} is already in use`));
        assert.match(e.actions[0], /free host:port/);
        return true;
      });
      // The failed start released the store: the next broker on the same folder starts.
      const ok = await startBroker(parseConfig(yaml.replace(`:${port}`, ':0'), 'dbgov.yaml'), { log: silentLogger });
      await ok.close();
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
