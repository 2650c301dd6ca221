import type { ActorClient } from '@jetactor/actor-runtime/client';
import { ClosedConnectionError } from '@nats-io/nats-core';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/index.js';
import { errorOf } from './support/http.js';
import { createMemoryClient, type MemoryClient } from './support/memory-client.js';

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('before NATS has connected (no client yet)', () => {
  it('is alive but not ready, answers 503 and recovers once connected', async () => {
    const connection: { client?: ActorClient } = {};
    app = await buildApp({ client: () => connection.client });

    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const notReady = await app.inject({ method: 'GET', url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(errorOf(notReady).code).toBe('NATS_UNAVAILABLE');

    for (const request of [
      { method: 'POST' as const, url: '/api/counter/add?value=3' },
      { method: 'GET' as const, url: '/api/counter' },
      { method: 'GET' as const, url: '/api/actors/counter/k' },
      { method: 'GET' as const, url: '/api/actors/counter' },
      { method: 'DELETE' as const, url: '/api/actors/counter/k' },
    ]) {
      const res = await app.inject(request);
      expect(res.statusCode, `${request.method} ${request.url}`).toBe(503);
      expect(errorOf(res)).toEqual({ code: 'NATS_UNAVAILABLE', message: 'not connected to NATS; retry later' });
    }

    const client = createMemoryClient();
    connection.client = client;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/counter/add?value=3' })).statusCode).toBe(202);
    expect((await app.inject({ method: 'GET', url: '/api/counter' })).json()).toEqual({ value: 3 });
  });
});

describe('while NATS is disconnected', () => {
  let ready = true;
  let client: MemoryClient;

  async function start(opts: { requestTimeoutMs?: number } = {}): Promise<FastifyInstance> {
    ready = true;
    client = createMemoryClient();
    app = await buildApp({ client, isReady: () => ready, ...opts });
    return app;
  }

  it('answers 503 at once, without publishing', async () => {
    const a = await start();
    ready = false;
    const res = await a.inject({ method: 'POST', url: '/api/counter/add?value=3' });
    expect(res.statusCode).toBe(503);
    expect(errorOf(res).code).toBe('NATS_UNAVAILABLE');
    expect(client.published).toEqual([]);
    expect((await a.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    expect((await a.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    ready = true;
    expect((await a.inject({ method: 'POST', url: '/api/counter/add?value=3' })).statusCode).toBe(202);
  });

  it('still answers a bad request with its 4xx (the same whether NATS is up or not)', async () => {
    const a = await start();
    ready = false;
    const res = await a.inject({ method: 'POST', url: '/api/counter/a.b/add' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('INVALID_KEY');
    const json = { 'content-type': 'application/json' };
    const notJson = await a.inject({ method: 'POST', url: '/api/counter/add', headers: json, payload: '{' });
    expect(errorOf(notJson).code).toBe('INVALID_JSON');
    const big = await a.inject({ method: 'POST', url: '/api/counter/add', headers: json, payload: `"${'x'.repeat(70_000)}"` });
    expect(errorOf(big).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers 503 when the connection closes under a request', async () => {
    const a = await start();
    client.failWith = new ClosedConnectionError();
    const res = await a.inject({ method: 'POST', url: '/api/counter/add' });
    expect(res.statusCode).toBe(503);
    expect(errorOf(res).code).toBe('NATS_UNAVAILABLE');
  });
});

describe('deadlines: a route never hangs', () => {
  it('answers 504 TIMEOUT when a signal gets no ack in time', async () => {
    const client = createMemoryClient();
    client.hang = true;
    app = await buildApp({ client, requestTimeoutMs: 100 });
    const started = performance.now();
    const res = await app.inject({ method: 'POST', url: '/api/counter/add' });
    expect(res.statusCode).toBe(504);
    expect(errorOf(res).code).toBe('TIMEOUT');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('answers 503 instead when NATS went away meanwhile', async () => {
    let ready = true;
    const client = createMemoryClient();
    client.hang = true;
    app = await buildApp({ client, isReady: () => ready, requestTimeoutMs: 100 });
    const pending = app.inject({ method: 'GET', url: '/api/actors/counter/k' });
    ready = false;
    const res = await pending;
    expect(res.statusCode).toBe(503);
    expect(errorOf(res).code).toBe('NATS_UNAVAILABLE');
  });

  it('bounds ?wait=true by its timeout even if the client does not', async () => {
    const client = createMemoryClient();
    client.hang = true;
    app = await buildApp({ client });
    const started = performance.now();
    const res = await app.inject({ method: 'POST', url: '/api/actors/counter/k/add?wait=true&timeoutMs=50' });
    expect(res.statusCode).toBe(504);
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('hides an unexpected error behind 500 INTERNAL_ERROR', async () => {
    const client = createMemoryClient();
    client.failWith = new Error('ECONNREFUSED at /secret/path.ts:1:2');
    app = await buildApp({ client });
    const res = await app.inject({ method: 'GET', url: '/api/counter' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'internal server error' } });
  });
});
