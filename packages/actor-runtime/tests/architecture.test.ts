// The shape of the code, checked like behaviour: the import rules of .dependency-cruiser.cjs
// (no circles anywhere, the runtime's layers point one way), the size of the runtime's files,
// and the public API reports (packages/actor-runtime/api/*.api.md) matching the built
// declarations. Each failure says what to do.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const MAX_LINES = 250;
/**
 * Files still over MAX_LINES, each with the most lines it may have: a ratchet (they may shrink,
 * never grow; a file that gets under MAX_LINES leaves this list). Split them next.
 */
const OVER_LIMIT: Readonly<Record<string, number>> = {};

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

describe('architecture', () => {
  it('has no import circles and keeps the layer rules of .dependency-cruiser.cjs', { timeout: 120_000 }, async () => {
    const cwd = process.cwd();
    process.chdir(repo);
    try {
      const config = (await import(join(repo, '.dependency-cruiser.cjs'))) as { default: { forbidden: unknown[]; options: Record<string, unknown> } };
      const packages = readdirSync(join(repo, 'packages')).map((p) => `packages/${p}/src`);
      const result = await cruise(packages, { ...config.default.options, validate: true, ruleSet: { forbidden: config.default.forbidden } } as never);
      const output = result.output as ICruiseResult;
      const violations = output.summary.violations.map((v) => `${v.rule.name}: ${[v.from, ...(v.cycle?.map((c) => c.name) ?? [v.to])].join(' → ')}`);
      expect(violations, 'fix the imports (npx depcruise --config .dependency-cruiser.cjs packages/*/src)').toEqual([]);
      expect(output.summary.totalCruised).toBeGreaterThan(100);
    } finally {
      process.chdir(cwd);
    }
  });

  it(`keeps every runtime source file at ${MAX_LINES} lines or fewer (but the listed ones, which may not grow)`, () => {
    const src = join(repo, 'packages/actor-runtime/src');
    const long = tsFiles(src)
      .map((f) => ({ file: relative(src, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > (OVER_LIMIT[f.file] ?? MAX_LINES))
      .map((f) => `${f.file}: ${f.lines}`);
    expect(long, 'split these by responsibility').toEqual([]);
    const stale = Object.keys(OVER_LIMIT).filter((f) => !existsSync(join(src, f)) || readFileSync(join(src, f), 'utf8').split('\n').length - 1 <= MAX_LINES);
    expect(stale, 'these are split: take them off OVER_LIMIT').toEqual([]);
  });

  it('has API reports that match the built declarations (a public API change is a reviewed diff)', { timeout: 240_000 }, () => {
    const run = spawnSync(process.execPath, [join(repo, 'scripts/api-report.mjs')], { cwd: repo, encoding: 'utf8' });
    expect(run.stderr.split('\n').filter((l) => l.includes('public API changed')), 'review the diff and run `npm run api-report -- --update`').toEqual([]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('API reports up to date');
  });
});
