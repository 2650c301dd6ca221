#!/usr/bin/env node
// `npm run bench`: the benchmark suite (packages/bench). Installs dependencies if needed,
// finds or fetches a nats-server >= 2.10, builds, then runs the suite, which starts its own
// nats-server, prints progress on stderr, a table on stdout and writes
// bench-results/latest.json.
//
//   npm run bench                          full run (several minutes)
//   npm run bench -- --quick               smoke run (about a minute)
//   npm run bench -- --servers=2.10,testing
//                                          the whole suite once per nats-server, then both
//                                          side by side; each entry is a Debian suite
//                                          (stable, testing, a codename: found or fetched
//                                          as by scripts/nats-server.mjs --suite), a version
//                                          (2.10, 2.15.1: a binary in .cache/nats-server or the
//                                          default one of that version) or a path
//   npm run bench -- --peers               also Restate 1.7 side by side (installed on demand
//                                          into .cache/peers/restate)
//   npm run bench -- --help                every option (--only=, --nats-server, --out=, ...)
//
// Plain Node ESM with builtins only, like the other scripts.

import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bootstrap, repoRoot, runInherit, say } from './lib/bootstrap.mjs';
import { ensureNatsServer, natsServerVersion } from './nats-server.mjs';

const VERSION = /^\d+\.\d+(\.\d+)?$/;

/**
 * Cached nats-server binaries: `.cache/nats-server/<version>-<arch>/nats-server` and
 * `.cache/nats-server/<suite>/<version>-<arch>/nats-server`, newest first.
 *
 * @returns {{ bin: string, version: string }[]}
 */
function cachedServers() {
  const root = join(repoRoot, '.cache', 'nats-server');
  /** @type {{ bin: string, version: string }[]} */
  const found = [];
  const scan = (/** @type {string} */ dir, /** @type {number} */ depth) => {
    let entries = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const m = /^(\d+\.\d+\.\d+)-[a-z0-9]+$/.exec(e.name);
      const bin = join(dir, e.name, 'nats-server');
      if (m?.[1] && existsSync(bin)) found.push({ bin, version: m[1] });
      else if (depth > 0) scan(join(dir, e.name), depth - 1);
    }
  };
  scan(root, 1);
  return found.sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }));
}

/**
 * The binary for one `--servers` entry.
 *
 * @param {string} entry @param {{ bin: string, version: string } | undefined} fallback the default server
 */
async function resolveServer(entry, fallback) {
  if (entry.includes('/')) {
    const bin = resolve(entry);
    const version = await natsServerVersion(bin, entry);
    say(`nats-server ${version}: ${bin}`);
    return bin;
  }
  if (VERSION.test(entry)) {
    const matches = (/** @type {string} */ v) => v === entry || v.startsWith(`${entry}.`);
    const hit = (fallback && matches(fallback.version) ? fallback : undefined) ?? cachedServers().find((s) => matches(s.version));
    if (!hit) {
      throw new Error(
        `--servers: no nats-server ${entry} found (default ${fallback?.version ?? 'none'}; cached: ${cachedServers().map((s) => s.version).join(', ') || 'none'}); ` +
          'give a Debian suite (stable, testing) to fetch one, or a path',
      );
    }
    say(`nats-server ${hit.version} for --servers ${entry}: ${hit.bin}`);
    return hit.bin;
  }
  const { bin } = await ensureNatsServer({ suite: entry, log: say });
  return bin;
}

const argv = process.argv.slice(2);
const serversArg = argv.filter((a) => a.startsWith('--servers='));
const rest = argv.filter((a) => !a.startsWith('--servers='));
try {
  const { natsServer } = await bootstrap();
  const serverArgs = [];
  for (const entry of serversArg.flatMap((a) => a.slice('--servers='.length).split(',')).filter(Boolean)) {
    serverArgs.push('--nats-server', await resolveServer(entry, natsServer));
  }
  const code = await runInherit(process.execPath, [join(repoRoot, 'packages/bench/dist/main.js'), ...serverArgs, ...rest], {
    env: { NATS_SERVER_BIN: natsServer?.bin, JETACTOR_ROOT: repoRoot },
  });
  process.exit(code);
} catch (err) {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
