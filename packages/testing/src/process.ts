import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { trackChild } from './registry.js';
import { waitFor } from './wait-for.js';

/** How a {@link ManagedProcess} ended. */
export interface ProcessExit {
  /** Exit code, or `null` when a signal ended it or it never started. */
  code: number | null;
  /** The signal that ended it, or `null`. */
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started (e.g. `ENOENT`). */
  error?: Error;
}

/** Which stream a captured line came from. */
export type OutputStream = 'stdout' | 'stderr';

/** Options of {@link spawnProcess}. */
export interface SpawnProcessOptions {
  /** Variables added to (and overriding) this process's environment; `undefined` removes one. */
  env?: Record<string, string | undefined>;
  /** Working directory. Default: this process's. */
  cwd?: string;
  /** Name used in errors and echoed lines. Default: the command's name. */
  name?: string;
  /** Print every line to stderr prefixed with `[name]` as it arrives. Default `false`. */
  echo?: boolean;
  /** Lines kept in memory (oldest dropped first). Default 20 000. */
  maxLines?: number;
  /** Called for every line as it arrives. */
  onLine?: (line: string, stream: OutputStream) => void;
}

/** Options of {@link ManagedProcess.waitForLine}. */
export interface WaitForLineOptions {
  /**
   * Only consider lines from this position on (a value of `lineCount` taken earlier);
   * default 0, so a line printed before the call also matches.
   */
  since?: number;
}

/** A child process with captured output; see {@link spawnProcess}. */
export interface ManagedProcess {
  /** The name given (or the command). */
  readonly name: string;
  /** OS process id (`undefined` if it failed to start). */
  readonly pid: number | undefined;
  /** Captured stdout and stderr lines in arrival order (at most `maxLines`, the newest). */
  readonly lines: readonly string[];
  /** Lines seen in total, including dropped ones; a position for `waitForLine`'s `since`. */
  readonly lineCount: number;
  /** `true` until the process has exited. */
  readonly running: boolean;
  /** Resolves (never rejects) once the process has exited and its output is read. */
  readonly exited: Promise<ProcessExit>;
  /**
   * Resolves with the first line matching `match`; rejects after `timeoutMs` (default
   * 10 000) or when the process exits first, with the last lines in the message.
   */
  waitForLine(match: RegExp | ((line: string) => boolean), timeoutMs?: number, opts?: WaitForLineOptions): Promise<string>;
  /** Sends `signal` (default `SIGTERM`); does nothing once exited. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * Freezes the process (SIGSTOP); resolves once it is stopped (state `T` in /proc on Linux,
   * at once elsewhere), so that what follows cannot race the signal.
   */
  pause(): Promise<void>;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /**
   * SIGTERM, then SIGKILL if it has not exited after `timeoutMs` (default 10 000);
   * resolves with how it ended. A paused process is resumed first so it can handle SIGTERM.
   */
  stop(timeoutMs?: number): Promise<ProcessExit>;
}

/**
 * Starts `cmd args` with stdout and stderr captured line by line. The child is killed if
 * the test process exits first.
 *
 * @example
 * const worker = spawnProcess('node', ['packages/worker/dist/main.js'], { env: { NATS_URL: server.url }, name: 'worker' });
 * await worker.waitForLine(/ready/);
 * await worker.stop();
 */
export function spawnProcess(cmd: string, args: readonly string[] = [], opts: SpawnProcessOptions = {}): ManagedProcess {
  const name = opts.name ?? cmd.split('/').pop() ?? cmd;
  const maxLines = opts.maxLines ?? 20_000;
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);

  const lines: string[] = [];
  let dropped = 0;
  let exit: ProcessExit | undefined;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };

  const onLine = (line: string, stream: OutputStream) => {
    lines.push(line);
    // Trim in chunks: Array#splice on every line would be quadratic.
    if (lines.length > maxLines * 1.25) {
      const n = lines.length - maxLines;
      lines.splice(0, n);
      dropped += n;
    }
    if (opts.echo) process.stderr.write(`[${name}] ${line}\n`);
    opts.onLine?.(line, stream);
    notify();
  };
  let openStreams = 0;
  let streamsDone: () => void = () => undefined;
  const streamsClosed = new Promise<void>((resolve) => (streamsDone = resolve));
  for (const stream of ['stdout', 'stderr'] as const) {
    const readable = child[stream];
    openStreams++;
    const rl = createInterface({ input: readable, crlfDelay: Infinity });
    rl.on('line', (line) => onLine(line, stream));
    rl.on('close', () => {
      if (--openStreams === 0) streamsDone();
    });
  }

  const exited = new Promise<ProcessExit>((resolve) => {
    const finish = (result: ProcessExit) => {
      if (exit) return;
      exit = result;
      resolve(result);
      notify();
    };
    child.once('error', (error) => {
      // Spawn failures emit 'error' and may never emit 'exit'.
      if (child.pid === undefined) finish({ code: null, signal: null, error });
    });
    child.once('exit', (code, signal) => {
      // Wait for the output to drain, but not forever: a grandchild may hold the pipes.
      const bound = new Promise<void>((r) => setTimeout(r, 1000).unref());
      void Promise.race([streamsClosed, bound]).then(() => finish({ code, signal }));
    });
  });

  const tail = (n = 30) => (lines.length ? `\n--- last lines of ${name} ---\n${lines.slice(-n).join('\n')}` : ` (${name} printed nothing)`);

  const signalChild = (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      child.kill(signal);
    } catch {
      // exited in between
    }
  };

  return {
    name,
    get pid() {
      return child.pid;
    },
    lines,
    get lineCount() {
      return dropped + lines.length;
    },
    get running() {
      return exit === undefined;
    },
    exited,
    waitForLine(match, timeoutMs = 10_000, { since = 0 } = {}) {
      const test = typeof match === 'function' ? match : (line: string) => match.test(line);
      const what = typeof match === 'function' ? 'a matching line' : String(match);
      return new Promise<string>((resolve, reject) => {
        let next = since;
        const check = () => {
          for (let i = Math.max(next - dropped, 0); i < lines.length; i++) {
            const line = lines[i] as string;
            if (test(line)) {
              done();
              resolve(line);
              return;
            }
          }
          next = dropped + lines.length;
          if (exit) {
            done();
            const how = exit.error ? `failed to start: ${exit.error.message}` : `exited (code ${exit.code}, signal ${exit.signal})`;
            reject(new Error(`${name} ${how} before printing ${what}${tail()}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${name} to print ${what}${tail()}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    kill(signal = 'SIGTERM') {
      signalChild(signal);
    },
    async pause() {
      signalChild('SIGSTOP');
      const pid = child.pid;
      if (pid === undefined || process.platform !== 'linux') return;
      await waitFor(
        () => {
          const state = processState(pid);
          return exit !== undefined || state === undefined || state === 'T' || state === 't';
        },
        {
        timeoutMs: 5_000,
        intervalMs: 5,
          message: `${name} (pid ${pid}) to stop after SIGSTOP`,
        },
      );
    },
    resume() {
      signalChild('SIGCONT');
    },
    async stop(timeoutMs = 10_000) {
      if (exit) return exit;
      signalChild('SIGCONT');
      signalChild('SIGTERM');
      const timer = setTimeout(() => signalChild('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Linux process state letter from /proc (`R`, `S`, `D`, `T`, `t`, `Z`…), if readable. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const end = stat.lastIndexOf(')'); // the command name may contain spaces and parens
    return stat.slice(end + 2, end + 3);
  } catch {
    return undefined;
  }
}

/** This process's environment with `overrides` applied (`undefined` deletes a variable). */
function childEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}
