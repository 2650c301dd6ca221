/**
 * The runtime's error hierarchy and its codes. Every error has a stable `code`; branch on the
 * class or the code, never on the message text.
 */
import { ERROR_TABLE } from './error-table.js';

type Table = typeof ERROR_TABLE;
/** The runtime's codes by their `ErrorCode` name, read from the table's `runtime` column. */
type RuntimeCodes = { readonly [C in keyof Table as Table[C] extends { runtime: infer N extends string } ? N : never]: C };

/**
 * Stable error codes the runtime raises and reports to callers (`ErrorCode.InvalidInput` is
 * `'INVALID_INPUT'`): the rows of the error table (protocol/error-table.ts) that have a
 * `runtime` name. The table says what each means and the HTTP status the gateway sends.
 */
export const ErrorCode: RuntimeCodes = Object.freeze(
  Object.fromEntries(
    Object.entries(ERROR_TABLE as Readonly<Record<string, { runtime?: string }>>)
      .filter(([, info]) => info.runtime !== undefined)
      .map(([code, info]) => [info.runtime, code]),
  ) as RuntimeCodes,
);
/** One of the {@link ErrorCode} values. */
export type ErrorCode = RuntimeCodes[keyof RuntimeCodes];

/** Base class of every runtime error. */
export class ActorError extends Error {
  /** Stable, machine-readable code. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ActorError';
    this.code = code;
  }
}

/** The input of an operation failed the actor's validation. */
export class InvalidInputError extends ActorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidInput, message, options);
    this.name = 'InvalidInputError';
  }
}

/** A type, key or operation name is not a valid single subject token. */
export class InvalidNameError extends ActorError {
  /** Which name was invalid. */
  readonly field: 'type' | 'key' | 'op';
  constructor(field: 'type' | 'key' | 'op', message: string) {
    super(
      field === 'type' ? ErrorCode.InvalidType : field === 'key' ? ErrorCode.InvalidKey : ErrorCode.InvalidOperation,
      message,
    );
    this.name = 'InvalidNameError';
    this.field = field;
  }
}

/** No actor definition is registered for the type. */
export class UnknownActorError extends ActorError {
  constructor(type: string) {
    super(ErrorCode.UnknownActor, `unknown actor type '${type}'`);
    this.name = 'UnknownActorError';
  }
}

/** The actor has no such operation. */
export class UnknownOperationError extends ActorError {
  constructor(type: string, op: string) {
    super(ErrorCode.UnknownOperation, `actor '${type}' has no operation '${op}'`);
    this.name = 'UnknownOperationError';
  }
}

/** An operation's handler threw; the state was left unchanged. */
export class HandlerError extends ActorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.HandlerError, message, options);
    this.name = 'HandlerError';
  }
}

/** A call or read did not complete within its timeout. */
export class TimeoutError extends ActorError {
  constructor(message: string) {
    super(ErrorCode.Timeout, message);
    this.name = 'TimeoutError';
  }
}

/** A called operation was applied and answered with an error result. */
export class OperationFailedError extends ActorError {
  /** Stream sequence of the failed operation. */
  readonly seq: number;
  constructor(code: string, message: string, seq: number) {
    super(code, message);
    this.name = 'OperationFailedError';
    this.seq = seq;
  }
}

/** This worker lost ownership of a partition (lease or record taken by a newer epoch). */
export class FencedError extends ActorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Fenced, message, options);
    this.name = 'FencedError';
  }
}

/** Invalid configuration or an incompatible environment (server version, partition count). */
export class ConfigError extends ActorError {
  constructor(message: string, code: string = ErrorCode.Config, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ConfigError';
  }
}

/** Why a partition stops at an operation instead of applying or dead-lettering it. */
export type BlockReason = 'newer-record' | 'unknown-operation';

/** Where and why a partition waits: the operation it stopped at and what it found. */
export interface BlockedAt {
  reason: BlockReason;
  /** Stream sequence of the operation the partition stopped at (it is not applied, nor anything after it). */
  seq: number;
  type: string;
  key: string;
  op: string;
  /** The version of the worker's definition of `type`. */
  version: number;
  /** With `newer-record`: the version that wrote the record. */
  recordVersion?: number;
}

/**
 * Thrown by the fold when an operation must wait for a worker that can apply it: the record was
 * written by a newer version of the actor than this worker's (it must never be overwritten), or
 * {@link UnknownOperationAction} said `wait`. Not an operation's error: the committer commits
 * what came before it, says so (log, checkpoint, metric) and the partition restarts from there.
 */
export class PartitionBlockedError extends ActorError {
  readonly at: BlockedAt;
  constructor(at: BlockedAt) {
    super(
      at.reason === 'newer-record' ? ErrorCode.RecordTooNew : ErrorCode.PartitionBlocked,
      at.reason === 'newer-record'
        ? `record ${at.type}.${at.key} was written by version ${at.recordVersion} of '${at.type}'; this worker runs version ${at.version} and must not overwrite it: the partition waits at seq ${at.seq} for a worker of version ${at.recordVersion} or newer`
        : `operation '${at.op}' of '${at.type}' is unknown to version ${at.version}: the partition waits at seq ${at.seq} for a worker that knows it`,
    );
    this.name = 'PartitionBlockedError';
    this.at = at;
  }
}

/** The JSON error shape sent to callers in replies and HTTP bodies. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** Converts any thrown value into an {@link ErrorBody}, hiding internals of non-actor errors. */
export function toErrorBody(err: unknown): ErrorBody {
  // A handler may throw anything: a code with a newline or a megabyte-long message must not
  // become a header or a reply that cannot be sent (a partition stuck on its own error).
  let code: string = ErrorCode.HandlerError;
  let message: string;
  try {
    if (err instanceof ActorError && typeof err.code === 'string' && ERROR_CODE_SHAPE.test(err.code)) code = err.code;
    message = err instanceof Error ? String(err.message) : String(err);
  } catch {
    message = 'the handler threw a value that cannot be shown';
  }
  if (message.length > MAX_ERROR_MESSAGE) message = `${message.slice(0, MAX_ERROR_MESSAGE)}…`;
  return { code, message };
}

/** What an error code may look like: `UPPER_SNAKE_CASE`, at most 64 characters. */
const ERROR_CODE_SHAPE = /^[A-Z][A-Z0-9_]{0,63}$/;
/** Longest error message kept in a reply, an outcome or a dead letter. */
const MAX_ERROR_MESSAGE = 2048;
