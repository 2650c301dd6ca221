/**
 * A partition whose commits keep failing restarts with a growing backoff, leaves no server
 * consumers behind, provisions nothing again, and costs the other partitions nothing.
 * Real nats-server process; the failure is a record write the server refuses: the state
 * bucket is switched under a running worker to refuse a second message on a key
 * (discard_new_per_subject), so every update fails while new keys are still created.
 */
import { DiscardPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActorClient, createWorker, defaultTopology, partitionOf, provisionTopology } from '../src/internal.js';
import { restartBackoff } from '../src/ownership/partition-lifecycle.js';
import { PartitionProcessor } from '../src/processing/partition-processor.js';
import { RecordCache } from '../src/processing/record-cache.js';
import { hostile } from './support/hostile-actors.js';
import { namesFor } from './support/names.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

function keyIn(partition: number, partitions: number, tag: string): string {
  for (let n = 0; ; n++) if (partitionOf('hostile', `${tag}${n}`, partitions) === partition) return `${tag}${n}`;
}

describe('restart backoff', () => {
  it('doubles up to a cap, with jitter in its upper half', () => {
    expect([1, 2, 3, 4].map((f) => restartBackoff(f, 1))).toEqual([200, 400, 800, 1600]);
    expect(restartBackoff(3, 0)).toBe(400);
    expect(restartBackoff(50, 1)).toBe(30_000);
  });
});

describe('a partition whose commits fail', () => {
  it('backs off, leaks no consumer, provisions nothing again, and the healthy partition keeps serving', async () => {
    const names = namesFor('sick');
    const acquired: number[] = [];
    const worker = createWorker({
      nc,
      actors: [hostile],
      names,
      partitions: 2,
      leaseTtlMs: 3000,
      heartbeatMs: 300,
      logger: log,
      hooks: { onAcquire: (a) => (a.partition === 0 ? acquired.push(performance.now()) : undefined) },
    });
    const client = createActorClient(nc, { actors: [hostile], names, timeoutMs: 5000 });
    try {
      await worker.start();
      await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'the worker to take its partitions' });
      const sick = keyIn(0, 2, 's');
      await client.call('hostile', sick, 'inc');

      // Updates of existing records are refused from now on; partition 0 gets one.
      const kvStream = `KV_${names.stateBucket}`;
      const cfg = (await jsm.streams.info(kvStream)).config;
      await jsm.streams.update(kvStream, { ...cfg, discard: DiscardPolicy.New, discard_new_per_subject: true });
      const provisioning: string[] = [];
      const spy = nc.subscribe('$JS.API.STREAM.CREATE.>', {
        callback: (_e, m) => {
          provisioning.push(m.subject);
        },
      });
      await nc.flush();
      const firstAcquire = acquired.length;
      await client.signal('hostile', sick, 'inc');

      // Meanwhile the other partition answers at once (on new keys: those it can still write).
      const latencies: number[] = [];
      await waitFor(
        async () => {
          const t0 = performance.now();
          expect((await client.call('hostile', keyIn(1, 2, `w${latencies.length}-`), 'inc')).result).toBe(1);
          latencies.push(performance.now() - t0);
          return acquired.length >= firstAcquire + 4;
        },
        { timeoutMs: 20_000, intervalMs: 50, message: 'four restarts of the failing partition' },
      );
      const gaps = acquired.slice(firstAcquire).map((t, i, a) => (i === 0 ? 0 : t - (a[i - 1] as number))).slice(1);
      // Waits of 200-400, 400-800, 800-1600 ms between them (plus each start): they grow.
      expect(gaps).toHaveLength(3);
      expect(gaps[2]).toBeGreaterThan(1.5 * (gaps[0] as number));
      expect(gaps[2]).toBeGreaterThan(700);
      // One reader at a time: the ordered consumers of failed runs were deleted.
      const consumers = await jsm.consumers.list(names.stream).next();
      expect(consumers.length).toBeLessThanOrEqual(2);
      // A failed commit provisions nothing again (about ten API calls each time before).
      expect(provisioning).toEqual([]);
      expect(Math.max(...latencies)).toBeLessThan(2000);
      spy.unsubscribe();

      // Healed: the partition applies the operation and serves again.
      await jsm.streams.update(kvStream, { ...cfg, discard_new_per_subject: false });
      await waitFor(async () => ((await client.read('hostile', sick)).state as { n: number }).n === 2, {
        timeoutMs: 40_000,
        message: 'the failing partition to recover once the write is accepted',
      });
      expect((await client.call('hostile', sick, 'inc')).result).toBe(3);
      // Recovered, it gave up its own consumer for the shared reader: one consumer in all.
      await waitFor(async () => (await jsm.consumers.list(names.stream).next()).length === 1, { timeoutMs: 15_000, message: 'one shared reader' });
      // Each restart loaded the partition's timer index: none of those loads left its consumer.
      await expect.poll(async () => (await jsm.streams.info(`KV_${names.timerBucket}`)).state.consumer_count, { timeout: 3000 }).toBe(0);
    } finally {
      client.close();
      await worker.stop();
    }
  }, 90_000);
});

describe('partitions that read alone after a failure', () => {
  it('rejoin the shared reader once caught up, busy or quiet', async () => {
    const names = namesFor('rejoin');
    const own = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    const worker = createWorker({ nc: own, actors: [hostile], names, partitions: 2, leaseTtlMs: 3000, heartbeatMs: 300, logger: log });
    const client = createActorClient(nc, { actors: [hostile], names, timeoutMs: 5000 });
    try {
      await worker.start();
      await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'the worker to take its partitions' });
      const busy = keyIn(0, 2, 'b');
      await client.call('hostile', busy, 'inc');
      await waitFor(async () => (await jsm.consumers.list(names.stream).next()).length === 1, { timeoutMs: 5000, message: 'one shared reader' });
      // The server restarts under the worker: the shared read fails and both partitions restart
      // reading alone.
      await server.restart();
      await waitFor(async () => (await client.call('hostile', busy, 'inc').catch(() => null))?.result === 2, { timeoutMs: 30_000, intervalMs: 200, message: 'the busy partition to answer again' });
      // Partition 1 had nothing to read: it rejoins as soon as it knows, as the busy one does.
      await waitFor(async () => (await jsm.consumers.list(names.stream).next()).length === 1, { timeoutMs: 15_000, message: 'one shared reader again' });
    } finally {
      client.close();
      await worker.stop();
      await own.close();
    }
  }, 60_000);
});

describe('a partition reading alone after failures', () => {
  it('counts as getting better only when it commits, not when it rejoins the shared reader', async () => {
    const names = namesFor('progress');
    const topology = await provisionTopology(nc, defaultTopology(names, { partitions: 2 }));
    let progress = 0;
    const proc = new PartitionProcessor({
      partition: 0,
      epoch: 1,
      nc,
      topology,
      names,
      actors: new Map([[hostile.type, hostile]]),
      cache: new RecordCache(100),
      log,
      maxBatch: 100,
      maxStateBytes: 64 * 1024,
      sharedRead: true,
      readAloneUntilProgress: true,
      onProgress: () => progress++,
      leaseValid: () => true,
    });
    await proc.start();
    try {
      // Nothing to read: it catches up at once and rejoins the shared reader (its own consumer goes).
      const joined = () => (proc as unknown as { reader: unknown }).reader !== null;
      await waitFor(joined, { timeoutMs: 10_000, message: 'the partition to rejoin the shared reader' });
      // Before: rejoining reset the failure count (onProgress) although nothing was committed.
      expect(progress).toBe(0);
      const key = keyIn(0, 2, 'p');
      await jetstream(nc).publish(`${names.subjectPrefix}.hostile.${key}.inc`, '');
      await waitFor(() => proc.checkpoint > 0, { timeoutMs: 10_000, message: 'a commit' });
      expect(progress).toBe(1);
    } finally {
      await proc.stop();
    }
  }, 30_000);
});
