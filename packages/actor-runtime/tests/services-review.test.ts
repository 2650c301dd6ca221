/**
 * Hostile review of "services on one NATS" (issue 19, ff9a8d9 and d0969bd), on a real
 * nats-server. Each test is one scenario an ordinary deploy meets; a test that shows a defect
 * not fixed yet is `it.fails` (it passes while the defect is there, and fails, asking to be
 * turned into a plain `it`, once it is fixed).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  controlKeys,
  createActorClient,
  createWorker,
  defaultTopology,
  defineActor,
  partitionOf,
  provisionTopology,
  type ActorNames,
  type Checkpoint,
  type MemberRecord,
  type Worker,
} from '../src/index.js';
import { laneIdOf } from '../src/ownership/placement.js';
import { firstUnapplied } from '../src/ownership/retention.js';
import { encodeJson } from '../src/store/records.js';
import { namesFor } from './support/names.js';
import { greeter, testAccount, type Acct } from './support/test-actors.js';
import { testCounter } from './support/test-counter.js';

const PARTITIONS = 2;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
/** The duplicate-window tests' window: 1 s instead of 2 min. */
const SHORT_WINDOW = { duplicateWindowMs: 1000, retainMs: 3_600_000 };

const acct = testAccount;

let server: NatsServer;
let nc: NatsConnection;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

type WorkerOpts = Parameters<typeof createWorker>[0];

async function startWorker(names: ActorNames, actors: WorkerOpts['actors'], extra: Partial<WorkerOpts> = {}): Promise<Worker> {
  const w = createWorker({ nc, actors, names, partitions: PARTITIONS, leaseTtlMs: 1500, heartbeatMs: 300, retentionIntervalMs: 100, logger: log, ...extra });
  let stopped = false;
  const stop = w.stop.bind(w);
  w.stop = async () => {
    if (stopped) return;
    stopped = true;
    await stop();
  };
  cleanups.push(() => w.stop());
  await w.start();
  await waitFor(() => w.settled(), { timeoutMs: 10_000, message: 'the worker to take its partitions' });
  return w;
}

function clientFor(names: ActorNames, actors: WorkerOpts['actors']) {
  const client = createActorClient(nc, { actors, names, timeoutMs: 8000 });
  cleanups.push(() => client.close());
  return client;
}

describe('a service started after another (stale placement in the running one)', () => {
  it('R1: no operation of the new service\'s type is dead-lettered by the service that started first', async () => {
    // Issue 19's own scenario: the default worker (service 'default') runs, then a worker hosting
    // only greeter starts (a derived lane id, 'l' + hex: always after 'default'). The default lane
    // is the lane that dead-letters strays (smallest live id); its processors keep the placement
    // they started with, where greeter is registered by nobody. Nothing changes its duties (it
    // still applies its types and strays), so they are not restarted and go on treating greeter
    // as a stray: every greet is applied by the greeter lane AND dead-lettered UNKNOWN_ACTOR,
    // and a waiting caller may get the 422 first.
    const names = namesFor('rv1');
    await startWorker(names, [testCounter], { service: 'default' });
    await startWorker(names, [greeter]);
    const client = clientFor(names, [testCounter, greeter]);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.call('greeter', `g${i}`, 'greet', `n${i}`)));
    await client.call('counter', 'c', 'add', 1);
    // Every greet is applied by b ...
    for (let i = 0; i < 10; i++) await waitFor(async () => ((await client.read('greeter', `g${i}`)).state as string[]).length === 1, { message: `g${i} greeted` });
    // ... and none is also a dead letter (or an error answered to its caller).
    const dead = (await client.deadLetters()).items.filter((x) => x.type === 'greeter');
    expect({ dead: dead.map((x) => x.code), rejected: results.filter((r) => r.status === 'rejected').length }).toEqual({ dead: [], rejected: 0 });
  }, 30_000);
});

describe('one named service whose workers host different types (a rolling deploy that adds a type)', () => {
  it('R2: an operation of the added type is never dead-lettered by a worker of the service that does not host it yet', async () => {
    // The default worker is service 'default' whatever it hosts (packages/worker): a new
    // release that adds a type, rolled out one worker at a time, runs old and new workers in one
    // lane. The lane is the added type's home; the old worker's partitions dead-letter it.
    const names = namesFor('rv2');
    const old = await startWorker(names, [testCounter], { service: 'svc' });
    const neu = await startWorker(names, [testCounter, greeter], { service: 'svc' });
    await waitFor(() => old.settled() && neu.settled() && old.ownedPartitions().length + neu.ownedPartitions().length === PARTITIONS, { message: 'the lane split' });
    const client = clientFor(names, [testCounter, greeter]);
    // A key in each partition, so some land on the old worker's.
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    await Promise.allSettled(keys.map((k) => client.signal('greeter', k, 'greet', 'x')));
    await client.call('counter', 'after', 'add', 1);
    await waitFor(async () => {
      for (let p = 0; p < PARTITIONS; p++) {
        const e = await (await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS }))).control.get(controlKeys.checkpoint(p, 'svc'));
        if (!e) return false;
      }
      return true;
    });
    const dead = (await client.deadLetters()).items.filter((x) => x.type === 'greeter');
    expect(dead.map((x) => x.code)).toEqual([]);
  }, 30_000);
});

describe('a home that vanished before its first checkpoint', () => {
  it('R3: operations skipped while a lane with no checkpoint was their home are applied when the type comes back', async () => {
    // Service 'a' applies counter (version 1). A worker of service 'c' hosting counter at
    // version 2 heartbeats (and registers its lane) and dies before its first commit: exactly what
    // a new service that crashes at start leaves. While it looks live it is counter's home, so a
    // restarts its processors without counter and its checkpoints pass counter's operations. When
    // c's heartbeat goes, a takes counter back and reads "from the lowest checkpoint of the
    // partition" (commit.ts lowestCheckpoint), which ignores a lane with no checkpoint: it starts
    // at its own checkpoint, past the operations it skipped. They are never applied.
    const names = namesFor('rv3');
    await startWorker(names, [testCounter], { service: 'a' });
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS }));
    const ghost: MemberRecord = { id: 'ghost', partitions: [], lag: {}, startedAt: new Date().toISOString(), host: 'h', pid: 1, lane: 'c', types: { counter: 2 } };
    await topo.control.put(controlKeys.lane('c'), encodeJson({ id: 'c', types: { counter: 2 }, registeredAt: new Date().toISOString() }));
    await topo.control.put(controlKeys.member('ghost'), encodeJson(ghost));
    const beat = setInterval(() => void topo.control.put(controlKeys.member('ghost'), encodeJson(ghost)).catch(() => undefined), 200);
    cleanups.push(() => clearInterval(beat));
    const ckOf = async (p: number) => {
      const e = await topo.control.get(controlKeys.checkpoint(p, 'a'));
      return e && e.operation === 'PUT' ? (JSON.parse(e.string()) as Checkpoint) : null;
    };
    const p = partitionOf('counter', 'x', PARTITIONS);
    // a has given counter up (its processors restarted; its checkpoint lists its new duties).
    const client = clientFor(names, [testCounter]);
    // A key of the same partition, whose operations make a commit (and a checkpoint) happen.
    const warm = Array.from({ length: 100 }, (_, i) => `w${i}`).find((k) => partitionOf('counter', k, PARTITIONS) === p) as string;
    await waitFor(async () => {
      await client.signal('counter', warm, 'add', 1);
      const ck = await ckOf(p);
      return ck?.duties !== undefined && !ck.duties.includes('counter');
    }, { message: 'a to give counter up' });
    let last = 0;
    for (let i = 0; i < 5; i++) last = (await client.signal('counter', 'x', 'add', 1)).seq;
    await waitFor(async () => ((await ckOf(p))?.seq ?? 0) >= last, { message: 'a\'s checkpoint to pass the adds' });
    // The ghost's heartbeat ends (the crashed worker ages out).
    clearInterval(beat);
    await topo.control.delete(controlKeys.member('ghost'));
    await waitFor(async () => {
      await client.signal('counter', warm, 'add', 1);
      return (await ckOf(p))?.duties?.includes('counter') === true;
    }, { message: 'a to take counter back' });
    // Polled: the checkpoint that lists counter again may come before the replay reaches x.
    const state = await waitFor(async () => ((await client.read('counter', 'x')).state === 5 ? 5 : false), { timeoutMs: 5000, message: 'x at 5' }).catch(
      async () => (await client.read('counter', 'x')).state,
    );
    expect(state).toBe(5);
  }, 30_000);
});

describe('a worker whose set of types changes (its derived lane id changes)', () => {
  /** A worker of types [acct] transfers 10 from a1 to b1 five times, and stops. */
  async function fiveTransfers(tag: string) {
    const names = namesFor(tag);
    const first = await startWorker(names, [acct], { topology: SHORT_WINDOW });
    const client = clientFor(names, [acct]);
    await client.call('acct', 'a1', 'deposit', { amount: 100 });
    for (let i = 0; i < 5; i++) await client.call('acct', 'a1', 'transfer', { to: 'b1', amount: 10 });
    await waitFor(async () => ((await client.read('acct', 'b1')).state as Acct).balance === 50, { message: 'five deposits at b1' });
    await first.stop();
    // The window is time on the server's clock: nothing to poll but the clock.
    await new Promise((resolve) => setTimeout(resolve, SHORT_WINDOW.duplicateWindowMs + 200));
    return { names, client };
  }

  it('R4: a send is not applied a second time when the next worker hosts one more type', async () => {
    // The next release hosts acct and greeter: another lane, with no checkpoint. It reads the
    // partition from its start, loads a1's record, whose outbox still holds the last transfer's
    // send (seq > its checkpoint 0), publishes it again as sender unit `<p>@<new lane>`; past the
    // duplicate window the stream stores it and b1's entry for that unit is empty: applied again.
    const { names, client } = await fiveTransfers('rv4');
    await startWorker(names, [acct, greeter], { topology: SHORT_WINDOW });
    expect((await client.call('acct', 'b1', 'deposit', { amount: 1 })).result).toBe(51);
  }, 30_000);

  it('R5: a dead letter is not stored a second time when the next worker hosts one more type', async () => {
    // The new lane has no checkpoint and is the only live lane, so it dead-letters strays: it
    // reads the partition from its start and dead-letters again every failed operation it meets
    // (a failure does not move a record's seq), once the dead-letter stream's window is past.
    const names = namesFor('rv5');
    const first = await startWorker(names, [acct], { topology: SHORT_WINDOW });
    const client = clientFor(names, [acct]);
    nc.publish(`${names.subjectPrefix}.nobody.k.op`, '1');
    await waitFor(async () => (await client.deadLetters()).items.length === 1, { message: 'the dead letter' });
    await first.stop();
    await new Promise((resolve) => setTimeout(resolve, SHORT_WINDOW.duplicateWindowMs + 200));
    await startWorker(names, [acct, greeter], { topology: SHORT_WINDOW });
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...SHORT_WINDOW }));
    const p = partitionOf('nobody', 'k', PARTITIONS);
    const stray = (await client.deadLetters()).items[0]?.seq ?? 0;
    await waitFor(async () => {
      const e = await topo.control.get(controlKeys.checkpoint(p, laneIdOf(['acct', 'greeter'])));
      return e !== null && (JSON.parse(e.string()) as Checkpoint).seq >= stray;
    }, { message: 'the new lane to pass the stray operation' });
    expect((await client.deadLetters()).items.length).toBe(1);
  }, 30_000);
});


describe('retention after a worker\'s set of types changed', () => {
  it('R6: the abandoned lane\'s checkpoints stop holding the stream once the new lane has applied its types past them', async () => {
    // A worker of [acct] (one derived lane) is replaced by one of [acct, greeter] (another). The
    // first lane stays registered (lanes.<id>) with its last checkpoints. Every type it applied is
    // applied by the new lane, whose checkpoints list them and are past it; yet retention took
    // the lowest checkpoint of every registered lane, so nothing after the first lane's last
    // checkpoint was ever purged again: the stream grows to its byte bound and then refuses every
    // operation, with no live worker to blame.
    const names = namesFor('rv6');
    const topology = { duplicateWindowMs: 500, retainMs: 500 };
    const first = await startWorker(names, [acct], { topology });
    const client = clientFor(names, [acct]);
    for (let i = 0; i < 5; i++) await client.call('acct', `k${i}`, 'deposit', { amount: 1 });
    await first.stop();
    await startWorker(names, [acct, greeter], { topology });
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...topology }));
    const firstLane = laneIdOf(['acct']);
    let held = 0;
    for (let p = 0; p < PARTITIONS; p++) {
      const e = await topo.control.get(controlKeys.checkpoint(p, firstLane));
      held = Math.max(held, e ? (JSON.parse(e.string()) as Checkpoint).seq : 0);
    }
    expect(held).toBeGreaterThan(0);
    // New operations, applied; after retainMs they (and everything before) may go.
    const stream = `${names.stream}`;
    const jsm = topo.jsm;
    await waitFor(
      async () => {
        await client.call('acct', 'k0', 'deposit', { amount: 1 });
        return (await jsm.streams.info(stream)).state.first_seq > held + 1;
      },
      { timeoutMs: 10_000, intervalMs: 200, message: 'retention to purge past the abandoned lane\'s checkpoints' },
    );
    // Nothing was lost: every key at its count.
    expect(((await client.read('acct', 'k0')).state as Acct).balance).toBeGreaterThan(1);
    for (let i = 1; i < 5; i++) expect(((await client.read('acct', `k${i}`)).state as Acct).balance).toBe(1);
  }, 30_000);
});

describe('firstUnapplied (retention over the lanes\' checkpoints, pure)', () => {
  it('R6b: passes a checkpoint over only for another that lists its types and is as far, never two equal ones over each other', () => {
    // The abandoned lane [acct] at 10, the new lane [acct, greeter, *] at 30: from 31.
    expect(firstUnapplied([{ seq: 10, duties: ['acct'] }, { seq: 30, duties: ['acct', 'greeter', '*'] }])).toBe(31);
    // A lane whose types nobody else lists holds (a service with no live worker).
    expect(firstUnapplied([{ seq: 10, duties: ['parked'] }, { seq: 30, duties: ['acct', '*'] }])).toBe(11);
    // Behind the checkpoint it would pass over: holds.
    expect(firstUnapplied([{ seq: 40, duties: ['acct'] }, { seq: 30, duties: ['acct', 'greeter'] }])).toBe(31);
    // An abandoned lane that also dead-lettered strays: one live lane applies its type, another the strays.
    expect(firstUnapplied([{ seq: 10, duties: ['acct', '*'] }, { seq: 30, duties: ['acct'] }, { seq: 20, duties: ['greeter', '*'] }])).toBe(21);
    expect(firstUnapplied([{ seq: 10, duties: ['acct', '*'] }, { seq: 30, duties: ['acct'] }, { seq: 5, duties: ['greeter', '*'] }])).toBe(6);
    // No types: passed over by anything as far.
    expect(firstUnapplied([{ seq: 10, duties: [] }, { seq: 30, duties: ['acct'] }])).toBe(31);
    // Two equal checkpoints: one is kept.
    expect(firstUnapplied([{ seq: 10, duties: ['acct'] }, { seq: 10, duties: ['acct'] }])).toBe(11);
    // A lane with no checkpoint holds everything; one written before lanes (no duties) always holds.
    expect(firstUnapplied([null, { seq: 30, duties: ['acct'] }])).toBe(1);
    expect(firstUnapplied([{ seq: 10 }, { seq: 30, duties: ['acct'] }])).toBe(11);
    expect(firstUnapplied([{ seq: 30, duties: ['acct'] }, { seq: 40 }])).toBe(31);
  });
});

describe('removeService', () => {
  it('R7: an operation of a type only the removed service hosted is a dead letter (UNKNOWN_ACTOR), as documented, not skipped', async () => {
    // Service 'a' (counter) runs; service 'b' (greeter) stopped and is removed. The doc says its
    // type's operations are dead letters from then on. a's processors keep the placement they
    // started with, where greeter is registered: they skip it. Nothing restarts them (a's duties,
    // counter and the strays, did not change), so greeter operations are passed by the
    // checkpoints, dead-lettered by nobody, and since b's checkpoints went with it, purged.
    const names = namesFor('rv7');
    // b first, so a's processors start with greeter registered (else a dead-letters it anyway: R1).
    const b = await startWorker(names, [greeter], { service: 'b' });
    await startWorker(names, [testCounter], { service: 'a' });
    const client = clientFor(names, [testCounter, greeter]);
    await client.call('greeter', 'g', 'greet', 'x');
    await b.stop();
    await client.removeService('b');
    const { seq } = await client.signal('greeter', 'g', 'greet', 'y').catch(() => ({ seq: 0 }));
    expect(seq).toBeGreaterThan(0);
    await waitFor(async () => (await client.deadLetters()).items.some((x) => x.type === 'greeter'), { timeoutMs: 3000, message: 'the greet dead-lettered' });
  }, 30_000);
});

describe('retention and a lane that never checkpointed', () => {
  it('R8: a registered lane with no checkpoint stops holding a partition once another lane applies its types', async () => {
    // Service c (counter v2) registered and died before its first commit (R3's ghost), or was
    // registered by a worker that never took a partition. Retention counted its missing
    // checkpoint as "nothing applied" (seq 1) in every partition for ever: the stream filled.
    const names = namesFor('rv8');
    const topology = { duplicateWindowMs: 500, retainMs: 500 };
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...topology }));
    await topo.control.put(controlKeys.lane('c'), encodeJson({ id: 'c', types: { counter: 2 }, registeredAt: new Date().toISOString() }));
    await startWorker(names, [testCounter], { service: 'a', topology });
    const client = clientFor(names, [testCounter]);
    for (let i = 0; i < 5; i++) await client.call('counter', `k${i}`, 'add', 1);
    await waitFor(
      async () => {
        await client.call('counter', 'k0', 'add', 1);
        return (await topo.jsm.streams.info(names.stream)).state.first_seq > 5;
      },
      { timeoutMs: 10_000, intervalMs: 200, message: 'retention to purge what lane a applied' },
    );
    for (let i = 1; i < 5; i++) expect((await client.read('counter', `k${i}`)).state).toBe(1);
  }, 30_000);
});

describe('a rollback and an operation only the newer version knows', () => {
  const counterV2 = defineActor({
    type: 'counter',
    version: 2,
    initialState: (): number => 0,
    migrate: { 1: (s: unknown) => s as number },
    operations: {
      add: (s: number, n: unknown) => ({ state: s + Number(n ?? 1), result: s + Number(n ?? 1) }),
      double: (s: number) => ({ state: s * 2, result: s * 2 }),
    },
  });

  it('R9: a version-1 worker does not dead-letter an operation only version 2 knows after version 2 stops (it waits, issue 19)', async () => {
    // The wait (partition-lifecycle.ts unknownOperation) holds only while a newer version is
    // live; the lane record is overwritten by the version-1 worker, so nothing remembers version 2.
    const names = namesFor('rv9');
    const v2 = await startWorker(names, [counterV2], { service: 's' });
    const client = clientFor(names, [counterV2]);
    await client.call('counter', 'x', 'add', 3);
    await v2.stop();
    await startWorker(names, [testCounter], { service: 's' });
    // A key version 2 never wrote (x's record would fence version 1 anyway).
    await client.signal('counter', 'fresh', 'double');
    const dead = await waitFor(async () => (await client.deadLetters()).items.map((x) => `${x.op} ${x.code}`).join() || false, { timeoutMs: 3000 }).catch(() => null);
    expect(dead).toBeNull();
  }, 30_000);
});
