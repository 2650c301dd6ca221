/**
 * @packageDocumentation
 * The counter actor (add / reset / get) and the worker entry point that hosts it.
 */
export { counter, parseAddInput } from './counter.js';
export type { Counter } from './counter.js';
export { DEFAULT_METRICS_PORT, WORKER_METRICS_PREFIX, createWorkerMetrics, startMetricsServer } from './metrics.js';
export type { MetricsServer, MetricsServerOptions, Readiness, WorkerMetrics, WorkerMetricsOptions } from './metrics.js';
export { runWorker } from './run-worker.js';
export type { RunWorkerOptions } from './run-worker.js';
