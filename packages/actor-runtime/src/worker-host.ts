/**
 * @packageDocumentation
 * jetactor for worker hosts (`@jetactor/actor-runtime/worker`): run a worker that owns
 * partitions and applies operations, provision the stream and buckets, serve metrics.
 */
export { runWorker } from './host/run-worker.js';
export type { RunWorkerOptions, RunningWorker } from './host/run-worker.js';
export { exitWithParent, whenParentGone } from './host/parent.js';
export { workerOptionsFromEnv } from './host/env.js';
export type { EnvWorkerOptions } from './host/env.js';
export { createWorker, resolveWorkerOptions } from './worker.js';
export type { Worker, WorkerHooks, WorkerOptions } from './worker.js';
export { WORKER_METRICS_PREFIX, createWorkerMetrics } from './host/metrics.js';
export type { WorkerMetrics, WorkerMetricsOptions } from './host/metrics.js';
export { DEFAULT_METRICS_PORT, startMetricsServer } from './host/metrics-server.js';
export type { MetricsServer, MetricsServerOptions, Readiness } from './host/metrics-server.js';
export { provisionTopology } from './store/provision.js';
export { defaultTopology } from './store/topology-options.js';
export type { Topology } from './store/provision.js';
export type { TopologyOptions } from './store/topology-options.js';
export { provisionBindings } from './store/bindings.js';
export type { BindingsResult, ProvisionBindingsOptions, ProvisionedBinding } from './store/bindings.js';
export { QUERY_QUEUE, startQueryService } from './queries/query-service.js';
export type { QueryService, QueryServiceOptions } from './queries/query-service.js';
export { assertServerVersion, MIN_SERVER_VERSION } from './connection/connect.js';
