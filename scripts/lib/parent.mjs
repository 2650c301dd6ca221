// A process that ends with its parent, for the launcher scripts (start.mjs) and the guard:
// plain Node ESM with builtins only, as they run before anything is installed or built. The
// worker and the gateway do the same from their own entries (packages/actor-runtime/src/host/parent.ts).

import { readFileSync } from 'node:fs';

/** How often the parent's pid is checked, in ms (a getppid() call: costs nothing). */
const PARENT_POLL_MS = 200;
/** A repeat of a signal within this many ms is the same request (see mergeRepeatedSignals). */
export const REPEAT_WINDOW_MS = 1_000;

/**
 * Calls `onGone` once this process's parent has exited (it was re-parented: `process.ppid`
 * changed). From then on an EPIPE on stdout or stderr (a pipe to the dead parent) no longer
 * throws, so that what follows — a graceful stop that logs — runs to its end.
 *
 * @param {(parentPid: number) => void} onGone
 * @returns {() => void} stops watching
 */
export function whenParentGone(onGone) {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
    onGone(parent);
  }, PARENT_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Makes a repeat of SIGINT, SIGTERM or SIGHUP that arrives within {@link REPEAT_WINDOW_MS}
 * of the first one a no-op, so that a handler sees one request to stop, not two.
 *
 * `npm run` forwards SIGINT and SIGTERM to its child, which is in npm's process group: a
 * Ctrl-C in the terminal (or a supervisor signalling the whole group or cgroup) reaches the
 * child twice within microseconds. Without this, the second one reads as "stop now" (the
 * gateway exits at once, a `process.once` handler is gone and the default action kills the
 * worker mid hand-over). A signal sent again after the window still counts as a second one.
 *
 * Must run before any signal listener is added: Node binds each signal to `process.emit`
 * when the first listener for it is added.
 */
export function mergeRepeatedSignals() {
  /** @type {Map<string, number>} */
  const last = new Map();
  const emit = /** @type {(event: string | symbol, ...args: unknown[]) => boolean} */ (process.emit.bind(process));
  process.emit = /** @type {typeof process.emit} */ (
    function (/** @type {string | symbol} */ event, /** @type {unknown[]} */ ...args) {
      if (event === 'SIGINT' || event === 'SIGTERM' || event === 'SIGHUP') {
        const now = Date.now();
        const before = last.get(event);
        if (before !== undefined && now - before < REPEAT_WINDOW_MS) return true;
        last.set(event, now);
        // Keep the signal caught for the window: a `once` handler removes itself, and the
        // repeat would otherwise meet the default action (terminate).
        const keep = () => undefined;
        process.on(event, keep);
        setTimeout(() => process.off(event, keep), REPEAT_WINDOW_MS).unref();
      }
      return emit(event, ...args);
    }
  );
}

/**
 * A process's identity that survives pid reuse: its pid and start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot), or `undefined` when it is gone or a zombie.
 * Off Linux (no /proc) the start time is `-1`: only the pid is compared.
 *
 * @param {number} pid
 * @returns {{ pid: number, start: number } | undefined}
 */
export function processIdentity(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    try {
      process.kill(pid, 0);
      return { pid, start: -1 };
    } catch (err) {
      return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM' ? { pid, start: -1 } : undefined;
    }
  }
  // The command name (field 2) is in parentheses and may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return { pid, start: Number(fields[19]) };
}

/**
 * Whether the process `id` names still runs (the same pid with the same start time).
 *
 * @param {{ pid: number, start: number }} id
 */
export function stillRuns(id) {
  const now = processIdentity(id.pid);
  return now !== undefined && (id.start === -1 || now.start === id.start);
}
