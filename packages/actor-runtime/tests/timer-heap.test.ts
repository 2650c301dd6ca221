/**
 * The timer heap of a partition holds one entry per pending timer and fires each due timer
 * once, whatever else the actor's timers do (issue 18: a key with 999 far timers and one every
 * 100 ms grew the heap by ~10,000 entries a second; 20 one-shots beside a 100 ms timer were
 * published as 3,072 `$fire` messages), and loading it leaves no consumer on the server.
 * Real nats-server and worker.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActorClient, createWorker, defineActor, Type, type ActorClient, type Worker } from '../src/internal.js';
import { namesFor } from './support/names.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

type Clock = { ticks: number; shots: number };
const clock = defineActor({
  type: 'clock',
  initialState: (): Clock => ({ ticks: 0, shots: 0 }),
  operations: {
    /** `far` timers in 2099 (f0, f1, …) and `tick` every 100 ms. */
    far: {
      input: Type.Integer({ minimum: 1, maximum: 999 }),
      handler: (s, far) => ({
        state: s,
        result: null,
        schedule: [...Array.from({ length: far }, (_, i) => ({ id: `f${i}`, op: 'tick', at: '2099-01-01T00:00:00Z' })), { id: 'tick', op: 'tick', every: 100 }],
      }),
    },
    /** `count` one-shots 300 ms from now (s0, s1, …) and `tick` every 100 ms. */
    burst: {
      input: Type.Integer({ minimum: 1, maximum: 100 }),
      handler: (s, count) => ({
        state: s,
        result: null,
        schedule: [...Array.from({ length: count }, (_, i) => ({ id: `s${i}`, op: 'shot', afterMs: 300 })), { id: 'tick', op: 'tick', every: 100 }],
      }),
    },
    /** Cancels `tick` and the far timers f0 … f<n-1>. */
    clear: { input: Type.Integer({ minimum: 0, maximum: 999 }), handler: (s, n) => ({ state: s, result: null, cancel: ['tick', ...Array.from({ length: n }, (_, i) => `f${i}`)] }) },
    tick: (s) => ({ state: { ...s, ticks: s.ticks + 1 }, result: null }),
    shot: (s) => ({ state: { ...s, shots: s.shots + 1 }, result: null }),
  },
});

let server: NatsServer;
let nc: NatsConnection;
let worker: Worker;
let client: ActorClient;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  worker = createWorker({ nc, actors: [clock], partitions: 2, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'worker did not take its partitions' });
  client = createActorClient(nc, { actors: [clock] });
});

afterAll(async () => {
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

async function stateOf(key: string): Promise<Clock> {
  return (await client.read('clock', key)).state as Clock;
}

/** Entries in the worker's timer heaps. */
function heapEntries(): number {
  return worker.partitionStatus().reduce((n, s) => n + s.timers, 0);
}

describe('the timer heap', () => {
  it('holds one entry per pending timer while one of 1,000 recurs every 100 ms, and none after the cancel', async () => {
    await client.call('clock', 'h1', 'far', 999);
    let most = 0;
    await waitFor(
      async () => {
        most = Math.max(most, heapEntries());
        return (await stateOf('h1')).ticks >= 20;
      },
      { timeoutMs: 20_000, intervalMs: 20, message: '20 ticks' },
    );
    most = Math.max(most, heapEntries());
    // Before: every change of the key's timers pushed all 1,000 again (~20,000 after 20 ticks).
    expect(most).toBe(1000);
    await client.call('clock', 'h1', 'clear', 999);
    await waitFor(() => heapEntries() === 0, { timeoutMs: 5000, message: 'an empty heap after the cancel' });
  });

  it('fires 20 one-shots beside a 100 ms timer once each', async () => {
    const fired = new Map<string, number>();
    const sub = nc.subscribe('actors.clock.h2.$fire');
    const counting = (async () => {
      for await (const m of sub) {
        const { id } = m.json<{ id: string }>();
        fired.set(id, (fired.get(id) ?? 0) + 1);
      }
    })();
    await client.call('clock', 'h2', 'burst', 20);
    await waitFor(async () => (await stateOf('h2')).shots === 20, { timeoutMs: 10_000, message: '20 shots' });
    // Ten more ticks, each a change of the key's timers: before, each one fed every fired
    // one-shot to the heap again, and the owner published it again.
    const ticks = (await stateOf('h2')).ticks;
    await waitFor(async () => (await stateOf('h2')).ticks >= ticks + 10, { timeoutMs: 10_000, message: '10 more ticks' });
    await client.call('clock', 'h2', 'clear', 0);
    sub.unsubscribe();
    await counting;
    const shots = [...fired].filter(([id]) => id.startsWith('s'));
    expect(shots).toHaveLength(20);
    expect(shots.every(([, n]) => n === 1)).toBe(true);
    expect((await stateOf('h2')).shots).toBe(20);
  });
});

describe('loading the timer index', () => {
  it('leaves no consumer on the timers stream after a worker start or a takeover', async () => {
    const names = namesFor('tload');
    const jsm = await jetstreamManager(nc);
    const consumers = async (): Promise<number> => (await jsm.streams.info(`KV_${names.timerBucket}`)).state.consumer_count;
    const start = async (): Promise<Worker> => {
      const w = createWorker({ nc, actors: [clock], names, partitions: 4, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
      await w.start();
      await waitFor(() => w.settled(), { timeoutMs: 10_000, message: 'worker did not take its partitions' });
      return w;
    };
    const own = createActorClient(nc, { actors: [clock], names });
    let first: Worker | undefined = await start();
    let second: Worker | undefined;
    try {
      // Each partition's load made an ordered consumer the server kept for 5 minutes: 4 here.
      await expect.poll(consumers, { timeout: 3000 }).toBe(0);
      await own.call('clock', 'l1', 'far', 3);
      await own.call('clock', 'l1', 'clear', 0);
      await first.stop();
      first = undefined;
      // The next owner loads the index (3 far timers) and keeps no consumer either.
      second = await start();
      expect(second.partitionStatus().reduce((n, s) => n + s.timers, 0)).toBe(3);
      await expect.poll(consumers, { timeout: 3000 }).toBe(0);
    } finally {
      own.close();
      await first?.stop();
      await second?.stop();
    }
  });
});
