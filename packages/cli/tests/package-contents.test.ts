/**
 * What a user gets from the registry: `npm pack --dry-run --json` of each published package
 * (runtime, gateway, CLI; built dist/, what `npm test` builds first) holds what a user needs —
 * package.json, a README, the LICENSE when the package has one, the built JavaScript with its
 * type declarations, the entry points package.json names — and nothing else: no tests, no
 * source maps (they point at sources the tarball does not hold), no tsbuildinfo, out-tsc or
 * fixtures, no build output whose source is gone. And package.json says where it comes from.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const packagesDir = fileURLToPath(new URL('../../', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const REPOSITORY = 'git+https://github.com/jetactor/jetactor.git';

/** Per published package, the files it ships besides package.json, README, LICENSE and dist/. */
const PUBLISHED = {
  'actor-runtime': [],
  gateway: [/^public\/[\w.-]+\.(html|css|js)$/],
  cli: [/^bin\/jetactor\.js$/],
} as const satisfies Record<string, readonly RegExp[]>;

interface PackageJson {
  name: string;
  license?: string;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  repository?: { type?: string; url?: string; directory?: string };
  homepage?: string;
  keywords?: string[];
  private?: boolean;
}

/** The files `npm pack` would put in the tarball. */
async function packedFiles(dir: string): Promise<string[]> {
  const { stdout } = await run(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, timeout: 60_000 });
  const [report] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  return (report?.files ?? []).map((f) => f.path).sort();
}

/** The files package.json points at (main, types, bin, export targets but the workspace's own source condition). */
function entryPoints(pkg: PackageJson): string[] {
  const targets = [pkg.main, pkg.types, ...Object.values(pkg.bin ?? {})];
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (subpath === './package.json') continue;
    if (typeof target === 'string') targets.push(target);
    else for (const [condition, file] of Object.entries(target)) if (condition !== '@jetactor/source') targets.push(file);
  }
  return [...new Set(targets.filter((t): t is string => t !== undefined).map((t) => t.replace(/^\.\//, '')))];
}

describe.each(Object.entries(PUBLISHED))('the published package %s', (name, extras) => {
  const dir = join(packagesDir, name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;

  it('says what it is and where it comes from', () => {
    expect(pkg.private).not.toBe(true);
    expect(pkg.license).toBe('Apache-2.0');
    expect(pkg.repository).toEqual({ type: 'git', url: REPOSITORY, directory: `packages/${name}` });
    expect(pkg.homepage).toMatch(/^https:\/\/github\.com\/jetactor\/jetactor\b/);
    expect(pkg.keywords?.length).toBeGreaterThan(2);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(new RegExp(`^# ${pkg.name.replace('/', '\\/')}\\n`));
  });

  it('packs what a user needs and nothing else', async () => {
    if (!existsSync(join(dir, 'dist', 'index.js'))) throw new Error(`packages/${name}/dist is missing: build first (npm test does, or: npx nx run-many -t build)`);
    const files = await packedFiles(dir);
    const needed = ['package.json', 'README.md', ...(existsSync(join(dir, 'LICENSE')) ? ['LICENSE'] : []), ...entryPoints(pkg)];
    expect(files).toEqual(expect.arrayContaining(needed));

    const allowed = [/^package\.json$/, /^README\.md$/, /^LICENSE$/, /^dist\/[\w./-]+\.(js|d\.ts)$/, ...extras];
    expect(files.filter((f) => !allowed.some((a) => a.test(f)))).toEqual([]);
    expect(files.filter((f) => /(^|\/)(tests?|fixtures|out-tsc|src)\/|\.test\.|\.map$|tsbuildinfo/.test(f))).toEqual([]);

    // Every built module has its declarations and a source it was built from (no stale output).
    const built = files.filter((f) => f.startsWith('dist/') && f.endsWith('.js'));
    expect(built.length).toBeGreaterThan(0);
    const problems = built.flatMap((js) => {
      const base = js.slice('dist/'.length, -'.js'.length);
      const out: string[] = [];
      if (!files.includes(`dist/${base}.d.ts`)) out.push(`${js} has no dist/${base}.d.ts`);
      if (!existsSync(join(dir, 'src', `${base}.ts`))) out.push(`${js} has no source src/${base}.ts (a stale build: remove dist/ and build again)`);
      return out;
    });
    expect(problems).toEqual([]);
  }, 60_000);
});
