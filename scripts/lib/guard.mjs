// The guard of `npm start` (scripts/start.mjs): makes sure nothing the launcher started
// outlives it, however the launcher ends — including `kill -9` of its whole process group,
// which no handler in the launcher sees.
//
//   node scripts/lib/guard.mjs [--name <name>] [--hide <regex>] [-- <command> [args...]]
//
// The launcher starts it first, in a session of its own (so a signal to the launcher's
// group does not reach it), with an IPC channel, and tells it over that channel which
// processes to look after: `{ watch: { pid, name } }`, `{ unwatch: pid }`. With a command
// (the nats-server), the guard runs it as its child, writes its lines to its own stdout and
// stderr prefixed with `[<name>] ` (the launcher's, inherited: they stay readable when the
// launcher is gone), except the lines matching `--hide` (start.mjs hides nats-server's [INF]
// lines unless LOG_LEVEL is debug), and reports `{ started: pid }`; the guard exits when the
// command does, with its status.
//
// - SIGTERM / SIGINT (the launcher stopping in order): SIGTERM to the command, then exit.
// - The IPC channel closes while processes still run (the launcher died): the watched
//   processes, which watch their parent themselves (exitWithParent in their entries), get
//   WATCHED_STOP_MS to finish their graceful stop — the nats-server keeps running meanwhile,
//   so the worker can hand its partitions over — and SIGKILL after that; then the command
//   gets SIGTERM, and SIGKILL after COMMAND_STOP_MS. Then the guard exits.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import { processIdentity, stillRuns } from './parent.mjs';

/** How long the worker and gateway may take to stop on their own (the worker's own bound is 15 s). */
const WATCHED_STOP_MS = 20_000;
/** How long the command (nats-server) may take after SIGTERM. */
const COMMAND_STOP_MS = 10_000;
const POLL_MS = 50;

// The launcher's stdout and stderr may be a pipe nobody reads any more: never die of EPIPE.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

/** @param {string} line */
function say(line) {
  try {
    process.stderr.write(`[guard] ${line}\n`);
  } catch {
    // stderr is gone
  }
}

/** Processes to look after, by pid. @type {Map<number, { name: string, id: { pid: number, start: number } }>} */
const watched = new Map();

const sep = process.argv.indexOf('--');
const [cmd, ...args] = sep === -1 ? [] : process.argv.slice(sep + 1);
const own = process.argv.slice(2, sep === -1 ? undefined : sep);
/** @param {string} flag */
const option = (flag) => {
  const i = own.indexOf(flag);
  return i !== -1 && own[i + 1] ? own[i + 1] : undefined;
};
const name = option('--name') ?? 'child';
const hidden = option('--hide');
const hide = hidden === undefined ? undefined : new RegExp(hidden);

/** @type {import('node:child_process').ChildProcess | undefined} */
let child;
/** @type {Promise<number>} exit status of the command, as a shell would give it */
let childDone = Promise.resolve(0);
if (cmd) {
  const started = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child = started;
  for (const [stream, out] of /** @type {const} */ ([
    [started.stdout, process.stdout],
    [started.stderr, process.stderr],
  ])) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (hide?.test(line)) return;
      try {
        out.write(`[${name}] ${line}\n`);
      } catch {
        // keep reading, so that the command never blocks on a full pipe
      }
    });
  }
  childDone = new Promise((resolve) => {
    started.once('error', (err) => {
      say(`cannot start ${cmd}: ${err.message}`);
      resolve(127);
    });
    started.once('exit', (code, signal) => resolve(code ?? 128 + ((signal && constants.signals[signal]) || 1)));
  });
  started.once('spawn', () => send({ started: started.pid }));
  void childDone.then((status) => {
    send({ exited: status });
    process.exit(status);
  });
}

/** @param {unknown} message */
function send(message) {
  if (process.connected) {
    try {
      process.send?.(message);
    } catch {
      // the launcher is gone
    }
  }
}

process.on('message', (/** @type {{ watch?: { pid?: unknown, name?: unknown }, unwatch?: unknown } | null | undefined} */ message) => {
  const watch = message?.watch;
  const unwatch = message?.unwatch;
  if (watch && typeof watch.pid === 'number' && Number.isSafeInteger(watch.pid)) {
    const id = processIdentity(watch.pid);
    if (id) watched.set(id.pid, { name: typeof watch.name === 'string' ? watch.name : String(id.pid), id });
  } else if (typeof unwatch === 'number' && Number.isSafeInteger(unwatch)) {
    watched.delete(unwatch);
  }
});

let stopping = false;
for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT', 'SIGHUP'])) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    if (!child) process.exit(0);
    void stopCommand();
  });
}

process.on('disconnect', () => {
  if (stopping) return;
  stopping = true;
  void orphaned();
});

/** The launcher is gone: let the watched processes stop, then stop the command, then exit. */
async function orphaned() {
  const running = () => [...watched.values()].filter((w) => stillRuns(w.id));
  const left = running();
  if (left.length > 0) {
    say(`the launcher is gone; waiting for ${left.map((w) => `${w.name} (pid ${w.id.pid})`).join(', ')} to stop`);
    const deadline = Date.now() + WATCHED_STOP_MS;
    while (running().length > 0 && Date.now() < deadline) await pause(POLL_MS);
    for (const w of running()) {
      say(`${w.name} (pid ${w.id.pid}) did not stop within ${WATCHED_STOP_MS / 1000} s; killing it`);
      kill(w.id.pid, 'SIGKILL');
    }
  }
  if (child) {
    if (left.length === 0) say('the launcher is gone');
    say(`stopping ${name} (pid ${child.pid})`);
    await stopCommand();
  }
  process.exit(0);
}

/** SIGTERM to the command, SIGKILL after COMMAND_STOP_MS; resolves when it has exited. */
async function stopCommand() {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    say(`${name} did not stop within ${COMMAND_STOP_MS / 1000} s; killing it`);
    child?.kill('SIGKILL');
  }, COMMAND_STOP_MS);
  await childDone;
  clearTimeout(timer);
}

/** @param {number} pid @param {NodeJS.Signals} signal */
function kill(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // gone meanwhile
  }
}

/** @param {number} ms */
function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
