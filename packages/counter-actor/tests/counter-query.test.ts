/**
 * The counter through the typed client on a real nats-server: `add` resolves to a number,
 * the `get` operation still answers through the stream, and the `get` query answers from
 * the stored state both here (with the definition) and from the workers' query service
 * (without it, as the gateway will ask).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, OperationFailedError } from '@jetactor/actor-runtime';
import { createActorClient, createQueryClient, createTypedClient, type ActorClient } from '@jetactor/actor-runtime/client';
import { createWorker, startQueryService, type QueryService, type Worker } from '@jetactor/actor-runtime/worker';
import { defaultNames } from '@jetactor/actor-runtime/internal';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { counter } from '../src/counter.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
let worker: Worker;
let queries: QueryService;
let client: ActorClient;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  worker = createWorker({ nc, actors: [counter], partitions: 4, leaseTtlMs: 2000, heartbeatMs: 400, logger: log });
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'worker did not take its partitions' });
  queries = startQueryService({ nc, actors: [counter], names: defaultNames(), log });
  client = createActorClient(nc, { actors: [counter] });
});

afterAll(async () => {
  await queries?.stop();
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

describe('the counter, typed', () => {
  it('adds, gets and queries', async () => {
    const counters = createTypedClient(client).actor(counter);
    const added = await counters.call('k1', 'add', 3);
    expectTypeOf(added).toEqualTypeOf<number>();
    expect(added).toBe(3);
    expect(await counters.call('k1', 'add', { value: 2 })).toBe(5);
    expect(await counters.call('k1', 'add')).toBe(6);
    // The operation of the public contract (POST /api/actors/counter/k1/get) still answers.
    expect(await counters.call('k1', 'get')).toBe(6);
    const { seq } = await counters.signal('k1', 'add', -1);
    expect(await counters.query('k1', 'get', undefined, { minSeq: seq })).toBe(5);
    expect((await counters.read('k1', { minSeq: seq })).state).toBe(5);
    expect(await counters.query('never', 'get')).toBe(0);
  });

  it('answers the get query from the workers for a caller without the counter code', async () => {
    const { seq } = await client.signal('counter', 'k2', 'add', 40);
    const remote = createQueryClient(nc);
    expect(await remote.query('counter', 'k2', 'get', undefined, { minSeq: seq })).toEqual({ result: 40, seq });
    await expect(remote.query('counter', 'k2', 'get', 1)).rejects.toMatchObject({ code: ErrorCode.InvalidInput, message: 'query get: input must be nothing, null or {}, got 1' });
  });

  it('keeps the out-of-range error of add', async () => {
    const counters = createTypedClient(client).actor(counter);
    await counters.call('big', 'add', Number.MAX_SAFE_INTEGER);
    const err = await counters.call('big', 'add', 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationFailedError);
    expect((err as OperationFailedError).code).toBe(ErrorCode.ResultOutOfRange);
  });
});
