/**
 * Sends through a full stream and past the duplicate window (issue 18, items 1 and 2), on a
 * real nats-server: a stream filled to its byte bound while the worker was down drains by
 * itself once the worker catches up, every send arrives once, and a send published again
 * after the duplicate window is recognised by its receiver.
 */
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controlKeys, createActorClient, createWorker, defaultNames, defaultTopology, defineActor, partitionOf, provisionTopology, type ActorNames, type Worker } from '../src/internal.js';
import { namesFor } from './support/names.js';

const PARTITIONS = 2;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

type Acct = { balance: number };
const account = defineActor({
  type: 'acct',
  initialState: (): Acct => ({ balance: 0 }),
  operations: {
    deposit: (s: Acct, i: unknown) => ({ state: { balance: s.balance + (i as { amount: number }).amount }, result: s.balance + (i as { amount: number }).amount }),
    transfer: (s: Acct, i: unknown) => {
      const { to, amount } = i as { to: string; amount: number };
      return { state: { balance: s.balance - amount }, result: s.balance - amount, send: [{ key: to, op: 'deposit', input: { amount } }] };
    },
    /** Takes room in the stream and changes nothing. */
    pad: (s: Acct) => ({ state: s, result: null }),
    /** One big deposit to b1, then 70 small ones. */
    burst: (s: Acct) => ({
      state: s,
      result: null,
      send: [{ key: 'b1', op: 'deposit', input: { amount: 1000, pad: 'x'.repeat(30_000) } }, ...Array.from({ length: 70 }, () => ({ key: 'b1', op: 'deposit', input: { amount: 1 } }))],
    }),
  },
});

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
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

type Topo = { maxBytes?: number; duplicateWindowMs: number; retainMs: number };

function startWorker(names: ActorNames, topology: Topo): Worker {
  const worker = createWorker({ nc, actors: [account], names, service: 'default', partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 300, retentionIntervalMs: 100, logger: log, topology });
  cleanups.push(() => worker.stop());
  return worker;
}

function clientFor(names: ActorNames) {
  const client = createActorClient(nc, { actors: [account], names, timeoutMs: 5000 });
  cleanups.push(() => client.close());
  return client;
}

const balance = async (client: ReturnType<typeof clientFor>, key: string) => ((await client.read('acct', key)).state as Acct).balance;

/** While no worker runs: a deposit of 100 to a1, five transfers of 10 from a1 to b1, then filler up to the bound. */
async function backlogInFullStream(names: ActorNames, topology: Topo): Promise<(key: string, op: string) => string> {
  await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...topology }));
  const subject = (key: string, op: string) => `${names.subjectPrefix}.acct.${key}.${op}`;
  await js.publish(subject('a1', 'deposit'), JSON.stringify({ amount: 100 }));
  for (let i = 0; i < 5; i++) await js.publish(subject('a1', 'transfer'), JSON.stringify({ to: 'b1', amount: 10 }));
  await fillUp(js, subject);
  return subject;
}

/** Filler up to the stream's bound, smaller and smaller so not even a send's few bytes fit. */
async function fillUp(client: JetStreamClient, subject: (key: string, op: string) => string): Promise<void> {
  let n = 0;
  for (const size of [1000, 100, 10, 0]) {
    let refused: unknown;
    while (refused === undefined && n < 2000) await client.publish(subject(`f${n++}`, 'pad'), size === 0 ? '' : JSON.stringify('x'.repeat(size))).catch((err: unknown) => (refused = err));
    expect(refused).toBeInstanceOf(JetStreamApiError);
    expect((refused as JetStreamApiError).code).toBe(10077);
  }
}

/** Both accounts right, and the stream takes (and applies) operations again without anyone purging it by hand. */
async function expectDrained(client: ReturnType<typeof clientFor>, subject: (key: string, op: string) => string): Promise<void> {
  await waitFor(async () => (await balance(client, 'a1')) === 50 && (await balance(client, 'b1')) === 50, {
    timeoutMs: 20_000,
    message: 'a1 debited and b1 credited five times',
  });
  await waitFor(
    async () => {
      try {
        await js.publish(subject('c1', 'deposit'), JSON.stringify({ amount: 1 }));
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: 20_000, message: 'the stream to accept operations again' },
  );
  expect((await client.call('acct', 'c1', 'deposit', { amount: 1 })).result).toBe(2);
  expect(await balance(client, 'b1')).toBe(50);
  expect(await balance(client, 'a1')).toBe(50);
}

describe('a full operations stream', () => {
  it('drains by itself once the worker catches up, with every pending send delivered once', async () => {
    const names = namesFor('full');
    // Applied operations are kept an hour unless the stream is nearly full.
    const topology = { maxBytes: 64 * 1024, duplicateWindowMs: 1000, retainMs: 3_600_000 };
    const subject = await backlogInFullStream(names, topology);
    const worker = startWorker(names, topology);
    await worker.start();
    await expectDrained(clientFor(names), subject);
  }, 60_000);

  it('hands sends that wait for room over to the next owner with the checkpoint', async () => {
    const names = namesFor('fullho');
    // Nothing is purged for 5 s, so the first worker stops while a1's sends still wait.
    const topology = { maxBytes: 64 * 1024, duplicateWindowMs: 5000, retainMs: 3_600_000 };
    const subject = await backlogInFullStream(names, topology);
    const first = startWorker(names, topology);
    await first.start();
    const client = clientFor(names);
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...topology }));
    const sender = partitionOf('acct', 'a1', PARTITIONS);
    const checkpoint = async () => (await topo.control.get(controlKeys.checkpoint(sender)))?.json<{ unsent?: boolean }>();
    const marked = async () => (await topo.control.get(controlKeys.unsent(sender, 'acct.a1')))?.operation === 'PUT';
    await waitFor(async () => (await checkpoint())?.unsent === true, { timeoutMs: 10_000, message: 'the checkpoint to say sends wait' });
    expect(await marked()).toBe(true);
    expect(await balance(client, 'a1')).toBe(50);
    expect(await balance(client, 'b1')).toBe(0);
    await first.stop();
    expect((await checkpoint())?.unsent).toBe(true);

    const second = startWorker(names, topology);
    await second.start();
    await expectDrained(client, subject);
    await waitFor(async () => (await checkpoint())?.unsent === undefined && !(await marked()), { timeoutMs: 5000, message: 'no send to wait any more' });
  }, 60_000);
});

describe('a sender deleted while its sends wait for room', () => {
  it('keeps its tombstone, where the sends wait, until they are stored: b1 is credited five times', async () => {
    const names = namesFor('fulldel');
    const topology = { maxBytes: 64 * 1024, duplicateWindowMs: 1000, retainMs: 3_600_000 };
    await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...topology }));
    const subject = (key: string, op: string) => `${names.subjectPrefix}.acct.${key}.${op}`;
    await js.publish(subject('a1', 'deposit'), JSON.stringify({ amount: 100 }));
    for (let i = 0; i < 5; i++) await js.publish(subject('a1', 'transfer'), JSON.stringify({ to: 'b1', amount: 10 }));
    await js.publish(subject('a1', '$delete'), '');
    await fillUp(js, subject);
    const worker = startWorker(names, topology);
    await worker.start();
    const client = clientFor(names);
    // Before: the tombstone was removed with the outbox in it once the checkpoint passed the delete: b1 stayed at 0.
    await waitFor(async () => (await balance(client, 'b1')) === 50, { timeoutMs: 20_000, message: 'b1 credited five times' });
    expect((await client.read('acct', 'a1')).state).toEqual({ balance: 0 });
  }, 60_000);
});

describe('many senders waiting on a full stream', () => {
  it('each wait with a marker of their own, so the checkpoint passes them all, however many', async () => {
    // max_payload 8 KiB: 100 keys of 128 characters would not fit in one checkpoint record.
    const small = await startNatsServer({ config: 'max_payload: 8192' });
    const snc = await connect({ servers: small.url });
    cleanups.push(async () => {
      await snc.close();
      await small.stop();
    });
    const sjs = jetstream(snc);
    const names = namesFor('many');
    const topology = { maxBytes: 96 * 1024, duplicateWindowMs: 1000, retainMs: 3_600_000 };
    await provisionTopology(snc, defaultTopology(names, { partitions: PARTITIONS, ...topology }));
    const subject = (key: string, op: string) => `${names.subjectPrefix}.acct.${key}.${op}`;
    const senders: string[] = [];
    for (let n = 0; senders.length < 100; n++) {
      const k = `${String(n).padStart(4, '0')}${'s'.repeat(124)}`;
      if (partitionOf('acct', k, PARTITIONS) === 0) senders.push(k);
    }
    for (const k of senders) await sjs.publish(subject(k, 'deposit'), JSON.stringify({ amount: 5 }));
    for (const k of senders) await sjs.publish(subject(k, 'transfer'), JSON.stringify({ to: 'r1', amount: 2 }));
    await fillUp(sjs, subject);

    const worker = createWorker({ nc: snc, actors: [account], names, service: 'default', partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 300, retentionIntervalMs: 100, logger: log, topology });
    cleanups.push(() => worker.stop());
    await worker.start();
    const client = createActorClient(snc, { actors: [account], names, timeoutMs: 5000 });
    cleanups.push(() => client.close());
    await waitFor(async () => ((await client.read('acct', 'r1')).state as Acct).balance === 200, { timeoutMs: 30_000, message: 'every sender\'s send at r1' });
    for (const k of senders.slice(0, 5)) expect(((await client.read('acct', k)).state as Acct).balance).toBe(3);
    expect((await client.call('acct', 'r1', 'deposit', { amount: 1 })).result).toBe(201);
  }, 60_000);
});

/** Window of the duplicate-window tests: 1 s instead of 2 min. */
const SHORT_WINDOW = { duplicateWindowMs: 1000, retainMs: 3_600_000 };

/** A worker on its own names with the short window, taken its partitions; a deposit of 100 to a1. */
async function fundedA1(tag: string): Promise<{ names: ActorNames; worker: Worker; client: ReturnType<typeof clientFor> }> {
  const names = namesFor(tag);
  const worker = startWorker(names, SHORT_WINDOW);
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'the worker to take its partitions' });
  const client = clientFor(names);
  await client.call('acct', 'a1', 'deposit', { amount: 100 });
  return { names, worker, client };
}

/**
 * With the worker stopped: a1's partition loses its checkpoint and the duplicate window passes.
 * The next worker replays a1's operations (skipped: its record has them) and publishes the send
 * its record still holds again, which the stream now stores a second time.
 */
async function republishAfterWindow(names: ActorNames): Promise<void> {
  const topo = await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...SHORT_WINDOW }));
  await topo.control.delete(controlKeys.checkpoint(partitionOf('acct', 'a1', PARTITIONS)));
  // The window is time on the server's clock: nothing to poll but the clock.
  await new Promise((resolve) => setTimeout(resolve, SHORT_WINDOW.duplicateWindowMs + 200));
  const stored = (await jsm.streams.info(names.stream)).state.last_seq;
  await startWorker(names, SHORT_WINDOW).start();
  await waitFor(async () => (await jsm.streams.info(names.stream)).state.last_seq === stored + 1, { timeoutMs: 10_000, message: 'the send to be stored again' });
}

describe('a send stored again after the duplicate window', () => {
  it('is recognised by its receiver and applied once', async () => {
    const { names, worker, client } = await fundedA1('dupwin');
    for (let i = 0; i < 5; i++) await client.call('acct', 'a1', 'transfer', { to: 'b1', amount: 10 });
    await waitFor(async () => (await balance(client, 'b1')) === 50, { timeoutMs: 10_000, message: 'five deposits at b1' });
    await worker.stop();
    await republishAfterWindow(names);
    // An operation after it: once it is answered, b1 has seen the send stored again.
    expect((await client.call('acct', 'b1', 'deposit', { amount: 1 })).result).toBe(51);
    expect(await balance(client, 'a1')).toBe(50);
  }, 60_000);
});

describe('a deleted receiver', () => {
  it('keeps what it received: a send stored again after the window does not bring it back', async () => {
    const { names, worker, client } = await fundedA1('dupdel');
    await client.call('acct', 'a1', 'transfer', { to: 'b1', amount: 10 });
    await waitFor(async () => (await balance(client, 'b1')) === 10, { timeoutMs: 10_000, message: 'the deposit at b1' });
    const { seq } = await client.delete('acct', 'b1');
    // Later operations in b1's partition move its checkpoint past the delete (tombstones go then).
    await client.call('acct', 'b1', 'pad');
    await client.call('acct', 'b1', 'pad');
    expect((await client.read('acct', 'b1', { minSeq: seq })).state).toEqual({ balance: 0 });
    await worker.stop();
    await republishAfterWindow(names);
    expect((await client.call('acct', 'b1', 'deposit', { amount: 1 })).result).toBe(1);
  }, 60_000);
});

describe('unsent markers at partition start (F4)', () => {
  async function stoppedAfterDeposit(tag: string) {
    const { names, worker, client } = await fundedA1(tag);
    await worker.stop();
    const topo = await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...SHORT_WINDOW }));
    const p = partitionOf('acct', 'a1', PARTITIONS);
    return { names, client, topo, p };
  }

  it('takes up the keys a checkpoint of an older version lists, and gives them markers', async () => {
    const { names, client, topo, p } = await stoppedAfterDeposit('ckarray');
    // As an older version left it: a1's record holds a send the stream refused, the checkpoint passed it and lists a1.
    const entry = await topo.state.get('acct.a1');
    const rec = entry?.json<{ seq: number; outbox?: unknown[] }>() as { seq: number; outbox?: unknown[] };
    rec.outbox = [{ id: `$s.${topo.salt}.${topo.streamCreated}.${rec.seq}.0`, subject: `${names.subjectPrefix}.acct.b1.deposit`, input: JSON.stringify({ amount: 10 }), seq: rec.seq }];
    await topo.state.put('acct.a1', JSON.stringify(rec));
    const ck = (await topo.control.get(controlKeys.checkpoint(p)))?.json<Record<string, unknown>>() as Record<string, unknown>;
    expect(ck.seq).toBeGreaterThanOrEqual(rec.seq);
    await topo.control.put(controlKeys.checkpoint(p), JSON.stringify({ ...ck, unsent: ['acct.a1'] }));

    await startWorker(names, SHORT_WINDOW).start();
    // Before: the array was not read (only `unsent: true` was), and the send was never published.
    await waitFor(async () => (await balance(client, 'b1')) === 10, { timeoutMs: 10_000, message: 'the listed send at b1' });
    await waitFor(async () => (await topo.control.get(controlKeys.checkpoint(p)))?.json<{ unsent?: unknown }>().unsent === undefined, { timeoutMs: 5000, message: 'nothing to wait any more' });
    expect((await topo.control.get(controlKeys.unsent(p, 'acct.a1')))?.operation).not.toBe('PUT');
  }, 60_000);

  it('takes up a marker left behind whatever the checkpoint says, and removes it once its sends are stored', async () => {
    const { names, client, topo, p } = await stoppedAfterDeposit('stale');
    // a1's record still holds its delivered send (records keep them until their next write).
    const worker = startWorker(names, SHORT_WINDOW);
    await worker.start();
    await client.call('acct', 'a1', 'transfer', { to: 'b1', amount: 10 });
    await waitFor(async () => (await balance(client, 'b1')) === 10, { timeoutMs: 10_000, message: 'the deposit at b1' });
    await worker.stop();
    // A marker a crash left behind (its delete lost), under a checkpoint that says none exist.
    await topo.control.put(controlKeys.unsent(p, 'acct.a1'), '');
    expect((await topo.control.get(controlKeys.checkpoint(p)))?.json<{ unsent?: unknown }>().unsent).toBeUndefined();

    await startWorker(names, SHORT_WINDOW).start();
    // Before: it stayed until some later owner's checkpoint said markers exist, and that owner published a1's old outbox again.
    await waitFor(async () => (await topo.control.get(controlKeys.unsent(p, 'acct.a1')))?.operation !== 'PUT', { timeoutMs: 10_000, message: 'the stale marker removed' });
    // Its old send, published again after the window, is recognised at b1.
    expect((await client.call('acct', 'b1', 'deposit', { amount: 1 })).result).toBe(11);
    expect(await balance(client, 'a1')).toBe(90);
  }, 60_000);
});

describe('unsent markers under deploy/nats-least-privilege.conf', () => {
  it('are read by a worker connected as the `worker` user', async () => {
    const pass = 'lp-Worker-Secret-1';
    const config = [`JETACTOR_WORKER_PASS: "${pass}"`, 'JETACTOR_GATEWAY_PASS: "g"', 'JETACTOR_PUBLISHER_PASS: "p"', readFileSync(new URL('../../../deploy/nats-least-privilege.conf', import.meta.url), 'utf8')].join('\n');
    const lp = await startNatsServer({ config });
    const wnc = await connect({ servers: lp.url, user: 'worker', pass });
    cleanups.push(async () => {
      await wnc.close();
      await lp.stop();
    });
    // The file names the default streams and buckets.
    const names = defaultNames();
    const topo = await provisionTopology(wnc, defaultTopology(names, { partitions: PARTITIONS, ...SHORT_WINDOW }));
    const p = partitionOf('acct', 'a1', PARTITIONS);
    await topo.control.put(controlKeys.unsent(p, 'acct.a1'), '');
    const worker = createWorker({ nc: wnc, actors: [account], names, partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 300, logger: log, topology: SHORT_WINDOW });
    cleanups.push(() => worker.stop());
    await worker.start();
    // Before the permission: the scan's pulls were refused and the marker stayed.
    await waitFor(async () => (await topo.control.get(controlKeys.unsent(p, 'acct.a1')))?.operation !== 'PUT', { timeoutMs: 15_000, message: 'the marker taken up and removed' });
  }, 60_000);
});

describe('a full stream that refuses one send and takes the next ones (F2)', () => {
  it('delivers the refused send once there is room, after more than 64 later ones were applied', async () => {
    const names = namesFor('order');
    const topology = { maxBytes: 160 * 1024, duplicateWindowMs: 1000, retainMs: 3_600_000 };
    await provisionTopology(nc, defaultTopology(names, { partitions: PARTITIONS, ...topology }));
    const subject = (key: string, op: string) => `${names.subjectPrefix}.acct.${key}.${op}`;
    await js.publish(subject('a1', 'burst'), '');
    await fillUp(js, subject);
    // Room for the 70 small sends (~17 KB) but not for the big one (30 KB): filler removed by hand.
    const bytes = async () => (await jsm.streams.info(names.stream)).state.bytes;
    const full = await bytes();
    for (let n = 0; full - (await bytes()) < 24_000; n++) {
      await jsm.streams.purge(names.stream, { filter: `${partitionOf('acct', `f${n}`, PARTITIONS)}.${subject(`f${n}`, 'pad')}` });
    }
    expect(full - (await bytes())).toBeLessThan(27_000);
    const worker = startWorker(names, topology);
    await worker.start();
    const client = clientFor(names);
    // Before: b1 applied the 70 (its floor rose to the oldest of the last 64) and skipped the big one once stored: 70.
    await waitFor(async () => (await balance(client, 'b1')) === 1070, { timeoutMs: 20_000, message: 'the big deposit and the 70 small ones at b1' }).catch(() => undefined);
    expect(await balance(client, 'b1')).toBe(1070);
    expect((await client.call('acct', 'b1', 'deposit', { amount: 1 })).result).toBe(1071);
  }, 60_000);
});
