/**
 * Timers at their bounds, against a real nats-server and worker: what a timer's dead letter
 * holds and what resubmitting it does, cron expressions that never match, and times past the
 * largest valid date.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActorError, createActorClient, createWorker, defineActor, TimerHeaders, Type, type ActorClient, type DeadLetter, type Worker } from '../src/internal.js';
import { MAX_TIMERS_PER_ACTOR } from '../src/effects/effect-limits.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

type Vault = { balance: number };
const amount = Type.Integer({ minimum: 1 });
const vault = defineActor({
  type: 'vault',
  initialState: (): Vault => ({ balance: 0 }),
  operations: {
    deposit: { input: amount, handler: (s, n) => ({ state: { balance: s.balance + n }, result: s.balance + n }) },
    withdraw: {
      input: amount,
      handler: (s, n) => {
        if (s.balance < n) throw new ActorError('INSUFFICIENT_FUNDS', `balance ${s.balance} is less than ${n}`);
        return { state: { balance: s.balance - n }, result: s.balance - n };
      },
    },
    /** Like `withdraw`, but a balance too low is a crash (a plain Error: HANDLER_ERROR), not a refusal. */
    spend: {
      input: amount,
      handler: (s, n) => {
        if (s.balance < n) throw new Error(`balance ${s.balance} is less than ${n}`);
        return { state: { balance: s.balance - n }, result: s.balance - n };
      },
    },
    /** Sets `count` timers far in the future (f0, f1, …). */
    fill: {
      input: Type.Integer({ minimum: 1, maximum: MAX_TIMERS_PER_ACTOR }),
      handler: (s, count) => ({ state: s, result: null, schedule: Array.from({ length: count }, (_, i) => ({ id: `f${i}`, op: 'deposit', input: 1, at: '2099-01-01T00:00:00Z' })) }),
    },
  },
});

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let worker: Worker;
let client: ActorClient;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  worker = createWorker({ nc, actors: [vault], partitions: 2, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'worker did not take its partitions' });
  client = createActorClient(nc, { actors: [vault] });
});

afterAll(async () => {
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

async function balance(key: string): Promise<number> {
  return ((await client.read('vault', key)).state as Vault).balance;
}

/** The dead letters of one actor, in order. */
async function lettersOf(key: string): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  let cursor: number | undefined;
  for (;;) {
    const page = await client.deadLetters({ limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
    out.push(...page.items.filter((d) => d.key === key));
    if (page.nextCursor === null) return out;
    cursor = page.nextCursor;
  }
}

async function letters(key: string, count: number): Promise<DeadLetter[]> {
  let got: DeadLetter[] = [];
  await waitFor(async () => (got = await lettersOf(key)).length >= count, { timeoutMs: 10_000, message: `${count} dead letters of ${key}` });
  return got;
}

/** Stores an operation with timer headers, as plain NATS does (acknowledged by the stream). */
async function publishTimer(key: string, op: string, input: unknown, timer: Partial<Record<keyof typeof TimerHeaders, string>>): Promise<void> {
  const h = headers();
  for (const [name, value] of Object.entries(timer)) h.set(TimerHeaders[name as keyof typeof TimerHeaders], value);
  await js.publish(`actors.vault.${key}.${op}`, JSON.stringify(input), { headers: h });
}

describe('a timer firing that fails', () => {
  it('is a dead letter of the operation it fired, and resubmitting it applies that operation', async () => {
    await client.schedule('vault', 'v1', 'spend', 50, { delayMs: 0, id: 'pay' });
    const [dead] = await letters('v1', 1);
    // Before: subject `actors.vault.v1.$fire`, op `$fire` and the fire payload; the resubmit matched no timer.
    expect(dead).toMatchObject({ subject: 'actors.vault.v1.spend', op: 'spend', code: 'HANDLER_ERROR', payload: '50' });
    expect(dead?.timer).toBeUndefined();
    await client.call('vault', 'v1', 'deposit', 80);
    await client.resubmit((dead as DeadLetter).dlqSeq);
    await waitFor(async () => (await balance('v1')) === 30, { timeoutMs: 10_000, message: 'the resubmitted spend to be applied' });
    expect((await client.timers('vault', 'v1')).timers).toEqual([]);
  });

  it('refused by its handler on purpose (an ActorError of its own) is no dead letter: the timer is fired, the state unchanged', async () => {
    await client.call('vault', 'v4', 'deposit', 5);
    const set = await client.schedule('vault', 'v4', 'withdraw', 50, { delayMs: 0, id: 'pay' });
    await waitFor(async () => (await client.timers('vault', 'v4', { minSeq: set.seq })).timers.length === 0, { timeoutMs: 10_000, message: 'the timer to fire' });
    // Dead letters are stored before the record that fired the timer: none will come.
    expect(await lettersOf('v4')).toEqual([]); // before: an INSUFFICIENT_FUNDS dead letter
    expect(await balance('v4')).toBe(5);
  });
});

describe('a timer request that fails', () => {
  it('keeps its timer headers: resubmitting it asks for the same timer, never applies the operation at once', async () => {
    await client.call('vault', 'v2', 'fill', MAX_TIMERS_PER_ACTOR);
    await publishTimer('v2', 'deposit', 1100, { At: '2099-06-01T00:00:00Z', Id: 'late' });
    const [full] = await letters('v2', 1);
    expect(full).toMatchObject({ op: 'deposit', code: 'INVALID_TIMER', payload: '1100', timer: { at: '2099-06-01T00:00:00Z', id: 'late' } });
    // Still full: the resubmit is the same timer request and fails the same way (before: state 0 -> 1100).
    const again = await client.resubmit((full as DeadLetter).dlqSeq);
    const [, second] = await letters('v2', 2);
    expect(second).toMatchObject({ seq: again.seq, op: 'deposit', code: 'INVALID_TIMER' });
    expect(await balance('v2')).toBe(0);
    // With room for it, the resubmit of that letter sets the timer, for its own time.
    await client.cancelTimer('vault', 'v2', 'f0', { wait: true });
    const set = await client.resubmit((second as DeadLetter).dlqSeq);
    const { timers } = await client.timers('vault', 'v2', { minSeq: set.seq });
    expect(timers.find((t) => t.id === 'late')).toMatchObject({ at: '2099-06-01T00:00:00.000Z', op: 'deposit', input: 1100 });
    expect(await balance('v2')).toBe(0);
  });

  it('with a bad timer header stays refused on resubmit', async () => {
    await publishTimer('v3', 'deposit', 5, { At: '2099-01-01T00:00:00Z', EveryMs: '10' });
    const [bad] = await letters('v3', 1);
    expect(bad).toMatchObject({ code: 'INVALID_TIMER' });
    await client.resubmit((bad as DeadLetter).dlqSeq);
    const [, again] = await letters('v3', 2);
    expect(again).toMatchObject({ code: 'INVALID_TIMER' });
    expect(await balance('v3')).toBe(0);
  });
});

describe('cron and time bounds', () => {
  it('a cron expression that never matches is INVALID_TIMER from the client and over NATS, and stalls nothing', async () => {
    const never = '0 0 31 2,4,6,9,11 *';
    await expect(client.schedule('vault', 'c1', 'deposit', 1, { cron: never })).rejects.toMatchObject({ code: 'INVALID_TIMER' });
    await Promise.all(Array.from({ length: 50 }, () => publishTimer('c1', 'deposit', 1, { Cron: never })));
    const dead = await letters('c1', 50);
    // Before: croner overflowed its stack in the fold (HANDLER_ERROR "Maximum call stack size exceeded").
    expect(new Set(dead.map((d) => d.code))).toEqual(new Set(['INVALID_TIMER']));
    expect(dead[0]?.message).toMatch(/matches no time within 10 years/);
    expect((await client.call('vault', 'c2', 'deposit', 1)).result).toBe(1);
  });

  it('a recurring timer cannot step past the largest valid date; listing never fails', async () => {
    await expect(client.schedule('vault', 'd1', 'deposit', 1, { at: 1, every: 8_640_000_000_000_000 })).rejects.toMatchObject({ code: 'INVALID_TIMER' });
    await publishTimer('d1', 'deposit', 1, { At: '1', EveryMs: '8640000000000000' });
    const [dead] = await letters('d1', 1);
    expect(dead).toMatchObject({ code: 'INVALID_TIMER' });
    // The longest period fires once (its time is past) and moves ten years on.
    const t = await client.schedule('vault', 'd1', 'deposit', 1, { at: 1, every: 315_576_000_000, id: 'decade' });
    await waitFor(async () => (await balance('d1')) === 1, { timeoutMs: 10_000, message: 'the timer to fire once' });
    const { timers } = await client.timers('vault', 'd1', { minSeq: t.seq });
    expect(timers).toHaveLength(1);
    expect(Date.parse(timers[0]?.at ?? '')).toBeGreaterThan(Date.now());
  });
});
