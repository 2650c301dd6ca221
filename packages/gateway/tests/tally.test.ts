/**
 * The second actor type, `tally` (object state with arrays), hosted by the default worker
 * process next to the counter and served by a gateway that has none of its code: over HTTP
 * and plain NATS, with invalid input refused at the gateway (400, the field named) and an
 * error result over `?wait=true`. And a type registered while the gateway runs is served,
 * and documented, without a restart.
 */
import { defineActor, Type } from '@jetactor/actor-runtime';
import { spawnWorker, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { InjectOptions } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { STATUS_HEADER } from '../src/nats/call-service.js';
import { bodyOf, errorOf } from './support/http.js';
import { registerTypes, waitForTypes } from './support/registry.js';

let server: NatsServer;
let worker: ManagedProcess;
let gateway: RunningGateway;
let nc: NatsConnection;
const enc = new TextEncoder();
const dec = new TextDecoder();

beforeAll(async () => {
  server = await startNatsServer();
  worker = spawnWorker({ id: 'w-tally', natsUrl: server.url, partitions: 8, env: { METRICS_PORT: '0' } });
  gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1' }, logger: pino({ level: 'silent' }) });
  await gateway.nats.firstConnect;
  await waitForTypes(gateway.app, ['counter', 'tally'], 30_000);
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await gateway?.close();
  await worker?.stop();
  await server?.stop();
});

const inject = (opts: InjectOptions) => gateway.app.inject(opts);
const post = (url: string, body?: unknown) =>
  inject({ method: 'POST', url, ...(body === undefined ? {} : { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });

describe('tally over HTTP', () => {
  it('reads a never-written tally as its registered initial state', async () => {
    const res = await inject({ method: 'GET', url: '/api/actors/tally/t-new' });
    expect(res.statusCode).toBe(200);
    expect(bodyOf(res)).toEqual({ type: 'tally', key: 't-new', state: { counts: {}, entries: [] }, seq: 0, revision: 0 });
  });

  it('grows and shrinks: add, remove and clear, with results and the stored object state', async () => {
    expect(bodyOf(await post('/api/actors/tally/t1/add?wait=true', { label: 'apples', n: 3 }))).toMatchObject({ result: 3 });
    expect(bodyOf(await post('/api/actors/tally/t1/add?wait=true', { label: 'pears' }))).toMatchObject({ result: 1 });
    const removed = await post('/api/actors/tally/t1/remove?wait=true', { label: 'apples', n: 2 });
    expect(bodyOf(removed)).toMatchObject({ result: 1 });
    const read = bodyOf(await inject({ method: 'GET', url: `/api/actors/tally/t1?minSeq=${String(bodyOf(removed).seq)}` }));
    const state = read.state as { counts: Record<string, number>; entries: Array<{ label: string; n: number; at: string }> };
    expect(state.counts).toEqual({ apples: 1, pears: 1 });
    expect(state.entries.map((e) => [e.label, e.n])).toEqual([
      ['apples', 3],
      ['pears', 1],
      ['apples', -2],
    ]);
    expect(state.entries.every((e) => !Number.isNaN(Date.parse(e.at)))).toBe(true);

    expect(bodyOf(await post('/api/actors/tally/t1/clear?wait=true'))).toMatchObject({ result: 2 });
    expect(bodyOf(await inject({ method: 'GET', url: '/api/actors/tally/t1' })).state).toEqual({ counts: {}, entries: [] });
  });

  it.each([
    ['a label of the wrong type', 'add', { label: 5 }, 'add: input.label must be string, got 5'],
    ['a missing label', 'remove', { n: 2 }, 'remove: input.label is required'],
    ['an unknown field', 'add', { label: 'a', colour: 'red' }, "add: input has an unknown field 'colour'"],
    ['an amount of 0', 'add', { label: 'a', n: 0 }, 'add: input.n must be >= 1, got 0'],
    ['no input at all', 'add', undefined, 'add: input is required'],
    ['input to clear', 'clear', { label: 'a' }, 'clear'],
  ])('refuses %s with 400 INVALID_INPUT naming the field, and stores nothing', async (_name, op, body, message) => {
    const before = bodyOf(await inject({ method: 'GET', url: '/api/actors/tally/t-bad' }));
    const res = await post(`/api/actors/tally/t-bad/${op}?wait=true`, body);
    expect({ status: res.statusCode, code: errorOf(res).code }).toEqual({ status: 400, code: 'INVALID_INPUT' });
    expect(errorOf(res).message).toContain(message);
    expect(bodyOf(await inject({ method: 'GET', url: '/api/actors/tally/t-bad' }))).toEqual(before);
  });

  it('answers 404 UNKNOWN_OPERATION for an operation tally does not have', async () => {
    const res = await post('/api/actors/tally/t1/multiply', { label: 'a' });
    expect({ status: res.statusCode, code: errorOf(res).code }).toEqual({ status: 404, code: 'UNKNOWN_OPERATION' });
  });

  it("sends the worker's error result over ?wait=true as 422 with its code, the state unchanged", async () => {
    await post('/api/actors/tally/t2/add?wait=true', { label: 'x' });
    const res = await post('/api/actors/tally/t2/remove?wait=true', { label: 'x', n: 5 });
    expect({ status: res.statusCode, error: errorOf(res) }).toEqual({ status: 422, error: { code: 'NOT_ENOUGH', message: "tally has 1 of 'x', cannot remove 5" } });
    expect((bodyOf(await inject({ method: 'GET', url: '/api/actors/tally/t2' })).state as { counts: unknown }).counts).toEqual({ x: 1 });
  });

  it('lists add, remove and clear with their input schemas in the OpenAPI document', async () => {
    const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, { post?: { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } } }> }>();
    const schemaOf = (op: string) => doc.paths[`/api/actors/tally/{key}/${op}`]?.post?.requestBody?.content['application/json']?.schema;
    expect(schemaOf('add')).toMatchObject({ type: 'object', required: ['label'], properties: { label: { type: 'string' }, n: { type: 'integer', minimum: 1 } } });
    expect(schemaOf('remove')).toEqual(schemaOf('add'));
    expect(schemaOf('clear')).toBeDefined();
    expect(doc.paths['/api/actors/counter/{key}/add']).toBeDefined();
  });
});

describe('tally over plain NATS', () => {
  it('applies a JetStream publish and answers calls and queries', async () => {
    const ack = await jetstream(nc).publish('actors.tally.n1.add', enc.encode('{"label":"bolts","n":4}'));
    const read = bodyOf(await inject({ method: 'GET', url: `/api/actors/tally/n1?minSeq=${ack.seq}` }));
    expect((read.state as { counts: unknown }).counts).toEqual({ bolts: 4 });

    const call = await nc.request('actors.call.tally.n1.remove', enc.encode('{"label":"bolts"}'), { timeout: 10_000 });
    expect(JSON.parse(dec.decode(call.data))).toMatchObject({ result: 3 });
    const query = await nc.request('actors.query.tally.n1.count', enc.encode('{"label":"bolts"}'), { timeout: 10_000 });
    expect(JSON.parse(dec.decode(query.data))).toMatchObject({ result: 3 });
  });

  it('refuses invalid input on the call service with INVALID_INPUT and status 400, applying nothing', async () => {
    const reply = await nc.request('actors.call.tally.n2.add', enc.encode('{"label":""}'), { timeout: 10_000 });
    expect(reply.headers?.get(STATUS_HEADER)).toBe('400');
    const body = JSON.parse(dec.decode(reply.data)) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('INVALID_INPUT');
    expect(body.error.message).toContain('input.label');
    expect(bodyOf(await inject({ method: 'GET', url: '/api/actors/tally/n2' })).seq).toBe(0);
  });

  it('answers an error result on the call service with 422 and the worker code', async () => {
    const reply = await nc.request('actors.call.tally.n3.remove', enc.encode('{"label":"none"}'), { timeout: 10_000 });
    expect(reply.headers?.get(STATUS_HEADER)).toBe('422');
    expect(JSON.parse(dec.decode(reply.data))).toEqual({ error: { code: 'NOT_ENOUGH', message: "tally has 0 of 'none', cannot remove 1" } });
  });
});

describe('a type registered while the gateway runs', () => {
  it('is 404 before, then served and documented without a restart', async () => {
    const greeter = defineActor({
      type: 'greeter',
      initialState: () => ({ greeted: [] as string[] }),
      operations: { greet: { input: Type.Object({ name: Type.String({ minLength: 1 }) }), handler: (s, { name }) => ({ state: { greeted: [...s.greeted, name] }, result: `hello ${name}` }) } },
    });
    const before = await post('/api/actors/greeter/g1/greet', { name: 'ada' });
    expect({ status: before.statusCode, code: errorOf(before).code }).toEqual({ status: 404, code: 'UNKNOWN_ACTOR' });
    await inject({ method: 'GET', url: '/docs/json' });

    await registerTypes(nc, 'test-registrar', [greeter]);
    await waitForTypes(gateway.app, ['greeter']);
    // No worker hosts it: the signal is stored (202) and waits for one; the read shows the initial state.
    const signaled = await post('/api/actors/greeter/g1/greet', { name: 'ada' });
    expect(signaled.statusCode).toBe(202);
    expect(errorOf(await post('/api/actors/greeter/g1/greet', { name: '' })).code).toBe('INVALID_INPUT');
    expect(bodyOf(await inject({ method: 'GET', url: '/api/actors/greeter/g2' })).state).toEqual({ greeted: [] });
    await waitFor(async () => {
      const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, unknown> }>();
      return doc.paths['/api/actors/greeter/{key}/greet'] !== undefined;
    }, { message: 'the OpenAPI document to list greeter.greet' });
  });
});
