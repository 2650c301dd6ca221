import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { headers } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ActorError,
  createActorClient,
  createWorker,
  defineActor,
  OperationFailedError,
  TimerHeaders,
  Type,
  type ActorClient,
  type StoredTimer,
  type Worker,
} from '../src/index.js';
import { sendMsgId } from '../src/processing/msg-ids.js';

const PARTITIONS = 4;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** An account that transfers by sending `deposit` to another account. */
const account = defineActor({
  type: 'acct',
  initialState: () => ({ balance: 0 }),
  operations: {
    deposit: { input: Type.Object({ amount: Type.Integer({ minimum: 1 }) }), handler: (s, i) => ({ state: { balance: s.balance + i.amount }, result: s.balance + i.amount }) },
    transfer: {
      input: Type.Object({ to: Type.String(), amount: Type.Integer({ minimum: 1 }) }),
      handler: (s, i) => {
        if (s.balance < i.amount) throw new ActorError('INSUFFICIENT_FUNDS', 'balance too small');
        return { state: { balance: s.balance - i.amount }, result: s.balance - i.amount, send: [{ key: i.to, op: 'deposit', input: { amount: i.amount } }] };
      },
    },
    badSend: (s) => ({ state: { balance: s.balance + 1000 }, result: null, send: [{ key: 'a.b', op: 'deposit' }] }),
  },
});

/** A log that records what arrives, and sets and cancels timers. */
type LogState = { items: unknown[]; fired: Array<{ id: string | undefined; seq: number; time: number }> };
const journal = defineActor({
  type: 'journal',
  initialState: (): LogState => ({ items: [], fired: [] }),
  operations: {
    append: (s, input) => ({ state: { ...s, items: [...s.items, input] }, result: s.items.length + 1 }),
    /** Sends `count` appends to another journal, numbered. */
    fanout: (s, input) => {
      const { to, count } = input as { to: string; count: number };
      return { state: s, result: null, send: Array.from({ length: count }, (_, i) => ({ key: to, op: 'append', input: i })) };
    },
    later: (s, input) => {
      const { id, afterMs, every, targetKey } = input as { id: string; afterMs?: number; every?: number; targetKey?: string };
      return { state: s, result: null, schedule: [{ id, op: 'ring', input: { id }, afterMs, every, ...(targetKey ? { key: targetKey } : {}) }] };
    },
    stop: (s, input) => ({ state: s, result: null, cancel: [String(input)] }),
    badCron: (s) => ({ state: s, result: null, schedule: [{ id: 'x', op: 'ring', cron: 'not a cron' }] }),
    ring: (s, _input, ctx) => ({ state: { ...s, fired: [...s.fired, { id: ctx.timer, seq: ctx.seq, time: ctx.time.getTime() }] }, result: null }),
  },
});

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let worker: Worker;
let client: ActorClient;

async function startWorker(): Promise<Worker> {
  const w = createWorker({ nc, actors: [account, journal], partitions: PARTITIONS, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await w.start();
  await waitFor(() => w.settled(), { timeoutMs: 10_000, message: 'worker did not take its partitions' });
  return w;
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  worker = await startWorker();
  client = createActorClient(nc, { actors: [account, journal] });
});

afterAll(async () => {
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

async function state<T>(type: string, key: string): Promise<T> {
  return (await client.read(type, key)).state as T;
}

async function recordTimers(type: string, key: string): Promise<StoredTimer[]> {
  const kv = await new Kvm(nc).open('actors');
  const e = await kv.get(`${type}.${key}`);
  if (!e || e.operation !== 'PUT') return [];
  return e.json<{ timers?: StoredTimer[] }>().timers ?? [];
}

describe('sends', () => {
  it('a transfer debits the sender and deposits exactly once at the receiver', async () => {
    await client.call('acct', 's1', 'deposit', { amount: 100 });
    const r = await client.call('acct', 's1', 'transfer', { to: 's2', amount: 30 });
    expect(r.result).toBe(70);
    await waitFor(async () => (await state<{ balance: number }>('acct', 's2')).balance === 30, { timeoutMs: 5000, message: 'deposit to arrive' });
    await expect(client.call('acct', 's1', 'transfer', { to: 's2', amount: 1000 })).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    const s1 = await state<{ balance: number }>('acct', 's1');
    expect(s1.balance).toBe(70);
    // The deposit carries the runtime's salted msg id, and its record keeps no outbox once sent.
    const info = await jsm.streams.info('ACTORS');
    expect(info.state.messages).toBeGreaterThan(0);
  });

  it('a send to an invalid key fails the operation and changes nothing', async () => {
    const err = await client.call('acct', 'bad1', 'badSend').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationFailedError);
    expect((err as OperationFailedError).code).toBe('INVALID_SEND');
    expect((await state<{ balance: number }>('acct', 'bad1')).balance).toBe(0);
  });

  it('one sender to one receiver arrives in order', async () => {
    await client.call('journal', 'src', 'fanout', { to: 'dst', count: 100 });
    await waitFor(async () => (await state<LogState>('journal', 'dst')).items.length >= 100, { timeoutMs: 10_000, message: '100 sends to arrive' });
    expect((await state<LogState>('journal', 'dst')).items).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});

describe('timers', () => {
  it('a handler timer fires once, not early, with ctx.timer', async () => {
    const before = Date.now();
    await client.call('journal', 't1', 'later', { id: 'a', afterMs: 300 });
    await waitFor(async () => (await state<LogState>('journal', 't1')).fired.length === 1, { timeoutMs: 5000, message: 'timer to fire' });
    const s = await state<LogState>('journal', 't1');
    expect(s.fired[0]?.id).toBe('a');
    expect(s.fired[0]?.time).toBeGreaterThanOrEqual(before + 300);
    expect(await recordTimers('journal', 't1')).toEqual([]);
  });

  it('scheduling an id again replaces it; cancel removes it', async () => {
    await client.call('journal', 't2', 'later', { id: 'a', afterMs: 60_000 });
    await client.call('journal', 't2', 'later', { id: 'a', afterMs: 120_000 });
    const timers = await recordTimers('journal', 't2');
    expect(timers.map((t) => t.id)).toEqual(['a']);
    await client.call('journal', 't2', 'stop', 'a');
    expect(await recordTimers('journal', 't2')).toEqual([]);
  });

  it('a recurring timer fires repeatedly until cancelled', async () => {
    await client.call('journal', 't3', 'later', { id: 'tick', every: 150 });
    await waitFor(async () => (await state<LogState>('journal', 't3')).fired.length >= 3, { timeoutMs: 10_000, message: 'three ticks' });
    await client.call('journal', 't3', 'stop', 'tick');
    const n = (await state<LogState>('journal', 't3')).fired.length;
    expect(await recordTimers('journal', 't3')).toEqual([]);
    // A later add proves the partition applied everything after the cancel; no tick follows it.
    await client.call('journal', 't3', 'append', 'x');
    expect((await state<LogState>('journal', 't3')).fired.length).toBe(n);
  });

  it('a timer may target another actor', async () => {
    await client.call('journal', 't4', 'later', { id: 'other', afterMs: 50, targetKey: 't4-target' });
    await waitFor(async () => (await state<LogState>('journal', 't4-target')).fired.length === 1, { timeoutMs: 5000, message: 'timer sent to the target' });
    // Fired through a send, not by the target's own timer.
    expect((await state<LogState>('journal', 't4-target')).fired[0]?.id).toBeUndefined();
  });

  it('a bad cron expression is INVALID_TIMER', async () => {
    await expect(client.call('journal', 't5', 'badCron')).rejects.toMatchObject({ code: 'INVALID_TIMER' });
  });

  it('timer headers on a plain publish schedule the operation; $cancel cancels', async () => {
    const h = headers();
    h.set(TimerHeaders.DelayMs, '200');
    h.set(TimerHeaders.Id, 'hdr');
    const inbox = `_INBOX.${Math.random().toString(36).slice(2)}`;
    const sub = nc.subscribe(inbox, { max: 1 });
    h.set('Jetactor-Reply', inbox);
    nc.publish('actors.journal.t6.append', JSON.stringify('hello'), { headers: h });
    for await (const m of sub) {
      const body = m.json<{ result: { scheduled: string; id: string; at: string } }>();
      expect(body.result).toMatchObject({ scheduled: 'append', type: 'journal', key: 't6', id: 'hdr' });
      expect(Date.parse(body.result.at)).toBeGreaterThan(0);
    }
    await waitFor(async () => (await state<LogState>('journal', 't6')).items.length === 1, { timeoutMs: 5000, message: 'scheduled append' });
    expect((await state<LogState>('journal', 't6')).items).toEqual(['hello']);

    const h2 = headers();
    h2.set(TimerHeaders.DelayMs, '60000');
    h2.set(TimerHeaders.Id, 'gone');
    nc.publish('actors.journal.t6.append', '"never"', { headers: h2 });
    await waitFor(async () => (await recordTimers('journal', 't6')).length === 1, { timeoutMs: 5000, message: 'timer stored' });
    const r = await client.call('journal', 't6', '$cancel', { id: 'gone' });
    expect(r.result).toEqual({ cancelled: true, id: 'gone' });
    expect(await recordTimers('journal', 't6')).toEqual([]);
  });

  it('a forged or early $fire fires nothing', async () => {
    await client.call('journal', 't7', 'later', { id: 'f', afterMs: 60_000 });
    const [t] = await recordTimers('journal', 't7');
    expect(t).toBeDefined();
    // Published as anyone could over plain NATS, each awaited through its reply.
    for (const payload of [{ id: 'f', n: t?.n, at: t?.at }, { id: 'f', n: 1, at: 1 }, 'junk']) {
      const h = headers();
      const inbox = `_INBOX.${Math.random().toString(36).slice(2)}`;
      h.set('Jetactor-Reply', inbox);
      const sub = nc.subscribe(inbox, { max: 1 });
      nc.publish('actors.journal.t7.$fire', JSON.stringify(payload), { headers: h });
      for await (const m of sub) expect(m.json<{ result: unknown }>().result).toBeNull();
    }
    expect((await state<LogState>('journal', 't7')).fired).toEqual([]);
    expect((await recordTimers('journal', 't7')).map((x) => x.id)).toEqual(['f']);
  });

  it('a timer survives the worker: another worker fires it', async () => {
    await client.call('journal', 't8', 'later', { id: 'survive', afterMs: 1500 });
    await worker.stop();
    worker = await startWorker();
    await waitFor(async () => (await state<LogState>('journal', 't8')).fired.length === 1, { timeoutMs: 10_000, message: 'timer fired by the next worker' });
    expect((await state<LogState>('journal', 't8')).fired[0]?.id).toBe('survive');
  });
});

describe('the msg ids of sends and firings', () => {
  async function salt(): Promise<string> {
    const e = await (await new Kvm(nc).open('actors_ctl')).get('salt');
    return e?.json<{ salt: string }>().salt ?? '';
  }

  it('do not show the salt to a subscriber of the operations', async () => {
    const seen: string[] = [];
    // What anyone allowed to subscribe to the operation subjects sees.
    const sub = nc.subscribe('actors.>', {
      callback: (_e, m) => {
        seen.push(m.headers?.get('Nats-Msg-Id') ?? '');
      },
    });
    try {
      await client.call('acct', 'm1', 'deposit', { amount: 10 });
      await client.call('acct', 'm1', 'transfer', { to: 'm2', amount: 4 });
      await client.call('journal', 'm3', 'later', { id: 'soon', afterMs: 50 });
      await waitFor(async () => (await state<{ balance: number }>('acct', 'm2')).balance === 4, { timeoutMs: 5000, message: 'the deposit' });
      await waitFor(async () => (await state<LogState>('journal', 'm3')).fired.length === 1, { timeoutMs: 5000, message: 'the firing' });
      await nc.flush();
    } finally {
      sub.unsubscribe();
    }
    const s = await salt();
    expect(s).toMatch(/^[A-Za-z0-9_-]{12}$/);
    const ids = seen.filter((id) => id.startsWith('$'));
    expect(ids.filter((id) => id.startsWith('$s.'))).toHaveLength(1);
    expect(ids.filter((id) => id.startsWith('$f.')).length).toBeGreaterThanOrEqual(1);
    // Before: `$s.<salt>.…` and `$f.<salt>.…`.
    expect(ids.filter((id) => id.includes(s))).toEqual([]);
  });

  it('an older version\'s send id (the salt in it) is still the same send as its HMAC twin: applied once', async () => {
    const s = await salt();
    const stream = Date.parse((await jsm.streams.info('ACTORS')).created);
    const js = jetstream(nc);
    const h = headers();
    h.set('Jetactor-Send', 'acct.old1 5000');
    // As an older worker published send 0 of the operation at seq 5, then the same send with the new id.
    await js.publish('actors.acct.u1.deposit', JSON.stringify({ amount: 5 }), { msgID: `$s.${s}.${stream}.5.0`, headers: h });
    await js.publish('actors.acct.u1.deposit', JSON.stringify({ amount: 5 }), { msgID: sendMsgId(s, stream, 5, 0), headers: h });
    await client.call('acct', 'u1', 'deposit', { amount: 1 });
    expect(await state<{ balance: number }>('acct', 'u1')).toEqual({ balance: 6 });
  });
});
