/**
 * Idempotency keys that cannot lie (issue 9 §3), on a real nats-server, worker and gateway:
 * the same key with another operation or input is refused with 422 IDEMPOTENCY_KEY_REUSED
 * (over HTTP and over the NATS call service), and a retried `?wait=true` call answers what
 * the original answered, its result or its error.
 */
import { headers } from '@nats-io/nats-core';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_KEY_HEADER, STATUS_HEADER } from '../src/index.js';
import { bodyOf, errorOf } from './support/http.js';
import { startInProcessStack, type InProcessStack } from './support/in-process-stack.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let stack: InProcessStack;

beforeAll(async () => {
  stack = await startInProcessStack(log);
});

afterAll(async () => {
  await stack?.stop();
});

const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => stack.gateway.app.inject(opts);

function post(path: string, body: string | undefined, key: string): Promise<LightMyRequestResponse> {
  return inject({
    method: 'POST',
    url: path,
    headers: { 'idempotency-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: body }),
  });
}

async function valueOf(key: string, minSeq = 0): Promise<unknown> {
  return (await inject({ method: 'GET', url: `/api/actors/counter/${key}?minSeq=${minSeq}` })).json<{ state: unknown }>().state;
}

describe('the same Idempotency-Key', () => {
  it('with the same operation and input is a duplicate (also with the JSON written differently)', async () => {
    const first = await post('/api/actors/counter/same/add', '{"value":2}', 'same-1');
    expect(first.statusCode).toBe(202);
    const again = await post('/api/actors/counter/same/add', '{ "value" : 2 }', 'same-1');
    expect(again.statusCode).toBe(202);
    expect(bodyOf(again)).toEqual({ ...bodyOf(first), duplicate: true });
    expect(await valueOf('same', bodyOf(first).seq as number)).toBe(2);
  });

  it('with another operation is refused with 422 and publishes nothing', async () => {
    const add = await post('/api/actors/counter/reused/add', '5', 'order-42');
    expect(add.statusCode).toBe(202);
    const reset = await post('/api/actors/counter/reused/reset', undefined, 'order-42');
    expect({ status: reset.statusCode, code: errorOf(reset).code }).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(errorOf(reset).message).toContain("'add'");
    const del = await inject({ method: 'DELETE', url: '/api/actors/counter/reused', headers: { 'idempotency-key': 'order-42' } });
    expect({ status: del.statusCode, code: errorOf(del).code }).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await valueOf('reused', bodyOf(add).seq as number)).toBe(5);
  });

  it('with another input is refused with 422, a query value too', async () => {
    const add = await post('/api/actors/counter/input/add', '5', 'input-1');
    expect(add.statusCode).toBe(202);
    for (const [path, body] of [
      ['/api/actors/counter/input/add', '6'],
      ['/api/actors/counter/input/add', '{"value":5}'],
      ['/api/actors/counter/input/add', undefined],
      ['/api/counter/input/add?value=7', undefined],
    ] as const) {
      const res = await post(path, body, 'input-1');
      expect({ path, body, status: res.statusCode, code: errorOf(res).code }).toEqual({ path, body, status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    }
    // With ?wait=true as well, and the first input still answers as a duplicate.
    const call = await post('/api/actors/counter/input/add?wait=true', '8', 'input-1');
    expect({ status: call.statusCode, code: errorOf(call).code }).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    const same = await post('/api/actors/counter/input/add', '5', 'input-1');
    expect(bodyOf(same)).toMatchObject({ seq: bodyOf(add).seq, duplicate: true });
    expect(await valueOf('input', bodyOf(add).seq as number)).toBe(5);
  });

  it('over the NATS call service with another input is an error reply with 422', async () => {
    const h = headers();
    h.set(IDEMPOTENCY_KEY_HEADER, 'nats-1');
    const first = await stack.nc.request('actors.call.counter.natskey.add', '3', { timeout: 5_000, headers: h });
    expect(first.json<{ result: number }>().result).toBe(3);
    const other = await stack.nc.request('actors.call.counter.natskey.add', '4', { timeout: 5_000, headers: h });
    expect(other.headers?.get(STATUS_HEADER)).toBe('422');
    expect(other.json<{ error: { code: string } }>().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const retry = await stack.nc.request('actors.call.counter.natskey.add', '3', { timeout: 5_000, headers: h });
    expect(retry.json()).toEqual({ result: 3, seq: first.json<{ seq: number }>().seq, duplicate: true });
  });
});

describe('a retried ?wait=true call', () => {
  it("answers the original's result", async () => {
    await post('/api/actors/counter/retry/add?wait=true', '10', 'retry-0');
    const first = await post('/api/actors/counter/retry/add?wait=true', '5', 'retry-1');
    expect(first.json<{ result: number }>().result).toBe(15);
    // Another add moves the state on: the retry must still answer 15, not the state now.
    await post('/api/actors/counter/retry/add?wait=true', '100', 'retry-2');
    const retry = await post('/api/actors/counter/retry/add?wait=true', '5', 'retry-1');
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual({ result: 15, seq: bodyOf(first).seq, duplicate: true });
  });

  it("answers the original's error when the original failed", async () => {
    const max = String(Number.MAX_SAFE_INTEGER);
    await post('/api/actors/counter/overflow/add?wait=true', max, 'overflow-0');
    const first = await post('/api/actors/counter/overflow/add?wait=true', '1', 'overflow-1');
    expect({ status: first.statusCode, code: errorOf(first).code }).toEqual({ status: 422, code: 'RESULT_OUT_OF_RANGE' });
    const retry = await post('/api/actors/counter/overflow/add?wait=true', '1', 'overflow-1');
    expect({ status: retry.statusCode, error: errorOf(retry) }).toEqual({ status: 422, error: errorOf(first) });
  });

  it("answers a signal's outcome when the retry is a call", async () => {
    const signal = await post('/api/actors/counter/later/add', '4', 'later-1');
    expect(signal.statusCode).toBe(202);
    const retry = await post('/api/actors/counter/later/add?wait=true', '4', 'later-1');
    expect(retry.json()).toEqual({ result: 4, seq: bodyOf(signal).seq, duplicate: true });
  });
});
