/** The client's options and the shapes of what its calls answer (leaf types: every client module may import them). */
import type { MsgHdrs } from '@nats-io/nats-core';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import type { ActorNames } from '../protocol/index.js';

/** Options of {@link createActorClient}. */
export interface ActorClientOptions {
  /** Known actor definitions, for input validation and initial states. */
  actors?: readonly AnyActorDefinition[];
  /** Stream, subject and bucket names. */
  names?: Partial<ActorNames>;
  /** Default timeout of calls and `minSeq` reads, in ms. Default 5000. */
  timeoutMs?: number;
  /** A service none of whose workers has run for this long is shown `inactive` by {@link ActorClient.status}, in ms. Default 3600000 (1 hour). */
  serviceInactiveMs?: number;
}

/** An actor's state as read from the state bucket. */
export interface ActorSnapshot {
  type: string;
  key: string;
  state: unknown;
  /** Stream sequence of the last operation applied; 0 if never written. */
  seq: number;
  /** KV revision of the record; 0 if never written. */
  revision: number;
  /** False when the actor was never written or was deleted. */
  exists: boolean;
  /**
   * The version of the actor definition whose shape `state` has, when above 1: the record's, or
   * the reader's definition's when the record was older and is shown migrated.
   */
  version?: number;
}

/** Result of a signal: the operation's stream sequence. */
export interface SignalResult {
  seq: number;
  /** True when the idempotency key was seen before; `seq` is the original's. */
  duplicate: boolean;
}

/** Result of a call: the operation's result once its state is committed. */
export interface CallResult {
  result: unknown;
  seq: number;
  /**
   * True when the idempotency key was seen before: `seq` is the original operation's, which
   * is applied, and `result` is the original's result (kept by the workers for the duplicate
   * window; null when it is no longer kept). An original that failed throws its error again.
   */
  duplicate?: boolean;
}


/** Options of one publish of an operation. */
export interface PublishOperation {
  type: string;
  key: string;
  op: string;
  input: unknown;
  idempotencyKey?: string;
  headers?: MsgHdrs;
  timeoutMs?: number;
}
