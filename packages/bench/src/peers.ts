/**
 * The `peers` section (`--peers`): the call and signal phases (system-phases.ts) against
 * Restate 1.7, the closest relative of jetactor's actors, beside jetactor on this run's
 * nats-server: the same HTTP client, the same keys, the same counter.
 *
 * Restate is installed on demand into `.cache/peers/restate` (git-ignored) with
 * `npm install --prefix <cache> @restatedev/restate-server@1.7 @restatedev/restate-sdk@1.16`
 * (npm's configured registry; the server package ships its Linux/macOS binary), never as a
 * dependency of the repository. One restate-server (every role, one node, a temp data dir,
 * random loopback ports read from its JSON log, telemetry off) and the `counter` virtual
 * object of peers/restate-counter.mjs as its own Node process (HTTP/2, registered through
 * the admin API). Calls go to the ingress as `POST /counter/<key>/add` awaiting the result;
 * one-way signals as `POST /counter/hot/add/send`. Restate looks up a release-check host at
 * start; that fails offline and it runs on. Both processes are stopped (and killed with this
 * one) and the data dir removed at the end.
 */
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, spawnProcess, tempDir, waitFor, type ManagedProcess } from '@jetactor/testing';
import type { BenchContext, PhaseResults } from './context.js';
import { jetactorPhases, phaseFigures, SyncMode } from './durability.js';
import type { Figure } from './figures.js';
import type { ComparisonRow } from './report.js';
import { applyNice, tail } from './processes.js';
import { progress } from './progress.js';
import { measureCallsAndSignals } from './system-phases.js';

/** The versions asked for (npm ranges) and the folder they are installed into, under the repo root. */
export const RESTATE_SERVER_RANGE = '1.7';
export const RESTATE_SDK_RANGE = '1.16';
export const PEERS_CACHE = '.cache/peers/restate';

const SECTION = 'Peers: jetactor beside Restate (same HTTP client, same keys; ratio = jetactor / Restate)';

/** What the install gives: the server binary, its version and the folder the SDK resolves from. */
export interface RestateInstall {
  dir: string;
  serverBin: string;
  serverVersion: string;
  sdkVersion: string;
}

async function installedVersion(dir: string, pkg: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

const inRange = (version: string | undefined, range: string) => version !== undefined && (version === range || version.startsWith(`${range}.`));

/** Installs Restate into the cache folder unless the wanted versions are there. */
export async function ensureRestate(repoRoot: string): Promise<RestateInstall> {
  const dir = join(repoRoot, PEERS_CACHE);
  const platformPkg = `@restatedev/restate-server-${process.platform}-${process.arch}`;
  let serverVersion = await installedVersion(dir, '@restatedev/restate-server');
  let sdkVersion = await installedVersion(dir, '@restatedev/restate-sdk');
  if (!inRange(serverVersion, RESTATE_SERVER_RANGE) || !inRange(sdkVersion, RESTATE_SDK_RANGE) || !(await installedVersion(dir, platformPkg))) {
    const args = ['install', '--prefix', dir, '--no-audit', '--no-fund', '--ignore-scripts', `@restatedev/restate-server@${RESTATE_SERVER_RANGE}`, `@restatedev/restate-sdk@${RESTATE_SDK_RANGE}`];
    progress('peers', `installing Restate: npm ${args.join(' ')}`);
    // Its output is echoed (it may take a minute); it dies with this process like every other.
    const npm = spawnProcess(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { name: 'npm', echo: true });
    const { code } = await npm.exited;
    if (code !== 0) throw new Error(`npm install of Restate into ${dir} failed (exit ${code}); the peers section needs the npm registry once`);
    serverVersion = await installedVersion(dir, '@restatedev/restate-server');
    sdkVersion = await installedVersion(dir, '@restatedev/restate-sdk');
  }
  if (!(await installedVersion(dir, platformPkg))) throw new Error(`Restate ships no server binary for ${process.platform}-${process.arch} (${platformPkg})`);
  return { dir, serverBin: join(dir, 'node_modules', platformPkg, 'bin', 'restate-server'), serverVersion: serverVersion ?? '?', sdkVersion: sdkVersion ?? '?' };
}

/** A running Restate: server, the counter service, and where its ingress is. */
interface RestateSystem {
  server: ManagedProcess;
  service: ManagedProcess;
  ingress: string;
  stop(): Promise<void>;
}

/** The port of the listener named `serverName` in restate-server's JSON log lines. */
function listenerPort(lines: readonly string[], serverName: string): number | undefined {
  for (const line of lines) {
    if (!line.includes(serverName)) continue;
    try {
      const port = (JSON.parse(line) as { span?: Record<string, unknown> }).span?.['server.port'];
      if (typeof port === 'number') return port;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

async function startRestate(ctx: BenchContext, install: RestateInstall): Promise<RestateSystem> {
  const data = await tempDir('jetactor-restate-');
  const server = spawnProcess(
    install.serverBin,
    ['--no-logo', '--listen-mode', 'tcp', '--use-random-ports', 'true', '--bind-ip', '127.0.0.1', '--advertised-host', '127.0.0.1', '--base-dir', data.path, '--node-name', 'bench'],
    { name: 'restate-server', env: { RESTATE_DISABLE_TELEMETRY: 'true', RESTATE_LOG_FORMAT: 'json', RESTATE_LOG_DISABLE_ANSI_CODES: 'true' }, echo: process.env.BENCH_ECHO === '1' },
  );
  applyNice(ctx, server.pid);
  let service: ManagedProcess | undefined;
  const stop = async () => {
    await Promise.all([service?.stop(), server.stop(15_000)]);
    await data.remove();
  };
  try {
    const ports = await waitFor(
      () => {
        if (!server.running) throw new Error(`restate-server exited:\n${tail(server)}`);
        const ingress = listenerPort(server.lines, 'http-ingress-server');
        const admin = listenerPort(server.lines, 'admin-api-server');
        return ingress && admin ? { ingress, admin } : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: 'restate-server to listen (ingress and admin)' },
    );
    const admin = `http://127.0.0.1:${ports.admin}`;
    const ingress = `http://127.0.0.1:${ports.ingress}`;

    // The service runs from the cache folder, where its import of the SDK resolves.
    const script = join(install.dir, 'restate-counter.mjs');
    await copyFile(join(ctx.repoRoot, 'packages/bench/peers/restate-counter.mjs'), script);
    const port = await freePort();
    const svc = spawnProcess(process.execPath, [script], { name: 'restate-counter', env: { PORT: String(port), RESTATE_LOGGING: 'WARN' }, echo: process.env.BENCH_ECHO === '1' });
    service = svc;
    applyNice(ctx, svc.pid);
    await svc.waitForLine(/listening on/, 30_000);

    await waitFor(async () => (await fetch(`${admin}/health`).catch(() => undefined))?.ok, { timeoutMs: 60_000, intervalMs: 200, message: 'the Restate admin API to be healthy' });
    const reg = await fetch(`${admin}/deployments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uri: `http://127.0.0.1:${port}` }) });
    if (!reg.ok) throw new Error(`registering the counter service with Restate: HTTP ${reg.status} ${await reg.text()}`);
    // The ingress answers once the deployment has reached it and the partitions have leaders.
    await waitFor(async () => (await fetch(`${ingress}/counter/ready/get`, { method: 'POST' }).catch(() => undefined))?.ok, {
      timeoutMs: 60_000,
      intervalMs: 200,
      message: 'the Restate ingress to answer counter/ready/get',
    });
    return { server, service: svc, ingress, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Restate's phases are measured once per bench process (not again for a second nats-server). */
let restateResults: Promise<{ results: PhaseResults; install: RestateInstall }> | undefined;

async function restatePhases(ctx: BenchContext): Promise<{ results: PhaseResults; install: RestateInstall }> {
  restateResults ??= (async () => {
    const install = await ensureRestate(ctx.repoRoot);
    progress('peers', `Restate ${install.serverVersion} (SDK ${install.sdkVersion}) from ${install.dir}`);
    const sys = await startRestate(ctx, install);
    try {
      const results = await measureCallsAndSignals(
        ctx,
        {
          label: `Restate ${install.serverVersion}`,
          callUrl: (key) => `${sys.ingress}/counter/${key}/add`,
          signalUrl: `${sys.ingress}/counter/hot/add/send`,
          hotValue: async () => {
            const res = await fetch(`${sys.ingress}/counter/hot/get`, { method: 'POST' });
            if (!res.ok) throw new Error(`Restate counter/hot/get: HTTP ${res.status}`);
            return (await res.json()) as number;
          },
          pids: { restate: sys.server.pid, service: sys.service.pid },
        },
        'peers',
      );
      return { results, install };
    } finally {
      await sys.stop();
    }
  })();
  return restateResults;
}

/**
 * The section's figures: Restate's, jetactor's by default (each compared with Restate's,
 * with the target: ahead of Restate), and jetactor's with fsync per message (the
 * durability Restate has; compared, no target).
 */
export async function measurePeers(ctx: BenchContext): Promise<Figure[]> {
  const { results: restate, install } = await restatePhases(ctx);
  const byDefault = await jetactorPhases(ctx, SyncMode.Default, 'peers');
  const always = await jetactorPhases(ctx, SyncMode.Always, 'peers');
  const ahead = (better: 'higher' | 'lower') => (better === 'higher' ? { minRatio: 1 } : { maxRatio: 1 });
  return [
    ...phaseFigures(ctx, restate, { prefix: 'peers.restate', section: SECTION, label: `Restate ${install.serverVersion}` }),
    ...phaseFigures(ctx, byDefault, { prefix: 'peers.jetactor', section: SECTION, label: 'jetactor', limitPrefix: 'peers.restate', target: (m) => ahead(m.better) }),
    ...phaseFigures(ctx, always, { prefix: 'peers.jetactorSyncAlways', section: SECTION, label: 'jetactor, fsync per message', limitPrefix: 'peers.restate' }),
  ];
}

/** The peers' figures of a run as one side-by-side table: Restate, jetactor, jetactor with fsync per message. */
export function peerComparison(figures: readonly Figure[]): { columns: string[]; rows: ComparisonRow[] } | undefined {
  const systems = ['peers.restate', 'peers.jetactor', 'peers.jetactorSyncAlways'];
  const byId = new Map(figures.map((f) => [f.id, f]));
  const base = figures.filter((f) => f.id.startsWith(`${systems[0]}.`));
  if (base.length === 0) return undefined;
  const labelOf = (f: Figure | undefined) => String(f?.detail?.system ?? '');
  const metric = (f: Figure) => f.id.slice(f.id.indexOf('.', 'peers.'.length) + 1);
  const present = systems.filter((s) => byId.has(`${s}.${metric(base[0] as Figure)}`));
  return {
    columns: present.map((s) => labelOf(byId.get(`${s}.${metric(base[0] as Figure)}`))),
    rows: base.map((f) => ({
      name: f.name.slice(labelOf(f).length + 2),
      unit: f.unit,
      values: present.map((s) => byId.get(`${s}.${metric(f)}`)?.value ?? Number.NaN),
    })),
  };
}
