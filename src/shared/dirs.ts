/**
 * Creating a folder and its missing parents. Node's own `mkdir(…, { recursive: true })` loops
 * forever on some paths that cannot be created (under /proc, for example, where mkdir answers
 * ENOENT for a parent that exists), so a broker given such a store folder hung at start instead
 * of saying what was wrong. These walk up to the first folder that exists and create the rest
 * one by one, so every failure is an ordinary error (ENOENT, EACCES, ENOTDIR…) naming the path.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

function notAFolder(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', path, syscall: 'mkdir' });
}

/** The folders to create, outermost first (empty when `dir` exists). */
function missingSync(dir: string): string[] {
  const missing: string[] = [];
  for (let cur = resolve(dir); ; ) {
    try {
      if (!statSync(cur).isDirectory()) throw notAFolder(cur);
      break;
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
      missing.push(cur);
      const parent = dirname(cur);
      if (parent === cur) break;
      cur = parent;
    }
  }
  return missing.reverse();
}

export function makeDirSync(dir: string, mode?: number): void {
  for (const d of missingSync(dir)) {
    try {
      mkdirSync(d, mode === undefined ? undefined : { mode });
    } catch (e) {
      if (code(e) !== 'EEXIST') throw e;
    }
  }
}

/** makeDirSync for async callers (the CLI's home, the broker's data folder): a few stat calls at start. */
export async function makeDir(dir: string, mode?: number): Promise<void> {
  makeDirSync(dir, mode);
}
