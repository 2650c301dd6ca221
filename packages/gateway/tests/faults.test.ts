/**
 * Faults under load, end to end: the gateway as `npm run gateway` starts it
 * (`runGateway`, driven through `inject`), a worker process (`dist/main.js`), and real
 * nats-servers that are killed with SIGKILL and restarted while add-only load runs.
 *
 * The invariant: every add the gateway acknowledged (202) is applied exactly once. Each
 * logical add carries its own `Idempotency-Key` and is retried after a 5xx until it gets
 * a 202, so each key's final state must equal its count of acked adds; a lost add or a
 * double apply shows as a difference. The stream itself is replayed too, so a failure
 * says whether the stream or the worker is off.
 */
import { createActorClient, type ActorClient } from '@jetactor/actor-runtime';
import { counter } from '@jetactor/counter-actor';
import { replayCounters, spawnWorker, startNatsCluster, startNatsServer, waitFor, type ManagedProcess, type NatsCluster, type NatsServer } from '@jetactor/testing';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { counts, startAddLoad, startedPartitions, type LoadReport } from './support/stack.js';
import { waitForTypes } from './support/registry.js';

const TOKEN = 'faults-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const KEYS = Array.from({ length: 24 }, (_, i) => `fault-${i}`);
/** Acked adds between the phases of a run (before the fault, during it, after the restart). */
const PHASE = 250;
/** The gateway's request deadline (its default), and what a request may take beyond it. */
const REQUEST_DEADLINE_MS = 5_000;
const DEADLINE_SLACK_MS = 1_500;

let cleanup: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  // Reverse order: gateway, worker, connections, then servers.
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  cleanup = [];
});

interface Stack {
  gateway: RunningGateway;
  /** The gateway's warnings and errors, parsed. */
  gatewayWarnings: Array<Record<string, unknown>>;
  worker: ManagedProcess;
  nc: NatsConnection;
  jsm: JetStreamManager;
  client: ActorClient;
  inject: (opts: InjectOptions) => Promise<LightMyRequestResponse>;
}

/**
 * A worker process, a test connection and the gateway. `gatewayServer` picks, once the
 * stream exists, the server the gateway must connect to first (it is listed first and the
 * list is not shuffled).
 */
async function startStack(
  natsUrl: string,
  servers: readonly string[],
  workerEnv: Record<string, string> = {},
  gatewayServer?: (jsm: JetStreamManager) => Promise<string>,
): Promise<Stack> {
  const worker = spawnWorker({ id: 'w-faults', natsUrl, partitions: 8, env: workerEnv });
  cleanup.push(() => worker.stop());
  const nc = await connect({ servers: [...servers], maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  cleanup.push(() => nc.close());
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  const client = createActorClient(nc, { actors: [counter], timeoutMs: 10_000 });
  cleanup.push(() => Promise.resolve(client.close()));
  await waitFor(() => new Set(startedPartitions(worker)).size === 8, {
    timeoutMs: 30_000,
    message: 'the worker to own its 8 partitions',
  });
  const first = gatewayServer === undefined ? undefined : await gatewayServer(jsm);
  const gatewayUrl = first === undefined ? natsUrl : [first, ...servers.filter((s) => s !== first)].join(',');
  const gatewayWarnings: Array<Record<string, unknown>> = [];
  const gatewayLog = pino({ level: 'warn' }, { write: (l: string) => void gatewayWarnings.push(JSON.parse(l) as Record<string, unknown>) });
  const gateway = await runGateway({
    env: { NATS_URL: gatewayUrl, PORT: '0', GATEWAY_AUTH_TOKENS: TOKEN, GATEWAY_RATE_LIMIT: '0' },
    logger: gatewayLog,
    connectionOptions: first === undefined ? {} : { noRandomize: true },
  });
  cleanup.push(() => gateway.close());
  await gateway.nats.firstConnect;
  await waitForTypes(gateway.app, ['counter']);
  return { gateway, gatewayWarnings, worker, nc, jsm, client, inject: (opts) => gateway.app.inject(opts) };
}

/** Waits until every key's state equals its acked adds, then checks the stream holds each acked add once. */
async function expectExactlyOnce(stack: Stack, report: LoadReport): Promise<void> {
  expect(report.unresolved).toBe(0);
  let last: Record<string, { acked: number; state: unknown }> = {};
  try {
    await waitFor(
      async () => {
        const snaps = await Promise.all(KEYS.map((k) => stack.client.read('counter', k)));
        last = Object.fromEntries(KEYS.map((k, i) => [k, { acked: report.acked.get(k) ?? 0, state: snaps[i]?.state }]));
        return Object.values(last).every((v) => v.state === v.acked);
      },
      { timeoutMs: 45_000, intervalMs: 200, message: 'every key to reach its acked count' },
    );
  } catch (err) {
    const off = Object.fromEntries(Object.entries(last).filter(([, v]) => v.state !== v.acked));
    throw new Error(`states differ from acked adds: ${JSON.stringify(off)}`, { cause: err });
  }
  const replay = await replayCounters(jetstream(stack.nc), stack.jsm, 'ACTORS');
  for (const k of KEYS) expect({ key: k, stream: replay.get(k) ?? 0 }).toEqual({ key: k, stream: report.acked.get(k) ?? 0 });
}

function summary(name: string, report: LoadReport, extra: Record<string, unknown>): void {
  console.log(
    `[faults] ${name}: ${report.total()} adds acked over ${KEYS.length} keys in ${(report.durationMs / 1000).toFixed(1)} s ` +
      `(${Math.round(report.total() / (report.durationMs / 1000))}/s), ${report.requests} requests, ` +
      `statuses ${JSON.stringify(counts(report.statuses))}, errors ${JSON.stringify(counts(report.codes))}, ` +
      `slowest ${Math.round(report.maxLatencyMs)} ms, longest gap without an ack ${Math.round(report.maxAckGapMs)} ms, ` +
      `unresolved ${report.unresolved}, ${JSON.stringify(extra)}`,
  );
}

describe('faults under load', () => {
  // The cluster case retries with a fresh cluster: on a loaded 2-core machine nats-server 2.10
  // sometimes leaves a three-node cluster unsettled (a peer never marked current) at start-up.
  it('three-node cluster, replicas 3: the node leading the stream and serving the gateway is SIGKILLed and restarted; every acked add is applied exactly once', { timeout: 180_000, retry: 2 }, async () => {
    const cluster: NatsCluster = await startNatsCluster();
    cleanup.push(() => cluster.stop());
    const leaderUrl = async (jsm: JetStreamManager): Promise<string> => {
      const leader = (await jsm.streams.info('ACTORS')).cluster?.leader;
      const server = cluster.servers.find((s) => s.name === leader);
      if (server === undefined) throw new Error(`no stream leader among ${cluster.servers.map((s) => s.name).join(', ')} (got ${leader})`);
      return server.url;
    };
    const stack = await startStack(cluster.urls, cluster.serverUrls, { ACTORS_REPLICAS: '3' }, leaderUrl);

    // ACTORS_REPLICAS reaches every stream and bucket.
    for (const name of ['ACTORS', 'ACTORS_DLQ', 'KV_actors', 'KV_actors_ctl']) {
      const info = await stack.jsm.streams.info(name);
      expect({ name, replicas: info.config.num_replicas, peers: info.cluster?.replicas?.length }).toEqual({ name, replicas: 3, peers: 2 });
    }

    const load = startAddLoad({ inject: stack.inject, keys: KEYS, headers: AUTH });
    await waitFor(() => load.report.total() >= PHASE, { timeoutMs: 30_000, message: `${PHASE} acked adds before the fault` });
    // The stream's leader, which is also the server the gateway is connected to.
    const victimUrl = await leaderUrl(stack.jsm);
    const victim = cluster.servers.find((s) => s.url === victimUrl)!;
    await victim.kill('SIGKILL');
    const atKill = load.report.total();
    await waitFor(() => load.report.total() >= atKill + PHASE, { timeoutMs: 45_000, message: `${PHASE} acked adds with ${victim.name} down` });
    // The gateway lost its server and moved to another by itself.
    expect(stack.gatewayWarnings.some((l) => l.msg === 'disconnected from NATS; reconnecting')).toBe(true);
    await victim.restart();
    await cluster.waitForMetaLeader(30_000);
    const atRestart = load.report.total();
    await waitFor(() => load.report.total() >= atRestart + PHASE, { timeoutMs: 45_000, message: `${PHASE} acked adds after ${victim.name} came back` });
    const report = await load.stop();

    await expectExactlyOnce(stack, report);
    expect(report.maxLatencyMs).toBeLessThan(REQUEST_DEADLINE_MS + DEADLINE_SLACK_MS);
    // The restarted node caught up: it is a current replica of the stream again.
    await waitFor(
      async () => (await stack.jsm.streams.info('ACTORS')).cluster?.replicas?.every((r) => r.current) === true,
      { timeoutMs: 30_000, message: `${victim.name} to be a current replica again` },
    );
    summary('cluster R3, SIGKILL of the stream leader and the gateway\'s server', report, { killed: victim.name, ackedDuringFault: atRestart - atKill });
  });

  it('single nats-server SIGKILLed and restarted on its store: 503 while down, readiness says so, nothing lost or applied twice', async () => {
    const server: NatsServer = await startNatsServer();
    cleanup.push(() => server.stop());
    const stack = await startStack(server.url, [server.url]);

    const load = startAddLoad({ inject: stack.inject, keys: KEYS, headers: AUTH });
    await waitFor(() => load.report.total() >= PHASE, { timeoutMs: 30_000, message: `${PHASE} acked adds before the fault` });
    await server.kill('SIGKILL');
    const atKill = load.report.total();
    await waitFor(async () => (await stack.inject({ method: 'GET', url: '/readyz' })).statusCode === 503, {
      timeoutMs: 10_000,
      message: '/readyz to report NATS unavailable',
    });
    // While NATS is away, requests are answered at once with 503, not queued.
    const downStarted = performance.now();
    const down = await stack.inject({ method: 'POST', url: '/api/counter/fault-0/add?value=1000', headers: AUTH });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ error: { code: 'NATS_UNAVAILABLE' } });
    expect(performance.now() - downStarted).toBeLessThan(1_000);
    const read = await stack.inject({ method: 'GET', url: '/api/counter/fault-0', headers: AUTH });
    expect(read.statusCode).toBe(503);
    await waitFor(() => (load.report.codes.get('NATS_UNAVAILABLE') ?? 0) >= 20, { message: 'the load to meet 503s' });
    const workerLinesAtKill = stack.worker.lineCount;
    const beforeRestart = load.report.total();

    await server.restart();
    await waitFor(async () => (await stack.inject({ method: 'GET', url: '/readyz' })).statusCode === 200, {
      timeoutMs: 20_000,
      message: '/readyz to turn 200 again',
    });
    const atRestart = load.report.total();
    await waitFor(() => load.report.total() >= atRestart + PHASE, { timeoutMs: 45_000, message: `${PHASE} acked adds after the restart` });
    const report = await load.stop();

    await expectExactlyOnce(stack, report);
    expect(report.maxLatencyMs).toBeLessThan(REQUEST_DEADLINE_MS + DEADLINE_SLACK_MS);
    // The worker reconnected by itself and restarted its partitions (each from its checkpoint).
    const resumed = startedPartitions(stack.worker, workerLinesAtKill);
    expect(resumed.length).toBeGreaterThan(0);
    expect(stack.worker.running).toBe(true);
    summary('single server, SIGKILL + restart on its store', report, {
      ackedBetweenKillAndRestart: beforeRestart - atKill,
      unavailable503: report.codes.get('NATS_UNAVAILABLE') ?? 0,
      resumedPartitions: resumed.length,
    });
  }, 120_000);
});
