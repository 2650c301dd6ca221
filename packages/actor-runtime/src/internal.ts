/**
 * @packageDocumentation
 * @internal
 * jetactor's own packages (gateway, CLI, bench, test kit) reach the runtime's internals here
 * (`@jetactor/actor-runtime/internal`). Not a public API: it changes without notice.
 */
export * from './index.js';
export * from './client.js';
export * from './worker-host.js';
export * from './protocol/index.js';
export { unknownOperationAction } from './processing/fold-versions.js';
export type { UnknownOperationAction } from './processing/key-fold.js';
export { kvWriteSubject, watchConsumerOf } from './connection/nats-internals.js';
export { partitionsOfStream, partitionTransform } from './store/provision.js';
export { bindingTransform, captureStreamName, captureType, subjectsCollide } from './store/capture-names.js';
export type { Checkpoint, LeaseRecord, MemberRecord, StateRecord, StoredSend, StoredTimer } from './store/records.js';
export type { ProcessorHooks } from './processing/commit-types.js';
export { assignPartitions } from './ownership/assignment.js';
export { WORKER_ENV, decimalEnv, durationMsEnv, intEnv, parseEnv } from './host/env.js';
export { actorTypeRecord, parseActorTypeRecord, registerActorTypes, watchActorTypes } from './host/registry.js';
export type { ActorTypeRecord, ActorTypeWatch, RegisterActorTypesOptions, WatchActorTypesOptions } from './host/registry.js';
export { timersOfRecord } from './client/timers.js';
