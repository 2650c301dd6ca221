import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_TABLE, ErrorCode, errorTableMarkdown, isTableErrorCode } from '../src/protocol/index.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

/** Every `.ts` file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The literal codes the sources of a package pass where a code is emitted. */
function emittedCodes(dir: string, patterns: readonly RegExp[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sources(dir)) {
    const text = readFileSync(file, 'utf8');
    for (const re of patterns) for (const m of text.matchAll(re)) found.set(m[1] as string, file);
  }
  return found;
}

describe('the error table', () => {
  it('has a status of 4xx/5xx (or none, for the CLI) and a description for every code', () => {
    for (const [code, info] of Object.entries(ERROR_TABLE as Record<string, { status?: number; description: string }>)) {
      expect(code).toMatch(/^[A-Z][A-Z_]+$/);
      if (info.status !== undefined) expect(info.status >= 400 && info.status < 600).toBe(true);
      expect(info.description.length).toBeGreaterThan(10);
    }
  });

  it("holds every code of the runtime's ErrorCode", () => {
    expect(Object.keys(ErrorCode).length).toBe(30);
    for (const code of Object.values(ErrorCode)) expect(isTableErrorCode(code), code).toBe(true);
    expect(ErrorCode.InvalidInput).toBe('INVALID_INPUT');
    expect(ErrorCode.Config).toBe('CONFIG_ERROR');
  });

  it('is docs/errors.md, generated (run the generator when this fails)', () => {
    expect(readFileSync(join(ROOT, 'docs/errors.md'), 'utf8')).toBe(errorTableMarkdown());
  });

  it('holds every code the gateway and the CLI can emit', () => {
    const gateway = emittedCodes(join(ROOT, 'packages/gateway/src'), [/GatewayError\(\s*'([A-Z_]+)'/g, /errorBody\(\s*'([A-Z_]+)'/g, /\bcode: '([A-Z_]+)'/g, /replyError\(msg, '([A-Z_]+)'/g]);
    const cli = emittedCodes(join(ROOT, 'packages/cli/src'), [/CliError\(\s*'([A-Z_]+)'/g, /: '([A-Z_]+)';\s*$/gm]);
    expect(gateway.size).toBeGreaterThan(10);
    expect(cli.has('USAGE')).toBe(true);
    const missing = [...gateway, ...cli].filter(([code]) => !isTableErrorCode(code));
    expect(missing).toEqual([]);
  });
});
