import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { prng, publishOps, randomOps, replayCounters, startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  OperationFailedError,
  createActorClient,
  createWorker,
  partitionOf,
  provisionTopology,
  defaultTopology,
  defaultNames,
  type ActorClient,
  type Worker,
} from '../src/internal.js';
import { testCounter } from './support/test-counter.js';

const PARTITIONS = 8;
let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let worker: Worker;
let client: ActorClient;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  worker = createWorker({ nc, actors: [testCounter], partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'worker did not take its partitions' });
  client = createActorClient(nc, { actors: [testCounter] });
});

afterAll(async () => {
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

/** Waits until every partition's checkpoint covers the last operation published to it. */
async function waitForCheckpoints(lastSeq: Map<string, number>): Promise<void> {
  const need = new Map<number, number>();
  for (const [key, seq] of lastSeq) {
    const p = partitionOf('counter', key, PARTITIONS);
    need.set(p, Math.max(need.get(p) ?? 0, seq));
  }
  await waitFor(
    async () => {
      const status = await client.status();
      return status.partitions.every((p) => p.checkpoint >= (need.get(p.partition) ?? 0));
    },
    { timeoutMs: 30_000, intervalMs: 50, message: 'checkpoints to cover every published operation' },
  );
}

async function stateOf(key: string): Promise<number> {
  return (await client.read('counter', key)).state as number;
}

describe('worker on a real nats-server', () => {
  it('owns every partition alone', () => {
    expect(worker.ownedPartitions()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('stores operations in the partition the client computes', async () => {
    const { seq } = await client.signal('counter', 'where-am-i', 'add', 1);
    const msg = await jsm.streams.getMessage('ACTORS', { seq });
    expect(msg?.subject).toBe(`${partitionOf('counter', 'where-am-i', PARTITIONS)}.actors.counter.where-am-i.add`);
  });

  it('applies an operation published with plain core NATS (nats pub)', async () => {
    nc.publish('actors.counter.plain.add', '7');
    nc.publish('actors.counter.plain.add', '{"value":5}');
    await waitFor(async () => (await stateOf('plain')) === 12, { timeoutMs: 5000 });
  });

  it('answers calls after commit, with results and error results', async () => {
    expect(await client.call('counter', 'calls', 'add', 4)).toMatchObject({ result: 4 });
    expect(await client.call('counter', 'calls', 'get')).toMatchObject({ result: 4 });
    const err = await client.call('counter', 'calls', 'explode').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationFailedError);
    expect((err as OperationFailedError).code).toBe('HANDLER_ERROR');
    expect(await stateOf('calls')).toBe(4);
  });

  it('read with minSeq never returns a state older than the write', async () => {
    for (let i = 1; i <= 20; i++) {
      const { seq } = await client.signal('counter', 'ryw', 'add', 1);
      const snap = await client.read('counter', 'ryw', { minSeq: seq });
      expect(snap.seq).toBeGreaterThanOrEqual(seq);
      expect(snap.state).toBe(i);
    }
  });

  it('applies a repeated idempotency key once', async () => {
    const a = await client.signal('counter', 'idem', 'add', 5, { idempotencyKey: 'req-1' });
    const b = await client.signal('counter', 'idem', 'add', 5, { idempotencyKey: 'req-1' });
    expect(b).toEqual({ seq: a.seq, duplicate: true });
    expect((await client.read('counter', 'idem', { minSeq: a.seq })).state).toBe(5);
    const c1 = await client.call('counter', 'idem', 'add', 1, { idempotencyKey: 'req-2' });
    const c2 = await client.call('counter', 'idem', 'add', 1, { idempotencyKey: 'req-2', timeoutMs: 2000 });
    expect(c1).toMatchObject({ result: 6 });
    // The retry answers what the original answered (its outcome is kept for the duplicate window).
    expect(c2).toEqual({ result: 6, seq: c1.seq, duplicate: true });
    expect((await client.read('counter', 'idem')).state).toBe(6);
  });

  it('skips poison operations without blocking the partition', async () => {
    const key = 'poison';
    nc.publish(`actors.counter.${key}.add`, 'not json');
    nc.publish(`actors.counter.${key}.add`, '"three"');
    nc.publish(`actors.counter.${key}.nosuchop`, '');
    nc.publish(`actors.counter.${key}.explode`, '');
    nc.publish(`actors.nosuchtype.${key}.add`, '1');
    nc.publish(`actors.counter.${key}.add`, '2');
    await waitFor(async () => (await stateOf(key)) === 2, { timeoutMs: 5000 });
  });

  it('keeps failed operations as dead letters with the reason, and resubmits one', async () => {
    nc.publish('actors.counter.dlq-key.add', 'oops');
    nc.publish('actors.counter.dlq-key.nosuchop', '');
    nc.publish('actors.counter.dlq-key.add', '1');
    await waitFor(async () => (await stateOf('dlq-key')) === 1, { timeoutMs: 5000 });
    const { items } = await waitFor(
      async () => {
        const page = await client.deadLetters({ limit: 100 });
        return page.items.filter((d) => d.key === 'dlq-key').length === 2 && page;
      },
      { timeoutMs: 5000, message: 'two dead letters for dlq-key' },
    );
    const mine = items.filter((d) => d.key === 'dlq-key');
    expect(mine.map((d) => [d.op, d.code, d.payload, d.subject])).toEqual([
      ['add', 'INVALID_INPUT', 'oops', 'actors.counter.dlq-key.add'],
      ['nosuchop', 'UNKNOWN_OPERATION', '', 'actors.counter.dlq-key.nosuchop'],
    ]);
    expect(mine[0]!.seq).toBeGreaterThan(0);
    expect(mine[0]!.message).toMatch(/JSON/);
    // Paging by cursor returns the rest.
    const first = await client.deadLetters({ limit: 1 });
    expect(first.items).toHaveLength(1);
    const rest = await client.deadLetters({ limit: 100, cursor: first.nextCursor! });
    expect(rest.items[0]!.dlqSeq).toBe(first.items[0]!.dlqSeq + 1);
    // Resubmitting puts the operation back in order: it fails again and is kept again.
    const re = await client.resubmit(mine[1]!.dlqSeq);
    expect(re.seq).toBeGreaterThan(mine[1]!.seq);
    await waitFor(async () => (await client.deadLetters({ limit: 1000 })).items.some((d) => d.seq === re.seq), {
      timeoutMs: 5000,
      message: 'the resubmitted operation to fail into the dead letters again',
    });
  });

  it('deletes an actor as an ordered operation', async () => {
    await client.signal('counter', 'gone', 'add', 3);
    const { seq } = await client.delete('counter', 'gone');
    const after = await client.read('counter', 'gone', { minSeq: seq });
    expect(after.exists).toBe(false);
    expect(after.state).toBe(0);
    // Once the checkpoint has passed the delete, the tombstone is not needed and goes.
    const kv = await new Kvm(js).open('actors');
    await waitFor(async () => (await kv.get('counter.gone')) === null, { timeoutMs: 5000, message: 'the tombstone of counter.gone to be removed' });
    expect((await client.list('counter', { prefix: 'gone' })).items).toEqual([]);
    await client.signal('counter', 'gone', 'add', 2);
    await waitFor(async () => (await stateOf('gone')) === 2, { timeoutMs: 5000 });
  });

  it('lists actors of a type in pages', async () => {
    for (let i = 0; i < 5; i++) await client.call('counter', `list-${i}`, 'add', i + 1);
    const p1 = await client.list('counter', { prefix: 'list-', limit: 2 });
    expect(p1.items.map((i) => i.key)).toEqual(['list-0', 'list-1']);
    const p2 = await client.list('counter', { prefix: 'list-', limit: 2, cursor: p1.nextCursor! });
    expect(p2.items.map((i) => [i.key, i.state])).toEqual([['list-2', 3], ['list-3', 4]]);
    const p3 = await client.list('counter', { prefix: 'list-', limit: 2, cursor: p2.nextCursor! });
    expect(p3.items.map((i) => i.key)).toEqual(['list-4']);
    expect(p3.nextCursor).toBeNull();
  });

  it('refuses a stream with another partition count', async () => {
    const err = await provisionTopology(nc, defaultTopology(defaultNames(), { partitions: PARTITIONS * 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('PARTITION_MISMATCH');
  });

  it('10,000 random add/reset over 100 keys end equal to the replay in stream order', async () => {
    const ops = randomOps(10_000, 100, prng(42), 'bulk-');
    const lastSeq = await publishOps(js, 'counter', ops);
    const kv = await new Kvm(js).open('actors');
    await waitForCheckpoints(lastSeq);
    const expected = await replayCounters(js, jsm, 'ACTORS');
    let checked = 0;
    for (const key of lastSeq.keys()) {
      const entry = await kv.get(`counter.${key}`);
      const actual = entry ? (entry.json<{ state: number }>().state ?? 0) : 0;
      expect({ key, state: actual }).toEqual({ key, state: expected.get(key) ?? 0 });
      checked++;
    }
    expect(checked).toBe(100);
  });

  it('replaying everything from a lost checkpoint applies nothing twice', async () => {
    const before = new Map<string, unknown>();
    for (const item of (await client.list('counter', { prefix: 'bulk-', limit: 1000 })).items) before.set(item.key, item.state);
    expect(before.size).toBe(100);
    await worker.stop();
    // Forget every checkpoint: the next owner reads the whole stream again.
    const control = await new Kvm(js).open('actors_ctl');
    for (let p = 0; p < PARTITIONS; p++) await control.delete(`checkpoints.${p}`);
    const last = (await jsm.streams.info('ACTORS')).state.last_seq;
    worker = createWorker({ nc, actors: [testCounter], partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
    await worker.start();
    await waitFor(async () => {
      const status = await client.status();
      // Every partition re-read up to its last message (partitions without one stay at 0).
      const done = worker.settled() && worker.partitionStatus().every((p) => p.lag === 0);
      return done && status.partitions.some((p) => p.checkpoint === last);
    }, { timeoutMs: 30_000, message: 'the replay to finish' });
    for (const [key, state] of before) expect({ key, state: await stateOf(key) }).toEqual({ key, state });
  });
});
