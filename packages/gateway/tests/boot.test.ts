/**
 * The gateway starts while NATS is down, answers 503, and serves once NATS comes up.
 */
import { createWorker, type Worker } from '@jetactor/actor-runtime/worker';
import { counter } from '@jetactor/counter-actor';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import type { ConnectionOptions } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { errorOf } from './support/http.js';
import { registerTypes, waitForTypes } from './support/registry.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer | undefined;
let workerNc: NatsConnection | undefined;
let worker: Worker | undefined;
let gateway: RunningGateway | undefined;

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await workerNc?.close();
  await server?.stop();
});

describe('booting without NATS', () => {
  it('starts, answers 503 until NATS is up, then serves', async () => {
    const port = await freePort();
    gateway = await runGateway({ env: { NATS_URL: `nats://127.0.0.1:${port}`, PORT: '0' }, logger: log });

    expect((await gateway.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ready = await gateway.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    const started = performance.now();
    const res = await gateway.app.inject({ method: 'POST', url: '/api/counter/add?value=3' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(res.statusCode).toBe(503);
    expect(errorOf(res).code).toBe('NATS_UNAVAILABLE');

    server = await startNatsServer({ port });
    // Connected, but no worker has created the stream and buckets yet: not ready.
    const notProvisioned = await waitFor(
      async () => {
        const res = await gateway?.app.inject({ method: 'GET', url: '/readyz' });
        return res !== undefined && errorOf(res).code === 'NOT_PROVISIONED' ? res : undefined;
      },
      { timeoutMs: 20_000, message: 'the gateway to connect' },
    );
    expect(notProvisioned.statusCode).toBe(503);
    expect(errorOf(notProvisioned).message).toContain('stream ACTORS');

    const early = await gateway.app.inject({ method: 'POST', url: '/api/counter/add?value=3' });
    expect(early.statusCode).toBe(503);
    expect(errorOf(early).code).toBe('NOT_PROVISIONED');

    workerNc = await connect({ servers: server.url });
    worker = createWorker({ nc: workerNc, actors: [counter], partitions: 2, logger: log });
    await worker.start();
    await registerTypes(workerNc, worker.id, [counter]);
    await waitFor(() => worker?.settled(), { timeoutMs: 15_000, message: 'the worker to own its partitions' });
    await waitForTypes(gateway.app, [counter.type]);
    expect((await gateway.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ok', nats: 'connected', provisioned: true });

    const ok = await gateway.app.inject({ method: 'POST', url: '/api/counter/add?value=3&wait=true' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ result: 3 });
  });

  it('connects without async traces (nats.js would build two Errors per request for them)', async () => {
    const seen: ConnectionOptions[] = [];
    const failing = await runGateway({
      env: { NATS_URL: 'nats://127.0.0.1:1', PORT: '0' },
      logger: log,
      connect: (opts) => {
        seen.push(opts);
        return Promise.reject(new Error('no NATS in this test'));
      },
    });
    await waitFor(() => seen.length > 0, { timeoutMs: 5_000, message: 'the first connection attempt' });
    await failing.close();
    expect(seen[0]).toMatchObject({ noAsyncTraces: true, name: 'jetactor-gateway' });
  });

  it('closes promptly when NATS never came', async () => {
    const port = await freePort();
    const lonely = await runGateway({ env: { NATS_URL: `nats://127.0.0.1:${port}`, PORT: '0' }, logger: log });
    const started = performance.now();
    await lonely.close();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(lonely.nats.client()).toBeUndefined();
  });
});
