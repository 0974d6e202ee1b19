import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDir, makeDirSync } from '../../src/shared/dirs.js';

describe('makeDir / makeDirSync', () => {
  for (const [name, make] of [
    ['makeDirSync', async (d: string, mode?: number) => makeDirSync(d, mode)],
    ['makeDir', makeDir],
  ] as const) {
    it(`${name}: creates missing parents with the mode, and is a no-op when the folder exists`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'dbgov-dirs-'));
      try {
        const deep = join(root, 'a', 'b', 'c');
        await make(deep, 0o700);
        assert.ok(statSync(deep).isDirectory());
        assert.equal(statSync(join(root, 'a')).mode & 0o777, 0o700);
        await make(deep, 0o700);
        await make(root);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });

    it(`${name}: a path under a file is ENOTDIR, and a path the kernel refuses (/proc) fails at once instead of looping`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'dbgov-dirs-'));
      try {
        writeFileSync(join(root, 'f'), 'x');
        await assert.rejects(make(join(root, 'f', 'sub')), { code: 'ENOTDIR' });
        await assert.rejects(make(join(root, 'f')), { code: 'ENOTDIR' });
        await assert.rejects(make('/proc/dbgov-dirs-test/x'), { code: 'ENOENT' });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
