/**
 * A full operations stream (issue 9 §5): with `discard: new` and a byte bound, JetStream
 * refuses new operations (JSStreamStoreFailedF, 10077, "maximum bytes exceeded"). The gateway
 * answers 503 STREAM_FULL over HTTP and as an error reply over the NATS call service, and
 * accepts operations again once there is room. On a real nats-server with a tiny stream.
 */
import { createActorClient, type ActorClient } from '@jetactor/actor-runtime/client';
import { counter } from '@jetactor/counter-actor';
import { startNatsServer, type NatsServer } from '@jetactor/testing';
import { DiscardPolicy, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Service } from '@nats-io/services';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_HEADER, buildApp, serveCalls } from '../src/index.js';
import { errorOf } from './support/http.js';

const STREAM = 'TINY';
const MAX_BYTES = 2048;
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let client: ActorClient;
let app: FastifyInstance;
let calls: Service;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['tiny.*.*.*'], max_bytes: MAX_BYTES, discard: DiscardPolicy.New });
  client = createActorClient(nc, { actors: [counter], names: { stream: STREAM, subjectPrefix: 'tiny' } });
  app = await buildApp({ client, docs: false, dashboard: false });
  calls = await serveCalls(nc, client, { subjectPrefix: 'tiny' });
});

afterAll(async () => {
  await app?.close();
  await calls?.stop();
  client?.close();
  await nc?.close();
  await server?.stop();
});

const signal = (key: string) => app.inject({ method: 'POST', url: `/api/actors/counter/${key}/add`, payload: '1', headers: { 'content-type': 'application/json' } });

describe('a full operations stream', () => {
  it('refuses new operations with 503 STREAM_FULL and drops none of the stored ones', async () => {
    let accepted = 0;
    let refused = await signal('k0');
    while (refused.statusCode === 202 && accepted < 500) {
      accepted++;
      refused = await signal(`k${accepted}`);
    }
    expect(accepted).toBeGreaterThan(5);
    expect(refused.statusCode).toBe(503);
    expect(errorOf(refused)).toEqual({ code: 'STREAM_FULL', message: expect.stringContaining('refused until the workers catch up') as string });

    // It stays refused, for calls too, and the stream kept every operation it acknowledged.
    const call = await app.inject({ method: 'POST', url: '/api/actors/counter/k0/add?wait=true', payload: '1', headers: { 'content-type': 'application/json' } });
    expect({ status: call.statusCode, code: errorOf(call).code }).toEqual({ status: 503, code: 'STREAM_FULL' });
    const state = (await jsm.streams.info(STREAM)).state;
    expect({ first: state.first_seq, messages: state.messages }).toEqual({ first: 1, messages: accepted });
  });

  it('answers a NATS call with an error reply: 503 STREAM_FULL', async () => {
    const res = await nc.request('tiny.call.counter.k0.add', '1', { timeout: 5_000 });
    expect(res.headers?.get(STATUS_HEADER)).toBe('503');
    expect(res.json<{ error: { code: string } }>().error.code).toBe('STREAM_FULL');
  });

  it('accepts operations again once applied ones are purged', async () => {
    await jsm.streams.purge(STREAM);
    const res = await signal('after');
    expect(res.statusCode).toBe(202);
  });
});
