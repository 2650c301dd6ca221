/**
 * Server-Sent Events to a reader that stops reading (issue 9 §6), on a real nats-server and a
 * listening gateway: while a client's socket is full, changes are coalesced per actor; once
 * they would pass `sseMaxBufferedBytes` the stream is closed and counted in
 * `jetactor_gateway_sse_dropped_total`. A slower reader of one hot actor is never dropped and
 * ends with its latest state. The changes are state records written straight into the bucket.
 */
import { once } from 'node:events';
import { connect as connectTcp, type Socket } from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';
import { createActorClient, createActorWatcher, type ActorChange } from '@jetactor/actor-runtime/client';
import { counter } from '@jetactor/counter-actor';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_DEFAULTS, buildApp } from '../src/index.js';

const BUCKET = 'sse_state';
const names = { stateBucket: BUCKET };
const logLines: Array<Record<string, unknown>> = [];
let server: NatsServer;
let nc: NatsConnection;
let kv: KV;
let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  kv = await new Kvm(jetstream(nc)).create(BUCKET, { history: 1 });
  app = await buildApp({
    client: createActorClient(nc, { actors: [counter], names }),
    watcher: createActorWatcher(nc, { actors: [counter], names }),
    loggerInstance: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) }),
    docs: false,
    dashboard: false,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
});

afterAll(async () => {
  await app?.close();
  await nc?.close();
  await server?.stop();
});

/** Opens `GET path` on a raw socket and resolves once the stream has started (its first comment). */
async function openRaw(path: string): Promise<Socket> {
  const sock = connectTcp(port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  let head = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes(': watching')) return;
      sock.off('data', onData);
      resolve();
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
  expect(head.startsWith('HTTP/1.1 200')).toBe(true);
  return sock;
}

/** A reader that keeps reading, and records the last change of each key it saw. */
async function openReader(path: string): Promise<{ last: Map<string, ActorChange>; close(): void }> {
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: controller.signal });
  const last = new Map<string, ActorChange>();
  void (async () => {
    let buffer = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const data = buffer.slice(0, end).split('\n').find((l) => l.startsWith('data: '));
          buffer = buffer.slice(end + 2);
          if (data) {
            const change = JSON.parse(data.slice(6)) as ActorChange;
            last.set(change.key, change);
          }
        }
      }
    } catch {
      // Aborted by close().
    }
  })();
  return { last, close: () => controller.abort() };
}

const dropped = async (): Promise<number> => (await app.gatewayMetrics.sseDropped.get()).values[0]?.value ?? 0;
const openStreams = async (): Promise<number> => (await app.gatewayMetrics.sseStreams.get()).values[0]?.value ?? 0;

describe('an SSE reader that stops reading', () => {
  it('has its stream closed at the bound and counted; a reader of one hot actor gets its latest state', async () => {
    const limit = GATEWAY_DEFAULTS.sseMaxBufferedBytes;
    const reader = await openReader('/api/actors/counter/k7/watch?updatesOnly=true');
    const stalled = await openRaw('/api/watch/counter');
    // From now on nothing is read from this socket: what the gateway sends piles up in the
    // kernel's buffers (a few MB on loopback) and then in the gateway's.
    stalled.pause();
    const closed = once(stalled, 'close');
    await waitFor(async () => (await openStreams()) === 2, { timeoutMs: 5_000, message: 'both streams to be open' });

    const big = 'x'.repeat(16 * 1024);
    let written = 0;
    let lastK7 = 0;
    // Changes of 16 KiB each, 50 at a time, until the stalled stream is dropped (bounded: 100 MB).
    while ((await dropped()) === 0 && written < 6_400) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const n = written + i;
          const revision = await kv.put(`counter.k${n % 500}`, JSON.stringify({ state: `${n}:${big}`, seq: n + 1, epoch: 1, updatedAt: new Date().toISOString() }));
          if (n % 500 === 7) lastK7 = Math.max(lastK7, revision);
        }),
      );
      written += 50;
    }
    expect(await dropped()).toBe(1);
    const warning = logLines.find((l) => l.msg === 'watch closed: the client stopped reading');
    expect(warning).toMatchObject({ limitBytes: limit });
    // What the gateway held for the stalled stream never passed the bound: the coalesced
    // changes, and in Node's own buffer its high-water mark and an event or two.
    const event = big.length + 512;
    expect(warning?.pendingBytes as number).toBeLessThanOrEqual(limit);
    expect(warning?.pendingBytes as number).toBeGreaterThan(limit - 2 * event);
    // The socket's high-water mark is Node's default: 16 KiB on Node 20, 64 KiB from Node 22 on.
    expect(warning?.bufferedBytes as number).toBeLessThanOrEqual(getDefaultHighWaterMark(false) + 2 * event);

    // The reader of one hot actor is still open and ends with its latest state.
    expect(lastK7).toBeGreaterThan(0);
    await waitFor(() => (reader.last.get('k7')?.revision ?? 0) >= lastK7, { timeoutMs: 20_000, message: 'the reader to see the latest state of k7' });
    expect(await openStreams()).toBe(1);
    reader.close();

    // The stalled socket is closed by the gateway: once it reads again, it sees the end.
    stalled.resume();
    await closed;
    await waitFor(async () => (await openStreams()) === 0, { timeoutMs: 5_000, message: 'every stream to be closed' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^jetactor_gateway_sse_dropped_total 1$/m);
  });
});
