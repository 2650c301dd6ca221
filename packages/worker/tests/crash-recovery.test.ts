import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { partitionOf, type ActorClient } from '@jetactor/actor-runtime';
import { prng, publishOps, randomOps, replayCounters, spawnWorker, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { countByOwner, owners } from './support/workers.js';

const PARTITIONS = 16;
let stack: Stack;
let server: NatsServer;
let js: JetStreamClient;
let jsm: JetStreamManager;
let client: ActorClient;
let workers: ManagedProcess[];

beforeAll(async () => {
  stack = await startStack();
  ({ server, js, jsm, client, workers } = stack);
});

afterAll(async () => {
  await stack?.stop();
});
/** Waits until every partition's checkpoint covers the last operation published to it. */
async function waitForCheckpoints(lastSeq: Map<string, number>, timeoutMs = 60_000): Promise<void> {
  const need = new Map<number, number>();
  for (const [key, seq] of lastSeq) {
    const p = partitionOf('counter', key, PARTITIONS);
    need.set(p, Math.max(need.get(p) ?? 0, seq));
  }
  await waitFor(
    async () => (await client.status()).partitions.every((p) => p.checkpoint >= (need.get(p.partition) ?? 0)),
    { timeoutMs, intervalMs: 100, message: 'checkpoints to cover every published operation' },
  );
}

/** Every key's stored state equals the fold of its operations in stream order. */
async function expectStatesMatchReplay(keys: Iterable<string>): Promise<number> {
  const expected = await replayCounters(js, jsm, 'ACTORS');
  let checked = 0;
  for (const key of keys) {
    const snap = await client.read('counter', key);
    expect({ key, state: snap.state }).toEqual({ key, state: expected.get(key) ?? 0 });
    checked++;
  }
  return checked;
}

describe('worker processes under crashes', () => {
  it('SIGKILL mid-run and restart: nothing lost, nothing applied twice; the standby takes over', async () => {
    const a = spawnWorker({ id: 'w-a', natsUrl: server.url, partitions: PARTITIONS });
    workers.push(a);
    await waitFor(async () => countByOwner(await owners(client)).get('w-a') === PARTITIONS, {
      timeoutMs: 20_000,
      message: 'w-a to own every partition',
    });
    const b = spawnWorker({ id: 'w-b', natsUrl: server.url, partitions: PARTITIONS });
    workers.push(b);
    await waitFor(async () => countByOwner(await owners(client)).get('w-b') === PARTITIONS / 2, {
      timeoutMs: 20_000,
      message: 'w-b to take its share',
    });

    const ops = randomOps(10_000, 100, prng(7), 'crash-');
    const lastSeq = new Map<string, number>();
    const publishing = publishOps(js, 'counter', ops, 100, 'actors', lastSeq);
    await waitFor(() => lastSeq.size >= 100 && [...lastSeq.values()].some((s) => s > 3000), {
      timeoutMs: 30_000,
      message: 'publishing to be under way',
    });
    a.kill('SIGKILL');
    await a.exited;
    // The standby takes every partition once w-a's leases expire.
    await waitFor(async () => countByOwner(await owners(client)).get('w-b') === PARTITIONS, {
      timeoutMs: 20_000,
      message: 'w-b to take over w-a partitions',
    });
    await publishing;
    // The killed worker comes back and takes its share again.
    const a2 = spawnWorker({ id: 'w-a2', natsUrl: server.url, partitions: PARTITIONS });
    workers.push(a2);
    await waitForCheckpoints(lastSeq);
    expect(await expectStatesMatchReplay(lastSeq.keys())).toBe(100);
    expect(a.lines.join('\n')).toMatch(/"acquired":\[\d.*"msg":"ownership changed"/);
  });
});
