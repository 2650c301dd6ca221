/**
 * The dead-letter stream is bounded (ACTORS_DLQ_MAX_BYTES, ACTORS_DLQ_MAX_MSGS), dropping the
 * oldest dead letters first, and the worker's metrics count what it dropped: invalid traffic
 * must not fill the disk (nats-server disables JetStream when it runs out of space). A worker
 * host on a real nats-server, configured from its environment, whose stream was made by an
 * older version without bounds.
 */
import { DiscardPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@jetactor/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, defaultNames, defineActor, runWorker, type RunningWorker } from '../src/internal.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const names = defaultNames();
const MAX_BYTES = 16 * 1024;
const MAX_MSGS = 12;
const counter = defineActor({ type: 'n', initialState: () => 0, operations: { add: (n: number, by: unknown) => ({ state: n + Number(by), result: n + Number(by) }) } });

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
}, 30_000);

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** The value of one series in a Prometheus text page, or undefined. */
function sample(page: string, series: string): number | undefined {
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Publishes `n` operations on one actor (dead-lettered in order) whose payload is not JSON, `size` bytes each; returns their seqs. */
async function poison(n: number, size: number): Promise<number[]> {
  const js = jetstream(nc);
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) seqs.push((await js.publish(`${names.subjectPrefix}.n.k1.add`, 'x'.repeat(size))).seq);
  return seqs;
}

/** The dead-letter stream's state once its last sequence is `lastSeq`. */
function deadLetterStream(lastSeq: number) {
  return waitFor(
    async () => {
      const s = (await jsm.streams.info(names.dlqStream)).state;
      return s.last_seq === lastSeq ? s : null;
    },
    { timeoutMs: 15_000, message: `${lastSeq} dead letters published` },
  );
}

describe('dead-letter stream bounds', () => {
  it('drops the oldest dead letters past the byte and count bounds, updates an older unbounded stream, and counts the drops', async () => {
    // The dead-letter stream as a version without bounds made it.
    await jsm.streams.add({
      name: names.dlqStream,
      subjects: [`${names.subjectPrefix}_dlq.>`],
      discard: DiscardPolicy.Old,
      max_age: nanos(14 * 24 * 3600_000),
      duplicate_window: nanos(120_000),
    });
    expect((await jsm.streams.info(names.dlqStream)).config.max_bytes).toBe(-1);
    const port = await freePort();
    const host: RunningWorker = await runWorker({
      actors: [counter],
      env: { NATS_URL: server.url, ACTORS_PARTITIONS: '2', METRICS_PORT: String(port), ACTORS_DLQ_MAX_BYTES: String(MAX_BYTES), ACTORS_DLQ_MAX_MSGS: String(MAX_MSGS) },
      logger: log,
      handleSignals: false,
    });
    try {
      const config = (await jsm.streams.info(names.dlqStream)).config;
      expect({ max_bytes: config.max_bytes, max_msgs: config.max_msgs, discard: config.discard }).toEqual({ max_bytes: MAX_BYTES, max_msgs: MAX_MSGS, discard: DiscardPolicy.Old });
      const scrape = async (): Promise<string> => (await fetch(`${host.metricsUrl}/metrics`)).text();

      // Small dead letters: the count bound holds them to the newest 12.
      const small = await poison(20, 10);
      const afterSmall = await deadLetterStream(20);
      expect(afterSmall.messages).toBe(MAX_MSGS);
      expect(afterSmall.first_seq).toBe(20 - MAX_MSGS + 1);
      // The oldest went first: what is left are the dead letters of the last 12 operations.
      const kept = await jsm.streams.getMessage(names.dlqStream, { seq: afterSmall.first_seq });
      expect(Number(kept?.header.get('Jetactor-Seq'))).toBe(small[20 - MAX_MSGS]);

      // Large ones (2 KB): the byte bound holds the stream under 16 KiB, fewer than 12 kept.
      const large = await poison(20, 2048);
      const afterLarge = await deadLetterStream(40);
      expect(afterLarge.bytes).toBeLessThanOrEqual(MAX_BYTES);
      expect(afterLarge.messages).toBeGreaterThan(0);
      expect(afterLarge.messages).toBeLessThan(MAX_MSGS);
      const newest = await jsm.streams.getMessage(names.dlqStream, { seq: 40 });
      expect(Number(newest?.header.get('Jetactor-Seq'))).toBe(large[19]);
      expect(await jsm.streams.getMessage(names.dlqStream, { seq: afterLarge.first_seq - 1 })).toBeNull();

      // The metrics: what the stream holds and every dead letter it dropped.
      const page = await waitFor(
        async () => {
          const p = await scrape();
          return sample(p, 'jetactor_worker_dead_letters_dropped') === 40 - afterLarge.messages ? p : null;
        },
        { timeoutMs: 5_000, message: 'the dropped dead letters in the metrics' },
      );
      expect(sample(page, 'jetactor_worker_dead_letters')).toBe(afterLarge.messages);
      expect(sample(page, 'jetactor_worker_dead_letter_bytes')).toBe(afterLarge.bytes);
    } finally {
      await host.stop();
    }
  }, 60_000);

  it('refuses a bound that is not an integer >= 0, naming the variable', async () => {
    const start = (env: Record<string, string>) => runWorker({ actors: [counter], env: { NATS_URL: server.url, ACTORS_PARTITIONS: '2', METRICS_PORT: '0', ...env }, logger: log, handleSignals: false });
    await expect(start({ ACTORS_DLQ_MAX_MSGS: '-1' })).rejects.toThrow(new ConfigError('dlqMaxMsgs (ACTORS_DLQ_MAX_MSGS) must be an integer >= 0 (0: no bound), got -1'));
    await expect(start({ ACTORS_DLQ_MAX_BYTES: '1.5' })).rejects.toThrow(new ConfigError("ACTORS_DLQ_MAX_BYTES must be an integer, got '1.5'"));
    // 0 is no bound.
    const host = await start({ ACTORS_DLQ_MAX_BYTES: '0', ACTORS_DLQ_MAX_MSGS: '0' });
    await host.stop();
    const config = (await jsm.streams.info(names.dlqStream)).config;
    expect({ max_bytes: config.max_bytes, max_msgs: config.max_msgs }).toEqual({ max_bytes: -1, max_msgs: -1 });
  }, 30_000);
});
