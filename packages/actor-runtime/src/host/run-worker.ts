/**
 * The worker host: what a process that hosts actors runs. Connects to NATS from the
 * environment, serves metrics, `/healthz` and `/readyz`, starts the worker and the query
 * service, registers the hosted actor types for gateways, and stops gracefully on
 * SIGINT/SIGTERM.
 */
import { setFlagsFromString } from 'node:v8';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { pino, type Logger } from 'pino';
import { connectionOptionsFromEnv } from '../connection/connect.js';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { ConfigError, defaultNames } from '../protocol/index.js';
import { startQueryService, type QueryService } from '../queries/query-service.js';
import { provisionTopology } from '../store/provision.js';
import { createWorker, resolveWorkerOptions } from '../worker.js';
import type { Worker } from '../worker-options.js';
import { intEnv, workerOptionsFromEnv } from './env.js';
import { createWorkerMetrics } from './metrics.js';
import { DEFAULT_METRICS_PORT, startMetricsServer, type MetricsServer, type MetricsServerOptions } from './metrics-server.js';
import { readinessCheck, type HostState } from './readiness.js';
import { registerActorTypes } from './registry.js';

/** Options of {@link runWorker}; everything else comes from the environment. */
export interface RunWorkerOptions {
  /** The actor definitions to host (at least one). */
  actors: readonly AnyActorDefinition[];
  /**
   * The service (lane) the worker belongs to (`JETACTOR_SERVICE` overrides it). Default: derived
   * from the hosted types (README, "Services and versions").
   */
  service?: string;
  /** Environment to read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Logger. Default: pino at `LOG_LEVEL` (info), JSON to stdout. */
  logger?: Logger;
  /**
   * Stop gracefully and exit the process on SIGINT/SIGTERM (exit code 0; 1 if stopping takes
   * over 15 s). Default true; false leaves stopping to the caller (`RunningWorker.stop()`).
   */
  handleSignals?: boolean;
}

/** A worker host started by {@link runWorker}. */
export interface RunningWorker {
  /** The worker. */
  readonly worker: Worker;
  /** Its NATS connection. */
  readonly nc: NatsConnection;
  /** `http://<host>:<port>` of `/metrics`, `/healthz` and `/readyz`; undefined when off or not listening. */
  readonly metricsUrl: string | undefined;
  /** Hands the partitions over, stops the query service and the metrics server, drains NATS. */
  stop(): Promise<void>;
}

/** How long a graceful stop may take after a signal before the process exits anyway, in ms. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

/** Logs connection state changes and tracks whether NATS is connected (for `/readyz`). */
function trackConnection(nc: NatsConnection, state: HostState, log: Logger): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') {
        state.connected = s.type === 'reconnect';
        log.warn({ status: s.type }, `NATS ${s.type}`);
      }
    }
  })();
}

/** Starts the metrics server on `METRICS_PORT`/`METRICS_HOST`; undefined when off or when the port is taken. */
async function metricsServerFrom(env: NodeJS.ProcessEnv, opts: Omit<MetricsServerOptions, 'port' | 'host'>): Promise<MetricsServer | undefined> {
  const port = intEnv(env, 'METRICS_PORT') ?? DEFAULT_METRICS_PORT;
  if (port < 0 || port > 65535) throw new ConfigError(`METRICS_PORT must be 0 (off) to 65535, got ${port}`);
  if (port === 0) return undefined;
  try {
    const server = await startMetricsServer({ ...opts, port, host: env.METRICS_HOST || '127.0.0.1' });
    opts.log?.info({ url: server.url }, 'metrics, /healthz and /readyz listening');
    return server;
  } catch (err) {
    // Metrics are not worth a worker: a second worker on one host keeps running without them.
    opts.log?.warn({ err, port }, 'metrics server could not listen; running without it (set METRICS_PORT, 0 = off)');
    return undefined;
  }
}

/** Default of `WORKER_HEAP_GROWTH_PERCENT`. */
export const DEFAULT_HEAP_GROWTH_PERCENT = 150;

/**
 * How far V8 lets the heap grow past what the last full collection kept, as a percentage
 * (`--heap-growing-percent`): `WORKER_HEAP_GROWTH_PERCENT`, default 150; 0 leaves V8's own
 * policy. A busy worker allocates fast, and V8 then grows the heap to about 3.5x its live data
 * (100,000 cached actors: 70 MB live, 305-332 MB RSS). At 150% the same run stays at
 * 234-247 MB with the same CPU per operation; at 50% it stays under 200 MB but spends ~20%
 * more CPU per operation on collections (packages/bench/README.md).
 * V8 reads the flag at every full collection, so setting it at start-up takes effect. A
 * `--heap-growing-percent` given on the command line wins.
 */
export function applyHeapGrowth(env: NodeJS.ProcessEnv): void {
  const percent = intEnv(env, 'WORKER_HEAP_GROWTH_PERCENT') ?? DEFAULT_HEAP_GROWTH_PERCENT;
  if (percent < 0 || percent > 1000) throw new ConfigError(`WORKER_HEAP_GROWTH_PERCENT must be 0 (V8's default) to 1000, got ${percent}`);
  // Node takes the flag with '-' or '_' between its words.
  const given = (flag: string) => flag.replaceAll('_', '-').includes('--heap-growing-percent');
  if (percent === 0 || process.execArgv.some(given) || given(process.env.NODE_OPTIONS ?? '')) return;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * Hosts `actors`: connects to NATS from the environment and runs a worker until
 * SIGINT/SIGTERM, then hands its partitions over and exits. Environment: `NATS_URL` and
 * credentials, `ACTORS_PARTITIONS`, `ACTORS_REPLICAS`, `WORKER_ID`, `LEASE_TTL_MS`,
 * `HEARTBEAT_MS`, `MAX_BATCH`, `MAX_CACHED_RECORDS`, `MAX_STATE_BYTES`, `ACTORS_MAX_BYTES`,
 * `ACTORS_RETAIN_MS`, `ACTORS_DLQ_MAX_BYTES`, `ACTORS_DLQ_MAX_MSGS`, `ACTORS_DLQ_MAX_AGE_MS`, `ACTORS_INBOX_PREFIX`, `LOG_LEVEL`, `METRICS_PORT` (9464; 0 = off),
 * `METRICS_HOST` (127.0.0.1) of the Prometheus `/metrics`, `/healthz` and `/readyz` server, and
 * `WORKER_HEAP_GROWTH_PERCENT` (see {@link applyHeapGrowth}).
 *
 * ```ts
 * import { runWorker } from '@jetactor/actor-runtime/worker';
 * import { cart } from './cart.js';
 * await runWorker({ actors: [cart] });
 * ```
 */
export async function runWorker(opts: RunWorkerOptions): Promise<RunningWorker> {
  if (!opts || !Array.isArray(opts.actors) || opts.actors.length === 0) {
    throw new ConfigError('runWorker: actors must list at least one actor definition');
  }
  const env = opts.env ?? process.env;
  const settings = workerOptionsFromEnv(env);
  applyHeapGrowth(env);
  const names = defaultNames(settings.names);
  const log = opts.logger ?? pino({ level: env.LOG_LEVEL ?? 'info', base: { service: 'worker' } });
  const nc = await connect(connectionOptionsFromEnv(env, 'jetactor-worker'));
  log.info({ server: nc.getServer() }, 'connected to NATS');
  const state: HostState = { connected: true, started: false };
  trackConnection(nc, state, log);
  const metrics = intEnv(env, 'METRICS_PORT') === 0 ? undefined : createWorkerMetrics();
  let metricsServer: MetricsServer | undefined;
  let queries: QueryService | undefined;
  let worker: Worker;
  try {
    if (metrics) metricsServer = await metricsServerFrom(env, { registry: metrics.registry, readiness: readinessCheck(nc, state, names), log });
    const workerOptions = { service: opts.service, ...settings, nc, actors: opts.actors, logger: log, hooks: metrics?.hooks };
    worker = createWorker(workerOptions);
    // The dead-letter stream's state at each scrape (a manager without the API check asks nothing else).
    metrics?.attach(worker, async () => (await (await jetstreamManager(nc, { checkAPI: false })).streams.info(names.dlqStream)).state);
    // Registered before the worker starts (the stream and buckets provisioned first, as
    // start() does again), so a gateway knows the types by the time partitions are owned.
    await provisionTopology(nc, resolveWorkerOptions(workerOptions).topology);
    const registered = await registerActorTypes(nc, opts.actors, { names, workerId: worker.id });
    log.info({ types: registered.map((r) => r.descriptor.type) }, 'actor types registered');
    await worker.start();
    queries = startQueryService({ nc, actors: opts.actors, names, log });
  } catch (err) {
    await metricsServer?.close();
    await nc.close();
    throw err;
  }
  state.started = true;

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await worker.stop();
      await queries?.stop();
      await metricsServer?.close();
      await nc.drain();
    })());
  if (opts.handleSignals !== false) {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'shutting down');
      setTimeout(() => process.exit(1), SHUTDOWN_TIMEOUT_MS).unref();
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { worker, nc, metricsUrl: metricsServer?.url, stop };
}
