/**
 * The gateway end to end: a real nats-server, a real worker hosting the counter, and
 * the gateway as `npm run gateway` starts it (runGateway, NATS connected in the
 * background), driven through `app.inject()`.
 */
import { waitFor, type NatsServer } from '@jetactor/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../src/run-gateway.js';
import { bodyOf, errorOf } from './support/http.js';
import { startInProcessStack, type InProcessStack } from './support/in-process-stack.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let workerNc: NatsConnection;
let gateway: RunningGateway;

let stack: InProcessStack;

beforeAll(async () => {
  stack = await startInProcessStack(log);
  ({ server, nc: workerNc, gateway } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => gateway.app.inject(opts);
const seqOf = (res: LightMyRequestResponse): number => bodyOf(res).seq as number;

describe('the seed session', () => {
  it('add 3, add 2 → {"value":5}; reset → {"value":0}', async () => {
    const add3 = await inject({ method: 'POST', url: '/api/counter/add?value=3' });
    expect(add3.statusCode).toBe(202);
    expect(bodyOf(add3)).toEqual({ signaled: 'add', type: 'counter', key: 'counter', seq: expect.any(Number) as number });

    const add2 = await inject({ method: 'POST', url: '/api/counter/add', payload: { value: 2 } });
    expect(add2.statusCode).toBe(202);
    expect(seqOf(add2)).toBeGreaterThan(seqOf(add3));

    const five = await inject({ method: 'GET', url: `/api/counter?minSeq=${seqOf(add2)}` });
    expect(five.statusCode).toBe(200);
    expect(five.json()).toEqual({ value: 5 });

    const reset = await inject({ method: 'POST', url: '/api/counter/reset', headers: { 'content-type': 'application/json' } });
    expect(reset.statusCode).toBe(202);
    const zero = await inject({ method: 'GET', url: `/api/counter?minSeq=${seqOf(reset)}` });
    expect(zero.json()).toEqual({ value: 0 });
  });

  it('reads a counter that was never written as 0, with seq and revision 0', async () => {
    expect((await inject({ method: 'GET', url: '/api/counter/never' })).json()).toEqual({ value: 0 });
    expect((await inject({ method: 'GET', url: '/api/actors/counter/never' })).json()).toEqual({
      type: 'counter',
      key: 'never',
      state: 0,
      seq: 0,
      revision: 0,
    });
  });
});

describe('calls and reads', () => {
  it('?wait=true returns the committed result', async () => {
    const first = await inject({ method: 'POST', url: '/api/actors/counter/waited/add?value=4&wait=true' });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ result: 4, seq: expect.any(Number) as number });
    const second = await inject({ method: 'POST', url: '/api/actors/counter/waited/add?wait=true', payload: '1', headers: { 'content-type': 'application/json' } });
    expect(second.json()).toMatchObject({ result: 5 });
    // The result is committed: a plain read (no minSeq) already sees it.
    const snap = await inject({ method: 'GET', url: '/api/actors/counter/waited' });
    expect(snap.json()).toMatchObject({ state: 5, seq: seqOf(second) });
    expect(bodyOf(snap).revision).toBeGreaterThan(0);
  });

  it('?minSeq never returns older state', async () => {
    for (let i = 1; i <= 15; i++) {
      const signaled = await inject({ method: 'POST', url: '/api/counter/monotonic/add' });
      const read = await inject({ method: 'GET', url: `/api/actors/counter/monotonic?minSeq=${seqOf(signaled)}` });
      expect(read.statusCode).toBe(200);
      const body = bodyOf(read);
      expect(body.seq).toBeGreaterThanOrEqual(seqOf(signaled));
      expect(body.state).toBe(i);
    }
  });

  it('?minSeq beyond anything published times out with 504', async () => {
    const res = await inject({ method: 'GET', url: '/api/actors/counter/monotonic?minSeq=999999999&timeoutMs=300' });
    expect(res.statusCode).toBe(504);
    expect(errorOf(res).code).toBe('TIMEOUT');
  });

  it("answers an operation's error result with 422 and leaves the state alone", async () => {
    const big = await inject({ method: 'POST', url: `/api/actors/counter/overflow/add?value=${Number.MAX_SAFE_INTEGER}&wait=true` });
    expect(big.statusCode).toBe(200);
    const over = await inject({ method: 'POST', url: '/api/actors/counter/overflow/add?value=1&wait=true' });
    expect(over.statusCode).toBe(422);
    expect(errorOf(over).code).toBe('RESULT_OUT_OF_RANGE');
    expect((await inject({ method: 'GET', url: '/api/counter/overflow' })).json()).toEqual({ value: Number.MAX_SAFE_INTEGER });
  });

  it('rejects bad input before publishing anything', async () => {
    const res = await inject({ method: 'POST', url: '/api/counter/untouched/add?value=1.5' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('INVALID_INPUT');
    expect((await inject({ method: 'GET', url: '/api/actors/counter/untouched' })).json()).toMatchObject({ seq: 0, revision: 0 });
  });
});

describe('Idempotency-Key', () => {
  it('applies a retried request once and answers the original seq with duplicate: true', async () => {
    const headers = { 'idempotency-key': 'payment-7f3a' };
    const first = await inject({ method: 'POST', url: '/api/counter/idem/add?value=5', headers });
    const retry = await inject({ method: 'POST', url: '/api/counter/idem/add?value=5', headers });
    expect(first.statusCode).toBe(202);
    expect(retry.statusCode).toBe(202);
    expect(bodyOf(first).duplicate).toBeUndefined();
    expect(bodyOf(retry)).toMatchObject({ seq: seqOf(first), duplicate: true });

    const other = await inject({ method: 'POST', url: '/api/counter/idem/add?value=5', headers: { 'idempotency-key': 'payment-8b1c' } });
    expect(seqOf(other)).toBeGreaterThan(seqOf(first));
    const read = await inject({ method: 'GET', url: `/api/counter/idem?minSeq=${seqOf(other)}` });
    expect(read.json()).toEqual({ value: 10 });
  });
});

describe('listing and deleting', () => {
  it('lists a type in pages', async () => {
    for (const k of ['list-e', 'list-a', 'list-c', 'list-b', 'list-d']) {
      expect((await inject({ method: 'POST', url: `/api/actors/counter/${k}/add?wait=true` })).statusCode).toBe(200);
    }
    const keys: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: LightMyRequestResponse = await inject({
        method: 'GET',
        url: `/api/actors/counter?prefix=list-&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      });
      expect(res.statusCode).toBe(200);
      const page = res.json<{ items: Array<{ type: string; key: string; state: unknown }>; nextCursor: string | null }>();
      expect(page.items.length).toBeLessThanOrEqual(2);
      for (const item of page.items) expect(item).toMatchObject({ type: 'counter', state: 1 });
      keys.push(...page.items.map((i) => i.key));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    // In the order of their last update (each was written once, in this order).
    expect(keys).toEqual(['list-e', 'list-a', 'list-c', 'list-b', 'list-d']);
    expect(pages).toBe(3);
  });

  it('deletes an actor as an ordered operation', async () => {
    await inject({ method: 'POST', url: '/api/counter/doomed/add?value=9&wait=true' });
    const del = await inject({ method: 'DELETE', url: '/api/actors/counter/doomed' });
    expect(del.statusCode).toBe(202);
    expect(bodyOf(del)).toMatchObject({ signaled: 'delete', type: 'counter', key: 'doomed' });
    const after = await inject({ method: 'GET', url: `/api/actors/counter/doomed?minSeq=${seqOf(del)}` });
    expect(after.json()).toMatchObject({ state: 0 });
    const listed = await inject({ method: 'GET', url: '/api/actors/counter?prefix=doomed' });
    expect(listed.json()).toEqual({ items: [], nextCursor: null });
    // Operations after a delete start again from the initial state.
    const again = await inject({ method: 'POST', url: '/api/counter/doomed/add?value=2&wait=true' });
    expect(again.json()).toMatchObject({ result: 2 });
  });
});

describe('the NATS side', () => {
  it('serves calls on actors.call.<type>.<key>.<op>', async () => {
    const nc = await connect({ servers: server.url });
    try {
      const ok = await nc.request('actors.call.counter.via-nats.add', '3', { timeout: 5_000 });
      expect(ok.json()).toEqual({ result: 3, seq: expect.any(Number) as number });
      const bad = await nc.request('actors.call.counter.via-nats.nope', '', { timeout: 5_000 });
      expect(bad.json()).toEqual({ error: { code: 'UNKNOWN_OPERATION', message: expect.any(String) as string } });
      expect(bad.headers?.get('Jetactor-Status')).toBe('404');
    } finally {
      await nc.close();
    }
  });

  it('sees operations published with plain NATS', async () => {
    workerNc.publish('actors.counter.plain-pub.add', '6');
    await waitFor(async () => (await inject({ method: 'GET', url: '/api/counter/plain-pub' })).json<{ value: number }>().value === 6, {
      message: 'the plain publish to be applied',
    });
  });
});

describe('the socket', () => {
  it('listens on the port it reports', async () => {
    const res = await fetch(`${gateway.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', nats: 'connected', provisioned: true });
  });
});

// Last: this one stops the server under the gateway and the worker.
describe('when NATS goes away', () => {
  it('answers 503 while it is down and recovers, state intact, when it is back', async () => {
    const before = await inject({ method: 'POST', url: '/api/counter/durable/add?value=11&wait=true' });
    expect(before.statusCode).toBe(200);

    await server.kill('SIGTERM');
    await waitFor(async () => (await inject({ method: 'GET', url: '/readyz' })).statusCode === 503, { message: '/readyz to turn 503' });
    const down = await inject({ method: 'POST', url: '/api/counter/durable/add?value=1' });
    expect(down.statusCode).toBe(503);
    expect(errorOf(down).code).toBe('NATS_UNAVAILABLE');
    expect((await inject({ method: 'GET', url: '/api/counter/durable' })).statusCode).toBe(503);
    expect((await inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    await server.restart();
    await waitFor(async () => (await inject({ method: 'GET', url: '/readyz' })).statusCode === 200, {
      timeoutMs: 20_000,
      message: '/readyz to turn 200 again',
    });
    // Retried with one idempotency key: a try that timed out but was applied is not applied twice.
    const after = await waitFor(
      async () => {
        const res = await inject({
          method: 'POST',
          url: '/api/counter/durable/add?value=1&wait=true&timeoutMs=2000',
          headers: { 'idempotency-key': 'durable-after-restart' },
        });
        return res.statusCode === 200 ? res : undefined;
      },
      { timeoutMs: 30_000, message: 'a call to succeed after the restart' },
    );
    const read = await inject({ method: 'GET', url: `/api/counter/durable?minSeq=${seqOf(after)}` });
    expect(read.json()).toEqual({ value: 12 });
  });
});
