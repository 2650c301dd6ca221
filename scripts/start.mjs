#!/usr/bin/env node
// `npm start`: bootstrap (dependencies, nats-server, build), then nats-server with
// JetStream (127.0.0.1:$NATS_PORT, default 4222, store .data/nats) unless NATS_URL is set,
// one worker and the gateway. Output lines are prefixed with the process name.
// Ctrl-C / SIGTERM stops the gateway, then the worker, then nats-server.
//
//   node scripts/start.mjs --only worker    just a worker against NATS_URL (npm run worker)
//   node scripts/start.mjs --only gateway   just the gateway against NATS_URL (npm run gateway)

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bootstrap, repoRoot } from './lib/bootstrap.mjs';

const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
const STOP_TIMEOUT_MS = 15_000;
const NATS_READY_TIMEOUT_MS = 30_000;

const PARTS = Object.freeze({
  worker: join(repoRoot, 'packages', 'counter-actor', 'dist', 'main.js'),
  gateway: join(repoRoot, 'packages', 'gateway', 'dist', 'main.js'),
});

/** @typedef {{ name: string, child: import('node:child_process').ChildProcess, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, expectedExit: boolean, hint?: string }} Child */

/** Children in start order; stopped in reverse. @type {Child[]} */
const children = [];
let shuttingDown = false;

function say(line) {
  process.stderr.write(`[start] ${line}\n`);
}

function parseArgs(argv) {
  let only;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--only') only = argv[++i];
    else if (arg?.startsWith('--only=')) only = arg.slice('--only='.length);
    else throw new Error(`unknown argument ${arg}; usage: node scripts/start.mjs [--only worker|gateway]`);
  }
  if (only !== undefined && !(only in PARTS)) throw new Error(`--only takes worker or gateway, got ${JSON.stringify(only)}`);
  return { only: /** @type {'worker' | 'gateway' | undefined} */ (only) };
}

/**
 * Starts a child in its own process group (so a terminal's Ctrl-C reaches only this
 * script, which then stops the children in order) with its lines prefixed.
 *
 * @param {string} name @param {string} cmd @param {string[]} args @param {Record<string, string>} env
 */
function startChild(name, cmd, args, env) {
  const child = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const prefix = `[${name}] `;
  createInterface({ input: child.stdout }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`));
  createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`${prefix}${line}\n`));
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
    if (entry.expectedExit || shuttingDown) return;
    say(`${name} exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})${entry.hint ? `; ${entry.hint}` : ''}; stopping the rest`);
    void shutdown(code && code !== 0 ? code : 1);
  });
  return entry;
}

/** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS. @param {Child} entry */
async function stopChild(entry) {
  entry.expectedExit = true;
  const { child } = entry;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    say(`${entry.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
    child.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  await entry.exited;
  clearTimeout(timer);
}

/** Stops gateway, then worker, then nats-server (reverse start order); exits with `code`. */
async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const entry of [...children].reverse()) {
    await stopChild(entry);
  }
  process.exit(code);
}

/** Resolves once `host:port` answers with a NATS INFO line; rejects on `deadline` or if `nats` exits. */
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

function greets(host, port) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (chunk) => done(chunk.toString('latin1').startsWith('INFO')));
  });
}

// Children run in their own process groups: make sure none outlives this script, whatever
// way it ends (kill() is synchronous, as an 'exit' handler requires).
process.on('exit', () => {
  for (const { child } of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

async function main() {
  const { only } = parseArgs(process.argv.slice(2));
  const ownNats = !only && !process.env.NATS_URL;
  const { natsServer } = await bootstrap({ nats: ownNats });

  let natsUrl = process.env.NATS_URL || DEFAULT_NATS_URL;
  const host = process.env.HOST || '127.0.0.1';
  const port = process.env.PORT || '3000';
  // `tokenA:read,write;tokenB:read`, or the older plain comma list (the gateway parses and checks it).
  const tokensText = process.env.GATEWAY_AUTH_TOKENS ?? '';
  const authTokens = tokensText.split(/[:;]/.test(tokensText) ? ';' : ',').filter((t) => t.trim());

  for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
    process.on(signal, () => {
      if (shuttingDown) {
        say(`${signal} again: killing everything now`);
        for (const { child } of children) child.kill('SIGKILL');
        process.exit(130);
      }
      say(`${signal}: stopping ${[...children].reverse().map((c) => c.name).join(', ')}`);
      void shutdown(0);
    });
  }

  if (ownNats && natsServer) {
    const natsPort = Number(process.env.NATS_PORT || '4222');
    const storeDir = join(repoRoot, '.data', 'nats');
    mkdirSync(storeDir, { recursive: true });
    natsUrl = `nats://127.0.0.1:${natsPort}`;
    say(`nats-server ${natsServer.version} with JetStream on ${natsUrl}, store ${storeDir}`);
    const nats = startChild('nats', natsServer.bin, ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', storeDir], {});
    nats.hint = `if port ${natsPort} is in use, set NATS_URL to use the server there, or NATS_PORT to pick another port`;
    await waitForNats('127.0.0.1', natsPort, nats);
  } else {
    say(`using NATS at ${natsUrl}${process.env.NATS_URL ? '' : ' (default; set NATS_URL to change)'}`);
  }
  if (shuttingDown) return;

  const env = { NATS_URL: natsUrl };
  if (!only || only === 'worker') {
    startChild('worker', process.execPath, [PARTS.worker], env);
  }
  if (!only || only === 'gateway') {
    say(`gateway on http://${host}:${port} (auth ${authTokens.length ? `on: ${authTokens.length} bearer token(s) from GATEWAY_AUTH_TOKENS` : 'OFF; set GATEWAY_AUTH_TOKENS to require bearer tokens'})`);
    startChild('gateway', process.execPath, [PARTS.gateway], env);
  }
  say('running; Ctrl-C to stop');
}

main().catch(async (err) => {
  say(`error: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
});
