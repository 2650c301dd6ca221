/**
 * A rolling deploy and a rollback, with in-process workers on a real nats-server: three workers
 * at version 1 replaced one by one by version 2 (a new operation, a new state shape and its
 * migration) under steady load, clients using the new operation as soon as the first version-2
 * worker is up; then every version-2 worker stopped and a version-1 worker started (it must not
 * overwrite version-2 records: the work waits), and a version-2 worker back (the work resumes).
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActorClient, createWorker, defineActor, type ActorClient, type Worker } from '../src/internal.js';
import { desiredLanePartitions } from '../src/ownership/reconcile.js';

const v1 = defineActor({
  type: 'tab',
  initialState: () => ({ n: 0 }),
  operations: {
    add: (s: { n: number }, x: unknown) => ({ state: { n: s.n + Number(x) }, result: s.n + Number(x) }),
  },
});

const v2 = defineActor({
  type: 'tab',
  version: 2,
  initialState: () => ({ total: 0, marks: 0 }),
  operations: {
    add: (s: { total: number; marks: number }, x: unknown) => ({ state: { ...s, total: s.total + Number(x) }, result: s.total + Number(x) }),
    mark: (s: { total: number; marks: number }) => ({ state: { ...s, marks: s.marks + 1 }, result: s.marks + 1 }),
  },
  migrate: { 1: (s: { n: number }) => ({ total: s.n, marks: 0 }) },
});

const PARTITIONS = 8;
const KEYS = Array.from({ length: 16 }, (_, i) => `t${i}`);
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
let client: ActorClient;
const running = new Map<string, Worker>();

async function start(id: string, def: typeof v1 | typeof v2): Promise<Worker> {
  const w = createWorker({ nc, actors: [def], id, partitions: PARTITIONS, leaseTtlMs: 1500, heartbeatMs: 250, logger: log });
  await w.start();
  running.set(id, w);
  return w;
}

async function stop(id: string): Promise<void> {
  await running.get(id)?.stop();
  running.delete(id);
}

const settled = () => waitFor(() => [...running.values()].every((w) => w.settled()), { timeoutMs: 20_000, message: 'every worker to settle' });

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  client = createActorClient(nc, { actors: [v2], timeoutMs: 10_000 });
});

afterAll(async () => {
  for (const id of [...running.keys()]) await stop(id);
  client?.close();
  await nc?.close();
  await server?.stop();
});

describe('generations within a service (pure)', () => {
  const m = (id: string, version: number, extra: { waiting?: number[]; owned?: number[] } = {}) => ({ id, lane: 'a', types: { tab: version }, ...extra });
  it('hands a partition an older worker waits at to the newest generation, and keeps it there', () => {
    const lane = [m('old', 1, { waiting: [6] }), m('new', 2)];
    expect([...desiredLanePartitions(8, lane, 'new', false)].sort()).toEqual([0, 1, 2, 3, 6]);
    expect([...desiredLanePartitions(8, lane, 'old', false)].sort()).toEqual([4, 5, 7]);
    // Once the newest owns it the older one no longer reports it: it stays with the newest.
    const after = [m('old', 1), m('new', 2, { owned: [0, 1, 2, 3, 6] })];
    expect([...desiredLanePartitions(8, after, 'new', false)].sort()).toEqual([0, 1, 2, 3, 6]);
  });
});

describe('a rolling deploy from version 1 to version 2, then a rollback', () => {
  const adds = new Map(KEYS.map((k) => [k, 0]));
  const marks = new Map(KEYS.map((k) => [k, 0]));
  let marking = false;
  let loading = true;

  /** Signals adds (and, once offered, marks) round-robin over the keys, counting what the stream acknowledged. */
  async function load(): Promise<void> {
    for (let i = 0; loading; i++) {
      const key = KEYS[i % KEYS.length] as string;
      const mark = marking && i % 3 === 0;
      await client.signal('tab', key, mark ? 'mark' : 'add', mark ? undefined : 1);
      (mark ? marks : adds).set(key, ((mark ? marks : adds).get(key) ?? 0) + 1);
    }
  }

  it('applies everything once, dead-letters nothing, and ends with every record at version 2, as a replay through the migration says', async () => {
    for (const id of ['v1-a', 'v1-b', 'v1-c']) await start(id, v1);
    await settled();
    const loader = load();
    const pace = async (n: number) => {
      const target = [...adds.values()].reduce((a, b) => a + b, 0) + n;
      await waitFor(() => [...adds.values()].reduce((a, b) => a + b, 0) >= target, { timeoutMs: 20_000, message: 'load to go on' });
    };
    await pace(100);
    for (const [i, old] of (['v1-a', 'v1-b', 'v1-c'] as const).entries()) {
      await start(`v2-${i}`, v2);
      // Clients use the new operation as soon as a worker of version 2 is up.
      marking = true;
      await settled();
      await pace(100);
      await stop(old);
      await settled();
      await pace(100);
    }
    loading = false;
    await loader;
    // Every key once more with the new operation: each record is written by version 2.
    for (const k of KEYS) {
      await client.signal('tab', k, 'mark');
      marks.set(k, (marks.get(k) ?? 0) + 1);
    }
    let off: unknown[] = [];
    try {
      await waitFor(
        async () => {
          off = [];
          for (const k of KEYS) {
            const s = (await client.read('tab', k)).state as { total: number; marks: number };
            if (s.total !== adds.get(k) || s.marks !== marks.get(k)) off.push({ k, s, adds: adds.get(k), marks: marks.get(k) });
          }
          return off.length === 0;
        },
        { timeoutMs: 30_000, intervalMs: 200, message: 'every key at its adds and marks' },
      );
    } catch (err) {
      const status = await client.status();
      throw new Error(`off: ${JSON.stringify(off)}; blocked ${JSON.stringify(status.blocked)}; owners ${JSON.stringify(status.services.map((x) => x.partitions))}; members ${JSON.stringify(status.members)}`, { cause: err });
    }
    expect((await client.deadLetters()).items).toEqual([]);
    const kv = await new Kvm(nc).open('actors');
    for (const k of KEYS) {
      const rec = (await kv.get(`tab.${k}`))?.json<{ version?: number; state: unknown }>();
      expect({ k, version: rec?.version, state: rec?.state }).toEqual({ k, version: 2, state: { total: adds.get(k), marks: marks.get(k) } });
    }
    // A replay of the stream through the migration: adds sum into total, marks count.
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const consumer = await js.consumers.get('ACTORS', { filter_subjects: '*.actors.tab.>' });
    const pending = (await consumer.info(true)).num_pending;
    const replay = new Map<string, { total: number; marks: number }>();
    for (let read = 0; read < pending; ) {
      const batch = await consumer.fetch({ max_messages: Math.min(1000, pending - read), expires: 5000 });
      for await (const msg of batch) {
        read++;
        const [, , , key, op] = msg.subject.split('.') as [string, string, string, string, string];
        const s = replay.get(key) ?? { total: 0, marks: 0 };
        if (op === 'add') s.total += Number(msg.string());
        if (op === 'mark') s.marks += 1;
        replay.set(key, s);
      }
    }
    for (const k of KEYS) expect(replay.get(k)).toEqual((await client.read('tab', k)).state);
    expect((await jsm.streams.info('ACTORS')).state.messages).toBe(pending);
  }, 180_000);

  it('never lets a version-1 worker overwrite a version-2 record: the work waits, is reported, and resumes with version 2', async () => {
    for (const id of [...running.keys()]) await stop(id);
    const kv = await new Kvm(nc).open('actors');
    const before = await kv.get('tab.t0');
    await start('v1-back', v1);
    await settled();
    const { seq } = await client.signal('tab', 't0', 'add', 5);
    // The partition waits at t0's add: reported in the status, nothing applied or dead-lettered.
    await waitFor(async () => (await client.status()).blocked?.some((b) => b.seq === seq && b.reason === 'newer-record'), {
      timeoutMs: 15_000,
      message: 'the partition to report it waits for version 2',
    });
    const still = await kv.get('tab.t0');
    expect({ revision: still?.revision, version: still?.json<{ version: number }>().version }).toEqual({ revision: before?.revision, version: 2 });
    expect((await client.deadLetters()).items).toEqual([]);
    // Version 2 back: the waiting partition moves to it and the add is applied, once.
    await start('v2-back', v2);
    const snap = await client.read('tab', 't0', { minSeq: seq, timeoutMs: 20_000 });
    expect((snap.state as { total: number }).total).toBe((adds.get('t0') ?? 0) + 5);
    expect((await client.deadLetters()).items).toEqual([]);
  }, 90_000);
});
