/**
 * Live state and the NATS call service on a real nats-server, worker and gateway:
 * Server-Sent Events from the KV watch (latency from the state commit, cleanup on
 * disconnect and on close), `/api/status`, and `actors.call.…` as a `$SRV` service.
 */
import { once } from 'node:events';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { createActorClient, createActorWatcher, type ActorChange, type ActorWatch, type ClusterStatus } from '@jetactor/actor-runtime/client';
import { type Worker } from '@jetactor/actor-runtime/worker';
import { counter } from '@jetactor/counter-actor';
import { waitFor, type NatsServer } from '@jetactor/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { ServiceErrorCodeHeader, Svcm, type ServiceInfo } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_HEADER, buildApp } from '../src/index.js';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { startInProcessStack, type InProcessStack } from './support/in-process-stack.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let server: NatsServer;
let nc: NatsConnection;
let worker: Worker;
let gateway: RunningGateway;
/** When each commit finished (epoch ms, this clock), by partition. */
const commits: Array<{ partition: number; checkpoint: number; at: number }> = [];
const nowMs = (): number => performance.timeOrigin + performance.now();

let stack: InProcessStack;

beforeAll(async () => {
  stack = await startInProcessStack(log, {
    onCommit: (c) => commits.push({ partition: c.partition, checkpoint: c.checkpoint, at: nowMs() }),
  });
  ({ server, nc, worker, gateway } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

/** A Server-Sent Events reader over fetch, recording when each change arrived. */
interface EventReader {
  readonly status: number;
  readonly contentType: string | null;
  readonly changes: Array<ActorChange & { arrivedAt: number }>;
  readonly ended: Promise<void>;
  close(): void;
}

async function openEvents(url: string): Promise<EventReader> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
  const changes: Array<ActorChange & { arrivedAt: number }> = [];
  const ended = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        const arrivedAt = nowMs();
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: change') && data) changes.push({ ...(JSON.parse(data.slice(6)) as ActorChange), arrivedAt });
        }
      }
    } catch {
      // Aborted by close().
    }
  })();
  return { status: res.status, contentType: res.headers.get('content-type'), changes, ended, close: () => controller.abort() };
}

const call = async (key: string, op: string, input?: unknown): Promise<{ result: unknown; seq: number }> => {
  const res = await fetch(`${gateway.url}/api/actors/counter/${key}/${op}?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: input === undefined ? undefined : JSON.stringify(input),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { result: unknown; seq: number };
};

const metric = async (series: string): Promise<number> => {
  const page = await (await fetch(`${gateway.url}/metrics`)).text();
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
};

/** Consumers on the state bucket's stream now (each KV watch has one). */
const watchConsumers = async (): Promise<number> => (await (await jetstreamManager(nc)).streams.info('KV_actors')).state.consumer_count;

describe('GET /api/actors/:type/:key/watch (Server-Sent Events)', () => {
  it('sends the current state, then each change within 100 ms of its commit', async () => {
    await call('sse-1', 'add', 10);
    const events = await openEvents(`${gateway.url}/api/actors/counter/sse-1/watch`);
    try {
      expect(events.status).toBe(200);
      expect(events.contentType).toBe('text/event-stream; charset=utf-8');
      await waitFor(() => events.changes.length === 1, { timeoutMs: 5_000, message: 'the current state' });
      expect(events.changes[0]).toMatchObject({ type: 'counter', key: 'sse-1', state: 10, deleted: false });

      const seqs: number[] = [];
      for (let i = 1; i <= 5; i++) seqs.push((await call('sse-1', 'add', i)).seq);
      await waitFor(() => events.changes.length === 6, { timeoutMs: 5_000, message: 'five changes' });
      expect(events.changes.map((c) => c.state)).toEqual([10, 11, 13, 16, 20, 25]);
      expect(events.changes.slice(1).map((c) => c.seq)).toEqual(seqs);

      // Latency: from the end of the commit that wrote the change (the worker's onCommit
      // hook, same clock) to the event's arrival at the client.
      const partition = commits.find((c) => c.checkpoint >= (seqs[0] ?? 0))?.partition;
      const delays = events.changes.slice(1).map((c) => {
        const commit = commits.find((k) => k.partition === partition && k.checkpoint >= c.seq);
        if (!commit) throw new Error(`no commit seen for seq ${c.seq}`);
        return c.arrivedAt - commit.at;
      });
      expect(Math.max(...delays), `delays ${delays.map((d) => d.toFixed(1)).join(', ')} ms`).toBeLessThan(100);
      // And from the worker's own timestamp of the change, taken before it was written.
      for (const c of events.changes.slice(1)) expect(c.arrivedAt - Date.parse(c.updatedAt ?? '')).toBeLessThan(100);
    } finally {
      events.close();
    }
  });

  it('reports a delete, and stops the KV watch when the client disconnects', async () => {
    await call('sse-2', 'add', 1);
    await waitFor(async () => (await metric('jetactor_gateway_sse_streams')) === 0, { message: 'earlier streams to end' });
    const jsm = await jetstreamManager(nc);
    const consumers = async (): Promise<Set<string>> => {
      const names = new Set<string>();
      for await (const c of jsm.consumers.list('KV_actors')) names.add(c.name);
      return names;
    };
    const before = await consumers();
    const events = await openEvents(`${gateway.url}/api/actors/counter/sse-2/watch?updatesOnly=true`);
    try {
      await waitFor(async () => (await metric('jetactor_gateway_sse_streams')) === 1, { message: 'the stream to be counted' });
      // The watch's own consumer on the bucket's stream (others may come and go meanwhile).
      const ours = [...(await consumers())].filter((name) => !before.has(name));
      expect(ours).toHaveLength(1);

      const del = await fetch(`${gateway.url}/api/actors/counter/sse-2`, { method: 'DELETE' });
      expect(del.status).toBe(202);
      await waitFor(() => events.changes.length === 1, { timeoutMs: 5_000, message: 'the delete' });
      expect(events.changes[0]).toMatchObject({ key: 'sse-2', deleted: true, state: 0 });

      events.close();
      await waitFor(async () => (await metric('jetactor_gateway_sse_streams')) === 0, { message: 'the stream to end' });
      await waitFor(async () => !(await consumers()).has(ours[0] ?? ''), { timeoutMs: 10_000, message: 'the KV watch consumer to go' });
    } finally {
      events.close();
    }
  });

  it('leaks no watch when clients disconnect while it is being opened', async () => {
    await waitFor(async () => (await metric('jetactor_gateway_sse_streams')) === 0, { message: 'earlier streams to end' });
    await expect.poll(watchConsumers, { timeout: 10_000 }).toBe(0);
    // Raw connections that send the request and close at once: the close came while the
    // gateway awaited the KV watch, before it listened for it (41 of 50 leaked for good).
    const { port } = new URL(gateway.url);
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const sock = connectTcp(Number(port), '127.0.0.1');
        await once(sock, 'connect');
        sock.end(`GET /api/actors/counter/leak${i % 5}/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        sock.destroy();
      }),
    );
    await expect.poll(() => metric('jetactor_gateway_sse_streams'), { timeout: 5_000 }).toBe(0);
    await expect.poll(watchConsumers, { timeout: 5_000 }).toBe(0);
  });

  it('stops a watch that was opened after its deadline', async () => {
    // A watcher whose watches open only when the test says so: the first one after its
    // request has already been answered 504.
    const real = createActorWatcher(nc, { actors: [counter] });
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const opened: ActorWatch[] = [];
    const app = await buildApp({
      client: createActorClient(nc, { actors: [counter] }),
      watcher: {
        async watch(type, key, opts) {
          const w = await real.watch(type, key, opts);
          opened.push(w);
          await gate;
          return w;
        },
      },
      requestTimeoutMs: 200,
      docs: false,
      dashboard: false,
    });
    try {
      const before = await watchConsumers();
      const res = await app.inject({ method: 'GET', url: '/api/actors/counter/late/watch' });
      expect({ status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ status: 504, code: 'TIMEOUT' });
      expect(opened).toHaveLength(1);
      expect(await watchConsumers()).toBe(before + 1);
      release();
      await expect.poll(watchConsumers, { timeout: 5_000 }).toBe(before);
    } finally {
      release();
      await app.close();
    }
  });

  it('answers errors as JSON before streaming', async () => {
    const unknown = await fetch(`${gateway.url}/api/actors/nosuchtype/k/watch`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'UNKNOWN_ACTOR' } });
    const badKey = await fetch(`${gateway.url}/api/actors/counter/bad.key/watch`);
    expect(badKey.status).toBe(400);
    expect(await badKey.json()).toMatchObject({ error: { code: 'INVALID_KEY' } });
  });
});

describe('GET /api/watch/:type', () => {
  it('streams the changes of every actor of the type', async () => {
    await waitFor(async () => (await metric('jetactor_gateway_sse_streams')) === 0, { message: 'earlier streams to end' });
    const events = await openEvents(`${gateway.url}/api/watch/counter`);
    try {
      await waitFor(async () => (await metric('jetactor_gateway_sse_streams')) === 1, { message: 'the stream to open' });
      await call('all-a', 'add', 1);
      await call('all-b', 'add', 2);
      await waitFor(() => events.changes.length >= 2, { timeoutMs: 5_000, message: 'two changes' });
      expect(events.changes.map((c) => [c.key, c.state])).toEqual([
        ['all-a', 1],
        ['all-b', 2],
      ]);
    } finally {
      events.close();
    }
  });

  it('ends open streams when the gateway closes, without waiting for the clients', async () => {
    const other = await runGateway({ env: { NATS_URL: server.url, PORT: '0', HOST: '127.0.0.1' }, logger: log });
    await other.nats.firstConnect;
    const events = await openEvents(`${other.url}/api/watch/counter`);
    expect(events.status).toBe(200);
    const started = performance.now();
    await other.close();
    await events.ended;
    expect(performance.now() - started).toBeLessThan(3_000);
  });
});

describe('the idle timeout', () => {
  it('closes a silent connection after idleTimeoutMs, and keeps an event stream open past it by its keep-alives', async () => {
    // Shorter silences allow a shorter idle timeout: it must exceed maxTimeoutMs plus 1 s and the keep-alive interval.
    const app = await buildApp({
      client: createActorClient(nc, { actors: [counter] }),
      watcher: createActorWatcher(nc, { actors: [counter] }),
      maxTimeoutMs: 500,
      sseKeepAliveMs: 300,
      idleTimeoutMs: 2000,
      docs: false,
      dashboard: false,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (app.server.address() as AddressInfo).port;
      const silent = connectTcp(port, '127.0.0.1');
      await once(silent, 'connect');
      const opened = performance.now();
      let received = '';
      silent.on('data', (d: Buffer) => (received += d.toString('latin1')));
      const events = await openEvents(`http://127.0.0.1:${port}/api/watch/counter`);
      expect(events.status).toBe(200);
      await once(silent, 'close');
      const closedAfter = performance.now() - opened;
      expect(received).toBe('');
      expect(closedAfter).toBeGreaterThan(1900);
      expect(closedAfter).toBeLessThan(4000);
      // The stream, open as long, still delivers: its keep-alives reset its idle timer.
      await call('idle-a', 'add', 1);
      await waitFor(() => events.changes.some((c) => c.key === 'idle-a'), { timeoutMs: 5_000, message: 'the change on the stream' });
      events.close();
      await expect(buildApp({ client: createActorClient(nc, { actors: [counter] }), maxTimeoutMs: 500, sseKeepAliveMs: 300, idleTimeoutMs: 1500 })).rejects.toThrow(
        /'idleTimeoutMs' \(1500\) must exceed 1500 ms: 'maxTimeoutMs' \(500\) plus 1000 ms, and the 300 ms between event-stream keep-alives \('sseKeepAliveMs'\)/,
      );
    } finally {
      await app.close();
    }
  });
});

describe('GET /api/status', () => {
  it('lists the worker with its partitions, and every partition with owner, checkpoint and lag', async () => {
    const res = await fetch(`${gateway.url}/api/status`);
    expect(res.status).toBe(200);
    const status = (await res.json()) as ClusterStatus;
    expect(status.members).toEqual([expect.objectContaining({ id: worker.id, partitions: [0, 1, 2, 3] })]);
    expect(status.partitions).toHaveLength(4);
    for (const p of status.partitions) {
      expect(p).toEqual({ partition: expect.any(Number) as number, owner: worker.id, checkpoint: expect.any(Number) as number, lag: expect.any(Number) as number });
    }
    expect(Math.max(...status.partitions.map((p) => p.checkpoint))).toBeGreaterThan(0);
  });
});

describe('NATS call service', () => {
  it('answers a request on actors.call.counter.k1.add with the new value once applied', async () => {
    const first = await nc.request('actors.call.counter.k1.add', '5', { timeout: 5_000 });
    const body = first.json<{ result: number; seq: number }>();
    expect(body).toEqual({ result: 5, seq: expect.any(Number) as number });
    const second = await nc.request('actors.call.counter.k1.add', JSON.stringify({ value: 2 }), { timeout: 5_000 });
    expect(second.json()).toMatchObject({ result: 7 });
    // Applied and committed: a read sees it.
    const read = await fetch(`${gateway.url}/api/actors/counter/k1`);
    expect(await read.json()).toMatchObject({ state: 7, seq: second.json<{ seq: number }>().seq });
  });

  it('answers errors with the JSON body, the HTTP-like status and the NATS service error headers', async () => {
    const res = await nc.request('actors.call.counter.k1.nope', '', { timeout: 5_000 });
    expect(res.json()).toMatchObject({ error: { code: 'UNKNOWN_OPERATION' } });
    expect(res.headers?.get(STATUS_HEADER)).toBe('404');
    expect(res.headers?.get(ServiceErrorCodeHeader)).toBe('404');
  });

  it('holds Idempotency-Key, Timeout-Ms and Content-Encoding to the rules HTTP applies; a refused call changes nothing', async () => {
    const natsCall = async (key: string, set: Record<string, string>, body = '1'): Promise<{ status: number; code?: string }> => {
      const h = natsHeaders();
      for (const [name, value] of Object.entries(set)) h.set(name, value);
      const res = await nc.request(`actors.call.counter.${key}.add`, body, { timeout: 5_000, headers: h });
      const status = res.headers?.get(STATUS_HEADER);
      return status ? { status: Number(status), code: res.json<{ error: { code: string } }>().error.code } : { status: 200 };
    };
    const httpCall = async (key: string, set: Record<string, string>, body = '1'): Promise<{ status: number; code?: string }> => {
      const res = await fetch(`${gateway.url}/api/actors/counter/${key}/add?wait=true${set['Timeout-Ms'] === undefined ? '' : `&timeoutMs=${encodeURIComponent(set['Timeout-Ms'])}`}`, {
        method: 'POST',
        headers: Object.fromEntries(Object.entries(set).filter(([name]) => name !== 'Timeout-Ms')),
        body,
      });
      return res.status === 200 ? { status: 200 } : { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
    };
    const cases: Array<[string, Record<string, string>, { status: number; code?: string }]> = [
      ['a 60,000-character key', { 'Idempotency-Key': 'k'.repeat(60_000) }, { status: 400, code: 'INVALID_IDEMPOTENCY_KEY' }],
      ['a 129-character key', { 'Idempotency-Key': 'k'.repeat(129) }, { status: 400, code: 'INVALID_IDEMPOTENCY_KEY' }],
      ['an empty key', { 'Idempotency-Key': '' }, { status: 400, code: 'INVALID_IDEMPOTENCY_KEY' }],
      ["a key with '>'", { 'Idempotency-Key': 'a>b' }, { status: 400, code: 'INVALID_IDEMPOTENCY_KEY' }],
      ['a key with a space', { 'Idempotency-Key': 'a b' }, { status: 400, code: 'INVALID_IDEMPOTENCY_KEY' }],
      ["a key with '*' (a token character)", { 'Idempotency-Key': `star*${Date.now()}` }, { status: 200 }],
      ['a key of 128 characters', { 'Idempotency-Key': `${Date.now()}`.padEnd(128, 'x') }, { status: 200 }],
      ['Timeout-Ms 0x10', { 'Timeout-Ms': '0x10' }, { status: 400, code: 'INVALID_REQUEST' }],
      ['Timeout-Ms 1e3', { 'Timeout-Ms': '1e3' }, { status: 400, code: 'INVALID_REQUEST' }],
      ['Timeout-Ms +5000', { 'Timeout-Ms': '+5000' }, { status: 400, code: 'INVALID_REQUEST' }],
      ['Timeout-Ms 0', { 'Timeout-Ms': '0' }, { status: 400, code: 'INVALID_REQUEST' }],
      ['Timeout-Ms 60001', { 'Timeout-Ms': '60001' }, { status: 400, code: 'INVALID_REQUEST' }],
      ['Timeout-Ms 5000', { 'Timeout-Ms': '5000' }, { status: 200 }],
      ['Content-Encoding gzip', { 'Content-Encoding': 'gzip' }, { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' }],
      ['Content-Encoding identity', { 'Content-Encoding': 'identity' }, { status: 200 }],
    ];
    const seen: Array<[string, unknown, unknown]> = [];
    for (const [name, set, expected] of cases) {
      // Over NATS and over HTTP (a long key is no HTTP header value Node sends: NATS only).
      seen.push([`nats: ${name}`, await natsCall('hdr-nats', set), expected]);
      if ((set['Idempotency-Key'] ?? '').length <= 128) seen.push([`http: ${name}`, await httpCall('hdr-http', set), expected]);
    }
    expect(seen.map(([name, got]) => [name, got])).toEqual(seen.map(([name, , expected]) => [name, expected]));
    // Only the accepted calls were applied, each adding 1.
    const accepted = cases.filter(([, , expected]) => expected.status === 200).length;
    for (const key of ['hdr-nats', 'hdr-http']) {
      const read = await fetch(`${gateway.url}/api/actors/counter/${key}`);
      expect({ key, state: ((await read.json()) as { state: unknown }).state }).toEqual({ key, state: accepted });
    }
  });

  it('is discoverable through $SRV as the jetactor-gateway service', async () => {
    const infos: ServiceInfo[] = [];
    for await (const info of await new Svcm(nc).client().info('jetactor-gateway')) infos.push(info);
    expect(infos).toHaveLength(1);
    expect(infos[0]?.endpoints).toEqual([expect.objectContaining({ name: 'call', subject: 'actors.call.*.*.*', queue_group: 'jetactor-gateway' })]);
  });
});
