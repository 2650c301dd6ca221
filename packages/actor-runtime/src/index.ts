/**
 * @packageDocumentation
 * jetactor for actor authors: `defineActor`, the schemas of inputs, results and state, and the
 * errors a handler throws or a caller catches. The other audiences have entry points of their
 * own: `@jetactor/actor-runtime/client` (signal, call, read and watch actors),
 * `@jetactor/actor-runtime/worker` (host actors: the worker, provisioning, metrics) and
 * `@jetactor/actor-runtime/protocol` (the wire contract: subjects, names, headers, error table).
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
export {
  ActorError,
  ConfigError,
  ErrorCode,
  FencedError,
  HandlerError,
  InvalidInputError,
  InvalidNameError,
  OperationFailedError,
  PartitionBlockedError,
  TimeoutError,
  UnknownActorError,
  UnknownOperationError,
  toErrorBody,
} from './protocol/errors.js';
export type { BlockedAt, BlockReason, ErrorBody } from './protocol/errors.js';
export { MAX_KEY_LENGTH, MAX_OP_LENGTH, MAX_TYPE_LENGTH } from './protocol/name-rules.js';
export { ActorKeySchema, nameSchema, validateName } from './protocol/names.js';
