/**
 * Worker metrics in the Prometheus format, fed by the worker hooks (served by
 * `metrics-server.ts` on `METRICS_PORT`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Worker, WorkerHooks } from '../worker-options.js';

/** Prefix of every worker metric. */
export const WORKER_METRICS_PREFIX = 'jetactor_worker_';

/** The worker's metrics: hooks to pass to `createWorker`, and the registry to serve. */
export interface WorkerMetrics {
  /** The registry the metrics server serves (never prom-client's global one). */
  readonly registry: Registry;
  /** Pass these to `createWorker({ hooks })`. */
  readonly hooks: WorkerHooks;
  /** Reads owned partitions, checkpoints and lag from `worker` at each scrape. */
  attach(worker: Worker): void;
}

/** Options of {@link createWorkerMetrics}. */
export interface WorkerMetricsOptions {
  /** Also export Node process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

/** Creates the worker's metrics in a fresh registry. */
export function createWorkerMetrics(opts: WorkerMetricsOptions = {}): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  const p = WORKER_METRICS_PREFIX;
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: p });
  let worker: Worker | undefined;

  const applied = new Counter({
    name: `${p}operations_applied_total`,
    help: 'Operations applied and committed, by actor type and operation (errors excluded).',
    labelNames: ['type', 'op'],
    registers,
  });
  const errors = new Counter({
    name: `${p}operation_errors_total`,
    help: 'Operations that failed (bad input, unknown actor or operation, handler error), by type, operation and error code.',
    labelNames: ['type', 'op', 'code'],
    registers,
  });
  const commits = new Counter({ name: `${p}commits_total`, help: 'Batches committed.', registers });
  const batchSize = new Histogram({
    name: `${p}commit_batch_size`,
    help: 'Operations per committed batch.',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers,
  });
  const commitSeconds = new Histogram({
    name: `${p}commit_duration_seconds`,
    help: 'Time to commit a batch (state records, checkpoint, replies).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const acquisitions = new Counter({ name: `${p}partition_acquisitions_total`, help: 'Partitions this worker took.', registers });
  const releases = new Counter({
    name: `${p}partition_releases_total`,
    help: 'Partitions this worker let go, by reason (rebalance, shutdown, fenced, failed).',
    labelNames: ['reason'],
    registers,
  });
  new Gauge({
    name: `${p}owned_partitions`,
    help: 'Partitions this worker owns and reads now.',
    registers,
    collect() {
      this.set(worker?.ownedPartitions().length ?? 0);
    },
  });
  new Gauge({
    name: `${p}partition_lag`,
    help: 'Operations stored but not applied yet, per owned partition.',
    labelNames: ['partition'],
    registers,
    collect() {
      // Only what is owned now: a released partition's series disappears.
      this.reset();
      for (const s of worker?.partitionStatus() ?? []) this.set({ partition: String(s.partition) }, s.lag);
    },
  });
  new Gauge({
    name: `${p}partition_checkpoint`,
    help: 'Stream sequence up to which each owned partition is applied.',
    labelNames: ['partition'],
    registers,
    collect() {
      this.reset();
      for (const s of worker?.partitionStatus() ?? []) this.set({ partition: String(s.partition) }, s.checkpoint);
    },
  });

  const hooks: WorkerHooks = {
    onCommit(info) {
      commits.inc();
      batchSize.observe(info.ops);
      commitSeconds.observe(info.commitMs / 1000);
      for (const [name, count] of Object.entries(info.byOperation)) {
        const dot = name.indexOf('.');
        applied.inc({ type: name.slice(0, dot), op: name.slice(dot + 1) }, count);
      }
    },
    onOperationError(info) {
      errors.inc({ type: info.type, op: info.op, code: info.error.code });
    },
    onAcquire() {
      acquisitions.inc();
    },
    onRelease(info) {
      releases.inc({ reason: info.reason });
    },
  };

  return {
    registry,
    hooks,
    attach(w) {
      worker = w;
    },
  };
}
