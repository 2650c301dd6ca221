/**
 * A long-lived process that ends with the process that started it: what the published entries
 * (`jetactor-gateway`, the worker's `main.js`) run first, so that however they are started —
 * `npx jetactor-gateway`, `npm run gateway`, `npm start`, a launcher of your own — nothing
 * outlives its launcher. (The repository's launcher scripts keep a copy of the same logic in
 * scripts/lib/parent.mjs: they run before anything is installed or built.)
 *
 * `npx` runs a bin through `sh -c <bin>`: a SIGTERM to npx is forwarded to that shell, which
 * dies of it and leaves the bin running, re-parented; a SIGKILL to npx leaves the shell and the
 * bin both running. So the process watches its parent and, when the parent is such a `sh -c`
 * wrapper, the wrapper's parent too.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** How often the parent is checked, in ms (a getppid() call, and a /proc read behind a `sh -c`). */
const PARENT_POLL_MS = 200;
/** A repeat of a signal within this many ms is the same request (see {@link mergeRepeatedSignals}). */
export const REPEAT_WINDOW_MS = 1_000;
/** Set once {@link exitWithParent} has run in this process (by any copy of this module). */
const INSTALLED = Symbol.for('jetactor.exitWithParent');
/** Shells that run a command line with `-c` (npm's script shell is `sh`). */
const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh', 'ash', 'ksh', 'mksh', 'busybox']);

/** The parent pid of `pid` (field 4 of /proc/<pid>/stat), or undefined when gone or not readable (no /proc). */
export function parentPidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a shell running a command line (`sh -c …`), as npm and npx start a bin. */
export function isShellWrapper(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return SHELLS.has(basename(argv[0] ?? '').replace(/^-/, '')) && argv.slice(1).some((a) => /^-\w*c\w*$/.test(a));
  } catch {
    return false;
  }
}

/**
 * Calls `onGone` once the process that started this one has exited: the parent (this process
 * was re-parented: `process.ppid` changed), or, when the parent is a `sh -c` wrapper, the
 * wrapper's own parent. From then on an EPIPE on stdout or stderr (a pipe to the dead parent)
 * no longer throws, so that what follows — a graceful stop that logs — runs to its end.
 *
 * @returns stops watching
 */
export function whenParentGone(onGone: (launcherPid: number) => void): () => void {
  const parent = process.ppid;
  // The wrapper's parent; init (1) or none (0, a container's first process) never goes away.
  const above = isShellWrapper(parent) ? parentPidOf(parent) : undefined;
  const launcher = above !== undefined && above > 1 ? above : undefined;
  const timer = setInterval(() => {
    let gone: number | undefined;
    if (process.ppid !== parent) gone = parent;
    else if (launcher !== undefined && parentPidOf(parent) !== launcher) gone = launcher;
    if (gone === undefined) return;
    clearInterval(timer);
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
    onGone(gone);
  }, PARENT_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Makes a repeat of SIGINT, SIGTERM or SIGHUP that arrives within {@link REPEAT_WINDOW_MS}
 * of the first one a no-op, so that a handler sees one request to stop, not two.
 *
 * `npm run` forwards SIGINT and SIGTERM to its child, which is in npm's process group: a
 * Ctrl-C in the terminal (or a supervisor signalling the whole group) reaches the child twice
 * within microseconds, and the second would read as "stop now". A signal sent again after the
 * window still counts as a second one.
 *
 * Must run before any signal listener is added: Node binds each signal to `process.emit`
 * when the first listener for it is added.
 */
export function mergeRepeatedSignals(): void {
  const last = new Map<string, number>();
  const emit = process.emit.bind(process) as (event: string | symbol, ...args: unknown[]) => boolean;
  process.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'SIGINT' || event === 'SIGTERM' || event === 'SIGHUP') {
      const now = Date.now();
      const before = last.get(event);
      if (before !== undefined && now - before < REPEAT_WINDOW_MS) return true;
      last.set(event, now);
      // Keep the signal caught for the window: a `once` handler removes itself, and the
      // repeat would otherwise meet the default action (terminate).
      const keep = (): undefined => undefined;
      process.on(event, keep);
      setTimeout(() => process.off(event, keep), REPEAT_WINDOW_MS).unref();
    }
    return emit(event, ...args);
  }) as typeof process.emit;
}

/** Whether `JETACTOR_EXIT_WITH_PARENT` lets the process stop with its launcher (default yes; `0` or `false`: no). */
function wanted(env: NodeJS.ProcessEnv): boolean {
  const v = env.JETACTOR_EXIT_WITH_PARENT?.trim().toLowerCase() ?? '';
  return v !== '0' && v !== 'false';
}

/**
 * Run first by a long-lived entry (before any signal listener is added): merges repeated
 * signals ({@link mergeRepeatedSignals}) and, unless `JETACTOR_EXIT_WITH_PARENT=0`, sends this
 * process SIGTERM — which the entry handles by stopping gracefully — once the process that
 * started it is gone ({@link whenParentGone}). Runs once per process; later calls do nothing.
 *
 * ```ts
 * import { exitWithParent, runWorker } from '@jetactor/actor-runtime/worker';
 * exitWithParent();
 * await runWorker({ actors: [cart] });
 * ```
 */
export function exitWithParent(env: NodeJS.ProcessEnv = process.env): void {
  const global = globalThis as { [INSTALLED]?: true };
  if (global[INSTALLED]) return;
  global[INSTALLED] = true;
  mergeRepeatedSignals();
  if (!wanted(env)) return;
  whenParentGone((launcher) => {
    try {
      process.stderr.write(`parent process ${launcher} is gone; stopping (SIGTERM)\n`);
    } catch {
      // nobody reads stderr any more
    }
    process.kill(process.pid, 'SIGTERM');
  });
}
