// exitWithParent with real processes, started the way npx starts a bin: a launcher (npm) runs
// `sh -c '<node> child.mjs'`, and dash does not exec the last command, so the shell stays in
// between. A SIGKILL of the launcher leaves the shell running: the child has to look past it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { processRuns, spawnProcess, tempDir, waitFor, type ManagedProcess, type TempDir } from '@jetactor/testing';
import { afterEach, describe, expect, it } from 'vitest';

const PARENT_TS = pathToFileURL(fileURLToPath(new URL('../src/host/parent.ts', import.meta.url))).href;

// Stops on SIGTERM (what exitWithParent sends); its own watcher reports the launcher gone and,
// 1 s later (five of exitWithParent's polls), that it still runs.
const CHILD = `import { exitWithParent, whenParentGone } from ${JSON.stringify(PARENT_TS)};
exitWithParent();
process.on('SIGTERM', () => { console.log('child: SIGTERM'); process.exit(0); });
whenParentGone((pid) => {
  console.log('child: launcher ' + pid + ' gone');
  setTimeout(() => { console.log('child: still running'); process.exit(0); }, 1000);
});
setInterval(() => undefined, 1 << 30);
console.log('child: ready ' + process.pid);
`;

const LAUNCHER = `import { spawn } from 'node:child_process';
const child = spawn('sh', ['-c', process.argv[2]], { stdio: 'inherit' });
console.log('launcher: ' + process.pid + ' started sh ' + child.pid);
setInterval(() => undefined, 1 << 30);
`;

let dir: TempDir | undefined;
let launcher: ManagedProcess | undefined;
let childPid: number | undefined;

afterEach(async () => {
  if (childPid !== undefined) {
    try {
      process.kill(childPid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  childPid = undefined;
  await launcher?.stop();
  launcher = undefined;
  await dir?.remove();
  dir = undefined;
});

/** Starts launcher → sh -c → child; resolves once the child runs. */
async function start(env: Record<string, string | undefined> = {}): Promise<ManagedProcess> {
  dir = await tempDir('jetactor-exit-with-parent-');
  writeFileSync(join(dir.path, 'child.mjs'), CHILD);
  writeFileSync(join(dir.path, 'launcher.mjs'), LAUNCHER);
  const command = `'${process.execPath}' --import tsx '${join(dir.path, 'child.mjs')}'`;
  launcher = spawnProcess(process.execPath, [join(dir.path, 'launcher.mjs'), command], { env: { JETACTOR_EXIT_WITH_PARENT: undefined, ...env }, name: 'launcher' });
  const ready = await launcher.waitForLine(/^child: ready \d+$/, 20_000);
  childPid = Number(ready.split(' ').pop());
  return launcher;
}

describe('exitWithParent', () => {
  it('stops the process (SIGTERM) when the launcher is SIGKILLed, though the sh -c between them lives on', async () => {
    const run = await start();
    run.kill('SIGKILL');
    await waitFor(() => !processRuns(childPid as number), { timeoutMs: 10_000, intervalMs: 50, message: 'the child to exit' });
    expect(run.lines).toContain('child: SIGTERM');
    expect(run.lines.some((l) => /^parent process \d+ is gone; stopping \(SIGTERM\)$/.test(l))).toBe(true);
  });

  it('with JETACTOR_EXIT_WITH_PARENT=0 leaves the process running', async () => {
    const run = await start({ JETACTOR_EXIT_WITH_PARENT: '0' });
    run.kill('SIGKILL');
    await waitFor(() => !processRuns(childPid as number), { timeoutMs: 10_000, intervalMs: 50, message: 'the child to see the launcher gone and exit by itself' });
    expect(run.lines.filter((l) => l.startsWith('child:')).slice(1)).toEqual([expect.stringMatching(/^child: launcher \d+ gone$/), 'child: still running']);
  });
});
