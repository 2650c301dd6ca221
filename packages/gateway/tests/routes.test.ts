import { defineActor, InvalidInputError } from '@jetactor/actor-runtime';
import { counter } from '@jetactor/counter-actor';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/index.js';
import { bodyOf, errorOf } from './support/http.js';
import { createMemoryClient, type MemoryClient } from './support/memory-client.js';

/** A second actor type, so the generic routes are exercised beyond the counter. */
const account = defineActor({
  type: 'account',
  initialState: () => ({ balance: 0 }),
  operations: {
    deposit: {
      input: (raw: unknown): number => {
        if (typeof raw !== 'number' || raw <= 0) throw new InvalidInputError('deposit takes a positive number');
        return raw;
      },
      handler: (s: { balance: number }, n: number) => ({ state: { balance: s.balance + n }, result: { balance: s.balance + n } }),
    },
    fail: () => {
      throw new Error('boom');
    },
    echo: (s: { balance: number }, input: unknown) => ({ state: s, result: input }),
  },
});

let client: MemoryClient;
let app: FastifyInstance;

beforeEach(async () => {
  client = createMemoryClient([counter, account]);
  app = await buildApp({ client });
});

afterEach(async () => {
  await app.close();
});

describe("the seed's counter routes", () => {
  it('runs the seed session: add 3, add 2 → 5, reset → 0', async () => {
    const add3 = await app.inject({ method: 'POST', url: '/api/counter/add?value=3' });
    expect(add3.statusCode).toBe(202);
    expect(bodyOf(add3)).toEqual({ signaled: 'add', type: 'counter', key: 'counter', seq: 1 });

    const add2 = await app.inject({ method: 'POST', url: '/api/counter/add', payload: { value: 2 } });
    expect(add2.statusCode).toBe(202);
    expect(bodyOf(add2)).toEqual({ signaled: 'add', type: 'counter', key: 'counter', seq: 2 });

    expect((await app.inject({ method: 'GET', url: '/api/counter' })).json()).toEqual({ value: 5 });

    const reset = await app.inject({ method: 'POST', url: '/api/counter/reset' });
    expect(reset.statusCode).toBe(202);
    expect(bodyOf(reset)).toEqual({ signaled: 'reset', type: 'counter', key: 'counter', seq: 3 });
    expect((await app.inject({ method: 'GET', url: '/api/counter' })).json()).toEqual({ value: 0 });

    expect(client.published.map((p) => [p.method, p.key, p.op, p.input])).toEqual([
      ['signal', 'counter', 'add', { value: 3 }],
      ['signal', 'counter', 'add', { value: 2 }],
      ['signal', 'counter', 'reset', undefined],
    ]);
  });

  it('reads a missing counter as 0', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/counter/never-written' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ value: 0 });
  });

  it('signals and reads any key', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/visits-home/add?value=7' });
    expect(bodyOf(res)).toEqual({ signaled: 'add', type: 'counter', key: 'visits-home', seq: 1 });
    expect((await app.inject({ method: 'GET', url: '/api/counter/visits-home' })).json()).toEqual({ value: 7 });
    expect((await app.inject({ method: 'GET', url: '/api/counter' })).json()).toEqual({ value: 0 });
  });

  it('adds 1 without input', async () => {
    await app.inject({ method: 'POST', url: '/api/counter/add' });
    expect((await app.inject({ method: 'GET', url: '/api/counter' })).json()).toEqual({ value: 1 });
  });

  it('passes ?minSeq and ?timeoutMs on to the read', async () => {
    await app.inject({ method: 'POST', url: '/api/counter/add?value=3' });
    const res = await app.inject({ method: 'GET', url: '/api/counter?minSeq=1&timeoutMs=250' });
    expect(res.json()).toEqual({ value: 3 });
    expect(client.reads.at(-1)).toEqual({ type: 'counter', key: 'counter', minSeq: 1, timeoutMs: 250, version: 1 });
  });

  it('awaits the result with ?wait=true', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/counter/k/add?value=4&wait=true' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: 4, seq: 1 });
  });
});

describe('POST /api/actors/:type/:key/:op', () => {
  it('signals with the body as input: 202 with the sequence', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/actors/account/alice/deposit', payload: '10', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ signaled: 'deposit', type: 'account', key: 'alice', seq: 1 });
    expect(client.published).toEqual([
      { method: 'signal', type: 'account', key: 'alice', op: 'deposit', input: 10, idempotencyKey: undefined },
    ]);
  });

  it('passes any JSON value through as the input', async () => {
    const input = { nested: [1, 'two', null, { three: true }] };
    const res = await app.inject({ method: 'POST', url: '/api/actors/account/alice/echo?wait=true', payload: input });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: input, seq: 1 });
  });

  it('turns ?value=n into {"value": n}', async () => {
    await app.inject({ method: 'POST', url: '/api/actors/counter/k/add?value=-5' });
    expect(client.published[0]?.input).toEqual({ value: -5 });
  });

  it('with ?wait=true returns 200 with the result and sequence', async () => {
    await app.inject({ method: 'POST', url: '/api/actors/account/bob/deposit', payload: '5', headers: { 'content-type': 'application/json' } });
    const res = await app.inject({
      method: 'POST',
      url: '/api/actors/account/bob/deposit?wait=true&timeoutMs=1000',
      payload: '7',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: { balance: 12 }, seq: 2 });
    expect(client.published.at(-1)?.method).toBe('call');
  });

  it('sends a result of undefined as null', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/actors/account/x/echo?wait=true' });
    expect(res.json()).toEqual({ result: null, seq: 1 });
  });

  it("answers an operation's error result with 422 and the worker's code", async () => {
    const res = await app.inject({ method: 'POST', url: '/api/actors/account/x/fail?wait=true' });
    expect(res.statusCode).toBe(422);
    expect(errorOf(res)).toEqual({ code: 'HANDLER_ERROR', message: expect.stringMatching(/boom/) as string });
  });

  it('answers a result out of range with 422 RESULT_OUT_OF_RANGE', async () => {
    await app.inject({ method: 'POST', url: `/api/actors/counter/big/add?value=${Number.MAX_SAFE_INTEGER}` });
    const res = await app.inject({ method: 'POST', url: '/api/actors/counter/big/add?value=1&wait=true' });
    expect(res.statusCode).toBe(422);
    expect(errorOf(res).code).toBe('RESULT_OUT_OF_RANGE');
    expect((await app.inject({ method: 'GET', url: '/api/counter/big' })).json()).toEqual({ value: Number.MAX_SAFE_INTEGER });
  });

  it('answers 504 TIMEOUT when the result does not come in time', async () => {
    client.applying = false;
    const res = await app.inject({ method: 'POST', url: '/api/actors/counter/k/add?wait=true&timeoutMs=50' });
    expect(res.statusCode).toBe(504);
    expect(errorOf(res).code).toBe('TIMEOUT');
  });
});

describe('Idempotency-Key', () => {
  it('is passed on, and a repeat returns the original sequence with duplicate: true', async () => {
    const headers = { 'idempotency-key': 'order-42_retry.1' };
    const first = await app.inject({ method: 'POST', url: '/api/counter/add?value=3', headers });
    const again = await app.inject({ method: 'POST', url: '/api/counter/add?value=3', headers });
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(first.json()).toEqual({ signaled: 'add', type: 'counter', key: 'counter', seq: 1 });
    expect(again.json()).toEqual({ signaled: 'add', type: 'counter', key: 'counter', seq: 1, duplicate: true });
    expect(client.published.map((p) => p.idempotencyKey)).toEqual(['order-42_retry.1', 'order-42_retry.1']);
    expect((await app.inject({ method: 'GET', url: '/api/counter' })).json()).toEqual({ value: 3 });
  });

  it('is passed on by DELETE', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/api/actors/counter/k', headers: { 'idempotency-key': 'del-1' } });
    expect(res.statusCode).toBe(202);
    expect(client.published[0]).toMatchObject({ method: 'delete', idempotencyKey: 'del-1' });
  });
});

describe('GET /api/actors/:type/:key', () => {
  it('returns type, key, state, seq and revision', async () => {
    await app.inject({ method: 'POST', url: '/api/actors/account/carol/deposit', payload: '3', headers: { 'content-type': 'application/json' } });
    const res = await app.inject({ method: 'GET', url: '/api/actors/account/carol' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ type: 'account', key: 'carol', state: { balance: 3 }, seq: 1, revision: 1 });
  });

  it('returns the initial state, seq 0 and revision 0 for a missing actor', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/actors/account/nobody' });
    expect(res.json()).toEqual({ type: 'account', key: 'nobody', state: { balance: 0 }, seq: 0, revision: 0 });
  });

  it('passes ?minSeq on and answers 504 when it is not reached', async () => {
    client.applying = false;
    await app.inject({ method: 'POST', url: '/api/actors/counter/k/add' });
    const res = await app.inject({ method: 'GET', url: '/api/actors/counter/k?minSeq=1&timeoutMs=20' });
    expect(res.statusCode).toBe(504);
    expect(errorOf(res).code).toBe('TIMEOUT');
    expect(client.reads.at(-1)).toEqual({ type: 'counter', key: 'k', minSeq: 1, timeoutMs: 20, version: 1 });
  });

  it('uses the default timeout for ?minSeq without ?timeoutMs', async () => {
    await app.inject({ method: 'GET', url: '/api/actors/counter/k?minSeq=0' });
    expect(client.reads.at(-1)).toEqual({ type: 'counter', key: 'k', minSeq: 0, timeoutMs: 5000, version: 1 });
  });
});

describe('GET /api/actors/:type (listing)', () => {
  it('pages through the actors in the order of their last update, with an opaque cursor', async () => {
    for (const k of ['b', 'a', 'c', 'x-1', 'x-2']) await app.inject({ method: 'POST', url: `/api/actors/counter/${k}/add` });
    const page1 = await app.inject({ method: 'GET', url: '/api/actors/counter?limit=2' });
    expect(page1.statusCode).toBe(200);
    const body1 = page1.json<{ items: Array<{ key: string }>; nextCursor: string | null }>();
    expect(body1.items.map((i) => i.key)).toEqual(['b', 'a']);
    expect(body1.items[0]).toEqual({ type: 'counter', key: 'b', state: 1, seq: 1, revision: 1 });
    expect(body1.nextCursor).toBe('2');

    const page2 = await app.inject({ method: 'GET', url: `/api/actors/counter?limit=2&cursor=${body1.nextCursor}` });
    const body2 = page2.json<{ items: Array<{ key: string }>; nextCursor: string | null }>();
    expect(body2.items.map((i) => i.key)).toEqual(['c', 'x-1']);
    const page3 = await app.inject({ method: 'GET', url: `/api/actors/counter?limit=2&cursor=${body2.nextCursor}` });
    expect(page3.json()).toEqual({ items: [expect.objectContaining({ key: 'x-2' })], nextCursor: null });
  });

  it('refuses a cursor that is not a nextCursor (digits) with 400', async () => {
    for (const cursor of ['b', '-1', '1.5', '12345678901234567', '%20']) {
      const res = await app.inject({ method: 'GET', url: `/api/actors/counter?cursor=${cursor}` });
      expect({ cursor, status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ cursor, status: 400, code: 'INVALID_REQUEST' });
    }
    // Digits past any stream sequence: refused by the client (RangeError), still a 400.
    expect((await app.inject({ method: 'GET', url: '/api/actors/counter?cursor=9999999999999999' })).json()).toMatchObject({ error: { code: 'INVALID_REQUEST' } });
  });

  it('filters by prefix', async () => {
    for (const k of ['x-1', 'y-1', 'x-2']) await app.inject({ method: 'POST', url: `/api/actors/counter/${k}/add` });
    const res = await app.inject({ method: 'GET', url: '/api/actors/counter?prefix=x-' });
    expect(res.json<{ items: Array<{ key: string }> }>().items.map((i) => i.key)).toEqual(['x-1', 'x-2']);
  });

  it('returns an empty page for a type without actors', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/actors/account' })).json()).toEqual({ items: [], nextCursor: null });
  });
});

describe('DELETE /api/actors/:type/:key', () => {
  it('signals a delete (202) and the actor reads as initial afterwards', async () => {
    await app.inject({ method: 'POST', url: '/api/counter/k/add?value=9' });
    const res = await app.inject({ method: 'DELETE', url: '/api/actors/counter/k' });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ signaled: 'delete', type: 'counter', key: 'k', seq: 2 });
    expect((await app.inject({ method: 'GET', url: '/api/counter/k' })).json()).toEqual({ value: 0 });
    expect((await app.inject({ method: 'GET', url: '/api/actors/counter' })).json()).toEqual({ items: [], nextCursor: null });
  });

  it('accepts an empty JSON body', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/api/actors/counter/k', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(202);
  });
});

describe('health', () => {
  it('GET /healthz is 200', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz is 200 while NATS is connected', async () => {
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', nats: 'connected' });
  });
});
