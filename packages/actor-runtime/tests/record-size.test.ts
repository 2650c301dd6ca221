/**
 * Record and send sizes are bytes, not characters: multi-byte text (€ is 3 bytes, an emoji 4)
 * just under the bound is stored, just over it (or far over in bytes while short in
 * characters) is that operation's STATE_TOO_LARGE error, and the other operations of the
 * batch are answered and checkpointed. Real nats-server with max_payload 64 KiB.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActorClient, createWorker, defineActor, OperationFailedError, partitionOf, type ActorClient, type StoredTimer, type Worker } from '../src/internal.js';
import { namesFor } from './support/names.js';

const MAX_PAYLOAD = 64 * 1024;
/** The worker's record bound: max_payload less 1 KiB for the record's metadata and headers. */
const BOUND = MAX_PAYLOAD - 1024;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

type Fill = { ch: string; n: number; timer?: { ch: string; n: number } };
const blob = defineActor({
  type: 'blob',
  initialState: (): string => '',
  operations: {
    /** State: `ch` n times; with `timer`, a timer whose input is `timer.ch` n times. */
    fill: (_s: string, i: unknown) => {
      const { ch, n, timer } = i as Fill;
      return {
        state: ch.repeat(n),
        result: n,
        ...(timer ? { schedule: [{ id: 't', op: 'noop', afterMs: 3_600_000, input: timer.ch.repeat(timer.n) }] } : {}),
      };
    },
    /** Sends `to` a fill whose input holds `ch` n times. */
    give: (s: string, i: unknown) => {
      const { ch, n, to } = i as { ch: string; n: number; to: string };
      return { state: s, result: null, send: [{ key: to, op: 'fill', input: { ch: ch.repeat(n), n: 1 } }] };
    },
    noop: (s: string) => ({ state: s, result: null }),
    inc: (s: string) => ({ state: `${s}+`, result: s.length + 1 }),
  },
});

let server: NatsServer;
let nc: NatsConnection;
let worker: Worker;
let client: ActorClient;
const names = namesFor('size');

beforeAll(async () => {
  server = await startNatsServer({ config: `max_payload: ${MAX_PAYLOAD}` });
  nc = await connect({ servers: server.url });
  // Operations (and so sends) of at most 16 KiB: the stream takes messages of 20 KiB.
  const topology = { maxPayloadBytes: 16 * 1024 };
  worker = createWorker({ nc, actors: [blob], names, partitions: 2, leaseTtlMs: 3000, heartbeatMs: 300, logger: log, topology });
  await worker.start();
  await waitFor(() => worker.settled(), { timeoutMs: 10_000, message: 'the worker to take its partitions' });
  client = createActorClient(nc, { actors: [blob], names, timeoutMs: 5000 });
});

afterAll(async () => {
  client?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

async function storedTimers(key: string): Promise<StoredTimer[]> {
  const kv = await new Kvm(nc).open(names.stateBucket);
  const e = await kv.get(`blob.${key}`);
  return e && e.operation === 'PUT' ? (e.json<{ timers?: StoredTimer[] }>().timers ?? []) : [];
}

/** Another key in the partition of `key` (2 partitions), so both are in one commit. */
function sibling(key: string): string {
  for (let n = 0; ; n++) if (partitionOf('blob', `${key}-${n}`, 2) === partitionOf('blob', key, 2)) return `${key}-${n}`;
}

/** Bytes of a record's state and timers as the size check counts them. */
function recordBytes(state: string, timers: StoredTimer[]): number {
  return Buffer.byteLength(JSON.stringify(state)) + Buffer.byteLength(JSON.stringify(timers));
}

describe('record size in bytes', () => {
  it('a state with timers just under the bound is stored; just over, or over in bytes only, fails that operation alone', async () => {
    // The timer's size, measured on a key of the same length (its at and seq have as many digits).
    const timer = { ch: '😀', n: 500 };
    await client.call('blob', 'probe', 'fill', { ch: 'x', n: 1, timer });
    const timerBytes = recordBytes('', await storedTimers('probe')) - 2;
    // € is 3 bytes as UTF-8: the state takes the rest of the bound, less or more a few bytes.
    const fits = Math.floor((BOUND - timerBytes - 2 - 12) / 3);
    expect(recordBytes('€'.repeat(fits), [])).toBeLessThan(BOUND - timerBytes);
    expect((await client.call('blob', 'under', 'fill', { ch: '€', n: fits, timer })).result).toBe(fits);
    const timers = await storedTimers('under');
    expect(recordBytes('€'.repeat(fits), timers)).toBeLessThanOrEqual(BOUND);
    expect(recordBytes('€'.repeat(fits), timers)).toBeGreaterThan(BOUND - 40);
    expect(((await client.read('blob', 'under')).state as string).length).toBe(fits);

    // Just over (8 € more than fit) and far over in bytes while far under in characters,
    // each beside an ordinary call in the same commit: only the big one fails.
    const over = fits + 8;
    for (const [key, input] of [
      ['over', { ch: '€', n: over, timer }],
      ['bytes', { ch: '€', n: 21_000, timer: { ch: '😀', n: 1000 } }],
    ] as const) {
      await client.call('blob', key, 'fill', { ch: 'a', n: 3 });
      const [big, small] = await Promise.allSettled([client.call('blob', key, 'fill', input), client.call('blob', sibling(key), 'inc')]);
      expect(big.status).toBe('rejected');
      const err = (big as PromiseRejectedResult).reason as OperationFailedError;
      expect(err).toBeInstanceOf(OperationFailedError);
      expect(err.code).toBe('STATE_TOO_LARGE');
      expect(err.message).toMatch(/bytes as JSON; the limit is 64512/);
      expect(small).toMatchObject({ status: 'fulfilled', value: { result: 1 } });
      // The state stayed the last good one, no timer was set, and the partition moved on.
      expect((await client.read('blob', key)).state).toBe('aaa');
      expect(await storedTimers(key)).toEqual([]);
      expect((await client.call('blob', key, 'inc')).result).toBe(4);
    }
  });

  it('a record the store refuses for its size (a bucket bound the worker cannot know) fails its operations alone', async () => {
    const kvStream = `KV_${names.stateBucket}`;
    const jsm = await jetstreamManager(nc);
    const cfg = (await jsm.streams.info(kvStream)).config;
    const key = 'capped';
    await client.call('blob', key, 'fill', { ch: 'a', n: 3 });
    await jsm.streams.update(kvStream, { ...cfg, max_msg_size: 2048 });
    try {
      const [big, small] = await Promise.allSettled([client.call('blob', key, 'fill', { ch: '€', n: 1000 }), client.call('blob', sibling(key), 'inc')]);
      expect(big.status).toBe('rejected');
      expect((big as PromiseRejectedResult).reason).toMatchObject({ code: 'STATE_TOO_LARGE', message: expect.stringMatching(/could not be stored/) as string });
      expect(small).toMatchObject({ status: 'fulfilled', value: { result: 1 } });
      expect((await client.read('blob', key)).state).toBe('aaa');
      expect((await client.call('blob', key, 'inc')).result).toBe(4);
    } finally {
      await jsm.streams.update(kvStream, cfg);
    }
  });

  it('a send larger than an operation may be fails its operation, never the partition', async () => {
    // 6,000 € are 18,000 bytes: under the state bound, over the 16 KiB an operation may carry.
    const err = await client.call('blob', 'sender', 'give', { ch: '€', n: 6000, to: 'receiver' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationFailedError);
    expect((err as OperationFailedError).code).toBe('INVALID_SEND');
    expect((await client.call('blob', 'sender', 'give', { ch: '€', n: 1000, to: 'receiver' })).result).toBeNull();
    expect((await client.call('blob', 'sender', 'inc')).result).toBe(1);
    await waitFor(async () => ((await client.read('blob', 'receiver')).state as string).length === 1000, { timeoutMs: 5000, message: 'the small send to arrive' });
  });
});
