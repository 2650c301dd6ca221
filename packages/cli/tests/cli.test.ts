/**
 * The built `jetactor` command (bin/jetactor.js → dist/main.js) against a real
 * nats-server, a worker hosting the counter, and a gateway: every command, over NATS
 * and over the gateway. `npm test` builds first; alone: `npx nx run cli:build`.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CancelTimerOutcome, type ClusterStatus, type DeadLetter, type ScheduleResult, type TimerList } from '@jetactor/actor-runtime/client';
import { createWorker, type Worker } from '@jetactor/actor-runtime/worker';
import { registerActorTypes } from '@jetactor/actor-runtime/internal';
import { counter } from '@jetactor/counter-actor';
import { runGateway, type RunningGateway } from '@jetactor/gateway';
import { childPids, freePort, processRuns, spawnProcess, startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/jetactor.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const log = pino({ level: 'silent' });

let server: NatsServer;
let nc: NatsConnection;
let worker: Worker;
let gateway: RunningGateway;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with `args`; never rejects. */
function jetactor(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH, NATS_URL: server.url, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs the CLI with `--json` and parses its output. */
async function json<T>(args: readonly string[], env?: Record<string, string>): Promise<T> {
  const r = await jetactor([...args, '--json'], env);
  if (r.code !== 0) throw new Error(`jetactor ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npm test does, or: npx nx run cli:build)`);
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  worker = createWorker({ nc, actors: [counter], partitions: 4, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
  // What runWorker does for the types it hosts: the gateway serves only registered types.
  await registerActorTypes(nc, [counter], { workerId: worker.id });
  await waitFor(() => worker.settled(), { timeoutMs: 15_000, message: 'the worker to own its partitions' });
  gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1' }, logger: log });
  await gateway.nats.firstConnect;
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

describe('help and usage', () => {
  it('--help lists every command and the environment', async () => {
    const r = await jetactor(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['signal', 'call', 'get', 'list', 'watch', 'schedule', 'timers', 'cancel-timer', 'status', 'services', 'dlq']) expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(r.stdout).toContain('NATS_URL');
    expect(r.stdout).toContain('--gateway <url>');
  });

  it('rejects input that is not JSON, and an unknown command, with exit code 1', async () => {
    const bad = await jetactor(['signal', 'counter', 'k', 'add', '{oops']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('jetactor: USAGE: input must be JSON');
    const unknown = await jetactor(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });

  it('says clearly when NATS or the gateway cannot be reached', async () => {
    const port = await freePort();
    const nats = await jetactor(['get', 'counter', 'k', '--nats', `nats://127.0.0.1:${port}`, '--timeout', '1000']);
    expect(nats.code).toBe(1);
    expect(nats.stderr).toMatch(/^jetactor: NATS_UNAVAILABLE: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/);
    const gw = await jetactor(['get', 'counter', 'k', '--gateway', `http://127.0.0.1:${port}`, '--json']);
    expect(gw.code).toBe(1);
    expect(JSON.parse(gw.stderr)).toMatchObject({ error: { code: 'UNAVAILABLE' } });
  });
});

// The same commands over both ways in: NATS (the runtime's client) and the gateway's HTTP API.
describe.each([
  { via: 'NATS', args: (): string[] => [] },
  { via: 'the gateway', args: (): string[] => ['--gateway', gateway.url] },
])('over $via', ({ via, args }) => {
  const key = via === 'NATS' ? 'cli-nats' : 'cli-gw';

  it('signal, then get --min-seq sees it; call returns the new value', async () => {
    const signaled = await json<{ signaled: string; seq: number }>([...args(), 'signal', 'counter', key, 'add', '3']);
    expect(signaled).toMatchObject({ signaled: 'add', type: 'counter', key });
    const read = await json<{ state: unknown; seq: number }>([...args(), 'get', 'counter', key, '--min-seq', String(signaled.seq)]);
    expect(read).toMatchObject({ type: 'counter', key, state: 3 });
    expect(read.seq).toBeGreaterThanOrEqual(signaled.seq);

    const called = await json<{ result: unknown; seq: number }>([...args(), 'call', 'counter', key, 'add', '{"value":4}']);
    expect(called.result).toBe(7);
    expect(called.seq).toBeGreaterThan(signaled.seq);

    const text = await jetactor([...args(), 'get', 'counter', key]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`counter/${key} = 7`);
  });

  it("an operation's error is exit code 1 with its code", async () => {
    const r = await jetactor([...args(), 'call', 'counter', key, 'add', '"seven"']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^jetactor: INVALID_INPUT: /);
  });

  it('list pages through the actors of a type', async () => {
    for (const k of ['a', 'b', 'c']) await json([...args(), 'call', 'counter', `${key}-list-${k}`, 'add', '1']);
    const first = await json<{ items: Array<{ key: string; state: unknown }>; nextCursor: string | null }>([
      ...args(), 'list', 'counter', '--prefix', `${key}-list-`, '--limit', '2',
    ]);
    // Pages follow the order of updates (a, b, c were written in that order); the cursor is opaque digits.
    expect(first.items.map((i) => i.key)).toEqual([`${key}-list-a`, `${key}-list-b`]);
    expect(first.nextCursor).toMatch(/^[0-9]+$/);
    const second = await json<{ items: Array<{ key: string }>; nextCursor: string | null }>([
      ...args(), 'list', 'counter', '--prefix', `${key}-list-`, '--limit', '2', '--cursor', first.nextCursor!,
    ]);
    expect(second.items.map((i) => i.key)).toEqual([`${key}-list-c`]);
    const all = await json<{ items: Array<{ key: string; state: unknown }>; nextCursor: string | null }>([
      ...args(), 'list', 'counter', '--prefix', `${key}-list-`, '--limit', '2', '--all',
    ]);
    expect(all.items.map((i) => [i.key, i.state])).toEqual([
      [`${key}-list-a`, 1],
      [`${key}-list-b`, 1],
      [`${key}-list-c`, 1],
    ]);
    expect(all.nextCursor).toBeNull();
  });

  it('watch prints the current state, then each committed change', async () => {
    const wkey = `${key}-watch`;
    await json([...args(), 'call', 'counter', wkey, 'add', '10']);
    const proc = spawnProcess(process.execPath, [BIN, ...args(), 'watch', 'counter', wkey, '--count', '3', '--json'], {
      env: { NATS_URL: server.url },
      name: `watch-${via}`,
    });
    // The current state comes first: the watch is running once it is printed.
    await proc.waitForLine((l) => l.includes('"state":10'), 15_000);
    await json([...args(), 'call', 'counter', wkey, 'add', '5']);
    await json([...args(), 'call', 'counter', wkey, 'reset']);
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    const changes = proc.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { key: string; state: unknown; seq: number });
    expect(changes.map((c) => c.state)).toEqual([10, 15, 0]);
    expect(changes.every((c) => c.key === wkey)).toBe(true);
    expect(changes[2]!.seq).toBeGreaterThan(changes[1]!.seq);
  });

  it('schedule sets a timer that timers lists and cancel-timer takes off', async () => {
    const tkey = `${key}-timer`;
    const before = Date.now();
    const s = await json<ScheduleResult>([...args(), 'schedule', 'counter', tkey, 'add', '5', '--delay', '60000', '--id', 'later']);
    expect(s).toMatchObject({ scheduled: 'add', type: 'counter', key: tkey, id: 'later' });
    expect(Date.parse(s.at)).toBeGreaterThanOrEqual(before + 60_000);
    const listed = await waitFor(
      async () => {
        const l = await json<TimerList>([...args(), 'timers', 'counter', tkey]);
        return l.timers.length > 0 ? l : undefined;
      },
      { timeoutMs: 10_000, message: 'the timer to be stored' },
    );
    expect(listed.timers).toEqual([{ id: 'later', at: s.at, op: 'add', target: { type: 'counter', key: tkey }, input: 5 }]);
    const text = await jetactor([...args(), 'timers', 'counter', tkey]);
    expect(text.stdout).toMatch(/^ID\s+AT\s+OP\s+TARGET\s+INPUT\s+REPEAT$/m);
    expect(text.stdout).toMatch(new RegExp(`^later\\s+${s.at.replace(/\./g, '\\.')}\\s+add\\s+-\\s+5\\s+-$`, 'm'));

    const cancelled = await json<CancelTimerOutcome>([...args(), 'cancel-timer', 'counter', tkey, 'later', '--wait']);
    expect(cancelled.result).toEqual({ cancelled: true, id: 'later' });
    expect((await json<TimerList>([...args(), 'timers', 'counter', tkey])).timers).toEqual([]);
    const again = await jetactor([...args(), 'cancel-timer', 'counter', tkey, 'later', '--wait']);
    expect(again.stdout).toContain(`counter/${tkey} timer later: no such timer`);
    const sent = await jetactor([...args(), 'cancel-timer', 'counter', tkey, 'later']);
    expect(sent.stdout).toMatch(new RegExp(`^cancel of timer later sent to counter/${tkey} \\(seq \\d+\\)$`, 'm'));
  });

  it('a scheduled operation runs at its time', async () => {
    const fkey = `${key}-fires`;
    const text = await jetactor([...args(), 'schedule', 'counter', fkey, 'add', '7', '--delay', '200']);
    expect(text.stdout).toMatch(new RegExp(`^scheduled add for counter/${fkey} at \\S+Z \\(timer r\\S+, seq \\d+\\)$`, 'm'));
    await waitFor(async () => (await json<{ state: unknown }>([...args(), 'get', 'counter', fkey])).state === 7, { timeoutMs: 10_000, message: 'the timer to fire' });
  });

  it('schedule needs a time, and a bad one is INVALID_TIMER', async () => {
    const none = await jetactor([...args(), 'schedule', 'counter', key, 'add', '1']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('jetactor: USAGE: give --delay');
    const badCron = await jetactor([...args(), 'schedule', 'counter', key, 'add', '1', '--cron', 'nope']);
    expect(badCron.code).toBe(1);
    expect(badCron.stderr).toMatch(/^jetactor: INVALID_TIMER: /);
    const badId = await jetactor([...args(), 'cancel-timer', 'counter', key, 'bad.id']);
    expect(badId.stderr).toMatch(/^jetactor: INVALID_TIMER: /);
  });

  it('status shows the worker owning every partition', async () => {
    const status = await json<ClusterStatus>([...args(), 'status']);
    expect(status.members.map((m) => m.id)).toEqual([worker.id]);
    expect(status.members[0]?.partitions).toEqual([0, 1, 2, 3]);
    expect(status.partitions.map((p) => p.owner)).toEqual([worker.id, worker.id, worker.id, worker.id]);
    const text = await jetactor([...args(), 'status']);
    expect(text.stdout).toMatch(/^WORKER\s+PARTITIONS\s+LAG$/m);
    expect(text.stdout).toContain(`${worker.id}  0,1,2,3`);
  });

  it('services lists the service, and refuses to remove it while its worker runs', async () => {
    const list = await json<ClusterStatus['services']>([...args(), 'services']);
    expect(list.map((x) => ({ types: x.types, live: x.live, members: x.members }))).toEqual([{ types: { counter: 1 }, live: true, members: [worker.id] }]);
    const text = await jetactor([...args(), 'services']);
    expect(text.stdout).toMatch(new RegExp(`^${list[0]?.id}\\s+counter@1\\s+yes\\s+${worker.id}\\s+4/4$`, 'm'));
    const rm = await jetactor([...args(), 'services', 'rm', list[0]?.id ?? '']);
    expect({ code: rm.code, stderr: rm.stderr }).toMatchObject({ code: 1, stderr: expect.stringMatching(/^jetactor: SERVICE_LIVE: /) as unknown });
    const unknown = await jetactor([...args(), 'services', 'rm', 'nosuch']);
    expect(unknown.stderr).toMatch(/^jetactor: (UNKNOWN_SERVICE|NOT_FOUND): /);
  });

  it('dlq lists a failed operation with its reason', async () => {
    const dkey = `${key}-poison`;
    // A poison operation the client would refuse, published raw with the plain NATS client.
    nc.publish(`actors.counter.${dkey}.add`, '"not a number"');
    const page = await waitFor(
      async () => {
        const p = await json<{ items: DeadLetter[]; nextCursor: number | null }>([...args(), 'dlq', '--limit', '1000']);
        return p.items.some((d) => d.key === dkey) ? p : undefined;
      },
      { timeoutMs: 10_000, message: 'the dead letter to be listed' },
    );
    const letter = page.items.find((d) => d.key === dkey);
    expect(letter).toMatchObject({ type: 'counter', op: 'add', code: 'INVALID_INPUT', payload: '"not a number"' });
    const text = await jetactor([...args(), 'dlq', 'list', '--limit', '1000']);
    expect(text.stdout).toMatch(new RegExp(`counter/${dkey}\\s+add\\s+INVALID_INPUT`));
  });
});

describe('watch under npx', () => {
  it('stops when npx gets SIGTERM (npx forwards it to its `sh -c`, which dies of it and would leave the watch running)', async () => {
    const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
    const npx = spawnProcess('npx', ['--offline', 'jetactor', 'watch', 'counter', 'npx-watch'], {
      env: { NATS_URL: server.url, npm_config_update_notifier: 'false', npm_lifecycle_event: undefined },
      cwd: repoRoot,
      name: 'npx-watch',
    });
    await npx.waitForLine(/watching counter\/npx-watch/, 20_000);
    const shells = childPids(npx.pid as number);
    const watchers = shells.flatMap(childPids);
    expect(watchers).toHaveLength(1);
    const watcher = watchers[0] as number;
    expect(readFileSync(`/proc/${watcher}/cmdline`, 'utf8')).toContain('jetactor');

    npx.kill('SIGTERM');
    await waitFor(() => !processRuns(watcher), { timeoutMs: 10_000, intervalMs: 50, message: `the watch (pid ${watcher}) to stop after SIGTERM to npx` });
    await npx.exited;
  });
});
