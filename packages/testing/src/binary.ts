import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

/**
 * The nats-server binary the harness runs: `NATS_SERVER_BIN` (set by `npm test`), else
 * `nats-server` on PATH, else the newest one cached by `node scripts/nats-server.mjs`
 * under the repository's `.cache/nats-server/`.
 *
 * @throws Error explaining how to get one when none is found.
 */
export function natsServerBin(): string {
  const fromEnv = process.env['NATS_SERVER_BIN'];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file; run \`node scripts/nats-server.mjs\` to get a nats-server`);
    }
    return resolve(fromEnv);
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'nats-server'))) return resolve(dir, 'nats-server');
  }
  const cached = findCached();
  if (cached) return cached;
  throw new Error(
    'no nats-server found: set NATS_SERVER_BIN or put nats-server (>= 2.10) on PATH; ' +
      '`npm test` does this for you, and `node scripts/nats-server.mjs` fetches one and prints its path',
  );
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * `.cache/nats-server/stable/<X.Y.Z>-<arch>/nats-server` (or, as cached before suites,
 * `.cache/nats-server/<X.Y.Z>-<arch>/nats-server`) in the nearest ancestor that has one.
 * Other suites' binaries (`.cache/nats-server/testing/…`) are used only when asked for,
 * through NATS_SERVER_BIN.
 */
function findCached(): string | undefined {
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch];
  if (!arch) return undefined;
  const starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      for (const cacheRoot of [join(dir, '.cache', 'nats-server', 'stable'), join(dir, '.cache', 'nats-server')]) {
        const bin = newestCached(cacheRoot, arch);
        if (bin) return bin;
      }
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** The newest executable `<cacheRoot>/<X.Y.Z>-<arch>/nats-server`, if any. */
function newestCached(cacheRoot: string, arch: string): string | undefined {
  let entries: string[] = [];
  try {
    entries = readdirSync(cacheRoot);
  } catch {
    return undefined;
  }
  const versions = entries
    .filter((e) => e.endsWith(`-${arch}`))
    .map((e) => e.slice(0, -arch.length - 1))
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v))
    .sort(semver.rcompare);
  for (const version of versions) {
    const bin = join(cacheRoot, `${version}-${arch}`, 'nats-server');
    if (isExecutable(bin)) return bin;
  }
  return undefined;
}
