import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort, freePorts, spawnProcess, tempDir, waitFor } from '../src/index.js';
import { isAlive, processState } from './helpers.js';

const node = process.execPath;
const here = dirname(fileURLToPath(import.meta.url));

describe('spawnProcess', () => {
  it('captures stdout and stderr lines and waits for one', async () => {
    const p = spawnProcess(node, ['-e', 'console.log("one"); console.error("two"); console.log(JSON.stringify({ ready: 42 }))'], { name: 'printer' });
    const line = await p.waitForLine((l) => l.includes('ready'));
    expect(JSON.parse(line)).toEqual({ ready: 42 });
    const exit = await p.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect([...p.lines].sort()).toEqual(['one', 'two', '{"ready":42}'].sort());
    expect(p.lineCount).toBe(3);
    expect(p.running).toBe(false);
  });

  it('waitForLine({ since }) ignores lines printed before', async () => {
    const p = spawnProcess(node, ['-e', 'console.log("tick 1"); setTimeout(() => console.log("tick 2"), 50)']);
    await p.waitForLine(/tick 1/);
    const since = p.lineCount;
    expect(await p.waitForLine(/tick/, 5000, { since })).toBe('tick 2');
    await p.exited;
  });

  it('waitForLine rejects when the process exits first, with its last lines', async () => {
    const p = spawnProcess(node, ['-e', 'console.log("bye"); process.exit(3)'], { name: 'quitter' });
    await expect(p.waitForLine(/never/)).rejects.toThrow(/quitter exited \(code 3[\s\S]*bye/);
  });

  it('waitForLine rejects after its timeout', async () => {
    const p = spawnProcess(node, ['-e', 'setInterval(() => {}, 1000)'], { name: 'silent' });
    try {
      await expect(p.waitForLine(/never/, 100)).rejects.toThrow(/timed out after 100 ms .*silent/);
    } finally {
      await p.stop();
    }
  });

  it('passes env (undefined unsets) and cwd', async () => {
    const dir = await tempDir('jetactor-spawn-');
    try {
      process.env['JETACTOR_SPAWN_TEST'] = 'inherited';
      const p = spawnProcess(node, ['-e', 'console.log(process.env.GREETING, String(process.env.JETACTOR_SPAWN_TEST), process.cwd())'], {
        env: { GREETING: 'hello', JETACTOR_SPAWN_TEST: undefined },
        cwd: dir.path,
      });
      const line = await p.waitForLine(/hello/);
      expect(line).toBe(`hello undefined ${dir.path}`);
    } finally {
      delete process.env['JETACTOR_SPAWN_TEST'];
      await dir.remove();
    }
    expect(existsSync(dir.path)).toBe(false);
  });

  it('stop() sends SIGTERM, and SIGKILL when SIGTERM is ignored', async () => {
    const polite = spawnProcess(node, ['-e', 'process.on("SIGTERM", () => { console.log("bye"); process.exit(0) }); console.log("up"); setInterval(() => {}, 1000)']);
    await polite.waitForLine(/up/);
    expect(await polite.stop()).toEqual({ code: 0, signal: null });
    expect(polite.lines).toContain('bye');

    const stubborn = spawnProcess(node, ['-e', 'process.on("SIGTERM", () => console.log("no")); console.log("up"); setInterval(() => {}, 1000)']);
    await stubborn.waitForLine(/up/);
    const exit = await stubborn.stop(300);
    expect(exit.signal).toBe('SIGKILL');
    expect(stubborn.lines).toContain('no');
  });

  it('pause() stops and resume() continues the process', async () => {
    const p = spawnProcess(node, ['-e', 'process.on("SIGCONT", () => console.log("continued")); console.log("up"); setInterval(() => {}, 1000)']);
    try {
      await p.waitForLine(/up/);
      await p.pause();
      expect(processState(p.pid!)).toBe('T');
      p.resume();
      await p.waitForLine(/continued/);
      expect(processState(p.pid!)).not.toBe('T');
    } finally {
      await p.stop();
    }
  });

  it('reports a command that cannot start', async () => {
    const p = spawnProcess('/nonexistent/cmd', [], { name: 'ghost' });
    const exit = await p.exited;
    expect(exit.code).toBeNull();
    expect(exit.error?.message).toMatch(/ENOENT/);
    await expect(p.waitForLine(/x/)).rejects.toThrow(/ghost failed to start/);
  });
});

describe('cleanup when the test process goes away', () => {
  // The fixture is TypeScript: run it through Vite's module runner in a plain node child.
  const runFixture = (mode: 'exit' | 'signal') =>
    spawnProcess(
      node,
      ['--input-type=module', '-e', `import { runnerImport } from 'vite'; await runnerImport(${JSON.stringify(join(here, 'fixtures', 'orphan.ts'))}, { configFile: false, logLevel: 'error' });`],
      { env: { ORPHAN_MODE: mode }, cwd: join(here, '..'), name: `orphan-${mode}` },
    );

  for (const mode of ['exit', 'signal'] as const) {
    it(`kills tracked children and removes temp dirs on ${mode}`, async () => {
      const orphan = runFixture(mode);
      const line = await orphan.waitForLine(/serverPid/, 30_000);
      const { serverPid, sleeperPid, dir } = JSON.parse(line) as { serverPid: number; sleeperPid: number; dir: string };
      if (mode === 'signal') {
        // (In 'exit' mode the fixture may already be gone: it exits right after printing.)
        expect(isAlive(serverPid)).toBe(true);
        expect(isAlive(sleeperPid)).toBe(true);
        orphan.kill('SIGTERM');
      }
      const exit = await orphan.exited;
      expect(mode === 'exit' ? exit.code : exit.signal).toBe(mode === 'exit' ? 0 : 'SIGTERM');
      await waitFor(() => !isAlive(serverPid) && !isAlive(sleeperPid), { message: 'orphaned processes to die' });
      expect(existsSync(dir)).toBe(false);
    });
  }
});

describe('waitFor', () => {
  it('returns the first truthy value', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? `done at ${n}` : 0), { intervalMs: 1 })).toBe('done at 3');
  });

  it('treats a throw as "not yet" and reports the last error on timeout', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('not ready');
        },
        { timeoutMs: 100, message: 'the thing' },
      ),
    ).rejects.toThrow(/timed out after 100 ms waiting for the thing; last error: not ready/);
  });

  it('reports the last value and does not wait for a hung attempt', async () => {
    const started = Date.now();
    let calls = 0;
    await expect(
      waitFor(() => (++calls === 1 ? '' : new Promise<string>(() => undefined)), { timeoutMs: 200, intervalMs: 10 }),
    ).rejects.toThrow(/last value: ""/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops when its signal aborts', async () => {
    const ac = new AbortController();
    const pending = waitFor(() => false, { timeoutMs: 10_000, signal: ac.signal });
    ac.abort(new Error('gave up'));
    await expect(pending).rejects.toThrow('gave up');
  });
});

describe('ports', () => {
  it('freePorts() returns distinct bindable ports', async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
    expect(ports.every((p) => p > 0 && p < 65536)).toBe(true);
    expect(await freePort()).toBeGreaterThan(0);
  });
});
