/**
 * Timers over HTTP (issue 11 §2), on a real nats-server with an in-process worker and the
 * gateway as `npm run gateway` runs it: scheduling through the signal route's timer
 * parameters (400 INVALID_TIMER for bad ones, 202 with the id and time, the headers actually
 * stored in the stream), listing an actor's timers from its record, cancelling one (`$cancel`),
 * auth scopes, and — once the worker side stores and fires timers — timers that fire.
 */
import { defineActor } from '@jetactor/actor-runtime';
import { type StateRecord, type StoredTimer } from '@jetactor/actor-runtime/internal';
import { counter } from '@jetactor/counter-actor';
import { waitFor } from '@jetactor/testing';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { headers } from '@nats-io/nats-core';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, parseAuthTokens } from '../src/index.js';
import { bodyOf, errorOf } from './support/http.js';
import { startInProcessStack, type InProcessStack } from './support/in-process-stack.js';
import { createMemoryClient } from './support/memory-client.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A type named `timers` with an operation named `timers`: the names must not collide with the timer routes. */
const timersType = defineActor({
  type: 'timers',
  initialState: (): number => 0,
  operations: { timers: (s: number) => ({ state: s + 1, result: s + 1 }) },
});

let stack: InProcessStack;
let jsm: JetStreamManager;
let kv: KV;

beforeAll(async () => {
  stack = await startInProcessStack(log, undefined, [counter, timersType]);
  jsm = await jetstreamManager(stack.nc);
  kv = await new Kvm(stack.nc).open('actors');
});

afterAll(async () => {
  await stack?.stop();
});

const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => stack.gateway.app.inject(opts);

function post(url: string, body?: string, extra: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return inject({
    method: 'POST',
    url,
    headers: { ...extra, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: body }),
  });
}

/** Messages the stream holds for one actor (any partition, any operation). */
async function storedFor(type: string, key: string): Promise<number> {
  const info = await jsm.streams.info('ACTORS', { subjects_filter: `*.actors.${type}.${key}.*` });
  return Object.values(info.state.subjects ?? {}).reduce((n, c) => n + c, 0);
}

/** The stored message at `seq`: its subject without the partition, headers and payload. */
async function stored(seq: number): Promise<{ subject: string; headers: Record<string, string>; data: string }> {
  const m = await jsm.streams.getMessage('ACTORS', { seq });
  if (!m) throw new Error(`no message ${seq}`);
  const h: Record<string, string> = {};
  for (const [k, v] of m.header) h[k] = v.join(',');
  return { subject: m.subject.split('.').slice(1).join('.'), headers: h, data: m.string() };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('scheduling through the signal route: invalid timers', () => {
  it('answers 400 INVALID_TIMER naming what is wrong, and publishes nothing', async () => {
    const cases: Array<[string, RegExp]> = [
      ['delayMs=-1', /delayMs/],
      ['delayMs=abc', /delayMs/],
      ['delayMs=', /delayMs/],
      ['delayMs=1.5', /delayMs/],
      ['at=yesterday', /at/],
      ['at=2026-13-45T99:00:00Z', /at/],
      [`at=${'9'.repeat(17)}`, /at/],
      ['at=2030-01-01T00:00:00Z&delayMs=5', /at or delayMs/],
      ['every=50', /every/],
      ['every=1000&cron=*%20*%20*%20*%20*', /every or cron/],
      ['cron=not%20a%20cron', /cron/],
      ['cron=61%20*%20*%20*%20*', /cron/],
      // Issue 18: croner overflowed its stack on a day no month has (500 INTERNAL_ERROR), and a
      // period of the largest date stepped a timer past it.
      ['cron=0%200%2031%202,4,6,9,11%20*', /matches no time within 10 years/],
      ['at=1&every=8640000000000000', /every/],
      ['every=315576000001', /every/],
      ['delayMs=10&id=bad.id', /timer id/],
      [`delayMs=10&id=${'x'.repeat(65)}`, /timer id/],
      ['id=only-an-id', /at, delayMs, every or cron/],
    ];
    for (const [query, message] of cases) {
      const res = await post(`/api/actors/counter/bad-timer/add?${query}`, '1');
      expect({ query, status: res.statusCode, code: errorOf(res).code }).toEqual({ query, status: 400, code: 'INVALID_TIMER' });
      expect(errorOf(res).message, query).toMatch(message);
    }
    expect(await storedFor('counter', 'bad-timer')).toBe(0);
  });

  it('validates the operation and its input as for a signal', async () => {
    const unknownOp = await post('/api/actors/counter/bad-input/nope?delayMs=1000');
    expect({ status: unknownOp.statusCode, code: errorOf(unknownOp).code }).toEqual({ status: 404, code: 'UNKNOWN_OPERATION' });
    const badInput = await post('/api/actors/counter/bad-input/add?delayMs=1000', '1.5');
    expect({ status: badInput.statusCode, code: errorOf(badInput).code }).toEqual({ status: 400, code: 'INVALID_INPUT' });
    const unknownType = await post('/api/actors/nosuchtype/bad-input/add?delayMs=1000');
    expect({ status: unknownType.statusCode, code: errorOf(unknownType).code }).toEqual({ status: 404, code: 'UNKNOWN_ACTOR' });
    const badKey = await post('/api/actors/counter/bad.key/add?delayMs=1000');
    expect({ status: badKey.statusCode, code: errorOf(badKey).code }).toEqual({ status: 400, code: 'INVALID_KEY' });
    const waited = await post('/api/actors/counter/bad-input/add?delayMs=1000&wait=true', '1');
    expect({ status: waited.statusCode, code: errorOf(waited).code }).toEqual({ status: 400, code: 'INVALID_REQUEST' });
    expect(await storedFor('counter', 'bad-input')).toBe(0);
  });
});

describe('scheduling through the signal route: 202 and what is stored', () => {
  it('turns delayMs into an absolute time, answers it with a generated id, and stores exactly that', async () => {
    const before = Date.now();
    const res = await post('/api/actors/counter/sched-delay/add?delayMs=60000', '5');
    const after = Date.now();
    expect(res.statusCode).toBe(202);
    const body = bodyOf(res) as { scheduled: string; type: string; key: string; id: string; at: string; seq: number };
    expect(Object.keys(body).sort()).toEqual(['at', 'id', 'key', 'scheduled', 'seq', 'type']);
    expect(body).toMatchObject({ scheduled: 'add', type: 'counter', key: 'sched-delay' });
    expect(body.id).toMatch(/^r[A-Za-z0-9_-]{21}$/);
    expect(body.at).toMatch(ISO);
    const at = Date.parse(body.at);
    expect(at).toBeGreaterThanOrEqual(before + 60_000);
    expect(at).toBeLessThanOrEqual(after + 60_000);

    const m = await stored(body.seq);
    expect(m.subject).toBe('actors.counter.sched-delay.add');
    expect(m.data).toBe('5');
    expect(m.headers).toMatchObject({ 'Jetactor-Timer-At': String(at), 'Jetactor-Timer-Id': body.id });
    expect(m.headers['Jetactor-Timer-Delay-Ms']).toBeUndefined();

    // Another schedule without an id gets another id.
    const other = bodyOf(await post('/api/actors/counter/sched-delay/add?delayMs=60000', '5'));
    expect(other.id).not.toBe(body.id);
  });

  it('takes at as ISO 8601 or ms, with a given id; a time in the past is allowed', async () => {
    const iso = await post('/api/actors/counter/sched-at/add?at=2031-05-06T07:08:09Z&id=my-timer_1', '{"value":2}');
    expect(iso.statusCode).toBe(202);
    expect(bodyOf(iso)).toMatchObject({ scheduled: 'add', id: 'my-timer_1', at: '2031-05-06T07:08:09.000Z' });
    const m = await stored(bodyOf(iso).seq as number);
    expect(m.headers).toMatchObject({ 'Jetactor-Timer-At': String(Date.parse('2031-05-06T07:08:09Z')), 'Jetactor-Timer-Id': 'my-timer_1' });
    expect(m.data).toBe('{"value":2}');

    const ms = await post('/api/actors/counter/sched-at/add?at=1999999999999&id=ms');
    expect(bodyOf(ms)).toMatchObject({ id: 'ms', at: new Date(1999999999999).toISOString() });

    const past = await post('/api/actors/counter/sched-at/reset?at=2001-01-01T00:00:00.000Z');
    expect(past.statusCode).toBe(202);
    expect(bodyOf(past).at).toBe('2001-01-01T00:00:00.000Z');
  });

  it('stores every and cron with the first time fixed by the gateway', async () => {
    const before = Date.now();
    const every = await post('/api/actors/counter/sched-rec/add?every=1000&id=tick', '1');
    expect(every.statusCode).toBe(202);
    const everyAt = Date.parse(bodyOf(every).at as string);
    expect(everyAt).toBeGreaterThanOrEqual(before + 1000);
    expect(everyAt).toBeLessThanOrEqual(Date.now() + 1000);
    expect((await stored(bodyOf(every).seq as number)).headers).toMatchObject({ 'Jetactor-Timer-Every-Ms': '1000', 'Jetactor-Timer-At': String(everyAt), 'Jetactor-Timer-Id': 'tick' });

    const hourly = await post(`/api/actors/counter/sched-rec/add?cron=${encodeURIComponent('0 * * * *')}&id=hourly`, '1');
    expect(hourly.statusCode).toBe(202);
    const hourlyAt = Date.parse(bodyOf(hourly).at as string);
    const nextHour = (Math.floor(Date.now() / 3_600_000) + 1) * 3_600_000;
    expect([nextHour, nextHour + 3_600_000]).toContain(hourlyAt);
    expect((await stored(bodyOf(hourly).seq as number)).headers).toMatchObject({ 'Jetactor-Timer-Cron': '0 * * * *', 'Jetactor-Timer-At': String(hourlyAt) });

    // First time given, then recurring.
    const both = await post(`/api/actors/counter/sched-rec/add?at=2030-01-01T00:00:00Z&cron=${encodeURIComponent('*/5 * * * *')}&id=fives`);
    expect(bodyOf(both)).toMatchObject({ id: 'fives', at: '2030-01-01T00:00:00.000Z' });
  });

  it('answers a retry with the same Idempotency-Key with the original id, time and seq; another input is 422', async () => {
    const idem = { 'idempotency-key': 'timer-order-7' };
    const first = await post('/api/actors/counter/sched-idem/add?delayMs=60000', '3', idem);
    expect(first.statusCode).toBe(202);
    expect(bodyOf(first).id).toMatch(/^k[A-Za-z0-9_-]{21}$/);
    const retry = await post('/api/actors/counter/sched-idem/add?delayMs=60000', '3', idem);
    expect(retry.statusCode).toBe(202);
    expect(bodyOf(retry)).toEqual({ ...bodyOf(first), duplicate: true });

    const other = await post('/api/actors/counter/sched-idem/add?delayMs=60000', '4', idem);
    expect({ status: other.statusCode, code: errorOf(other).code }).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });

    // A key first used for a plain signal cannot schedule.
    const plainKey = { 'idempotency-key': 'plain-then-timer' };
    expect((await post('/api/actors/counter/sched-idem/add', '3', plainKey)).statusCode).toBe(202);
    const late = await post('/api/actors/counter/sched-idem/add?delayMs=1000', '3', plainKey);
    expect({ status: late.statusCode, code: errorOf(late).code }).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('serves a type and an operation literally named timers', async () => {
    const plain = await post('/api/actors/timers/k1/timers');
    expect(plain.statusCode).toBe(202);
    expect(bodyOf(plain)).toMatchObject({ signaled: 'timers', type: 'timers', key: 'k1' });
    const scheduled = await post('/api/actors/timers/timers/timers?delayMs=60000&id=t');
    expect(bodyOf(scheduled)).toMatchObject({ scheduled: 'timers', type: 'timers', key: 'timers', id: 't' });
    // An operation named timers on a type without one is that type's 404, not a missing route.
    const none = await post('/api/actors/counter/k1/timers');
    expect({ status: none.statusCode, code: errorOf(none).code }).toEqual({ status: 404, code: 'UNKNOWN_OPERATION' });
    // And a key named timers still reads.
    expect((await inject({ method: 'GET', url: '/api/actors/counter/timers' })).statusCode).toBe(200);
  });
});

describe('GET /api/actors/:type/:key/timers', () => {
  it('lists none for an actor never written', async () => {
    const res = await inject({ method: 'GET', url: '/api/actors/counter/never-written/timers' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ type: 'counter', key: 'never-written', timers: [] });
  });

  it("reads the actor's record: soonest first, target, parsed input, every and cron", async () => {
    const timers: StoredTimer[] = [
      { id: 'later', at: Date.UTC(2031, 0, 1), n: 3, op: 'add', type: 'counter', key: 'listed', input: '{"value":2}', cron: '0 0 * * *' },
      { id: 'soon', at: Date.UTC(2030, 0, 1), n: 2, op: 'reset', type: 'counter', key: 'elsewhere', every: 5000 },
      { id: 'mid', at: Date.UTC(2030, 6, 1), n: 1, op: 'add', type: 'counter', key: 'listed', input: '3' },
    ];
    const record: StateRecord = { state: 7, seq: 3, epoch: 1, updatedAt: new Date().toISOString(), timers };
    await kv.put('counter.listed', JSON.stringify(record));
    const res = await inject({ method: 'GET', url: '/api/actors/counter/listed/timers' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      type: 'counter',
      key: 'listed',
      timers: [
        { id: 'soon', at: '2030-01-01T00:00:00.000Z', op: 'reset', target: { type: 'counter', key: 'elsewhere' }, every: 5000 },
        { id: 'mid', at: '2030-07-01T00:00:00.000Z', op: 'add', target: { type: 'counter', key: 'listed' }, input: 3 },
        { id: 'later', at: '2031-01-01T00:00:00.000Z', op: 'add', target: { type: 'counter', key: 'listed' }, input: { value: 2 }, cron: '0 0 * * *' },
      ],
    });
  });

  it('refuses bad names and unknown types as the read route does', async () => {
    const badKey = await inject({ method: 'GET', url: '/api/actors/counter/bad*key/timers' });
    expect({ status: badKey.statusCode, code: errorOf(badKey).code }).toEqual({ status: 400, code: 'INVALID_KEY' });
    const unknown = await inject({ method: 'GET', url: '/api/actors/nosuchtype/k/timers' });
    expect({ status: unknown.statusCode, code: errorOf(unknown).code }).toEqual({ status: 404, code: 'UNKNOWN_ACTOR' });
  });
});

describe('DELETE /api/actors/:type/:key/timers/:id', () => {
  it('publishes $cancel with the id and answers 202', async () => {
    const res = await inject({ method: 'DELETE', url: '/api/actors/counter/cancel-me/timers/my-timer' });
    expect(res.statusCode).toBe(202);
    const body = bodyOf(res);
    expect(body).toEqual({ cancelled: 'my-timer', type: 'counter', key: 'cancel-me', seq: expect.any(Number) as number });
    const m = await stored(body.seq as number);
    expect(m.subject).toBe('actors.counter.cancel-me.$cancel');
    expect(JSON.parse(m.data)).toEqual({ id: 'my-timer' });
  });

  it('answers a bad timer id with 400 INVALID_TIMER and publishes nothing', async () => {
    for (const id of ['bad.id', 'x'.repeat(65), 'sp%20ace']) {
      const res = await inject({ method: 'DELETE', url: `/api/actors/counter/cancel-bad/timers/${id}` });
      expect({ id, status: res.statusCode, code: errorOf(res).code }).toEqual({ id, status: 400, code: 'INVALID_TIMER' });
    }
    expect(await storedFor('counter', 'cancel-bad')).toBe(0);
  });

  it('de-duplicates a retried cancel with the same Idempotency-Key', async () => {
    const idem = { 'idempotency-key': 'cancel-once' };
    const first = await inject({ method: 'DELETE', url: '/api/actors/counter/cancel-idem/timers/x', headers: idem });
    const retry = await inject({ method: 'DELETE', url: '/api/actors/counter/cancel-idem/timers/x', headers: idem });
    expect(bodyOf(retry)).toEqual({ ...bodyOf(first), duplicate: true });
  });
});

describe('timer routes in the OpenAPI document', () => {
  it('documents GET timers, DELETE timer and the timer parameters of the signal route', async () => {
    const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, Record<string, { parameters?: Array<{ name: string }>; tags?: string[] }>> }>();
    expect(doc.paths['/api/actors/{type}/{key}/timers']?.get?.tags).toEqual(['timers']);
    expect(doc.paths['/api/actors/{type}/{key}/timers/{id}']?.delete?.tags).toEqual(['timers']);
    const names = (doc.paths['/api/actors/{type}/{key}/{op}']?.post?.parameters ?? []).map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['delayMs', 'at', 'id', 'every', 'cron']));
  });
});

describe('timer routes and auth scopes', () => {
  const READER = 'reader-token-0123456789';
  const WRITER = 'writer-token-0123456789';
  it('lists with read, schedules and cancels with write', async () => {
    const app = await buildApp({ client: createMemoryClient(), authTokens: parseAuthTokens(`${READER}:read;${WRITER}:read,write`) });
    try {
      const as = (token: string) => ({ authorization: `Bearer ${token}` });
      const schedule = { method: 'POST', url: '/api/actors/counter/k/add?delayMs=1000' } as const;
      const cancel = { method: 'DELETE', url: '/api/actors/counter/k/timers/t1' } as const;
      const list = { method: 'GET', url: '/api/actors/counter/k/timers' } as const;
      expect((await app.inject({ ...schedule, headers: as(READER) })).statusCode).toBe(403);
      expect((await app.inject({ ...cancel, headers: as(READER) })).statusCode).toBe(403);
      expect((await app.inject({ ...list })).statusCode).toBe(401);
      const scheduled = await app.inject({ ...schedule, url: `${schedule.url}&id=t1`, headers: as(WRITER) });
      expect(scheduled.statusCode).toBe(202);
      const listed = await app.inject({ ...list, headers: as(READER) });
      expect(listed.json<{ timers: Array<{ id: string }> }>().timers.map((t) => t.id)).toEqual(['t1']);
      expect((await app.inject({ ...cancel, headers: as(WRITER) })).statusCode).toBe(202);
    } finally {
      await app.close();
    }
  });
});

/** The actor's state over HTTP. */
async function stateOf(key: string): Promise<unknown> {
  return (await inject({ method: 'GET', url: `/api/actors/counter/${key}` })).json<{ state: unknown }>().state;
}

async function timerIds(key: string, minSeq = 0): Promise<string[]> {
  const res = await inject({ method: 'GET', url: `/api/actors/counter/${key}/timers?minSeq=${minSeq}` });
  expect(res.statusCode).toBe(200);
  return res.json<{ timers: Array<{ id: string }> }>().timers.map((t) => t.id);
}

// These need the worker side of timers (the partition owner stores and fires them; the lead's
// "timers:" commits): against a worker without it, a scheduled operation is applied at once.
describe('timers that fire (worker side)', () => {
  it('stores a scheduled operation, applies it once at its time, and takes the timer off', async () => {
    const res = await post('/api/actors/counter/fire-1/add?delayMs=300&id=once', '5');
    expect(res.statusCode).toBe(202);
    expect(await timerIds('fire-1', bodyOf(res).seq as number)).toEqual(['once']);
    expect(await stateOf('fire-1')).toBe(0);
    await waitFor(async () => (await stateOf('fire-1')) === 5, { timeoutMs: 10_000, message: 'the timer to fire' });
    await waitFor(async () => (await timerIds('fire-1')).length === 0, { timeoutMs: 5_000, message: 'the fired timer to go' });
    expect(await stateOf('fire-1')).toBe(5);
  });

  it('answers the stored timer as the worker replies it', async () => {
    const res = await post('/api/actors/counter/fire-2/add?delayMs=60000&id=later', '1');
    const list = (await inject({ method: 'GET', url: `/api/actors/counter/fire-2/timers?minSeq=${bodyOf(res).seq as number}` })).json<{ timers: Array<{ id: string; at: string; op: string; target: unknown; input?: unknown }> }>();
    expect(list.timers).toEqual([{ id: 'later', at: bodyOf(res).at, op: 'add', target: { type: 'counter', key: 'fire-2' }, input: 1 }]);
  });

  it('fires a time in the past at once', async () => {
    await post('/api/actors/counter/fire-past/add?at=2001-01-01T00:00:00Z', '2');
    await waitFor(async () => (await stateOf('fire-past')) === 2, { timeoutMs: 10_000, message: 'the past timer to fire' });
  });

  it('cancels: ?wait=true says whether there was such a timer, and a cancelled timer never fires', async () => {
    const cancelled = await post('/api/actors/counter/fire-cancel/add?delayMs=400&id=doomed', '100');
    await post('/api/actors/counter/fire-cancel/add?delayMs=900&id=control', '1');
    const res = await inject({ method: 'DELETE', url: '/api/actors/counter/fire-cancel/timers/doomed?wait=true' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: { cancelled: true, id: 'doomed' }, seq: expect.any(Number) as number });
    expect(bodyOf(res).seq as number).toBeGreaterThan(bodyOf(cancelled).seq as number);
    const again = await inject({ method: 'DELETE', url: '/api/actors/counter/fire-cancel/timers/doomed?wait=true' });
    expect(again.json()).toMatchObject({ result: { cancelled: false, id: 'doomed' } });
    // The control timer is due after the cancelled one: once it fired, the cancelled one would have too.
    await waitFor(async () => (await stateOf('fire-cancel')) !== 0, { timeoutMs: 10_000, message: 'the control timer to fire' });
    expect(await stateOf('fire-cancel')).toBe(1);
  });

  it('replaces a timer of the same id, and a retried schedule sets one timer', async () => {
    await post('/api/actors/counter/fire-replace/add?delayMs=60000&id=same', '1');
    const second = await post('/api/actors/counter/fire-replace/add?delayMs=60000&id=same', '2');
    const idem = { 'idempotency-key': 'replace-retry' };
    await post('/api/actors/counter/fire-replace/add?delayMs=60000', '3', idem);
    const retry = await post('/api/actors/counter/fire-replace/add?delayMs=60000', '3', idem);
    const ids = await timerIds('fire-replace', bodyOf(retry).seq as number);
    expect(ids.sort()).toEqual(['same', bodyOf(retry).id as string].sort());
    const list = (await inject({ method: 'GET', url: '/api/actors/counter/fire-replace/timers' })).json<{ timers: Array<{ id: string; input?: unknown }> }>();
    expect(list.timers.find((t) => t.id === 'same')?.input).toBe(2);
    expect(bodyOf(second).id).toBe('same');
  });

  it('recurs with every until cancelled', async () => {
    await post('/api/actors/counter/fire-every/add?every=200&id=tick', '1');
    await waitFor(async () => ((await stateOf('fire-every')) as number) >= 3, { timeoutMs: 15_000, message: 'three ticks' });
    const res = await inject({ method: 'DELETE', url: '/api/actors/counter/fire-every/timers/tick?wait=true' });
    expect(res.json()).toMatchObject({ result: { cancelled: true, id: 'tick' } });
    expect(await timerIds('fire-every')).toEqual([]);
  });

  it('sets a timer from a plain NATS message with the timer headers', async () => {
    const h = headers();
    h.set('Jetactor-Timer-Delay-Ms', '200');
    h.set('Jetactor-Timer-Id', 'from-nats');
    const ack = await jetstream(stack.nc).publish('actors.counter.fire-nats.add', '4', { headers: h });
    await waitFor(async () => (await stateOf('fire-nats')) === 4, { timeoutMs: 10_000, message: 'the NATS timer to fire' });
    expect((await stored(ack.seq)).headers['Jetactor-Timer-Delay-Ms']).toBe('200');
  });

  it('lists a refused timer request as a dead letter with its timer headers; the resubmit asks for the timer again', async () => {
    const h = headers();
    h.set('Jetactor-Timer-At', '2099-01-01T00:00:00Z');
    h.set('Jetactor-Timer-Every-Ms', '10');
    await jetstream(stack.nc).publish('actors.counter.dlq-timer.add', '5', { headers: h });
    type Letter = { dlqSeq: number; seq: number; key: string; code: string; timer?: Record<string, string> };
    const letters = async () => (bodyOf(await inject({ method: 'GET', url: '/api/dlq?limit=1000' })) as { items: Letter[] }).items.filter((d) => d.key === 'dlq-timer');
    const [first] = await waitFor(async () => ((await letters()).length === 1 ? await letters() : undefined), { timeoutMs: 10_000, message: 'the dead letter' });
    expect(first).toMatchObject({ code: 'INVALID_TIMER', timer: { at: '2099-01-01T00:00:00Z', everyMs: '10' } });
    const res = await post(`/api/dlq/${(first as Letter).dlqSeq}/resubmit`);
    expect(res.statusCode).toBe(202);
    // Refused again as a timer, not applied as a plain add (before: the counter became 5).
    const again = await waitFor(async () => ((await letters()).length === 2 ? await letters() : undefined), { timeoutMs: 10_000, message: 'the second dead letter' });
    expect(again[1]).toMatchObject({ seq: (bodyOf(res) as { seq: number }).seq, code: 'INVALID_TIMER', timer: { at: '2099-01-01T00:00:00Z', everyMs: '10' } });
    expect(await stateOf('dlq-timer')).toBe(0);
  });
});
