/**
 * Several services (lanes) on one NATS: each applies only the types it hosts, balanced over its
 * own workers; a type whose workers are all gone waits in the stream and is applied when one
 * is back; a type nobody registered is a dead letter (pure placement rules first).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { createActorClient, createWorker, defineActor, registerActorTypes, type ActorClient, type Worker } from '../src/internal.js';
import { laneIdOf, Placement, type LiveMember } from '../src/ownership/placement.js';
import { desiredLanePartitions } from '../src/ownership/reconcile.js';
import { greeter, greeterSpec } from './support/test-actors.js';
import { testCounter } from './support/test-counter.js';


describe('placement rules (pure)', () => {
  const m = (id: string, lane: string, types: Record<string, number>): LiveMember => ({ id, lane, types });

  it('gives each type one home, skips what others apply, and dead-letters strays in one lane', () => {
    const p = new Placement([m('w1', 'a', { counter: 1, tally: 1 }), m('w2', 'b', { greeter: 1 })], [
      { id: 'c', types: { parked: 1 }, registeredAt: '' },
    ]);
    expect(p.duty('a', 'counter')).toBe('apply');
    expect(p.duty('b', 'counter')).toBe('skip');
    expect(p.duty('b', 'greeter')).toBe('apply');
    // Registered by a lane with no live worker: every live lane skips it (it waits).
    expect(p.duty('a', 'parked')).toBe('skip');
    expect(p.duty('b', 'parked')).toBe('skip');
    // Never registered: the smallest live lane dead-letters it.
    expect(p.duty('a', 'typo')).toBe('stray');
    expect(p.duty('b', 'typo')).toBe('skip');
    expect(p.dutiesOf('a')).toEqual(['counter', 'tally', '*']);
    expect(p.dutiesOf('b')).toEqual(['greeter']);
  });

  it('homes a type hosted by two lanes in the one with its newest version', () => {
    const p = new Placement([m('w1', 'a', { counter: 1 }), m('w2', 'b', { counter: 2 })], []);
    expect(p.duty('b', 'counter')).toBe('apply');
    expect(p.duty('a', 'counter')).toBe('skip');
  });

  it('derives a lane from the set of types, whatever their order', () => {
    expect(laneIdOf(['tally', 'counter'])).toBe(laneIdOf(['counter', 'tally']));
    expect(laneIdOf(['counter'])).not.toBe(laneIdOf(['counter', 'tally']));
    expect(laneIdOf(['counter'], 'billing')).toBe('billing');
  });

  it('gives a lane\'s newest generation only its share of partitions, growing as it grows', () => {
    const P = 32;
    const fleet = (newCount: number, oldCount: number): LiveMember[] => [
      ...Array.from({ length: newCount }, (_, i) => m(`new${i}`, 'a', { counter: 2 })),
      ...Array.from({ length: oldCount }, (_, i) => m(`old${i}`, 'a', { counter: 1 })),
    ];
    const takenByNew = (members: LiveMember[]) => {
      const all = new Set<number>();
      for (const x of members.filter((y) => y.id.startsWith('new'))) for (const p of desiredLanePartitions(P, members, x.id, false)) all.add(p);
      return all;
    };
    let before = new Set<number>();
    for (const [n, o] of [[1, 3], [2, 2], [3, 1], [3, 0]] as const) {
      const members = fleet(n, o);
      const owners = new Map<number, string>();
      for (const x of members) for (const p of desiredLanePartitions(P, members, x.id, false)) {
        expect(owners.has(p)).toBe(false);
        owners.set(p, x.id);
      }
      expect(owners.size).toBe(P);
      const mine = takenByNew(members);
      expect(mine.size).toBe(Math.round((P * n) / (n + o)));
      for (const p of before) expect(mine.has(p)).toBe(true); // never handed back to old code
      before = mine;
    }
  });
});

describe('two services on one nats-server', () => {
  const PARTITIONS = 8;
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  let server: NatsServer;
  let nc: NatsConnection;
  let client: ActorClient;
  const workers: Worker[] = [];
  const start = async (actors: Parameters<typeof createWorker>[0]['actors'], id: string): Promise<Worker> => {
    const w = createWorker({ nc, actors, id, partitions: PARTITIONS, leaseTtlMs: 1500, heartbeatMs: 300, logger: log });
    await w.start();
    workers.push(w);
    return w;
  };
  const stop = async (w: Worker) => {
    await w.stop();
    workers.splice(workers.indexOf(w), 1);
  };

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    client = createActorClient(nc, { actors: [testCounter, greeter], timeoutMs: 15_000 });
  });

  afterAll(async () => {
    client?.close();
    for (const w of [...workers]) await w.stop();
    await nc?.close();
    await server?.stop();
  });

  it('applies each type in its own service, balanced over that service\'s workers, with no dead letter', async () => {
    const c1 = await start([testCounter], 'counter-1');
    const c2 = await start([testCounter], 'counter-2');
    const g1 = await start([greeter], 'greeter-1');
    await waitFor(() => c1.settled() && c2.settled() && g1.settled(), { timeoutMs: 15_000, message: 'workers to settle' });
    // Each service owns every partition, over its own workers only.
    expect(c1.ownedPartitions().length + c2.ownedPartitions().length).toBe(PARTITIONS);
    expect(c1.ownedPartitions().length).toBe(PARTITIONS / 2);
    expect(g1.ownedPartitions()).toEqual([...Array(PARTITIONS).keys()]);
    const calls: Array<Promise<{ result: unknown }>> = [];
    for (let i = 0; i < 40; i++) {
      calls.push(client.call('counter', `k${i % 10}`, 'add', 1));
      calls.push(client.call('greeter', `g${i % 10}`, 'greet', `n${i}`));
    }
    const results = await Promise.all(calls);
    expect(results.filter((r) => typeof r.result === 'string' && r.result.startsWith('hello '))).toHaveLength(40);
    for (let i = 0; i < 10; i++) {
      expect((await client.read('counter', `k${i}`)).state).toBe(4);
      expect(((await client.read('greeter', `g${i}`)).state as string[]).length).toBe(4);
    }
    expect((await client.deadLetters()).items).toEqual([]);
    const status = await client.status();
    expect(status.services.map((s) => [s.types, s.live, s.members.length])).toEqual(
      expect.arrayContaining([
        [{ counter: 1 }, true, 2],
        [{ greeter: 1 }, true, 1],
      ]),
    );
    await stop(c2);
    await stop(g1);
  });

  it('keeps the operations of a service with no live worker and applies them when one starts', async () => {
    const seqs: number[] = [];
    for (let i = 0; i < 20; i++) seqs.push((await client.signal('greeter', 'waiting', 'greet', `w${i}`)).seq);
    await client.call('counter', 'still', 'add', 1); // the other service goes on
    expect((await client.read('greeter', 'waiting')).state).toEqual([]);
    expect((await client.deadLetters()).items).toEqual([]);
    // Registered, not live, and inactive once no worker of it has run for the client's threshold.
    const strict = createActorClient(nc, { serviceInactiveMs: 1000 });
    const greeterService = async () => (await strict.status()).services.find((s) => Object.hasOwn(s.types, 'greeter'));
    expect(await greeterService()).toMatchObject({ live: false, members: [] });
    await waitFor(async () => (await greeterService())?.inactive === true, { timeoutMs: 10_000, message: 'the greeter service to be shown inactive' });
    expect((await client.status()).services.find((s) => Object.hasOwn(s.types, 'greeter'))?.inactive).toBe(false);
    strict.close();
    const g = await start([greeter], 'greeter-2');
    await waitFor(() => g.settled(), { timeoutMs: 15_000, message: 'greeter worker to settle' });
    const snap = await client.read('greeter', 'waiting', { minSeq: seqs[seqs.length - 1] as number, timeoutMs: 15_000 });
    expect(snap.state).toEqual(Array.from({ length: 20 }, (_, i) => `w${i}`));
    expect((await client.deadLetters()).items).toEqual([]);
  });

  it('never purges the operations of a service with no live worker, while retention purges around them', async () => {
    const names = { stream: 'RET_SVC', subjectPrefix: 'retsvc', controlBucket: 'retsvc_ctl', stateBucket: 'retsvc_state', timerBucket: 'retsvc_timers', outcomeBucket: 'retsvc_outcomes', dlqStream: 'RET_SVC_DLQ' };
    const topology = { duplicateWindowMs: 1000, retainMs: 1000 };
    const opts = { nc, names, partitions: 2, leaseTtlMs: 1500, heartbeatMs: 300, retentionIntervalMs: 100, logger: log, topology };
    const g = createWorker({ ...opts, actors: [greeter], id: 'ret-greeter' });
    await g.start();
    const c = createWorker({ ...opts, actors: [testCounter], id: 'ret-counter' });
    await c.start();
    const rclient = createActorClient(nc, { actors: [testCounter, greeter], names, timeoutMs: 10_000 });
    await waitFor(() => g.settled() && c.settled(), { timeoutMs: 15_000, message: 'both services' });
    await rclient.call('greeter', 'early', 'greet', 'x');
    await g.stop();
    const waiting = await rclient.signal('greeter', 'late', 'greet', 'y');
    // The counter's operations are applied and purged past the greeter's waiting one.
    const jsm = await jetstreamManager(nc);
    for (let i = 0; i < 20; i++) await rclient.call('counter', `r${i}`, 'add', 1);
    const lastCounter = (await rclient.signal('counter', 'r-last', 'add', 1)).seq;
    await waitFor(async () => (await jsm.streams.info('RET_SVC')).state.first_seq > 1, { timeoutMs: 15_000, message: 'retention to purge applied operations' });
    // Still there, unapplied, after several rounds of retention.
    await waitFor(async () => (await rclient.read('counter', 'r-last')).seq >= lastCounter, { timeoutMs: 10_000, message: 'the counter to go on' });
    const info = await jsm.streams.info('RET_SVC');
    expect(info.state.first_seq).toBeLessThanOrEqual(waiting.seq);
    expect((await rclient.read('greeter', 'late')).state).toEqual([]);
    const g2 = createWorker({ ...opts, actors: [greeter], id: 'ret-greeter-2' });
    await g2.start();
    expect((await rclient.read('greeter', 'late', { minSeq: waiting.seq, timeoutMs: 15_000 })).state).toEqual(['y']);
    expect((await rclient.deadLetters()).items).toEqual([]);
    rclient.close();
    await g2.stop();
    await c.stop();
  });

  it('keeps the newest version\'s registration when an older worker registers the type after it', async () => {
    const v2greeter = defineActor({ ...greeterSpec, version: 2, migrate: { 1: (s: string[]) => s } });
    await registerActorTypes(nc, [v2greeter], { workerId: 'w-v2' });
    await registerActorTypes(nc, [greeter], { workerId: 'w-v1' });
    const kv = await new Kvm(nc).open('actors_ctl');
    expect((await kv.get('types.greeter'))?.json<{ version: number; worker: string }>()).toMatchObject({ version: 2, worker: 'w-v2' });
    await registerActorTypes(nc, [v2greeter], { workerId: 'w-v2b' });
    expect((await kv.get('types.greeter'))?.json<{ worker: string }>().worker).toBe('w-v2b');
  });

  it('dead-letters an operation for a type no service registered, once', async () => {
    nc.publish('actors.nobody.k.op', '1');
    const dl = await waitFor(async () => (await client.deadLetters()).items.find((x) => x.type === 'nobody'), { timeoutMs: 10_000, message: 'a dead letter' });
    expect(dl.code).toBe('UNKNOWN_ACTOR');
    await client.call('counter', 'after', 'add', 1);
    await client.call('greeter', 'after', 'greet', 'x');
    expect((await client.deadLetters()).items.filter((x) => x.type === 'nobody')).toHaveLength(1);
  });
});
