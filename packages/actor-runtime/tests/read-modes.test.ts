import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { prng, publishOps, randomOps, replayCounters, startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActorClient, createWorker, partitionOf, type Worker } from '../src/internal.js';
import { testCounter } from './support/test-counter.js';

const PARTITIONS = 8;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
const workers: Worker[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await nc?.close();
  await server?.stop();
});

function start(id: string, readMode: 'shared' | 'partition'): Worker {
  const w = createWorker({ nc, id, actors: [testCounter], partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 300, logger: log, readMode });
  workers.push(w);
  return w;
}

describe('read modes', () => {
  it('shared and per-partition readers hand partitions to each other with nothing lost or applied twice', async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const client = createActorClient(nc, { actors: [testCounter] });
    const a = start('shared-a', 'shared');
    await a.start();
    await waitFor(() => a.settled() && a.ownedPartitions().length === PARTITIONS, { timeoutMs: 10_000, message: 'a to own every partition' });
    const all = new Map<string, number>();
    const publish = async (n: number, seed: number) => {
      for (const [k, seq] of await publishOps(js, 'counter', randomOps(n, 60, prng(seed), 'rm-'))) all.set(k, Math.max(all.get(k) ?? 0, seq));
    };
    await publish(3000, 1);
    // A per-partition reader joins, takes half the partitions from the shared one mid-stream.
    const b = start('partition-b', 'partition');
    await b.start();
    await publish(3000, 2);
    await waitFor(() => a.ownedPartitions().length === PARTITIONS / 2 && b.ownedPartitions().length === PARTITIONS / 2, { timeoutMs: 20_000, message: 'an even split' });
    await publish(3000, 3);
    // The shared one leaves: the per-partition one takes everything.
    await a.stop();
    await publish(2000, 4);
    const need = new Map<number, number>();
    for (const [k, seq] of all) need.set(partitionOf('counter', k, PARTITIONS), Math.max(need.get(partitionOf('counter', k, PARTITIONS)) ?? 0, seq));
    await waitFor(async () => (await client.status()).partitions.every((p) => p.checkpoint >= (need.get(p.partition) ?? 0)), {
      timeoutMs: 30_000,
      message: 'every checkpoint at its last operation',
    });
    const expected = await replayCounters(js, jsm, 'ACTORS');
    const kv = await new Kvm(js).open('actors');
    for (const k of all.keys()) {
      const e = await kv.get(`counter.${k}`);
      expect({ k, state: e ? e.json<{ state: number }>().state : 0 }).toEqual({ k, state: expected.get(k) ?? 0 });
    }
    expect(all.size).toBe(60);
    client.close();
  });
});
