/**
 * @packageDocumentation
 * @internal
 * jetactor's own packages (gateway, CLI, bench, test kit) reach the runtime's internals here
 * (`@jetactor/actor-runtime/internal`). Not a public API: it changes without notice.
 */
export * from './index.js';
export * from './client.js';
export * from './worker-host.js';
export { unknownOperationAction } from './processing/fold-versions.js';
export type { UnknownOperationAction } from './processing/key-fold.js';
export {
  deadLetterSubject,
  defaultNames,
  isValidReplySubject,
  MAX_REPLY_SUBJECT_LENGTH,
  parseOperationSubject,
  operationSubject,
  parseStoredSubject,
  partitionOf,
  querySubject,
  RESERVED_TYPES,
  stateKey,
  validateTimerId,
  TimerHeaders,
  CANCEL_TIMER_OPERATION,
  FIRE_TIMER_OPERATION,
  MAX_TIMER_ID_LENGTH,
} from './names.js';
export type { ActorNames, ParsedSubject } from './names.js';
export { isJetStreamNotEnabled, kvWriteSubject, watchConsumerOf } from './connection/nats-internals.js';
export { partitionsOfStream, partitionTransform } from './store/provision.js';
export { BINDINGS_LOCK_KEY, bindingTransform, captureStreamName, captureType, subjectsCollide } from './store/bindings.js';
export { controlKeys } from './store/records.js';
export type { Checkpoint, LeaseRecord, MemberRecord, StateRecord, StoredSend, StoredTimer } from './store/records.js';
export { DeadLetterHeaders, decodePayload, REPLY_HEADER } from './processing/partition-processor.js';
export type { OperationReply, ProcessorHooks } from './processing/partition-processor.js';
export { assignPartitions } from './ownership/assignment.js';
export { QueryHeaders, STATE_QUERY } from './queries/protocol.js';
export { WORKER_ENV, decimalEnv, durationMsEnv, intEnv, parseEnv } from './host/env.js';
export { TYPE_KEY_PREFIX, actorTypeRecord, parseActorTypeRecord, registerActorTypes, typeKey, watchActorTypes } from './host/registry.js';
export type { ActorTypeRecord, ActorTypeWatch, RegisterActorTypesOptions, WatchActorTypesOptions } from './host/registry.js';
export { timersOfRecord } from './client/timers.js';
