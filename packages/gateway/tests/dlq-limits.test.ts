/**
 * Poison operations and limits, end to end on a real nats-server: operations that fail
 * at the worker (published with plain NATS, which the gateway cannot vet) become error
 * results and dead letters while their partition moves on; the gateway lists and
 * resubmits them (`GET /api/dlq`, `POST /api/dlq/:dlqSeq/resubmit`) with scopes; and
 * each limit is a clear 4xx at the gateway.
 */
import { createWorker, createWorkerMetrics, type Worker, type WorkerMetrics } from '@jetactor/actor-runtime/worker';
import type { DeadLetter } from '@jetactor/actor-runtime/client';
import { counter } from '@jetactor/counter-actor';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { bodyOf, errorOf } from './support/http.js';
import { registerTypes } from './support/registry.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const READER = 'dlq-reader-token-0123456789';
const WRITER = 'dlq-writer-token-0123456789';
const ADMIN = 'dlq-admin-token-01234567890';
const WRITE_ONLY = 'dlq-write-only-token-012345';
const as = (token: string) => ({ authorization: `Bearer ${token}` });

let server: NatsServer;
let workerNc: NatsConnection;
let worker: Worker;
let metrics: WorkerMetrics;
let gateway: RunningGateway;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  workerNc = await connect({ servers: server.url });
  // One partition: every poison operation sits in front of the good ones that follow it.
  metrics = createWorkerMetrics({ processMetrics: false });
  worker = createWorker({ nc: workerNc, actors: [counter], partitions: 1, leaseTtlMs: 2000, heartbeatMs: 250, logger: log, hooks: metrics.hooks });
  metrics.attach(worker);
  await worker.start();
  await registerTypes(workerNc, worker.id, [counter]);
  await waitFor(() => worker.settled(), { timeoutMs: 15_000, message: 'the worker to own its partition' });
  gateway = await runGateway({
    env: {
      NATS_URL: server.url,
      PORT: '0',
      GATEWAY_AUTH_TOKENS: `${READER}:read;${WRITER}:read,write;${ADMIN}:read,write,admin;${WRITE_ONLY}:write`,
    },
    logger: log,
  });
  await gateway.nats.firstConnect;
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await workerNc?.close();
  await nc?.close();
  await server?.stop();
});

const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => gateway.app.inject(opts);

/** A dead letter as `GET /api/dlq` lists it: the runtime's {@link DeadLetter}. */
type DeadLetterBody = DeadLetter;

async function allDeadLetters(): Promise<DeadLetterBody[]> {
  const res = await inject({ method: 'GET', url: '/api/dlq?limit=1000', headers: as(READER) });
  expect(res.statusCode).toBe(200);
  return res.json<{ items: DeadLetterBody[] }>().items;
}

async function valueOf(key: string, minSeq = 0): Promise<unknown> {
  const res = await inject({ method: 'GET', url: `/api/counter/${key}?minSeq=${minSeq}`, headers: as(READER) });
  expect(res.statusCode).toBe(200);
  return res.json<{ value: unknown }>().value;
}

describe('poison operations', () => {
  it('each becomes an error result and a dead letter with its reason, subject, payload and seq; the partition moves on', async () => {
    const js = jetstream(nc);
    const longKey = 'k'.repeat(200);
    const poison: Array<{ subject: string; payload: string; code: string }> = [
      { subject: 'actors.counter.p1.add', payload: '"abc"', code: 'INVALID_INPUT' },
      { subject: 'actors.counter.p1.add', payload: '9007199254740993', code: 'INVALID_INPUT' },
      { subject: 'actors.counter.p1.add', payload: '1.5', code: 'INVALID_INPUT' },
      { subject: 'actors.counter.p1.add', payload: '{"value":', code: 'INVALID_INPUT' },
      { subject: 'actors.counter.p1.reset', payload: '5', code: 'INVALID_INPUT' },
      { subject: 'actors.counter.a%b.add', payload: '1', code: 'INVALID_KEY' },
      { subject: `actors.counter.${longKey}.add`, payload: '1', code: 'INVALID_KEY' },
      { subject: 'actors.nosuchtype.p1.add', payload: '1', code: 'UNKNOWN_ACTOR' },
      { subject: 'actors.counter.p1.explode', payload: '', code: 'UNKNOWN_OPERATION' },
    ];
    const seqs: number[] = [];
    const good1 = await js.publish('actors.counter.p1.add', '2');
    for (const p of poison) seqs.push((await js.publish(p.subject, p.payload)).seq);
    // A sum that leaves the safe integer range: the handler refuses it on purpose (an
    // ActorError of its own), which is the operation's outcome, not a dead letter.
    await js.publish('actors.counter.big.add', String(Number.MAX_SAFE_INTEGER));
    const overflow = await js.publish('actors.counter.big.add', '1');
    const good2 = await js.publish('actors.counter.p1.add', '3');

    expect(await valueOf('p1', good2.seq)).toBe(5);
    expect(good1.seq).toBeLessThan(seqs[0]!);
    expect(await valueOf('big', overflow.seq)).toBe(Number.MAX_SAFE_INTEGER);

    const dead = await allDeadLetters();
    // Dead letters of one batch are stored concurrently: their order follows dlqSeq, not always seq.
    const bySeq = [...dead].sort((a, b) => a.seq - b.seq);
    // Before: the refused overflow was a tenth dead letter (RESULT_OUT_OF_RANGE).
    expect(bySeq.map((d) => ({ seq: d.seq, code: d.code, subject: d.subject, payload: d.payload }))).toEqual(
      poison.map((p, i) => ({ seq: seqs[i], code: p.code, subject: p.subject, payload: p.payload })),
    );
    expect(bySeq[0]).toMatchObject({ type: 'counter', key: 'p1', op: 'add', message: expect.stringMatching(/integer/) as string });
    expect(bySeq[6]).toMatchObject({ key: longKey, message: expect.stringMatching(/^key must be 1-128 characters of \[A-Za-z0-9_=-\] .*200 characters\)$/) as string });
    expect(Date.parse(bySeq[0]!.time)).toBeGreaterThan(Date.now() - 60_000);
    expect(dead.map((d) => d.dlqSeq)).toEqual(Array.from({ length: 9 }, (_, i) => i + 1));

    // The refusal is counted as one, not among the dead letters' errors.
    const scraped = await metrics.registry.metrics();
    expect(scraped).toContain('jetactor_worker_operations_refused_total{type="counter",op="add",code="RESULT_OUT_OF_RANGE"} 1');
    expect(scraped).not.toContain('jetactor_worker_operation_errors_total{type="counter",op="add",code="RESULT_OUT_OF_RANGE"}');
    expect(scraped).toContain('jetactor_worker_operation_errors_total{type="counter",op="add",code="INVALID_INPUT"} 4');

    // Paging.
    const page1 = await inject({ method: 'GET', url: '/api/dlq?limit=4', headers: as(READER) });
    expect(page1.json()).toMatchObject({ nextCursor: 4 });
    expect(page1.json<{ items: DeadLetterBody[] }>().items.map((d) => d.dlqSeq)).toEqual([1, 2, 3, 4]);
    const page3 = await inject({ method: 'GET', url: '/api/dlq?limit=4&cursor=7', headers: as(READER) });
    expect(page3.json()).toEqual({ items: [dead[7], dead[8]], nextCursor: null });
  });

  it('a dead letter can be resubmitted by an admin; a repeat is a duplicate; failing again, it is a dead letter marked resubmitted', async () => {
    const dead = await allDeadLetters();
    const abc = dead.find((d) => d.payload === '"abc"');
    if (abc === undefined) throw new Error('no dead letter with payload "abc"');
    const url = `/api/dlq/${abc.dlqSeq}/resubmit`;

    for (const token of [READER, WRITER]) {
      const res = await inject({ method: 'POST', url, headers: as(token) });
      expect({ status: res.statusCode, code: errorOf(res).code }).toEqual({ status: 403, code: 'FORBIDDEN' });
    }
    expect((await inject({ method: 'POST', url })).statusCode).toBe(401);

    // Still poison: it fails again and lands in the dead letters once more, marked.
    const before = dead.length;
    const stillBad = await inject({ method: 'POST', url, headers: as(ADMIN) });
    expect(stillBad.statusCode).toBe(202);
    const body = bodyOf(stillBad);
    expect(body).toEqual({ resubmitted: abc.dlqSeq, seq: expect.any(Number) as number });
    await waitFor(async () => (await allDeadLetters()).length === before + 1, { message: 'the resubmitted poison to be dead-lettered again' });
    const last = (await allDeadLetters()).at(-1);
    // Before: no `resubmitted`; the new dead letter did not say where it came from.
    expect(last).toMatchObject({ seq: body.seq, code: 'INVALID_INPUT', payload: '"abc"', subject: 'actors.counter.p1.add', resubmitted: abc.dlqSeq });
    expect(abc).not.toHaveProperty('resubmitted');

    const again = await inject({ method: 'POST', url, headers: as(ADMIN) });
    expect(bodyOf(again)).toEqual({ resubmitted: abc.dlqSeq, seq: body.seq, duplicate: true });
    expect((await allDeadLetters()).length).toBe(before + 1);

    const missing = await inject({ method: 'POST', url: '/api/dlq/999999/resubmit', headers: as(ADMIN) });
    expect({ status: missing.statusCode, code: errorOf(missing).code }).toEqual({ status: 404, code: 'UNKNOWN_DEAD_LETTER' });
  });

  it('paging leaves no consumer behind on ACTORS_DLQ', async () => {
    const jsm = await jetstreamManager(nc);
    const consumers = async (): Promise<number> => (await jsm.streams.info('ACTORS_DLQ')).state.consumer_count;
    const baseline = await consumers();
    // Each page used to leave its consumer for the server's 5-minute inactivity threshold:
    // 2,000 pages in 2 s made 2,101 consumers and grew nats-server by ~100 MB.
    const pages = await Promise.all(
      Array.from({ length: 40 }, (_, i) => inject({ method: 'GET', url: `/api/dlq?limit=2&cursor=${i % 8}`, headers: as(READER) })),
    );
    expect(pages.map((p) => p.statusCode)).toEqual(pages.map(() => 200));
    expect(pages[0]?.json<{ items: DeadLetterBody[] }>().items.map((d) => d.dlqSeq)).toEqual([1, 2]);
    await expect.poll(consumers, { timeout: 3_000 }).toBe(baseline);
  });

  it('an operation larger than the stream allows is refused by JetStream, never stored', async () => {
    const js = jetstream(nc);
    await expect(js.publish('actors.counter.p1.add', `{"value":1,"pad":"${'x'.repeat(70 * 1024)}"}`)).rejects.toThrow(/maximum|size/i);
  });
});

describe('limits at the gateway', () => {
  const post = (url: string, payload?: string) =>
    inject({ method: 'POST', url, headers: { ...as(WRITER), 'content-type': 'application/json' }, ...(payload === undefined ? {} : { payload }) });

  it.each([
    ['a body over 64 KiB', 413, 'PAYLOAD_TOO_LARGE', () => post('/api/counter/lim/add', `{"value":1,"pad":"${'x'.repeat(64 * 1024)}"}`)],
    ['a key of 129 characters', 400, 'INVALID_KEY', () => post(`/api/counter/${'k'.repeat(129)}/add`)],
    ['a key of 600 characters', 400, 'INVALID_REQUEST', () => post(`/api/counter/${'k'.repeat(600)}/add`)],
    ['a type of 65 characters', 400, 'INVALID_TYPE', () => post(`/api/actors/${'t'.repeat(65)}/lim/add`)],
    ['an operation of 65 characters', 400, 'INVALID_OPERATION', () => post(`/api/actors/counter/lim/${'o'.repeat(65)}`)],
    ['?value= beyond the safe integers', 400, 'INVALID_INPUT', () => post('/api/counter/lim/add?value=9007199254740992')],
    ['a body beyond the safe integers', 400, 'INVALID_INPUT', () => post('/api/counter/lim/add', '-9007199254740992')],
    ['a body of 1e400', 400, 'INVALID_INPUT', () => post('/api/counter/lim/add', '{"value":1e400}')],
    ['?minSeq=1e400', 400, 'INVALID_REQUEST', () => inject({ method: 'GET', url: '/api/counter/lim?minSeq=1e400', headers: as(READER) })],
    ['?minSeq beyond the safe integers', 400, 'INVALID_REQUEST', () => inject({ method: 'GET', url: '/api/counter/lim?minSeq=9007199254740992', headers: as(READER) })],
    ['?timeoutMs=Infinity', 400, 'INVALID_REQUEST', () => post('/api/counter/lim/add?wait=true&timeoutMs=Infinity')],
    ['a dlqSeq of 1e400', 400, 'INVALID_REQUEST', () => inject({ method: 'POST', url: '/api/dlq/1e400/resubmit', headers: as(ADMIN) })],
    ['?timeoutMs=0x10', 400, 'INVALID_REQUEST', () => post('/api/counter/lim/add?wait=true&timeoutMs=0x10')],
    ['?timeoutMs=1e3', 400, 'INVALID_REQUEST', () => post('/api/counter/lim/add?wait=true&timeoutMs=1e3')],
    ['?timeoutMs=%205000', 400, 'INVALID_REQUEST', () => post('/api/counter/lim/add?wait=true&timeoutMs=%205000')],
    ['a dlqSeq of 0x1', 400, 'INVALID_REQUEST', () => inject({ method: 'POST', url: '/api/dlq/0x1/resubmit', headers: as(ADMIN) })],
    [
      'a body with Content-Encoding: gzip',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      () => inject({ method: 'POST', url: '/api/counter/lim/add', headers: { ...as(WRITER), 'content-encoding': 'gzip' }, payload: '5' }),
    ],
    [
      'a write-only token awaiting a result',
      403,
      'FORBIDDEN',
      () => inject({ method: 'POST', url: '/api/actors/counter/lim/get?wait=true', headers: { ...as(WRITE_ONLY), 'content-type': 'application/json' } }),
    ],
  ] as const)('%s → %i %s, and nothing is published', async (_name, status, code, send) => {
    const res = await send();
    expect({ status: res.statusCode, code: errorOf(res).code }).toEqual({ status, code });
    expect(await valueOf('lim')).toBe(0);
  });

  it('a write-only token signals, but sees no result or state; read and write together see both', async () => {
    const signaled = await inject({ method: 'POST', url: '/api/counter/wo/add?value=2', headers: as(WRITE_ONLY) });
    expect(signaled.statusCode).toBe(202);
    expect(bodyOf(signaled)).toEqual({ signaled: 'add', type: 'counter', key: 'wo', seq: expect.any(Number) as number });
    for (const url of ['/api/actors/counter/wo/get?wait=true', '/api/actors/counter/wo/add?value=0&wait=true']) {
      const res = await inject({ method: 'POST', url, headers: as(WRITE_ONLY) });
      expect({ url, status: res.statusCode, error: errorOf(res) }).toEqual({
        url,
        status: 403,
        error: { code: 'FORBIDDEN', message: "this token lacks the 'read' scope that awaiting a result (?wait=true) needs: a result shows the actor's state" },
      });
      expect(res.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="read"');
    }
    expect((await inject({ method: 'GET', url: '/api/counter/wo', headers: as(WRITE_ONLY) })).statusCode).toBe(403);
    const awaited = await inject({ method: 'POST', url: `/api/actors/counter/wo/get?wait=true`, headers: as(WRITER) });
    expect({ status: awaited.statusCode, result: bodyOf(awaited).result }).toEqual({ status: 200, result: 2 });
  });

  it('accepts the limits themselves', async () => {
    const key = 'k'.repeat(128);
    const res = await post(`/api/counter/${key}/add?value=${Number.MAX_SAFE_INTEGER}&wait=true`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ result: Number.MAX_SAFE_INTEGER });
    const over = await post(`/api/counter/${key}/add?value=1&wait=true`);
    expect({ status: over.statusCode, code: errorOf(over).code }).toEqual({ status: 422, code: 'RESULT_OUT_OF_RANGE' });
  });
});
