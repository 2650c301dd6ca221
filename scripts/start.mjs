#!/usr/bin/env node
// `npm start`: bootstrap (dependencies, nats-server, build), then nats-server with
// JetStream (127.0.0.1:$NATS_PORT, default 4222, store $NATS_STORE_DIR, default .data/nats)
// unless NATS_URL is set, one worker and the gateway. Output lines are prefixed with the
// process name. Start-up ends with one line saying what runs where (`jetactor is up: …`), once
// the gateway is ready and the worker owns its share of the partitions; before it, only
// warnings and errors are shown (the parts' info lines, nats-server's [INF] lines and this
// script's own progress come with LOG_LEVEL=debug or trace, and when start-up fails).
//
// Ctrl-C / SIGTERM stops the gateway, then the worker, then nats-server; the same signal
// again (a second or more later) kills them at once. Nothing outlives this script, however
// it ends: the worker and the gateway stop gracefully by themselves once it is gone (their
// entries run exitWithParent of @jetactor/actor-runtime), and the nats-server runs under a guard in a session of its own
// (lib/guard.mjs) that stops it after them — also after a `kill -9` of this script's whole
// process group. Started by npm, it also stops when npm is gone.
//
//   node scripts/start.mjs --no-bootstrap   skip `npm ci` and the build: dist/ must be built
//                                           (JETACTOR_SKIP_BOOTSTRAP=1 does the same)
//
// `npm run worker` / `npm run gateway` run one part alone, as a single process: see setup.mjs.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { bootstrap, repoRoot } from './lib/bootstrap.mjs';
import { mergeRepeatedSignals, whenParentGone } from './lib/parent.mjs';
import { ensureNatsServer } from './nats-server.mjs';
import { PARTS, assertBuilt, skipBootstrapFromEnv } from './setup.mjs';

// Before any signal listener: npm forwards the Ctrl-C its process group already got.
mergeRepeatedSignals();
// Output is best effort: a closed terminal (SIGHUP) or a dead reader must not crash this
// script mid-shutdown, which would SIGKILL the children instead of stopping them in order.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
const STOP_TIMEOUT_MS = 15_000;
const NATS_READY_TIMEOUT_MS = 30_000;
/** How long the gateway and the worker may take to be up before start-up is reported as stuck. */
const UP_TIMEOUT_MS = 60_000;
/** Start-up lines held back (shown if start-up fails), at most. */
const HELD_LINES_MAX = 500;
/** LOG_LEVEL=debug or trace: show every start-up line as it comes. */
const VERBOSE = /^(debug|trace)$/i.test(process.env.LOG_LEVEL ?? '');
const GUARD = join(repoRoot, 'scripts', 'lib', 'guard.mjs');

/** @typedef {{ name: string, child: import('node:child_process').ChildProcess, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, expectedExit: boolean, hint?: string }} Child */

/** Children in start order (the guard first); stopped in reverse. @type {Child[]} */
const children = [];
let shuttingDown = false;
/** The guard (lib/guard.mjs), once started. @type {Child | undefined} */
let guard;
/** The nats-server's pid, once the guard has started it. @type {number | undefined} */
let natsPid;
/** Whether start-up is over (up, failed or timed out): from then on every line is shown. */
let started = false;
/** Start-up lines not shown (info and below), in order; shown if start-up fails. @type {string[]} */
const held = [];

/** @param {string} line */
function say(line) {
  try {
    process.stderr.write(`[start] ${line}\n`);
  } catch {
    // nobody reads stderr any more
  }
}

/** A start-up progress line: shown at LOG_LEVEL=debug, else held (see {@link showHeld}). @param {string} line */
function sayDebug(line) {
  if (VERBOSE || started) say(line);
  else hold(`[start] ${line}`);
}

/** @param {string} line */
function hold(line) {
  held.push(line);
  if (held.length > HELD_LINES_MAX) held.splice(0, held.length - HELD_LINES_MAX);
}

/** Start-up is over: from now on every line is shown; `why`, if given, also prints what was held back. @param {string} [why] */
function endStartup(why) {
  if (started) return;
  started = true;
  if (why && held.length > 0) {
    say(`${why}; the start-up lines held back so far:`);
    for (const line of held) process.stderr.write(`${line}\n`);
  }
  held.length = 0;
}

/**
 * Whether a part's output line is shown during start-up: anything but a pino JSON line below
 * warn (40), or everything at LOG_LEVEL=debug.
 *
 * @param {string} line
 */
function shownDuringStartup(line) {
  if (VERBOSE || !line.startsWith('{')) return true;
  try {
    /** @type {unknown} */
    const parsed = JSON.parse(line);
    const level = /** @type {{ level?: unknown } | null} */ (parsed)?.level;
    return typeof level !== 'number' || level >= 40;
  } catch {
    return true;
  }
}

/** @param {string[]} argv */
function parseArgs(argv) {
  let skipBootstrap = skipBootstrapFromEnv();
  for (const arg of argv) {
    if (arg === '--no-bootstrap') skipBootstrap = true;
    else if (arg === '--only' || arg.startsWith('--only=')) throw new Error('--only is gone: `npm run worker` and `npm run gateway` run one part as a single process');
    else throw new Error(`unknown argument ${arg}; usage: node scripts/start.mjs [--no-bootstrap]`);
  }
  return { skipBootstrap };
}

/**
 * Tracks a started child: its exit, and the shutdown an unexpected exit starts.
 *
 * @param {string} name @param {import('node:child_process').ChildProcess} child
 */
function track(name, child) {
  /** @type {Child} */
  const entry = {
    name,
    child,
    expectedExit: false,
    exited: new Promise((resolve) => {
      child.once('error', (err) => {
        say(`${name} could not be started: ${err.message}`);
        resolve({ code: null, signal: null });
      });
      child.once('exit', (code, signal) => resolve({ code, signal }));
    }),
  };
  children.push(entry);
  void entry.exited.then(({ code, signal }) => {
    if (child.pid !== undefined && guard && entry !== guard) guard.child.send?.({ unwatch: child.pid }, () => undefined);
    if (entry.expectedExit || shuttingDown) return;
    say(`${name} exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})${entry.hint ? `; ${entry.hint}` : ''}; stopping the rest`);
    void shutdown(code && code !== 0 ? code : 1);
  });
  return entry;
}

/**
 * Starts the guard, in a session of its own (a signal to this script's process group does
 * not reach it), running `cmd args` as "nats" when given. Resolves with the command's pid.
 *
 * @param {{ cmd: string, args: string[] } | undefined} command
 */
function startGuard(command) {
  const quiet = VERBOSE ? [] : ['--hide', '\\[INF\\]'];
  const child = spawn(process.execPath, [GUARD, ...(command ? ['--name', 'nats', ...quiet, '--', command.cmd, ...command.args] : [])], {
    cwd: repoRoot,
    env: process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  guard = track(command ? 'nats' : 'guard', child);
  /** @type {Promise<number | undefined>} */
  const started = new Promise((resolve) => {
    if (!command) resolve(undefined);
    child.on('message', (/** @type {{ started?: unknown } | null | undefined} */ message) => {
      const pid = message?.started;
      if (typeof pid === 'number' && Number.isSafeInteger(pid)) {
        natsPid = pid;
        resolve(natsPid);
      }
    });
    void guard?.exited.then(() => resolve(undefined));
  });
  return started;
}

/**
 * Starts a worker or the gateway in its own process group (so a terminal's Ctrl-C reaches
 * only this script, which then stops the children in order) with its lines prefixed; the
 * entry stops by itself once this script is gone, and the guard watches it.
 *
 * @param {keyof typeof PARTS} name @param {Record<string, string>} env
 */
function startPart(name, env) {
  const child = spawn(process.execPath, [PARTS[name]], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const prefix = `[${name}] `;
  for (const [input, out] of /** @type {const} */ ([
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ])) {
    createInterface({ input }).on('line', (line) => {
      if (started || shownDuringStartup(line)) out.write(`${prefix}${line}\n`);
      else hold(`${prefix}${line}`);
    });
  }
  if (child.pid !== undefined) {
    guard?.child.send?.({ watch: { pid: child.pid, name } }, () => undefined);
    sayDebug(`${name} started (pid ${child.pid})`);
  }
  return track(name, child);
}

/** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS. @param {Child} entry */
async function stopChild(entry) {
  entry.expectedExit = true;
  const { child } = entry;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    say(`${entry.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
    killNow(entry);
  }, STOP_TIMEOUT_MS);
  await entry.exited;
  clearTimeout(timer);
}

/** SIGKILL to a child; for the guard, to the nats-server it runs too. @param {Child} entry */
function killNow(entry) {
  const { child } = entry;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (entry === guard && natsPid !== undefined) {
    try {
      process.kill(natsPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Stops gateway, then worker, then nats-server and the guard (reverse start order); exits with `code`. @param {number} code */
async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  endStartup(code === 0 ? undefined : 'stopping before start-up finished');
  for (const entry of [...children].reverse()) {
    await stopChild(entry);
  }
  process.exit(code);
}

/**
 * Resolves once `host:port` answers with a NATS INFO line; rejects on `deadline` or if `nats` exits.
 *
 * @param {string} host @param {number} port @param {{ exited: Promise<unknown> }} nats
 */
async function waitForNats(host, port, nats) {
  const deadline = Date.now() + NATS_READY_TIMEOUT_MS;
  let dead = false;
  void nats.exited.then(() => (dead = true));
  while (Date.now() < deadline) {
    if (dead) throw new Error('nats-server exited during start-up (see its lines above)');
    if (await greets(host, port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nats-server did not accept connections on ${host}:${port} within ${NATS_READY_TIMEOUT_MS / 1000} s`);
}

/** Whether `host:port` answers with a NATS INFO line within a second. @param {string} host @param {number} port @returns {Promise<boolean>} */
function greets(host, port) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (/** @type {boolean} */ ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (chunk) => done(chunk.toString('latin1').startsWith('INFO')));
  });
}

// Whatever way this script exits, no child is left running (kill() is synchronous, as an
// 'exit' handler requires); a kill -9 of this script is the guard's and the preload's to handle.
process.on('exit', () => {
  for (const entry of children) killNow(entry);
});

for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(signal, () => {
    if (shuttingDown) {
      say(`${signal} again: killing everything now`);
      process.exit(130);
    }
    say(`${signal}: stopping ${[...children].reverse().map((c) => c.name).join(', ') || 'the start-up'}`);
    void shutdown(0);
  });
}

// Run by npm (`npm start`): a supervisor that kills npm alone must not leave us behind.
if (process.env.npm_lifecycle_event) {
  whenParentGone((parent) => {
    say(`npm (pid ${parent}) is gone; stopping`);
    void shutdown(1);
  });
}

async function main() {
  const { skipBootstrap } = parseArgs(process.argv.slice(2));
  const ownNats = !process.env.NATS_URL;
  let natsServer;
  if (skipBootstrap) {
    assertBuilt(['worker', 'gateway']);
    if (ownNats) natsServer = await ensureNatsServer({ log: (line) => sayDebug(line) });
  } else {
    // npm ci's and the build's output (npm warnings, Nx's table) is shown only if one fails.
    ({ natsServer } = await bootstrap({ nats: ownNats, quiet: !VERBOSE, log: (line) => sayDebug(line) }));
  }
  if (shuttingDown) return;

  let natsUrl = process.env.NATS_URL || DEFAULT_NATS_URL;
  const host = process.env.HOST || '127.0.0.1';
  const port = process.env.PORT || '3000';
  // `tokenA:read,write;tokenB:read`, or the older plain comma list (the gateway parses and checks it).
  const tokensText = process.env.GATEWAY_AUTH_TOKENS ?? '';
  const authTokens = tokensText.split(/[:;]/.test(tokensText) ? ';' : ',').filter((t) => t.trim());

  /** What the summary line says about NATS. */
  let natsWhat;
  if (ownNats && natsServer) {
    const natsPort = Number(process.env.NATS_PORT || '4222');
    const storeDir = resolve(repoRoot, process.env.NATS_STORE_DIR || join('.data', 'nats'));
    mkdirSync(storeDir, { recursive: true });
    natsUrl = `nats://127.0.0.1:${natsPort}`;
    const pid = await startGuard({ cmd: natsServer.bin, args: ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', storeDir] });
    sayDebug(`nats-server ${natsServer.version} (pid ${pid ?? '?'}) with JetStream on ${natsUrl}, store ${storeDir}`);
    natsWhat = `${natsUrl} (nats-server ${natsServer.version}, store ${relative(repoRoot, storeDir).startsWith('..') ? storeDir : relative(repoRoot, storeDir)})`;
    const nats = /** @type {Child} */ (guard);
    nats.hint = `if port ${natsPort} is in use, set NATS_URL to use the server there, or NATS_PORT to pick another port`;
    await waitForNats('127.0.0.1', natsPort, nats);
  } else {
    await startGuard(undefined);
    sayDebug(`using NATS at ${natsUrl}${process.env.NATS_URL ? '' : ' (default; set NATS_URL to change)'}`);
    natsWhat = `${natsUrl} (NATS_URL)`;
  }
  if (shuttingDown) return;

  const env = { NATS_URL: natsUrl };
  const worker = startPart('worker', env);
  startPart('gateway', env);
  const gatewayUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const auth = authTokens.length ? `auth on: ${authTokens.length} bearer token(s)` : 'auth OFF';
  const up = await waitUntilUp({ natsUrl, gatewayUrl, workerPid: worker.child.pid });
  if (shuttingDown) return;
  if (!up.ok) {
    endStartup(`not up within ${UP_TIMEOUT_MS / 1000} s: ${up.missing}; still running`);
    return;
  }
  endStartup();
  const line =
    `jetactor is up: gateway ${gatewayUrl} (dashboard ${gatewayUrl}/, API docs ${gatewayUrl}/docs, ${auth}), ` +
    `NATS ${natsWhat}, worker ${up.workerId} owns ${up.owned}/${up.partitions} partitions of ${up.stream}; Ctrl-C stops`;
  try {
    process.stdout.write(`${line}\n`);
  } catch {
    // nobody reads stdout any more
  }
}

/**
 * Polls, until {@link UP_TIMEOUT_MS}, until the gateway answers `/readyz` and the worker owns
 * its share of the partitions (the share the assignment gives it among the live members, read
 * from the control bucket over NATS with the runtime's client, as `jetactor status` does).
 *
 * @param {{ natsUrl: string, gatewayUrl: string, workerPid: number | undefined }} opts
 * @returns {Promise<{ ok: true, workerId: string, owned: number, partitions: number, stream: string } | { ok: false, missing: string }>}
 */
async function waitUntilUp({ natsUrl, gatewayUrl, workerPid }) {
  const deadline = Date.now() + UP_TIMEOUT_MS;
  // Built by now (the bootstrap, or assertBuilt with --no-bootstrap).
  const runtime = await import('@jetactor/actor-runtime');
  const stream = runtime.defaultNames().stream;
  const probe = gatewayUrl.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
  let missing = 'the gateway and the worker';
  /** @type {import('@nats-io/nats-core').NatsConnection | undefined} */
  let nc;
  /** @type {import('@jetactor/actor-runtime').ActorClient | undefined} */
  let client;
  try {
    while (Date.now() < deadline && !shuttingDown) {
      try {
        nc ??= await runtime.connectFromEnv('jetactor-start', { servers: natsUrl.split(','), maxReconnectAttempts: 0, timeout: 2_000 });
        client ??= runtime.createActorClient(nc, { timeoutMs: 2_000 });
        const gatewayReady = await fetch(`${probe}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
        const status = await client.status();
        const me = status.members.find((m) => m.pid === workerPid && (m.host === undefined || m.host === hostname()));
        const owners = new Map(status.partitions.map((p) => [p.partition, p.owner]));
        const share = me ? (runtime.assignPartitions(status.partitions.length, status.members.map((m) => m.id)).get(me.id) ?? []) : [];
        const owned = me ? status.partitions.filter((p) => p.owner === me.id).length : 0;
        const settled = me !== undefined && share.every((p) => owners.get(p) === me.id) && status.partitions.every((p) => p.owner !== null);
        if (gatewayReady && settled) return { ok: true, workerId: me.id, owned, partitions: status.partitions.length, stream };
        missing = [
          gatewayReady ? '' : `the gateway's ${probe}/readyz`,
          settled ? '' : me ? `the worker owns ${owned}/${status.partitions.length} partitions` : 'the worker has not joined',
        ]
          .filter(Boolean)
          .join(', ');
      } catch (err) {
        missing = `the status over NATS (${err instanceof Error ? err.message : String(err)})`;
        if (nc?.isClosed()) {
          client?.close();
          [nc, client] = [undefined, undefined];
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    client?.close();
    await nc?.close().catch(() => undefined);
  }
  return { ok: false, missing };
}

main().catch(async (err) => {
  say(`error: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
});
