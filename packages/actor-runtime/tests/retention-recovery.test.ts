/**
 * The stream keeps what is not applied, whatever its age; a full stream refuses new operations
 * instead of dropping old ones; a recreated control bucket, stream or a wiped server is
 * recovered from without a restart. Real nats-server processes throughout.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RetentionLoop } from '../src/ownership/retention.js';
import {
  controlKeys,
  createActorClient,
  createWorker,
  defaultTopology,
  partitionOf,
  provisionTopology,
  type ActorClient,
  type ActorNames,
  type Worker,
} from '../src/internal.js';
import { encodeJson } from '../src/store/records.js';
import { testCounter } from './support/test-counter.js';
import { namesFor } from './support/names.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});


/** A key of `type` that lands in `partition`. */
function keyIn(partition: number, partitions: number, i: number): string {
  for (let n = 0; ; n++) {
    const k = `p${partition}-${i}-${n}`;
    if (partitionOf('counter', k, partitions) === partition) return k;
  }
}

async function startWorker(names: ActorNames, extra: Partial<Parameters<typeof createWorker>[0]> = {}): Promise<{ worker: Worker; client: ActorClient }> {
  const worker = createWorker({ nc, actors: [testCounter], names, partitions: 2, leaseTtlMs: 1500, heartbeatMs: 300, logger: log, ...extra });
  await worker.start();
  const client = createActorClient(nc, { actors: [testCounter], names, timeoutMs: 3000 });
  cleanups.push(async () => {
    client.close();
    await worker.stop();
  });
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'worker to take its partitions' });
  return { worker, client };
}

describe('retention by what is applied', () => {
  it('purges only below the first unapplied operation of every partition, however old the rest', async () => {
    const names = namesFor('ret1');
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: 2 }));
    const seqs: number[][] = [[], []];
    for (let i = 0; i < 10; i++) {
      for (const p of [0, 1]) seqs[p]!.push((await js.publish(`${names.subjectPrefix}.counter.${keyIn(p, 2, i)}.add`, '1')).seq);
    }
    // Partition 0 applied everything, partition 1 only its first five.
    await topo.control.put(controlKeys.checkpoint(0), encodeJson({ seq: seqs[0]![9], epoch: 1, stream: topo.streamCreated, updatedAt: '' }));
    await topo.control.put(controlKeys.checkpoint(1), encodeJson({ seq: seqs[1]![4], epoch: 1, stream: topo.streamCreated, updatedAt: '' }));
    const loop = new RetentionLoop(() => topo, names, 0, log);
    await loop.tick();
    const info = await jsm.streams.info(names.stream);
    expect(info.state.first_seq).toBe(seqs[1]![5]);
    expect(info.state.messages).toBe(info.state.last_seq - seqs[1]![5]! + 1);
    // Nothing moves while partition 1 stays behind.
    await loop.tick();
    expect((await jsm.streams.info(names.stream)).state.first_seq).toBe(seqs[1]![5]);
  });

  it('a running worker purges what it applied once it is older than retainMs, and states stay right', async () => {
    const names = namesFor('ret2');
    const { client } = await startWorker(names, { retentionIntervalMs: 50, topology: { duplicateWindowMs: 500, retainMs: 500 } });
    let last = 0;
    for (let i = 0; i < 50; i++) last = (await client.signal('counter', `k${i % 5}`, 'add', 1)).seq;
    await client.read('counter', 'k4', { minSeq: last });
    await waitFor(async () => (await jsm.streams.info(names.stream)).state.messages === 0, { timeoutMs: 15_000, message: 'applied operations to be purged' });
    for (let k = 0; k < 5; k++) expect((await client.read('counter', `k${k}`)).state).toBe(10);
  });

  it('refuses new operations when the byte bound is reached, keeping every stored one, and accepts again once applied ones are purged', async () => {
    const names = namesFor('ret3');
    const topology = { maxBytes: 32 * 1024, duplicateWindowMs: 500, retainMs: 500 };
    await provisionTopology(nc, defaultTopology(names, { partitions: 2, ...topology }));
    const payload = JSON.stringify({ value: 1, pad: 'x'.repeat(900) });
    let acked = 0;
    let refused: unknown;
    for (let i = 0; i < 200 && !refused; i++) {
      try {
        await js.publish(`${names.subjectPrefix}.counter.full.add`, payload);
        acked++;
      } catch (err) {
        refused = err;
      }
    }
    expect(refused).toBeInstanceOf(JetStreamApiError);
    expect(String((refused as Error).message)).toMatch(/maximum bytes|resource|limit/i);
    const info = await jsm.streams.info(names.stream);
    expect(info.state.messages).toBe(acked);
    expect(info.state.first_seq).toBe(1);
    // A worker applies and purges; then the stream takes operations again.
    const { client } = await startWorker(names, { retentionIntervalMs: 50, topology });
    await waitFor(async () => (await client.read('counter', 'full')).state === acked, { timeoutMs: 15_000, message: 'the backlog to be applied' });
    await waitFor(
      async () => {
        try {
          await js.publish(`${names.subjectPrefix}.counter.full.add`, '1');
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 15_000, message: 'the stream to accept operations again' },
    );
    await waitFor(async () => (await client.read('counter', 'full')).state === acked + 1, { timeoutMs: 10_000, message: 'the new operation' });
  });

  it('reports operations removed by someone else between a checkpoint and the stream start', async () => {
    const names = namesFor('gap');
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: 1 }));
    const seqs: number[] = [];
    for (let i = 0; i < 10; i++) seqs.push((await js.publish(`${names.subjectPrefix}.counter.g.add`, '1')).seq);
    await topo.control.put(controlKeys.checkpoint(0), encodeJson({ seq: seqs[1], epoch: 1, stream: topo.streamCreated, updatedAt: '' }));
    await jsm.streams.purge(names.stream, { seq: seqs[7]! }); // an operator's purge, not jetactor's
    const gaps: Array<{ partition: number; checkpoint: number; firstSeq: number }> = [];
    // The default service reads the checkpoint keys written above (a store from before services).
    const { client } = await startWorker(names, { partitions: 1, service: 'default', hooks: { onGap: (g) => gaps.push(g) } });
    expect(gaps).toEqual([{ partition: 0, checkpoint: seqs[1], firstSeq: seqs[7] }]);
    await waitFor(async () => (await client.read('counter', 'g')).state === 3, { timeoutMs: 10_000, message: 'what is left to be applied' });
  });
});

describe('recovery from a recreated topology', () => {
  it('recovers when the control bucket is deleted, then when the stream is deleted, without applying anything twice', async () => {
    const names = namesFor('rec');
    const { worker, client } = await startWorker(names);
    await client.call('counter', 'r', 'add', 3);
    expect((await client.call('counter', 'r', 'add', 3)).result).toBe(6);

    await jsm.streams.delete(`KV_${names.controlBucket}`);
    const afterControl = await waitFor(
      async () => {
        try {
          return (await client.call('counter', 'r', 'add', 1, { timeoutMs: 1000 })).result as number;
        } catch {
          return 0;
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'a call to succeed after the control bucket was deleted' },
    );
    await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'the worker to own its partitions again' });
    // Calls that timed out may still have been applied; each applied exactly once from here.
    const stateNow = (await client.read('counter', 'r')).state as number;
    expect(stateNow).toBe(afterControl);
    expect(afterControl).toBeGreaterThanOrEqual(7);

    await jsm.streams.delete(names.stream);
    const afterStream = await waitFor(
      async () => {
        try {
          return (await client.call('counter', 'r', 'add', 100, { timeoutMs: 1000 })).result as number;
        } catch {
          return 0;
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'a call to succeed after the stream was deleted' },
    );
    expect(afterStream).toBeGreaterThanOrEqual(afterControl + 100);
    expect((afterStream - afterControl) % 100).toBe(0);
    expect((await client.read('counter', 'r')).state).toBe(afterStream);
  });

  it('recovers when the server is wiped and restarted at the same address while the worker runs', async () => {
    const names = namesFor('wipe');
    const { worker, client } = await startWorker(names);
    expect((await client.call('counter', 'w', 'add', 5)).result).toBe(5);
    await server.kill('SIGKILL');
    await rm(join(server.storeDir), { recursive: true, force: true });
    await server.restart();
    const first = await waitFor(
      async () => {
        try {
          return (await client.call('counter', 'w', 'add', 1, { timeoutMs: 1000 })).result as number;
        } catch {
          return 0;
        }
      },
      { timeoutMs: 40_000, intervalMs: 250, message: 'a call to succeed on the wiped server' },
    );
    // Everything was wiped: the state starts over.
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThan(5);
    await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'the worker to own its partitions on the new server' });
    expect((await client.read('counter', 'w')).state).toBe(first);
  });
});
