import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackTempPath, untrackTempPath } from './registry.js';

/** A fresh directory under the OS temp dir; see {@link tempDir}. */
export interface TempDir {
  /** Absolute path of the directory. */
  readonly path: string;
  /** Removes the directory and everything in it. Safe to call twice. */
  remove(): Promise<void>;
}

/**
 * Creates a fresh directory `<os tmpdir>/<prefix>XXXXXX`. It is removed by `remove()`, or
 * at the latest when the test process exits.
 *
 * @param prefix start of the directory's name. Default `"jetactor-"`.
 */
export async function tempDir(prefix = 'jetactor-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  trackTempPath(path);
  return {
    path,
    async remove() {
      await rm(path, { recursive: true, force: true });
      untrackTempPath(path);
    },
  };
}
