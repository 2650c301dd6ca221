/**
 * @packageDocumentation
 * jetactor's runtime: actor definitions, the worker that owns partitions and applies
 * operations, the client that signals, calls and reads actors, and provisioning.
 */
export { defineActor, DELETE_OPERATION } from './definition/define-actor.js';
export type { ActorDefinition, ActorDefinitionOptions, AnyActorDefinition, StateOf } from './definition/define-actor.js';
export type {
  ActorDescriptor,
  CallerInputOf,
  HandlerInputOf,
  InputDescriptor,
  InputParser,
  InputSource,
  JsonSchema,
  OperationContext,
  OperationEntry,
  OperationHandler,
  OperationOutcome,
  OperationSignatures,
  OperationSpec,
  QueryContext,
  QueryEntry,
  QueryHandler,
  QuerySignatures,
  QuerySpec,
  Send,
  Signature,
  SignatureMap,
  SubjectBinding,
  TimerSpec,
} from './definition/types.js';
export type { StandardSchemaV1 } from './definition/standard-schema.js';
export { shown as describeValue, unionVariantFor, where as inputPath } from './definition/schema-errors.js';
export { NoInput, Type } from './definition/schemas.js';
export type { Static, TSchema } from './definition/schemas.js';
export * from './protocol/index.js';
export { unknownOperationAction } from './processing/fold-versions.js';
export type { UnknownOperationAction } from './processing/key-fold.js';
export { kvWriteSubject, watchConsumerOf } from './connection/nats-internals.js';
export { assertServerVersion, connectFromEnv, connectionOptionsFromEnv, MIN_SERVER_VERSION } from './connection/connect.js';
export { partitionsOfStream, partitionTransform, provisionTopology } from './store/provision.js';
export type { Topology } from './store/provision.js';
export { defaultTopology } from './store/topology-options.js';
export type { TopologyOptions } from './store/topology-options.js';
export { bindingTransform, captureStreamName, captureType, subjectsCollide } from './store/capture-names.js';
export { provisionBindings } from './store/bindings.js';
export type { BindingsResult, ProvisionBindingsOptions, ProvisionedBinding } from './store/bindings.js';
export type { Checkpoint, LeaseRecord, MemberRecord, StateRecord, StoredSend, StoredTimer } from './store/records.js';
export type { ProcessorHooks } from './processing/commit-types.js';
export { assignPartitions } from './ownership/assignment.js';
export { createWorker, resolveWorkerOptions } from './worker.js';
export type { Worker, WorkerHooks, WorkerOptions } from './worker.js';
export { createActorClient, INVALID_DEAD_LETTER } from './client/actor-client.js';
export { MAX_PAGE_LIMIT, parseCursor } from './client/list-actors.js';
export type { ListOptions, ListPage } from './client/list-actors.js';
export { createTypedClient } from './client/typed-client.js';
export type { ActorHandle, CallOptions, InputArgs, ReadOptions, SignalOptions, TypedCallResult, TypedClient, TypedSnapshot } from './client/typed-client.js';
export { createQueryClient, runQuery } from './client/query-client.js';
export type { QueryClient, QueryClientOptions } from './client/query-client.js';
export { QUERY_QUEUE, startQueryService } from './queries/query-service.js';
export type { QueryService, QueryServiceOptions } from './queries/query-service.js';
export { createActorWatcher } from './client/actor-watcher.js';
export type { ActorChange, ActorWatch, ActorWatcher, ActorWatcherOptions, WatchOptions } from './client/actor-watcher.js';
export type { ActorClient, ActorClientOptions, ActorSnapshot, CallResult, SignalResult } from './client/actor-client.js';
export type { ClusterStatus } from './client/cluster-status.js';
export { runWorker } from './host/run-worker.js';
export { exitWithParent, whenParentGone } from './host/parent.js';
export type { RunWorkerOptions, RunningWorker } from './host/run-worker.js';
export { WORKER_ENV, decimalEnv, durationMsEnv, intEnv, parseEnv, workerOptionsFromEnv } from './host/env.js';
export type { EnvWorkerOptions } from './host/env.js';
export { WORKER_METRICS_PREFIX, createWorkerMetrics } from './host/metrics.js';
export type { WorkerMetrics, WorkerMetricsOptions } from './host/metrics.js';
export { DEFAULT_METRICS_PORT, startMetricsServer } from './host/metrics-server.js';
export type { MetricsServer, MetricsServerOptions, Readiness } from './host/metrics-server.js';
export { actorTypeRecord, parseActorTypeRecord, registerActorTypes, watchActorTypes } from './host/registry.js';
export type { ActorTypeRecord, ActorTypeWatch, RegisterActorTypesOptions, WatchActorTypesOptions } from './host/registry.js';
export { defaultTimerId, planTimer, timersOfRecord } from './client/timers.js';
export type { CancelTimerOptions, CancelTimerOutcome, CancelTimerSent, PlannedTimer, ScheduleOptions, ScheduleResult, TimerClient, TimerInfo, TimerList } from './client/timers.js';
