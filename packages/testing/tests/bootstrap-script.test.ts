// scripts/lib/bootstrap.mjs: `npm start` runs npm ci and the build quietly (their output is
// held and shown only if the command fails), so start-up ends with one plain line.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';

interface BootstrapScript {
  runInherit(cmd: string, args: string[], opts?: { quiet?: boolean }): Promise<number>;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = (await import(pathToFileURL(join(repoRoot, 'scripts', 'lib', 'bootstrap.mjs')).href)) as BootstrapScript;

afterEach(() => {
  vi.restoreAllMocks();
});

/** What `fn` wrote to this process's stderr. */
async function stderrOf(fn: () => Promise<number>): Promise<{ code: number; text: string }> {
  const chunks: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  const code = await fn();
  vi.restoreAllMocks();
  return { code, text: chunks.join('') };
}

describe('runInherit quiet', () => {
  it('holds the output of a command that succeeds', async () => {
    const got = await stderrOf(() => script.runInherit(process.execPath, ['-e', 'console.log("npm warn EBADENGINE"); console.error("noise")'], { quiet: true }));
    expect(got).toEqual({ code: 0, text: '' });
  });

  it('shows the output of a command that fails, and its exit code', async () => {
    const got = await stderrOf(() => script.runInherit(process.execPath, ['-e', 'console.log("first"); console.error("why it failed"); process.exit(3)'], { quiet: true }));
    expect(got.code).toBe(3);
    expect(got.text).toMatch(/first\n/);
    expect(got.text).toMatch(/why it failed\n/);
  });
});
