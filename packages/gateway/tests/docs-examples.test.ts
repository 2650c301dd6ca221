/**
 * Every example in the docs runs (docs/README.md, "Examples"): README.md, docs/*.md and the
 * published packages' READMEs. TypeScript blocks are type-checked against the built packages
 * and executed, shell and console blocks run against one stack this file starts (a real
 * nats-server, the default worker process, the gateway), with `http://127.0.0.1:3000` and
 * `nats://127.0.0.1:4222` pointing at it, and the output a console block shows is checked.
 * So a wrong example fails here. Files run in order, their blocks in order, on that one stack.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatWithOptions } from 'node:util';
import { spawnWorker, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { brokenLinks, commandsOf, docBlocks, headingAnchor, fileAttr, kindOf, outputPattern, parseBlocks, readsOnly, shownSeqs, withOutputChecks, withSeqs, type DocBlock } from './support/doc-examples.js';
import { waitForTypes } from './support/registry.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SHIM = fileURLToPath(new URL('./support/nats-cli-shim.mjs', import.meta.url));
/** Where the examples' files are written (inside the repository, so they resolve its packages). */
const WORK = fileURLToPath(new URL(`../.docs-examples-${process.pid}/`, import.meta.url));
const DEFAULT_TYPES = ['counter', 'tally', 'account', 'cart', 'order', 'device'];

const blocks = docBlocks(REPO);
const runnable = blocks.filter((b) => kindOf(b) !== 'skip');
const where = (b: DocBlock, line = b.line): string => `${b.file}:${line}`;

/** What the examples' `console.log(x); // shown` lines call. */
declare global {
  var __docExample: { log(value: unknown, shown: string): void } | undefined;
}

describe('the docs-examples conventions', () => {
  it('reads fenced blocks, their attributes and their commands', () => {
    const md = ['text', '```ts no-run', 'a;', '```', '```console', '$ curl x \\', '  -d 1', '{"seq":3,"v":"a…z"}', '```', '```sh', '# c', 'nats pub a 1   # x', '```'].join('\n');
    const [frag, con, sh] = parseBlocks('x.md', md);
    expect(frag).toMatchObject({ line: 2, lang: 'ts', attrs: ['no-run'] });
    expect(kindOf(frag as DocBlock)).toBe('skip');
    expect(commandsOf(con as DocBlock)).toEqual([{ line: 6, command: 'curl x \n  -d 1', expected: ['{"seq":3,"v":"a…z"}'] }]);
    expect(commandsOf(sh as DocBlock)).toEqual([{ line: 12, command: 'nats pub a 1   # x', expected: [] }]);
    const p = outputPattern(['{"seq":3,"v":"a…z"}']);
    expect(p.test('{"seq":17,"v":"a-b-z"}')).toBe(true);
    expect(p.test('{"seq":17,"v":"b"}')).toBe(false);
    expect(withOutputChecks('  console.log(r.value); // 5')).toBe('  globalThis.__docExample.log((r.value), "5");');
    expect(shownSeqs(['{"seq":3,"x":{"seq":4}}'])).toEqual([3, 4]);
    expect(outputPattern(['{"seq":3}']).exec('{"seq":41}')?.[1]).toBe('41');
    expect(outputPattern(['{"seq":12,"order":"c1-12","n":"c1-13"}']).test('{"seq":17,"order":"c1-17","n":"c1-13"}')).toBe(true);
    expect(withSeqs("curl 'x?minSeq=3' && jetactor get c k --min-seq 4 --min-seq 5", new Map([[3, 41], [4, 42]]))).toBe("curl 'x?minSeq=41' && jetactor get c k --min-seq 42 --min-seq 5");
  });

  it('links only to files and headings that exist', () => {
    expect(headingAnchor('Timers from clients: HTTP, NATS, TypeScript, CLI')).toBe('timers-from-clients-http-nats-typescript-cli');
    // docs/errors.md is generated from the runtime's error table; until that lands, links to it wait.
    const pending = (target: string): boolean => target === 'docs/errors.md' && !existsSync(join(REPO, target));
    expect(brokenLinks(REPO).filter((b) => !pending(b.target))).toEqual([]);
  });

  it('finds examples to run in the README and in every doc that has any', () => {
    expect(runnable.filter((b) => b.file === 'README.md').length).toBeGreaterThan(2);
    expect(runnable.length).toBeGreaterThan(20);
  });
});

/** Runs `command` with bash at the repository's root; `nats` and `npx jetactor` are served locally. */
function sh(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd: REPO, env, timeout: 30_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Type-checks the code blocks (written to `files`) against the built packages; returns the diagnostics. */
function typeCheck(files: readonly string[]): string[] {
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    allowJs: true,
    checkJs: false,
    types: ['node'],
    typeRoots: [join(REPO, 'node_modules/@types')],
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName}:${line + 1}: ${text}`;
  });
}

describe('every example in the docs', () => {
  let server: NatsServer;
  let worker: ManagedProcess;
  let gateway: RunningGateway;
  let env: NodeJS.ProcessEnv;
  const saved = { ...process.env };
  /** Per code block, the file it was written to. */
  const written = new Map<DocBlock, string>();

  beforeAll(async () => {
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(join(WORK, 'bin'), { recursive: true });
    server = await startNatsServer();
    worker = spawnWorker({ id: 'docs-worker', natsUrl: server.url, partitions: 8, env: { LOG_LEVEL: 'warn', METRICS_PORT: '0' } });
    gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1' }, logger: pino({ level: 'silent' }) });
    await gateway.nats.firstConnect;
    await waitForTypes(gateway.app, DEFAULT_TYPES, 30_000);
    await waitFor(async () => (await fetch(`${gateway.url}/api/counter/warm-up`)).status === 200, { timeoutMs: 15_000, message: 'the gateway to read a counter' });

    // `nats …` and `npx jetactor …` as the docs write them, served by this repository.
    const bin = join(WORK, 'bin');
    writeFileSync(join(bin, 'nats'), `#!/usr/bin/env bash\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(SHIM)} "$@"\n`);
    writeFileSync(
      join(bin, 'npx'),
      `#!/usr/bin/env bash\nif [ "$1" = jetactor ]; then shift; exec ${JSON.stringify(join(REPO, 'node_modules/.bin/jetactor'))} "$@"; fi\nexec npx "$@"\n`,
    );
    chmodSync(join(bin, 'nats'), 0o755);
    chmodSync(join(bin, 'npx'), 0o755);
    // The examples read the environment a user's shell would have, pointing at this stack.
    const stackEnv = { NATS_URL: server.url, ACTORS_PARTITIONS: '8', METRICS_PORT: '0', LOG_LEVEL: 'warn', JETACTOR_EXIT_WITH_PARENT: '0' };
    env = { ...process.env, ...stackEnv, PATH: `${bin}:${process.env.PATH ?? ''}` };
    Object.assign(process.env, stackEnv);

    // Code blocks to files: `file=<name>` where a later block imports it, else one per block.
    for (const [i, b] of runnable.entries()) {
      if (kindOf(b) !== 'code') continue;
      const ext = b.lang.startsWith('t') ? 'ts' : 'mjs';
      const dir = join(WORK, b.file.replace(/[^A-Za-z0-9]/g, '_'));
      const path = join(dir, fileAttr(b) ?? `example-${String(i).padStart(3, '0')}-line${b.line}.${ext}`);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, b.code);
      written.set(b, path);
    }
  }, 90_000);

  afterAll(async () => {
    process.env = saved;
    globalThis.__docExample = undefined;
    await gateway?.close();
    await worker?.stop();
    await server?.stop();
    rmSync(WORK, { recursive: true, force: true });
  }, 60_000);

  it('type-checks the TypeScript examples against the built packages', () => {
    const files = [...written.entries()].filter(([b]) => b.lang.startsWith('t')).map(([, f]) => f);
    expect(files.length).toBeGreaterThan(3);
    const blockOf = new Map([...written.entries()].map(([b, f]) => [f, b]));
    const problems = typeCheck(files).map((d) => {
      const [file, line, ...rest] = d.split(':');
      const b = file === undefined ? undefined : blockOf.get(file);
      return b ? `${where(b, b.line + Number(line))}:${rest.join(':')}` : d;
    });
    expect(problems).toEqual([]);
  }, 60_000);

  it('runs them in order against one stack, with the output the docs show', async () => {
    const failures: string[] = [];
    const local = (text: string): string => text.replaceAll('http://127.0.0.1:3000', gateway.url).replaceAll('nats://127.0.0.1:4222', server.url);
    /** Per doc file, the seqs its outputs showed → those the stack answered. */
    const seqs = new Map<string, Map<number, number>>();
    const timings: Array<[number, string]> = [];
    for (const b of runnable) {
      const kind = kindOf(b);
      const fileSeqs = seqs.get(b.file) ?? new Map<number, number>();
      seqs.set(b.file, fileSeqs);
      if (kind === 'code') {
        const path = written.get(b) as string;
        const checks: string[] = [];
        globalThis.__docExample = {
          log(value, shown) {
            const printed = formatWithOptions({ colors: false }, value);
            if (!outputPattern([shown]).test(printed)) checks.push(`printed ${printed}, the doc shows ${shown}`);
          },
        };
        // The checks run on a copy of the block; the block itself is what was type-checked.
        const runPath = path.replace(/(\.m?[jt]s)$/, '.run$1');
        writeFileSync(runPath, withOutputChecks(b.code));
        const started = performance.now();
        try {
          await import(pathToFileURL(runPath).href);
          timings.push([performance.now() - started, `${where(b)} (${b.lang})`]);
        } catch (err) {
          failures.push(`${where(b)}: threw ${err instanceof Error ? err.message : String(err)}`);
        }
        for (const c of checks) failures.push(`${where(b)}: ${c}`);
        continue;
      }
      for (const cmd of commandsOf(b)) {
        const command = withSeqs(local(cmd.command), fileSeqs);
        const pattern = outputPattern(cmd.expected.map((l) => withSeqs(local(l), fileSeqs)));
        const started = performance.now();
        let r = await sh(command, env);
        // A read may run before the state includes a signal sent just before it: await it.
        while (r.code === 0 && cmd.expected.length > 0 && readsOnly(cmd.command) && !pattern.test(r.stdout.trim()) && performance.now() - started < 5_000) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          r = await sh(command, env);
        }
        timings.push([performance.now() - started, `${where(b, cmd.line)} ${cmd.command}`]);
        if (r.code !== 0) {
          failures.push(`${where(b, cmd.line)}: \`${cmd.command}\` exited with ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
          continue;
        }
        if (cmd.expected.length === 0) continue;
        const m = pattern.exec(r.stdout.trim());
        if (!m) {
          failures.push(`${where(b, cmd.line)}: \`${cmd.command}\` printed\n    ${r.stdout.trim()}\n  the doc shows\n    ${cmd.expected.join('\n    ')}`);
          continue;
        }
        shownSeqs(cmd.expected).forEach((shown, i) => fileSeqs.set(shown, Number(m[i + 1])));
      }
    }
    console.log(timings.sort((a, c) => c[0] - a[0]).slice(0, 8).map(([ms, what]) => `${Math.round(ms)} ms ${what}`).join('\n'));
    expect(failures, failures.join('\n')).toEqual([]);
  }, 240_000);
});
