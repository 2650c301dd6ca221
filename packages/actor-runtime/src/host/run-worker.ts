import { connect } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  connectionOptionsFromEnv,
  createWorker,
  defaultNames,
  type AnyActorDefinition,
  type Worker,
} from '@jetactor/actor-runtime';
import { pino, type Logger } from 'pino';
import { counter } from './counter.js';
import { DEFAULT_METRICS_PORT, createWorkerMetrics, startMetricsServer, type MetricsServer, type Readiness } from './metrics.js';

/** Options of {@link runWorker}; everything else comes from the environment. */
export interface RunWorkerOptions {
  actors?: readonly AnyActorDefinition[];
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

function intEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got '${v}'`);
  return n;
}

/** How long `/readyz` waits for the stream and bucket check, in ms. */
const READINESS_TIMEOUT_MS = 2_000;

/** `/readyz` of the worker: connected, started, and the stream and both buckets exist. */
function readinessCheck(nc: NatsConnection, state: { connected: boolean; started: boolean }): () => Promise<Readiness> {
  const names = defaultNames();
  const wanted = [names.stream, `KV_${names.stateBucket}`, `KV_${names.controlBucket}`];
  return async () => {
    if (nc.isClosed() || !state.connected) return { ready: false, reason: 'not connected to NATS' };
    if (!state.started) return { ready: false, reason: 'worker starting' };
    try {
      const jsm = await jetstreamManager(nc, { timeout: READINESS_TIMEOUT_MS });
      const missing: string[] = [];
      for (const stream of wanted) {
        try {
          await jsm.streams.info(stream);
        } catch (err) {
          if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) missing.push(stream);
          else throw err;
        }
      }
      return missing.length === 0 ? { ready: true } : { ready: false, reason: `missing in JetStream: ${missing.join(', ')}` };
    } catch (err) {
      return { ready: false, reason: `JetStream check failed: ${err instanceof Error ? err.message : String(err)}` };
    }
  };
}

/**
 * Connects to NATS from the environment and runs a worker until SIGINT/SIGTERM, then
 * hands its partitions over and exits. Environment: `NATS_URL` and credentials,
 * `ACTORS_PARTITIONS`, `ACTORS_REPLICAS`, `WORKER_ID`, `LEASE_TTL_MS`, `HEARTBEAT_MS`,
 * `MAX_BATCH`, `MAX_CACHED_RECORDS`, `LOG_LEVEL`, `METRICS_PORT` (9464; 0 = off) and
 * `METRICS_HOST` (127.0.0.1) of the Prometheus `/metrics`, `/healthz` and `/readyz` server.
 */
export async function runWorker(opts: RunWorkerOptions = {}): Promise<Worker> {
  const env = opts.env ?? process.env;
  const log = opts.logger ?? pino({ level: env.LOG_LEVEL ?? 'info', base: { service: 'worker' } });
  const nc = await connect(connectionOptionsFromEnv(env, 'jetactor-worker'));
  log.info({ server: nc.getServer() }, 'connected to NATS');
  const state = { connected: true, started: false };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') {
        state.connected = s.type === 'reconnect';
        log.warn({ status: s.type }, `NATS ${s.type}`);
      }
    }
  })();
  const metricsPort = intEnv(env, 'METRICS_PORT') ?? DEFAULT_METRICS_PORT;
  if (metricsPort < 0 || metricsPort > 65535) throw new Error(`METRICS_PORT must be 0 (off) to 65535, got ${metricsPort}`);
  const metrics = metricsPort > 0 ? createWorkerMetrics() : undefined;
  let metricsServer: MetricsServer | undefined;
  if (metrics) {
    try {
      metricsServer = await startMetricsServer({
        port: metricsPort,
        host: env.METRICS_HOST || '127.0.0.1',
        registry: metrics.registry,
        readiness: readinessCheck(nc, state),
        log,
      });
      log.info({ url: metricsServer.url }, 'metrics, /healthz and /readyz listening');
    } catch (err) {
      // Metrics are not worth a worker: a second worker on one host keeps running without them.
      log.warn({ err, port: metricsPort }, 'metrics server could not listen; running without it (set METRICS_PORT, 0 = off)');
    }
  }
  const worker = createWorker({
    nc,
    actors: opts.actors ?? [counter],
    id: env.WORKER_ID || undefined,
    names: env.ACTORS_INBOX_PREFIX ? { inboxPrefix: env.ACTORS_INBOX_PREFIX } : undefined,
    partitions: intEnv(env, 'ACTORS_PARTITIONS'),
    replicas: intEnv(env, 'ACTORS_REPLICAS'),
    leaseTtlMs: intEnv(env, 'LEASE_TTL_MS'),
    heartbeatMs: intEnv(env, 'HEARTBEAT_MS'),
    maxBatch: intEnv(env, 'MAX_BATCH'),
    maxCachedRecords: intEnv(env, 'MAX_CACHED_RECORDS'),
    maxStateBytes: intEnv(env, 'MAX_STATE_BYTES'),
    topology: definedOnly({
      maxBytes: intEnv(env, 'ACTORS_MAX_BYTES'),
      retainMs: intEnv(env, 'ACTORS_RETAIN_MS'),
    }),
    logger: log,
    hooks: metrics?.hooks,
  });
  metrics?.attach(worker);
  await worker.start();
  state.started = true;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    try {
      await worker.stop();
      await metricsServer?.close();
      await nc.drain();
    } finally {
      clearTimeout(force);
      process.exit(0);
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  return worker;
}

/** The fields of `o` that are set (so a missing variable keeps the runtime's default). */
function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
