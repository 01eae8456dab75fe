// Temporary folders for tests, removed afterwards whatever happens.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

export async function withTempDir(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), `afd-${prefix}-`));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A temporary folder for one test file, removed after its tests, and a `file(name,
 * content)` that writes numbered files into it (so names never collide).
 */
export function tempFiles(prefix: string): { dir: string; file: (name: string, content: string | Buffer) => string } {
  const dir = mkdtempSync(join(tmpdir(), `afd-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let count = 0;
  return {
    dir,
    file(name, content) {
      const path = join(dir, `${++count}-${name}`);
      writeFileSync(path, content);
      return path;
    },
  };
}
