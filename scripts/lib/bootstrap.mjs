// Shared start-up for `npm start`, `npm test` (and the benchmarks): dependencies, a
// nats-server binary, a build. Plain Node ESM with builtins only: it runs before `npm ci`.

import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { ensureNatsServer, repoRoot } from '../nats-server.mjs';

export { repoRoot };

/** Environment for every Nx command: no daemon, no cloud (no network here), no TUI. */
export const nxEnv = Object.freeze({ NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' });

/** Prints a progress line to stderr. @param {string} line */
export function say(line) {
  process.stderr.write(`[setup] ${line}\n`);
}

/**
 * Runs a command with inherited stdio in the repo root; resolves with its exit code
 * (a signal counts as 128 + its number, as in a shell).
 *
 * @param {string} cmd @param {string[]} args
 * @param {{ env?: Record<string, string | undefined>, quiet?: boolean }} [opts] `quiet`: hold the
 *   command's output and show it only if the command fails
 * @returns {Promise<number>}
 */
export function runInherit(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const quiet = opts.quiet === true;
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', env: { ...process.env, ...opts.env } });
    /** @type {Buffer[]} */
    const held = [];
    child.stdout?.on('data', (/** @type {Buffer} */ chunk) => held.push(chunk));
    child.stderr?.on('data', (/** @type {Buffer} */ chunk) => held.push(chunk));
    child.once('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}`, { cause: err })));
    child.once('close', (code, signal) => {
      const status = code ?? 128 + signalNumber(signal);
      // Held output is shown only when the command failed: it says why.
      if (status !== 0 && held.length > 0) process.stderr.write(Buffer.concat(held));
      resolve(status);
    });
  });
}

/**
 * Like {@link runInherit}, but rejects when the command fails.
 *
 * @param {string} cmd @param {string[]} args
 * @param {{ env?: Record<string, string | undefined>, quiet?: boolean }} [opts]
 */
export async function runOrThrow(cmd, args, opts = {}) {
  const code = await runInherit(cmd, args, opts);
  if (code !== 0) throw new Error(`\`${[cmd, ...args].join(' ')}\` failed with exit code ${code}`);
}

/**
 * A dev tool from node_modules/.bin (what `npx` would find, without npx's start-up cost).
 *
 * @param {string} name
 * @returns {[string, string[]]} command and leading arguments
 */
export function localBin(name) {
  const bin = join(repoRoot, 'node_modules', '.bin', name);
  return existsSync(bin) ? [bin, []] : ['npx', ['--no-install', name]];
}

/**
 * `npm ci` when node_modules is missing or older than package-lock.json: exactly the locked
 * versions, nothing written to package.json or package-lock.json. The lock lists the
 * optional packages of every platform (rollup's, esbuild's), so it is valid everywhere;
 * after changing a dependency, `npm install` updates it (commit the result).
 */
export async function ensureDependencies({ quiet = false } = {}) {
  const lock = join(repoRoot, 'package-lock.json');
  const installed = join(repoRoot, 'node_modules', '.package-lock.json');
  let reason;
  if (!existsSync(installed)) reason = 'node_modules is missing';
  else if (statSync(installed).mtimeMs < statSync(lock).mtimeMs) reason = 'package-lock.json is newer than node_modules';
  if (!reason) return;
  say(`${reason}: running npm ci`);
  const code = await runInherit('npm', ['ci', ...(quiet ? ['--no-audit', '--no-fund'] : [])], { quiet });
  if (code !== 0) {
    throw new Error(
      `\`npm ci\` failed with exit code ${code} (its messages are above). If it says package.json and package-lock.json ` +
        'are not in sync, run `npm install` to update the lock file and commit it; if it cannot reach the registry, check ' +
        'your npm registry settings (`npm config get registry`) and network',
    );
  }
}

/** Builds every package (`nx run-many -t build`; cached when nothing changed). */
export async function build({ quiet = false } = {}) {
  say('building (nx run-many -t build)');
  const [nx, pre] = localBin('nx');
  await runOrThrow(nx, [...pre, 'run-many', '-t', 'build'], { env: nxEnv, quiet });
}

/**
 * Dependencies, then (unless `nats: false`) a nats-server >= 2.10, then the build. `quiet`
 * (`npm start`) holds the output of npm ci and the build, shown only if one fails.
 *
 * @param {{ nats?: boolean, quiet?: boolean, log?: (line: string) => void }} [opts]
 * @returns {Promise<{ natsServer?: { bin: string, version: string } }>}
 */
export async function bootstrap({ nats = true, quiet = false, log = say } = {}) {
  await ensureDependencies({ quiet });
  const natsServer = nats ? await ensureNatsServer({ log }) : undefined;
  await build({ quiet });
  return { natsServer };
}

/** @param {NodeJS.Signals | null} signal */
function signalNumber(signal) {
  return (signal && constants.signals[signal]) || 1;
}
