// `npm start` (scripts/start.mjs), `npm run worker` and `npm run gateway` with real
// processes: nothing they start outlives them, however they end, and the worker still hands
// its partitions over on the way out. Needs the built entries (npm test builds them first).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePorts, startNatsServer, tempDir, waitFor, type NatsServer, type TempDir } from '../src/index.js';
import { trackChild } from '../src/registry.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ENTRIES = {
  worker: join(repoRoot, 'packages', 'worker', 'dist', 'main.js'),
  gateway: join(repoRoot, 'packages', 'gateway', 'dist', 'main.js'),
};
const PARTITIONS = 4;
const CONTROL_STREAM = 'KV_actors_ctl';

/** A process by pid and start time (field 22 of /proc/<pid>/stat), so that a reused pid is not mistaken for it. */
interface Identity {
  pid: number;
  start: string;
  cmd: string;
}

/** Fields 3… of /proc/<pid>/stat (state first), or undefined if there is no such process. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function identity(pid: number): Identity | undefined {
  const fields = statFields(pid);
  if (!fields || fields[0] === 'Z') return undefined;
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    // gone meanwhile
  }
  return { pid, start: fields[19] ?? '', cmd };
}

/** Whether the very process `id` still runs (a zombie, waiting to be reaped, counts as gone). */
function runs(id: Identity): boolean {
  const fields = statFields(id.pid);
  return fields !== undefined && fields[0] !== 'Z' && fields[19] === id.start;
}

/** Live processes whose parent is `pid`. */
function childrenOf(pid: number): Identity[] {
  const found: Identity[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields?.[1] !== String(pid)) continue;
    const id = identity(Number(entry));
    if (id) found.push(id);
  }
  return found;
}

/** `pid`'s live descendants, children first. */
function descendantsOf(pid: number): Identity[] {
  const all: Identity[] = [];
  for (const child of childrenOf(pid)) all.push(child, ...descendantsOf(child.pid));
  return all;
}

/** Whether 127.0.0.1:`port` can be listened on (nobody holds it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** A child in a process group of its own (so the test can signal the whole group), lines kept. */
interface Launched {
  child: ChildProcess;
  pid: number;
  lines: string[];
}

function launch(cmd: string, args: string[], env: Record<string, string | undefined>, cwd = repoRoot): Launched {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  // What the test process may have that would change the launcher's behaviour.
  for (const key of ['NATS_URL', 'npm_lifecycle_event', 'GATEWAY_AUTH_TOKENS', 'GATEWAY_AUTH', 'NATS_SERVER_SUITE']) delete merged[key];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  const child = spawn(cmd, args, { cwd, env: merged, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  trackChild(child);
  if (child.pid !== undefined) launchedGroups.push(child.pid);
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts);
    });
  }
  if (child.pid === undefined) throw new Error(`${cmd} did not start`);
  return { child, pid: child.pid, lines };
}

function tail(...runs: Launched[]): string {
  return runs.map((r) => r.lines.slice(-40).join('\n')).join('\n---\n');
}

/** Per lease and member key of the control bucket: whether its last entry is a delete (released) or a value (held). */
async function controlKeys(server: NatsServer): Promise<Record<string, 'released' | 'held'>> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(CONTROL_STREAM, { subjects_filter: '>' });
    const keys: Record<string, 'released' | 'held'> = {};
    for (const subject of Object.keys(info.state.subjects ?? {}).sort()) {
      const key = subject.slice(`$KV.actors_ctl.`.length);
      if (!key.startsWith('leases.') && !key.startsWith('members.')) continue;
      const msg = await jsm.streams.getMessage(CONTROL_STREAM, { last_by_subj: subject });
      const op = msg?.header?.get('KV-Operation') ?? '';
      keys[key] = op === 'DEL' || op === 'PURGE' ? 'released' : 'held';
    }
    return keys;
  } finally {
    await nc.close();
  }
}

const leftovers: Identity[] = [];
/** Process groups of the launched commands (npx and its sh -c and bin share one), killed after each test. */
const launchedGroups: number[] = [];
let dir: TempDir | undefined;
let server: NatsServer | undefined;

beforeAll(() => {
  for (const entry of Object.values(ENTRIES)) {
    if (!existsSync(entry)) throw new Error(`${entry} is missing: build first (npm test does; or npm run build)`);
  }
});

afterEach(async () => {
  for (const id of leftovers.splice(0)) {
    if (runs(id)) process.kill(id.pid, 'SIGKILL');
  }
  // What a failed test left running before it could list it (the group outlives its leader).
  for (const group of launchedGroups.splice(0)) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // no process left in it
    }
  }
  await server?.stop();
  server = undefined;
  await dir?.remove();
  dir = undefined;
});

/** `node scripts/start.mjs --no-bootstrap` on free ports with a store in a temp dir. */
async function launchStart(env: Record<string, string | undefined> = {}) {
  dir = await tempDir('jetactor-start-');
  const [natsPort, httpPort, metricsPort] = (await freePorts(3)) as [number, number, number];
  const storeDir = join(dir.path, 'nats');
  const launcher = launch(process.execPath, [join(repoRoot, 'scripts', 'start.mjs'), '--no-bootstrap'], {
    NATS_PORT: String(natsPort),
    NATS_STORE_DIR: storeDir,
    PORT: String(httpPort),
    HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    ACTORS_PARTITIONS: String(PARTITIONS),
    ...env,
  });
  return { launcher, natsPort, httpPort, metricsPort, storeDir };
}

describe('npm start', () => {
  it('leaves nothing running when its whole process group is SIGKILLed: the worker hands over, then nats-server stops', async () => {
    const { launcher, natsPort, httpPort, metricsPort, storeDir } = await launchStart();
    await waitFor(
      async () => {
        if (launcher.child.exitCode !== null) throw new Error(`the launcher exited:\n${tail(launcher)}`);
        return (await httpOk(`http://127.0.0.1:${httpPort}/readyz`)) && (await httpOk(`http://127.0.0.1:${metricsPort}/readyz`));
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the gateway and the worker to be ready' },
    );

    const all = descendantsOf(launcher.pid);
    leftovers.push(...all);
    const find = (what: string, test: (cmd: string) => boolean) => {
      const found = all.filter((p) => test(p.cmd));
      expect(found.map((p) => p.cmd), what).toHaveLength(1);
      return found[0] as Identity;
    };
    const guard = find('guard', (cmd) => cmd.includes('scripts/lib/guard.mjs'));
    const nats = find('nats-server', (cmd) => !cmd.includes('guard.mjs') && /nats-server -js/.test(cmd));
    const worker = find('worker', (cmd) => cmd.endsWith(ENTRIES.worker));
    const gateway = find('gateway', (cmd) => cmd.endsWith(ENTRIES.gateway));
    expect(all).toHaveLength(4);

    // What a supervisor does when a stop times out: SIGKILL to the launcher's whole process group.
    process.kill(-launcher.pid, 'SIGKILL');
    await waitFor(
      async () => {
        const running = [guard, nats, worker, gateway].filter(runs).map((p) => p.cmd);
        if (running.length > 0) return false;
        for (const port of [natsPort, httpPort, metricsPort]) if (!(await portFree(port))) return false;
        return true;
      },
      { timeoutMs: 40_000, intervalMs: 100, message: `nats-server, worker, gateway and guard gone and ports ${natsPort}, ${httpPort}, ${metricsPort} free` },
    );
    expect(tail(launcher)).toMatch(/\[guard\] the launcher is gone; waiting for worker \(pid \d+\), gateway \(pid \d+\) to stop/);

    // The worker stopped gracefully while nats-server still ran: every lease released, its membership gone.
    server = await startNatsServer({ storeDir });
    const keys = await controlKeys(server);
    expect(Object.keys(keys).filter((k) => k.startsWith('leases.')).length, JSON.stringify(keys)).toBe(PARTITIONS);
    expect(Object.values(keys).every((v) => v === 'released'), `${JSON.stringify(keys)}\n${tail(launcher)}`).toBe(true);
  });
});

describe('npm start output', () => {
  it('ends start-up with one plain line saying what runs where, with little before it; SIGTERM stops it all', async () => {
    const { launcher, natsPort, httpPort, storeDir } = await launchStart({ LOG_LEVEL: undefined });
    const isSummary = (l: string) => l.startsWith('jetactor is up: ');
    await waitFor(
      () => {
        if (launcher.child.exitCode !== null) throw new Error(`the launcher exited:\n${tail(launcher)}`);
        return launcher.lines.some(isSummary);
      },
      { timeoutMs: 40_000, intervalMs: 50, message: 'the launcher to say it is up' },
    );
    leftovers.push(...descendantsOf(launcher.pid));
    const at = launcher.lines.findIndex(isSummary);
    const gateway = `http://127.0.0.1:${httpPort}`;
    const re = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(launcher.lines[at]).toMatch(
      new RegExp(
        `^jetactor is up: gateway ${re(gateway)} \\(dashboard ${re(gateway)}/, API docs ${re(gateway)}/docs, auth OFF\\), ` +
          `NATS nats://127\\.0\\.0\\.1:${natsPort} \\(nats-server \\d+\\.\\d+\\.\\d+, store ${re(storeDir)}\\), ` +
          `worker \\S+ owns ${PARTITIONS}/${PARTITIONS} partitions of ACTORS; Ctrl-C stops$`,
      ),
    );
    // What it says is so: the gateway is ready and serves.
    expect(await httpOk(`${gateway}/readyz`)).toBe(true);
    // Before it, only what needs reading: the gateway's warning that auth is off. No info
    // lines (the parts' JSON lines below warn, nats-server's [INF] lines, the launcher's progress).
    const before = launcher.lines.slice(0, at);
    expect(before.length, before.join('\n')).toBeLessThanOrEqual(2);
    expect(before.filter((l) => /\[INF\]|"level":[123]\d,|^\[start\]/.test(l)), before.join('\n')).toEqual([]);

    const all = descendantsOf(launcher.pid);
    process.kill(launcher.pid, 'SIGTERM');
    await waitFor(async () => launcher.child.exitCode !== null && all.every((p) => !runs(p)) && (await portFree(httpPort)) && (await portFree(natsPort)), {
      timeoutMs: 40_000,
      intervalMs: 100,
      message: 'the launcher and everything it started to stop',
    });
    expect(launcher.child.exitCode).toBe(0);
  });
});

describe('npm run worker / npm run gateway', () => {
  it('are each one process under npm that stops gracefully when npm is SIGKILLed, and on one Ctrl-C to the group', async () => {
    server = await startNatsServer();
    const [httpPort, metricsPort] = (await freePorts(2)) as [number, number];
    const common = { NATS_URL: server.url, JETACTOR_SKIP_BOOTSTRAP: '1', ACTORS_PARTITIONS: String(PARTITIONS) };
    const workerRun = launch('npm', ['run', '--silent', 'worker'], { ...common, METRICS_PORT: String(metricsPort) });
    const gatewayRun = launch('npm', ['run', '--silent', 'gateway'], { ...common, PORT: String(httpPort), HOST: '127.0.0.1' });
    await waitFor(
      async () => {
        for (const run of [workerRun, gatewayRun]) if (run.child.exitCode !== null) throw new Error(`npm exited:\n${tail(run)}`);
        return (await httpOk(`http://127.0.0.1:${httpPort}/readyz`)) && (await httpOk(`http://127.0.0.1:${metricsPort}/readyz`));
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the gateway and the worker to be ready' },
    );

    // npm's one child is the entry itself: nothing in between, nothing beside or below it.
    const only = (run: Launched, entry: string) => {
      const below = descendantsOf(run.pid);
      leftovers.push(...below);
      expect(below.map((p) => p.cmd)).toEqual([expect.stringMatching(new RegExp(`^\\S*node .*${entry.slice(repoRoot.length + 1)}$`))]);
      return below[0] as Identity;
    };
    const worker = only(workerRun, ENTRIES.worker);
    const gateway = only(gatewayRun, ENTRIES.gateway);

    // A supervisor killing npm alone: the worker is re-parented and stops by itself.
    process.kill(workerRun.pid, 'SIGKILL');
    // Ctrl-C in a terminal: SIGINT to npm and the gateway, and npm forwards it again at once,
    // which the gateway would take for a second Ctrl-C ("exit now").
    process.kill(-gatewayRun.pid, 'SIGINT');
    await waitFor(() => !runs(worker) && !runs(gateway), { timeoutMs: 30_000, intervalMs: 100, message: 'the worker and the gateway to exit' });
    expect(tail(workerRun)).toMatch(/parent process \d+ is gone; stopping \(SIGTERM\)/);
    expect(tail(gatewayRun)).toMatch(/shutting down: closing HTTP, then draining NATS/);
    expect(tail(gatewayRun)).not.toMatch(/second signal/);
    const keys = await controlKeys(server);
    expect(Object.keys(keys).filter((k) => k.startsWith('leases.')).length, JSON.stringify(keys)).toBe(PARTITIONS);
    expect(Object.values(keys).every((v) => v === 'released'), `${JSON.stringify(keys)}\n${tail(workerRun)}`).toBe(true);
    await waitFor(() => portFree(httpPort).then(async (a) => a && (await portFree(metricsPort))), { timeoutMs: 10_000, message: 'the ports to be free' });
  });
});

/**
 * A folder where `npx jetactor-gateway` finds the gateway's bin as an install would link it
 * (a small executable that runs the built entry), so that npx runs it the way it runs any
 * bin: npm → `sh -c jetactor-gateway` → node.
 */
async function npxProject(): Promise<TempDir> {
  const project = await tempDir('jetactor-npx-');
  const bin = join(project.path, 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(project.path, 'package.json'), JSON.stringify({ name: 'npx-project', version: '1.0.0', private: true }));
  writeFileSync(join(bin, 'jetactor-gateway'), `#!/usr/bin/env node\nawait import(${JSON.stringify(pathToFileURL(ENTRIES.gateway).href)});\n`, { mode: 0o755 });
  return project;
}

describe('npx jetactor-gateway', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`stops with npx on ${signal} to npx alone (npx's own sh -c dies of a SIGTERM, and outlives a SIGKILL)`, async () => {
      server = await startNatsServer();
      dir = await npxProject();
      const [httpPort] = (await freePorts(1)) as [number];
      const npx = launch('npx', ['--offline', 'jetactor-gateway'], { NATS_URL: server.url, PORT: String(httpPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn', npm_config_update_notifier: 'false' }, dir.path);
      await waitFor(
        async () => {
          if (npx.child.exitCode !== null) throw new Error(`npx exited:\n${tail(npx)}`);
          return httpOk(`http://127.0.0.1:${httpPort}/healthz`);
        },
        { timeoutMs: 30_000, intervalMs: 100, message: 'the gateway to be ready' },
      );
      const below = descendantsOf(npx.pid);
      leftovers.push(...below);
      const gateway = below.find((p) => p.cmd.includes('jetactor-gateway') && !p.cmd.startsWith('sh '));
      expect(below.map((p) => p.cmd).join('\n')).toMatch(/^sh -c .*jetactor-gateway/m);
      expect(gateway, below.map((p) => p.cmd).join('\n')).toBeDefined();

      process.kill(npx.pid, signal);
      await waitFor(async () => below.every((p) => !runs(p)) && (await portFree(httpPort)), {
        timeoutMs: 20_000,
        intervalMs: 100,
        message: `npx's sh and the gateway to be gone and port ${httpPort} free after ${signal} to npx`,
      });
      expect(tail(npx)).toMatch(/parent process \d+ is gone; stopping \(SIGTERM\)/);
      expect(tail(npx)).not.toMatch(/second signal/);
    });
  }
});
