/**
 * Listing at O(page) (issue 9 §4), on a real nats-server: pages read the state bucket's own
 * stream from the cursor, so a page costs about what it returns whatever the number of actors,
 * every actor that lives throughout is listed at least once (even while others are updated),
 * and no deleted one ever is. Through the gateway's route, on a client with its own connection
 * so that what one page reads can be counted.
 */
import { createActorClient, type ActorClient } from '@jetactor/actor-runtime/client';
import { type StateRecord } from '@jetactor/actor-runtime/internal';
import { counter } from '@jetactor/counter-actor';
import { startNatsServer, type NatsServer } from '@jetactor/testing';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/index.js';

const BUCKET = 'list_state';
const ACTORS = 2_500;
let server: NatsServer;
let nc: NatsConnection;
/** The listing client's own connection: its message count is what pages read. */
let listNc: NatsConnection;
let kv: KV;
let client: ActorClient;
let app: FastifyInstance;

const record = (state: unknown, seq: number, deleted = false): string =>
  JSON.stringify({ state, seq, epoch: 1, updatedAt: new Date().toISOString(), ...(deleted ? { deleted: true } : {}) } satisfies StateRecord);

/** Puts in windows of 500, so 2,500 records take a moment, not 2,500 round trips. */
async function putAll(entries: ReadonlyArray<[string, string]>): Promise<void> {
  for (let i = 0; i < entries.length; i += 500) await Promise.all(entries.slice(i, i + 500).map(([k, v]) => kv.put(k, v)));
}

const live = new Set<string>();
const deleted = new Set<string>();

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  listNc = await connect({ servers: server.url });
  kv = await new Kvm(jetstream(nc)).create(BUCKET, { history: 1 });
  const entries: Array<[string, string]> = [];
  for (let i = 0; i < ACTORS; i++) {
    const key = `a${String(i).padStart(4, '0')}`;
    entries.push([`counter.${key}`, record(i, i + 1)]);
    // Another type in between: never listed as a counter.
    if (i % 10 === 0) entries.push([`other.${key}`, record(-1, i + 1)]);
    live.add(key);
  }
  for (const key of ['rare-1', 'rare-2', 'rare-3']) {
    entries.splice(Math.floor(entries.length * Number(key.slice(-1)) / 4), 0, [`counter.${key}`, record(7, 1)]);
    live.add(key);
  }
  await putAll(entries);
  // Deleted three ways: a tombstone record, a KV delete marker and a KV purge marker.
  const gone = [...live].filter((k) => k.startsWith('a')).filter((_k, i) => i % 7 === 3);
  for (const [i, key] of gone.entries()) {
    if (i % 3 === 0) await kv.put(`counter.${key}`, record(0, 99_999, true));
    else if (i % 3 === 1) await kv.delete(`counter.${key}`);
    else await kv.purge(`counter.${key}`);
    live.delete(key);
    deleted.add(key);
  }
  client = createActorClient(listNc, { actors: [counter], names: { stateBucket: BUCKET } });
  app = await buildApp({ client, docs: false, dashboard: false });
});

afterAll(async () => {
  await app?.close();
  client?.close();
  await listNc?.close();
  await nc?.close();
  await server?.stop();
});

interface Page {
  items: Array<{ type: string; key: string; state: unknown; seq: number; revision: number }>;
  nextCursor: string | null;
}

async function page(query: string): Promise<{ page: Page; messagesRead: number }> {
  const before = listNc.stats().inMsgs;
  const res = await app.inject({ method: 'GET', url: `/api/actors/counter?${query}` });
  expect(res.statusCode).toBe(200);
  return { page: res.json<Page>(), messagesRead: listNc.stats().inMsgs - before };
}

describe('GET /api/actors/:type over 2,500 actors', () => {
  it('pages with limit 100 list every live actor at least once and no deleted one, each page reading about a page', async () => {
    const seen = new Map<string, number>();
    let cursor: string | null = null;
    let pages = 0;
    const updatedMidway: string[] = [];
    let totalRead = 0;
    do {
      const { page: p, messagesRead }: { page: Page; messagesRead: number } = await page(`limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      pages++;
      expect(p.items.length).toBeLessThanOrEqual(100);
      // O(page): the records of this page, the deleted ones it skipped (at most 10 records per
      // item asked for) and a few API replies; never every key.
      expect(messagesRead).toBeLessThan(100 * 10 + 20);
      totalRead += messagesRead;
      for (const item of p.items) {
        expect(item.type).toBe('counter');
        expect(deleted.has(item.key)).toBe(false);
        seen.set(item.key, (seen.get(item.key) ?? 0) + 1);
      }
      if (pages === 5) {
        // Actors updated while paging: some already listed, some not yet. They move to the end.
        const listed = [...seen.keys()].slice(0, 25);
        const ahead = [...live].filter((k) => !seen.has(k)).slice(0, 25);
        updatedMidway.push(...listed, ...ahead);
        await putAll(updatedMidway.map((k) => [`counter.${k}`, record('updated', 1_000_000)]));
      }
      cursor = p.nextCursor;
      expect(cursor === null || /^[0-9]+$/.test(cursor)).toBe(true);
    } while (cursor !== null && pages < 100);
    expect(cursor).toBeNull();
    expect([...live].filter((k) => !seen.has(k))).toEqual([]);
    expect(seen.size).toBe(live.size);
    // The ones listed before their update come again, with the new state.
    for (const k of updatedMidway.slice(0, 25)) expect(seen.get(k)).toBe(2);
    expect(pages).toBeLessThanOrEqual(Math.ceil((live.size + 25) / 100) + 2);
    // Paging through everything reads each stored record about once: O(N), not O(N^2).
    expect(totalRead).toBeLessThan(4_000);
  });

  it('with a rare prefix returns short pages with a cursor, never one page that scans everything', async () => {
    const keys: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const { page: p, messagesRead }: { page: Page; messagesRead: number } = await page(`prefix=rare-&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      pages++;
      expect(messagesRead).toBeLessThan(10 * 10 + 20);
      keys.push(...p.items.map((i) => i.key));
      cursor = p.nextCursor;
    } while (cursor !== null && pages < 1000);
    expect(cursor).toBeNull();
    expect(keys.sort()).toEqual(['rare-1', 'rare-2', 'rare-3']);
    // About 2,600 counter records at most 100 per page.
    expect(pages).toBeGreaterThanOrEqual(25);
  });

  it('answers an empty, final page for a prefix no actor has', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/actors/counter?prefix=none-&limit=1000' });
    expect(res.statusCode).toBe(200);
    const body = res.json<Page>();
    expect(body).toEqual({ items: [], nextCursor: null });
  });
});
