/**
 * The packages as a user gets them: `npm pack` of the runtime, the gateway and the CLI (built
 * dist/, what `npm test` builds first), installed from the tarballs — in one `npm install`, so
 * the workspace versions resolve to them — into a fresh project outside this repository. The
 * project defines an actor type of its own (`greeter`, plain .mjs), hosts it with
 * `runWorker`, starts the installed gateway (which has never seen it) and calls it over HTTP
 * and with the installed `jetactor` command, over the gateway and over NATS.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { childPids, freePort, processRuns, spawnProcess, startNatsServer, tempDir, waitFor, type ManagedProcess, type NatsServer, type TempDir } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const packagesDir = fileURLToPath(new URL('../../', import.meta.url));
const PACKED = ['actor-runtime', 'gateway', 'cli'] as const;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const GREETER = `import { defineActor, Type } from '@jetactor/actor-runtime';

export const greeter = defineActor({
  type: 'greeter',
  initialState: () => ({ greeted: [] }),
  operations: {
    greet: {
      input: Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
      handler: (state, { name }) => ({ state: { greeted: [...state.greeted, name] }, result: 'hello ' + name }),
    },
  },
});
`;
const WORKER = `import { runWorker } from '@jetactor/actor-runtime/worker';
import { greeter } from './greeter.mjs';

await runWorker({ actors: [greeter] });
`;

let dir: TempDir;
let server: NatsServer;
let worker: ManagedProcess | undefined;
let gateway: ManagedProcess | undefined;
let base: string;
let project: string;

async function jetactor(...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [join(project, 'node_modules', '@jetactor', 'cli', 'bin', 'jetactor.js'), ...args, '--json'], { cwd: project, timeout: 30_000 });
  return JSON.parse(stdout) as unknown;
}

beforeAll(async () => {
  for (const p of PACKED) {
    if (!existsSync(join(packagesDir, p, 'dist', 'index.js'))) {
      throw new Error(`packages/${p}/dist is missing: build first (npm test does, or: npx nx run-many -t build)`);
    }
  }
  dir = await tempDir('jetactor-outside-');
  const tarballs = join(dir.path, 'tarballs');
  project = join(dir.path, 'my-actors');
  await mkdir(tarballs);
  await mkdir(project);
  for (const p of PACKED) await run(npm, ['pack', '--silent', '--pack-destination', tarballs], { cwd: join(packagesDir, p), timeout: 60_000 });
  const files = (await readdir(tarballs)).filter((f) => f.endsWith('.tgz')).map((f) => join(tarballs, f));
  expect(files).toHaveLength(PACKED.length);
  await run(npm, ['init', '-y'], { cwd: project, timeout: 30_000 });
  await run(npm, ['pkg', 'set', 'type=module'], { cwd: project, timeout: 30_000 });
  // The tarballs' own dependencies come from npm's cache when it has them.
  await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...files], { cwd: project, timeout: 180_000 });
  await writeFile(join(project, 'greeter.mjs'), GREETER);
  await writeFile(join(project, 'worker.mjs'), WORKER);

  server = await startNatsServer();
  worker = spawnProcess(process.execPath, ['worker.mjs'], {
    cwd: project,
    name: 'outside-worker',
    env: { NATS_URL: server.url, METRICS_PORT: '0', ACTORS_PARTITIONS: '4', LEASE_TTL_MS: '2000', HEARTBEAT_MS: '250' },
  });
  await worker.waitForLine(/actor types registered/, 30_000);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = spawnProcess(process.execPath, [join(project, 'node_modules', '.bin', 'jetactor-gateway')], {
    cwd: project,
    name: 'outside-gateway',
    env: { NATS_URL: server.url, PORT: String(port), HOST: '127.0.0.1' },
  });
  await gateway.waitForLine(/actor types read/, 30_000);
}, 280_000);

afterAll(async () => {
  await gateway?.stop();
  await worker?.stop();
  await server?.stop();
  await dir?.remove();
});

describe('a project outside the repository, from the packed tarballs', () => {
  it('calls its own actor through the installed gateway over HTTP', async () => {
    const res = await waitFor(
      async () => {
        const r = await fetch(`${base}/api/actors/greeter/ada/greet?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"ada"}' });
        return r.status === 200 ? ((await r.json()) as { result: unknown }) : undefined;
      },
      { timeoutMs: 20_000, message: 'the greeter call through the gateway' },
    );
    expect(res.result).toBe('hello ada');
    const invalid = await fetch(`${base}/api/actors/greeter/ada/greet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":""}' });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { code: string } }).error.code).toBe('INVALID_INPUT');
    const docs = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(docs.paths)).toContain('/api/actors/greeter/{key}/greet');
  });

  it('calls and reads it with the installed jetactor command, over the gateway and over NATS', async () => {
    expect(await jetactor('--gateway', base, 'call', 'greeter', 'bob', 'greet', '{"name":"bob"}')).toMatchObject({ result: 'hello bob' });
    expect(await jetactor('--nats', server.url, 'call', 'greeter', 'bob', 'greet', '{"name":"cy"}')).toMatchObject({ result: 'hello cy' });
    expect(await jetactor('--gateway', base, 'get', 'greeter', 'bob')).toMatchObject({ state: { greeted: ['bob', 'cy'] } });
  });

  it('`npx jetactor-gateway` stops when npx gets SIGTERM (npx forwards it to its `sh -c`, which dies of it)', async () => {
    const port = await freePort();
    const npx = spawnProcess('npx', ['--offline', 'jetactor-gateway'], {
      cwd: project,
      name: 'outside-npx-gateway',
      env: { NATS_URL: server.url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', npm_config_update_notifier: 'false', npm_lifecycle_event: undefined },
    });
    await waitFor(() => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), { timeoutMs: 30_000, message: 'the gateway under npx to answer' });
    const bins = childPids(npx.pid as number).flatMap((sh) => childPids(sh));
    try {
      expect(bins).toHaveLength(1);
      npx.kill('SIGTERM');
      await waitFor(() => !processRuns(bins[0] as number), { timeoutMs: 15_000, intervalMs: 50, message: 'the gateway to stop with npx' });
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      for (const pid of bins) if (processRuns(pid)) process.kill(pid, 'SIGKILL');
      await npx.stop();
    }
  });
});
