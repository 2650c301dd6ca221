/**
 * The worker's metrics server, as `npm run worker` starts it: the built worker on a real
 * nats-server with `METRICS_PORT` set, scraped over HTTP while operations are applied.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createActorClient, type ActorClient } from '@jetactor/actor-runtime';
import { freePort, spawnWorker, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counter } from '@jetactor/counter-actor';

let server: NatsServer;
let nc: NatsConnection;
let client: ActorClient;
let worker: ManagedProcess;
let base: string;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  client = createActorClient(nc, { actors: [counter] });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  worker = spawnWorker({ id: 'metrics-w1', natsUrl: server.url, partitions: 4, env: { METRICS_PORT: String(port) } });
  await worker.waitForLine(/metrics, \/healthz and \/readyz listening/, 20_000);
});

afterAll(async () => {
  await worker?.stop();
  client?.close();
  await nc?.close();
  await server?.stop();
});

/** The value of one series in a Prometheus text page, or undefined. */
function sample(page: string, series: string): number | undefined {
  for (const line of page.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();

describe('worker metrics server', () => {
  it('is alive at once and ready once it owns its partitions', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await waitFor(async () => {
      const res = await fetch(`${base}/readyz`);
      return res.status === 200 ? res : undefined;
    }, { timeoutMs: 20_000, message: 'the worker to be ready' });
    expect(await ready.json()).toEqual({ status: 'ok' });
    await waitFor(async () => sample(await scrape(), 'jetactor_worker_owned_partitions') === 4, {
      timeoutMs: 20_000,
      message: 'the worker to own all 4 partitions',
    });
  });

  it('counts applied operations by type and op, errors, commits and lag, and they move', async () => {
    const before = await scrape();
    const addsBefore = sample(before, 'jetactor_worker_operations_applied_total{type="counter",op="add"}') ?? 0;
    const commitsBefore = sample(before, 'jetactor_worker_commits_total') ?? 0;

    for (let i = 0; i < 5; i++) await client.call('counter', 'm1', 'add', { value: 2 });
    await client.call('counter', 'm1', 'reset');
    // A poison operation: bad input that the client would refuse, published raw.
    nc.publish('actors.counter.m1.add', '"not a number"');

    const checkpointsOf = (p: string): number[] =>
      p
        .split('\n')
        .filter((l) => l.startsWith('jetactor_worker_partition_checkpoint{'))
        .map((l) => Number(l.split(' ')[1]));
    // The error is counted as it is applied, the checkpoint once its batch is committed.
    const page = await waitFor(
      async () => {
        const p = await scrape();
        const errors = sample(p, 'jetactor_worker_operation_errors_total{type="counter",op="add",code="INVALID_INPUT"}') ?? 0;
        return errors >= 1 && Math.max(...checkpointsOf(p)) >= 7 ? p : undefined;
      },
      { timeoutMs: 10_000, message: 'the poison operation to be counted and committed' },
    );
    expect(sample(page, 'jetactor_worker_operations_applied_total{type="counter",op="add"}')).toBe(addsBefore + 5);
    expect(sample(page, 'jetactor_worker_operations_applied_total{type="counter",op="reset"}')).toBe(1);
    expect(sample(page, 'jetactor_worker_commits_total')).toBeGreaterThan(commitsBefore);
    expect(sample(page, 'jetactor_worker_commit_batch_size_count')).toBeGreaterThanOrEqual(1);
    expect(sample(page, 'jetactor_worker_commit_batch_size_sum')).toBeGreaterThanOrEqual(6);
    expect(sample(page, 'jetactor_worker_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(page, 'jetactor_worker_partition_acquisitions_total')).toBe(4);
    // One lag and checkpoint series per owned partition; the applied partition's checkpoint moved.
    const lags = page.split('\n').filter((l) => l.startsWith('jetactor_worker_partition_lag{'));
    expect(lags).toHaveLength(4);
    expect(checkpointsOf(page)).toHaveLength(4);
    expect(page).toContain('jetactor_worker_process_cpu_seconds_total');
  });

  it('counts the timer heap entries of the owned partitions: one per pending timer', async () => {
    const heap = async () => sample(await scrape(), 'jetactor_worker_timer_heap_entries');
    const base = await heap();
    expect(base).toBe(0);
    const later = await client.schedule('counter', 'm2', 'add', 1, { delayMs: 3_600_000, id: 'later' });
    await client.schedule('counter', 'm2', 'add', 1, { delayMs: 7_200_000, id: 'much-later' });
    await client.schedule('counter', 'm3', 'add', 1, { delayMs: 3_600_000, id: 'later' });
    await waitFor(async () => (await heap()) === 3, { timeoutMs: 10_000, message: 'three timers in the heap' });
    // Replacing a timer keeps one entry for it; a cancel takes it out.
    await client.schedule('counter', 'm2', 'add', 2, { delayMs: 1_800_000, id: 'later' });
    const cancelled = await client.cancelTimer('counter', 'm3', 'later', { wait: true });
    expect(cancelled.seq).toBeGreaterThan(later.seq);
    await waitFor(async () => (await heap()) === 2, { timeoutMs: 10_000, message: 'two timers in the heap after the cancel' });
    expect((await client.timers('counter', 'm2')).timers.map((t) => t.id).sort()).toEqual(['later', 'much-later']);
    expect(await heap()).toBe(2);
  });

  it('answers 404 on other paths', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
