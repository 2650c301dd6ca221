/**
 * Versions and state migrations against a real nats-server: records written by version 1 are
 * migrated once by a version-2 worker (and read migrated, by a client with the code or by the
 * workers' `$state` query for one without); a version-1 worker that meets a version-2 record
 * never overwrites it: its partition waits there (nothing applied after it, no dead letter),
 * says so in its checkpoint (`status().blocked`), its log and a metric, and resumes once a
 * version-2 worker owns the partition again.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createActorClient,
  createWorker,
  createWorkerMetrics,
  defaultNames,
  defineActor,
  startQueryService,
  Type,
  type ActorClient,
  type AnyActorDefinition,
  type QueryService,
  type Worker,
} from '../src/internal.js';

type V1 = { name: string };
type V2 = { first: string; last: string; renames: number };

const personV1 = defineActor({
  type: 'person',
  initialState: (): V1 => ({ name: '' }),
  operations: {
    rename: { input: Type.String(), handler: (_s, name) => ({ state: { name }, result: name }) },
    get: (s) => ({ state: s, result: s }),
  },
});

/** Migration calls by the name they migrated (a test's instrument: migrations are pure). */
const migrated = new Map<string, number>();
const split = (name: string) => {
  const [first = '', last = ''] = name.split(' ');
  return { first, last };
};
const personV2 = defineActor({
  type: 'person',
  version: 2,
  initialState: (): V2 => ({ first: '', last: '', renames: 0 }),
  operations: {
    rename: { input: Type.String(), handler: (s, name) => ({ state: { ...split(name), renames: s.renames + 1 }, result: s.renames + 1 }) },
    get: (s) => ({ state: s, result: s }),
  },
  migrate: {
    1: (s: V1): V2 => {
      migrated.set(s.name, (migrated.get(s.name) ?? 0) + 1);
      return { ...split(s.name), renames: 0 };
    },
  },
});

let server: NatsServer;
let nc: NatsConnection;
let kv: KV;
let plain: ActorClient;
const lines: string[] = [];
const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
const logged = (msg: string) => lines.filter((l) => (JSON.parse(l) as { msg?: string }).msg?.startsWith(msg)).length;

async function startWorker(def: AnyActorDefinition, hooks?: ReturnType<typeof createWorkerMetrics>['hooks']): Promise<Worker> {
  const w = createWorker({ nc, actors: [def], partitions: 1, leaseTtlMs: 2000, heartbeatMs: 250, logger: log, ...(hooks ? { hooks } : {}) });
  await w.start();
  // A partition that waits at its first operation never stays running: its wait is awaited instead.
  if (!hooks) await waitFor(() => w.settled(), { timeoutMs: 10_000, message: 'the worker to own the partition' });
  return w;
}

async function stored(key: string): Promise<{ revision: number; text: string; record: { state: unknown; seq: number; version?: number } }> {
  const e = await kv.get(`person.${key}`);
  if (!e) throw new Error(`no record person.${key}`);
  return { revision: e.revision, text: e.string(), record: e.json() };
}

async function deadLetters(): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info('ACTORS_DLQ')).state.messages;
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  plain = createActorClient(nc);
});

afterAll(async () => {
  plain?.close();
  await nc?.close();
  await server?.stop();
});

describe('versions and migrations', () => {
  it('migrates version-1 records once, never lets a version-1 worker overwrite a version-2 record, and resumes with version 2', async () => {
    // Version 1 writes two records.
    const one = await startWorker(personV1);
    const c1 = createActorClient(nc, { actors: [personV1] });
    await c1.call('person', 'a', 'rename', 'Ada Lovelace');
    await c1.call('person', 'b', 'rename', 'Grace Hopper');
    kv = await new Kvm(jetstream(nc)).open('actors');
    expect((await stored('a')).record).not.toHaveProperty('version');
    await one.stop();

    // Version 2 migrates a's record once, before its handlers see it, and writes it at version 2.
    const two = await startWorker(personV2);
    const queries: QueryService = startQueryService({ nc, actors: [personV2], names: defaultNames(), log });
    const c2 = createActorClient(nc, { actors: [personV2] });
    expect((await c2.call('person', 'a', 'get')).result).toEqual({ first: 'Ada', last: 'Lovelace', renames: 0 });
    expect((await c2.call('person', 'a', 'rename', 'Ada King')).result).toBe(1);
    expect(migrated.get('Ada Lovelace')).toBe(1);
    const a2 = await stored('a');
    expect(a2.record).toMatchObject({ state: { first: 'Ada', last: 'King', renames: 1 }, version: 2 });

    // b is untouched: stored as version 1, read migrated by a client with the code, and by the
    // workers for one without it that knows version 2 is the newest.
    const b1 = await stored('b');
    expect(b1.record).toMatchObject({ state: { name: 'Grace Hopper' } });
    expect(await c2.read('person', 'b')).toMatchObject({ state: { first: 'Grace', last: 'Hopper', renames: 0 }, version: 2, exists: true });
    expect(await plain.read('person', 'b', { version: 2 })).toMatchObject({ state: { first: 'Grace', last: 'Hopper', renames: 0 }, version: 2, seq: b1.record.seq });
    expect((await stored('b')).text).toBe(b1.text); // reading writes nothing
    await queries.stop();
    await two.stop();

    // A rollback to version 1: a's record is version 2's, and must survive. The three operations
    // wait in the stream, so the worker reads them in one batch: the wait is in its middle.
    const before = await c1.signal('person', 'c', 'rename', 'Alan Turing');
    const blocked = await c1.signal('person', 'a', 'rename', 'Ada Byron');
    const after = await c1.signal('person', 'b', 'rename', 'Grace Brewster');
    const metrics = createWorkerMetrics({ processMetrics: false });
    const back = await startWorker(personV1, metrics.hooks);
    metrics.attach(back);
    await waitFor(async () => (await plain.status()).blocked?.length === 1, { timeoutMs: 10_000, message: 'the partition to report its wait' });
    expect((await plain.status()).blocked).toEqual([
      { partition: 0, reason: 'newer-record', seq: blocked.seq, type: 'person', key: 'a', op: 'rename', version: 1, recordVersion: 2, since: expect.any(String) as string },
    ]);
    // It restarts from its checkpoint after a backoff, and waits again, like a failing partition.
    await waitFor(() => logged('partition processing failed') >= 2, { timeoutMs: 10_000, message: 'two restarts of the waiting partition' });
    expect(logged('PARTITION 0 WAITS')).toBe(1); // loudly, once
    expect(await metrics.registry.getSingleMetricAsString('jetactor_worker_partition_blocked')).toContain(
      `jetactor_worker_partition_blocked{partition="0",type="person",reason="newer-record",version="1",record_version="2"} ${blocked.seq}`,
    );
    expect((await c1.read('person', 'c', { minSeq: before.seq })).state).toEqual({ name: 'Alan Turing' });
    const a3 = await stored('a');
    expect({ revision: a3.revision, text: a3.text }).toEqual({ revision: a2.revision, text: a2.text }); // never overwritten
    expect((await stored('b')).text).toBe(b1.text); // nothing after the wait is applied
    expect((await plain.status()).partitions[0]?.checkpoint).toBe(blocked.seq - 1);
    expect(await deadLetters()).toBe(0);
    await back.stop();

    // Version 2 returns: the partition resumes where it waited.
    const again = await startWorker(personV2);
    expect((await c2.read('person', 'b', { minSeq: after.seq })).state).toEqual({ first: 'Grace', last: 'Brewster', renames: 1 });
    expect((await stored('a')).record).toMatchObject({ state: { first: 'Ada', last: 'Byron', renames: 2 }, version: 2, seq: blocked.seq });
    expect((await stored('c')).record).toMatchObject({ state: { name: 'Alan Turing' } });
    expect((await plain.status()).blocked).toBeUndefined();
    expect(await deadLetters()).toBe(0);
    expect(migrated.get('Ada Lovelace')).toBe(1);
    await again.stop();
    c1.close();
    c2.close();
  });

  it('a migration that throws, and a record older than the oldest migration, are dead letters that leave the record as it was', async () => {
    const one = await startWorker(personV1);
    const c1 = createActorClient(nc, { actors: [personV1] });
    await c1.call('person', 'm1', 'rename', 'Mononym');
    await one.stop();
    const before = await stored('m1');
    const dlq0 = await deadLetters();

    const broken = defineActor({
      type: 'person',
      version: 2,
      initialState: (): V2 => ({ first: '', last: '', renames: 0 }),
      operations: { get: (s) => ({ state: s, result: s }) },
      migrate: {
        1: (s: V1): V2 => {
          const [first, last] = s.name.split(' ');
          if (last === undefined) throw new Error(`no last name in '${s.name}'`);
          return { first: first ?? '', last, renames: 0 };
        },
      },
    });
    const w2 = await startWorker(broken);
    const c2 = createActorClient(nc, { actors: [broken] });
    await expect(c2.call('person', 'm1', 'get')).rejects.toMatchObject({ code: 'MIGRATION_FAILED', message: "actor 'person': migrate[1] (version 1 -> 2) failed: no last name in 'Mononym'" });
    await w2.stop();

    // Version 3 that migrates only from version 2 meets a version-1 record.
    const fromTwo = defineActor({
      type: 'person',
      version: 3,
      initialState: (): V2 => ({ first: '', last: '', renames: 0 }),
      operations: { get: (s) => ({ state: s, result: s }) },
      migrate: { 2: (s: V2) => s },
    });
    const w3 = await startWorker(fromTwo);
    const c3 = createActorClient(nc, { actors: [fromTwo] });
    await expect(c3.call('person', 'm1', 'get')).rejects.toMatchObject({ code: 'RECORD_TOO_OLD' });
    await w3.stop();

    const after = await stored('m1');
    expect({ revision: after.revision, text: after.text }).toEqual({ revision: before.revision, text: before.text });
    await waitFor(async () => (await deadLetters()) === dlq0 + 2, { message: 'two dead letters' });
    const letters = (await plain.deadLetters({ cursor: 0, limit: 1000 })).items.slice(-2);
    expect(letters.map((d) => [d.key, d.op, d.code])).toEqual([
      ['m1', 'get', 'MIGRATION_FAILED'],
      ['m1', 'get', 'RECORD_TOO_OLD'],
    ]);
    c1.close();
    c2.close();
    c3.close();
  });
});
