/**
 * A batch that stops at an operation the worker must not apply (a record a newer version
 * wrote): the partition waits there, and the batch's later operations (of any key) are applied
 * once a newer worker owns it, never skipped (they were, when the prefix before the stop
 * committed and the reader went on past it).
 */
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createActorClient, createWorker, defineActor, type ActorClient } from '../src/internal.js';

const add = (s: number, x: unknown) => ({ state: s + Number(x), result: s + Number(x) });
const v1 = defineActor({ type: 'num', initialState: () => 0, operations: { add } });
const v2 = defineActor({ type: 'num', version: 2, initialState: () => 0, operations: { add }, migrate: { 1: (s: number) => s } });
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
let client: ActorClient;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  client = createActorClient(nc, { actors: [v2], timeoutMs: 10_000 });
});

afterAll(async () => {
  client?.close();
  await nc?.close();
  await server?.stop();
});

const worker = (id: string, def: typeof v1 | typeof v2) => createWorker({ nc, actors: [def], id, partitions: 1, leaseTtlMs: 1500, heartbeatMs: 250, logger: log });

it('commits what came before the stop, applies nothing after it, and loses none of the rest', async () => {
  const w2 = worker('first-v2', v2);
  await w2.start();
  await client.call('num', 'newer', 'add', 1); // a record version 2 wrote
  await w2.stop();
  // One batch for the version-1 worker: plain, blocked, plain, plain.
  const js = jetstream(nc);
  for (const [key, n] of [['plain', 1], ['newer', 10], ['plain', 100], ['other', 1000]] as const) await js.publish(`actors.num.${key}.add`, String(n));
  const w1 = worker('back-v1', v1);
  await w1.start();
  await waitFor(async () => (await client.status()).blocked?.some((b) => b.key === 'newer'), { timeoutMs: 15_000, message: 'the partition to wait at newer' });
  // The record version 2 wrote is untouched. (Other keys' later operations may be applied
  // already, as in any batch, each key in its order; never twice.)
  expect((await client.read('num', 'newer')).state).toBe(1);
  expect([1, 101]).toContain((await client.read('num', 'plain')).state);
  await w1.stop();
  const w2b = worker('second-v2', v2);
  await w2b.start();
  await waitFor(async () => (await client.read('num', 'newer')).state === 11, { timeoutMs: 15_000, message: 'the operation it waited at' });
  expect((await client.read('num', 'plain')).state).toBe(101);
  expect((await client.read('num', 'other')).state).toBe(1000);
  expect((await client.deadLetters()).items).toEqual([]);
  await w2b.stop();
}, 60_000);
