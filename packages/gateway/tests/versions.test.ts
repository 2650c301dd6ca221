/**
 * Versions through the gateway, on a real nats-server: the gateway (no actor code) reads,
 * lists and watches records an older version wrote in the registered version's shape (a worker migrates them), and
 * `GET /api/status` reports a partition that waits at a record a newer version wrote.
 */
import { defineActor, Type, type AnyActorDefinition } from '@jetactor/actor-runtime';
import { createActorClient } from '@jetactor/actor-runtime/client';
import { createWorker, startQueryService, type Worker } from '@jetactor/actor-runtime/worker';
import { defaultNames } from '@jetactor/actor-runtime/internal';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { registerTypes, waitForTypes } from './support/registry.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

const noteV1 = defineActor({
  type: 'note',
  initialState: () => '',
  operations: { write: { input: Type.String(), handler: (_s, text) => ({ state: text, result: null }) } },
});
const noteV2 = defineActor({
  type: 'note',
  version: 2,
  initialState: () => ({ text: '', words: 0 }),
  operations: { write: { input: Type.String(), handler: (_s, text) => ({ state: { text, words: text.split(' ').length }, result: null }) } },
  migrate: { 1: (s: string) => ({ text: s, words: s.split(' ').length }) },
});

let server: NatsServer;
let nc: NatsConnection;
let gateway: RunningGateway;

async function startWorker(def: AnyActorDefinition): Promise<Worker> {
  const w = createWorker({ nc, actors: [def], partitions: 1, leaseTtlMs: 2000, heartbeatMs: 250, logger: log });
  await w.start();
  await registerTypes(nc, w.id, [def]);
  await waitFor(() => w.settled(), { timeoutMs: 10_000, message: 'the worker to own the partition' });
  return w;
}

/** The data of the first `change` event of a Server-Sent Events stream. */
async function firstChange(url: string): Promise<unknown> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
  let buffer = '';
  try {
    for await (const chunk of res.body ?? []) {
      buffer += Buffer.from(chunk as Uint8Array).toString('utf8');
      const block = buffer.split('\n\n').find((b) => b.includes('event: change'));
      const data = block?.split('\n').find((l) => l.startsWith('data: '));
      if (data) return JSON.parse(data.slice(6)) as unknown;
    }
  } finally {
    controller.abort();
  }
  throw new Error('the stream ended without a change event');
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await gateway?.close();
  await nc?.close();
  await server?.stop();
});

describe('versions at the gateway', () => {
  it('reads an older record migrated, and reports a partition waiting at a newer one in /api/status', async () => {
    const v1 = await startWorker(noteV1);
    const c1 = createActorClient(nc, { actors: [noteV1] });
    await c1.call('note', 'n1', 'write', 'hello old world');
    await c1.call('note', 'n2', 'write', 'second note');
    await v1.stop();

    const v2 = await startWorker(noteV2);
    const queries = startQueryService({ nc, actors: [noteV2], names: defaultNames(), log });
    gateway = await runGateway({ env: { NATS_URL: server.url, PORT: '0' }, logger: log });
    await gateway.nats.firstConnect;
    await waitForTypes(gateway.app, ['note']);
    await waitFor(() => gateway.app.actorCatalog.get('note')?.descriptor.version === 2, { message: 'the gateway to know version 2' });
    const read = await gateway.app.inject({ method: 'GET', url: '/api/actors/note/n1' });
    // Before: the stored version-1 state, "hello old world".
    expect({ status: read.statusCode, state: read.json<{ state: unknown }>().state }).toEqual({ status: 200, state: { text: 'hello old world', words: 3 } });
    // The list shows both in version 2's shape (n2 only stored as version 1 so far).
    const listed = await gateway.app.inject({ method: 'GET', url: '/api/actors/note' });
    expect(listed.json<{ items: Array<{ key: string; state: unknown }> }>().items.map((i) => [i.key, i.state])).toEqual([
      ['n1', { text: 'hello old world', words: 3 }],
      ['n2', { text: 'second note', words: 2 }],
    ]);
    // So does a watch's first event (the current state).
    expect(await firstChange(`${gateway.url}/api/actors/note/n1/watch`)).toMatchObject({ key: 'n1', state: { text: 'hello old world', words: 3 }, version: 2 });
    // n2 is written by version 2 now.
    expect((await gateway.app.inject({ method: 'POST', url: '/api/actors/note/n2/write?wait=true', payload: '"a newer note"', headers: { 'content-type': 'application/json' } })).statusCode).toBe(200);
    await queries.stop();
    await v2.stop();
    // No worker hosting the type answers: n1 cannot be shown in version 2's shape, nor is it shown in version 1's.
    const unread = await gateway.app.inject({ method: 'GET', url: '/api/actors/note/n1' });
    expect({ status: unread.statusCode, code: unread.json<{ error: { code: string } }>().error.code }).toEqual({ status: 404, code: 'UNKNOWN_ACTOR' });

    // A version-1 worker meets n2's version-2 record: the partition waits, /api/status says where.
    const back = await startWorker(noteV1);
    const waiting = await c1.signal('note', 'n2', 'write', 'rolled back');
    await waitFor(async () => (await gateway.app.inject({ method: 'GET', url: '/api/status' })).json<{ blocked?: unknown[] }>().blocked !== undefined, {
      timeoutMs: 10_000,
      message: '/api/status to report the waiting partition',
    });
    const status = (await gateway.app.inject({ method: 'GET', url: '/api/status' })).json<{ blocked: unknown[] }>();
    expect(status.blocked).toEqual([
      { partition: 0, reason: 'newer-record', seq: waiting.seq, type: 'note', key: 'n2', op: 'write', version: 1, recordVersion: 2, since: expect.any(String) as string },
    ]);
    await back.stop();
    c1.close();
  });
});
