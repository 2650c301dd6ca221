/**
 * The scaffold (`npm run new-actor -- <name>`, tools/new-actor.mjs) writes an actor package
 * shaped like this one, into a temp packages folder, and what it writes typechecks with the
 * repository's compiler settings against the workspace's runtime (its test file included).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir, type TempDir } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const TOOL = join(repoRoot, 'tools', 'new-actor.mjs');

let dir: TempDir;
let pkg: string;

beforeAll(async () => {
  dir = await tempDir('jetactor-new-actor-');
  // The package's configs extend ../../tsconfig.base.json and resolve the workspace's packages.
  await copyFile(join(repoRoot, 'tsconfig.base.json'), join(dir.path, 'tsconfig.base.json'));
  await symlink(join(repoRoot, 'node_modules'), join(dir.path, 'node_modules'), 'dir');
  await mkdir(join(dir.path, 'packages'));
  const { stdout } = await run(process.execPath, [TOOL, 'device-twin', '--dir', join(dir.path, 'packages')], { timeout: 30_000 });
  pkg = join(dir.path, 'packages', 'device-twin-actor');
  expect(stdout).toContain(`created ${pkg}`);
});

afterAll(async () => {
  await dir?.remove();
});

describe('npm run new-actor', () => {
  it('writes the package files', () => {
    for (const f of ['package.json', 'tsconfig.json', 'tsconfig.lib.json', 'tsconfig.spec.json', 'vitest.config.mts', 'eslint.config.mjs', 'src/device-twin.ts', 'src/index.ts', 'tests/device-twin.test.ts']) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
  });

  it('writes TypeScript that compiles, its test included', async () => {
    await writeFile(
      join(pkg, 'tsconfig.check.json'),
      JSON.stringify({ extends: '../../tsconfig.base.json', compilerOptions: { noEmit: true, composite: false, declaration: false, declarationMap: false, types: ['node', 'vitest/globals'] }, include: ['src/**/*.ts', 'tests/**/*.ts'] }),
    );
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(pkg, 'tsconfig.check.json')], { timeout: 120_000 }).then(
      () => ({ code: 0, out: '' }),
      (err: { code?: number; stdout?: string }) => ({ code: err.code ?? 1, out: err.stdout ?? '' }),
    );
    expect(result).toEqual({ code: 0, out: '' });
  });

  it('refuses a bad name and an existing package', async () => {
    const stderrOf = (name: string): Promise<string> =>
      run(process.execPath, [TOOL, name, '--dir', join(dir.path, 'packages')]).then(
        () => 'exited 0',
        (err: { stderr?: string }) => err.stderr ?? '',
      );
    expect(await stderrOf('Bad.Name')).toContain('actor name must be');
    expect(await stderrOf('device-twin')).toContain('already exists');
  });
});
