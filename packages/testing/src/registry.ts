import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

// Every child process and temp dir the harness creates, so that none outlives the test
// process: `exit` handlers may only do synchronous work, hence kill() and rmSync().
const children = new Set<ChildProcess>();
const tempPaths = new Set<string>();
let installed = false;

function cleanupSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const path of tempPaths) {
    try {
      rmSync(path, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort: a dying child may still hold files
    }
  }
  tempPaths.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  cleanupSync();
  // Only when nobody else handles the signal: restore the default action (exit).
  if (process.listenerCount(signal) === 0) {
    process.kill(process.pid, signal);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, onSignal);
  }
}

/** Tracks a child so it is SIGKILLed if this process exits first; untracked on exit. */
export function trackChild(child: ChildProcess): void {
  install();
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
}

/** Removes `path` (recursively) when this process exits, unless untracked before. */
export function trackTempPath(path: string): void {
  install();
  tempPaths.add(path);
}

/** Stops tracking `path` (it was removed, or is to be kept). */
export function untrackTempPath(path: string): void {
  tempPaths.delete(path);
}
