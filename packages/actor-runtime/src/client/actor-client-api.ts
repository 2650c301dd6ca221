/** What a client can do with actors: the {@link ActorClient} interface (createActorClient makes one). */
import type { AnyActorDefinition } from '../definition/define-actor.js';
import type { DeadLetter } from '../protocol/index.js';
import type { ClusterStatus } from './cluster-status.js';
import type { ListOptions, ListPage } from './list-actors.js';
import type { ActorSnapshot, CallResult, SignalResult } from './results.js';
import type { TimerClient } from './timers.js';

/** The client side: signal, call, read and list actors; schedule, list and cancel timers. */
export interface ActorClient extends TimerClient {
  /** The definition registered for `type`, if any. */
  definition(type: string): AnyActorDefinition | undefined;
  /** Validates names and input; throws {@link InvalidNameError}, {@link UnknownActorError}, {@link UnknownOperationError}, {@link InvalidInputError}. */
  parseInput(type: string, op: string, raw: unknown): unknown;
  /**
   * Publishes an operation to the stream; resolves with its sequence once stored. Throws an
   * {@link ActorError} with code `STREAM_FULL` when the stream refuses it (byte bound reached),
   * and `IDEMPOTENCY_KEY_REUSED` when `idempotencyKey` was used for another operation or input.
   */
  signal(type: string, key: string, op: string, input?: unknown, opts?: { idempotencyKey?: string }): Promise<SignalResult>;
  /**
   * Publishes an operation and awaits its result (after the state is committed); the reply is
   * accepted only from the call's own inbox and with the operation's `seq`. Throws
   * {@link OperationFailedError} for an error result, and what {@link ActorClient.signal} throws.
   */
  call(type: string, key: string, op: string, input?: unknown, opts?: { idempotencyKey?: string; timeoutMs?: number }): Promise<CallResult>;
  /**
   * Reads an actor's state; with `minSeq`, waits until the state includes that operation. A
   * record an older version of the type wrote is shown migrated: by this client's definition
   * when it has one, else, when `version` (the newest version the caller knows registered) is
   * newer than the record's, by a worker hosting the type (the query service's `$state`).
   */
  read(type: string, key: string, opts?: { minSeq?: number; timeoutMs?: number; version?: number }): Promise<ActorSnapshot>;
  /**
   * Lists the live actors of a type in the order of their last update, paged by `cursor` (the
   * opaque `nextCursor` of the previous page). A page costs O(limit), whatever the number of
   * actors; an actor updated while you page may appear again on a later page, none is missed.
   * A page may hold fewer than `limit` items (a rare `prefix`) and still have a `nextCursor`.
   * Throws a `RangeError` for a malformed cursor.
   */
  list(type: string, opts?: ListOptions): Promise<ListPage>;
  /** Deletes an actor's state, as an ordered operation. */
  delete(type: string, key: string, opts?: { idempotencyKey?: string }): Promise<SignalResult>;
  /** Members, partition owners, checkpoints and lag. */
  status(): Promise<ClusterStatus>;
  /**
   * Removes a service (lane) nobody runs any more: its registration, leases and checkpoints,
   * and the registration of each type no other service hosts. From then on its operations no
   * longer hold the stream's retention, and operations of a type it alone hosted are dead
   * letters (`UNKNOWN_ACTOR`). Refused with `SERVICE_LIVE` while one of its workers is live,
   * `NOT_FOUND` for a service never registered. Resolves with the types unregistered.
   */
  removeService(id: string): Promise<{ removed: string; types: string[] }>;
  /** Dead letters in stream order, paged by `cursor` (the last `dlqSeq` of the previous page). */
  deadLetters(opts?: { limit?: number; cursor?: number }): Promise<{ items: DeadLetter[]; nextCursor: number | null }>;
  /**
   * Publishes a dead letter's original operation again; resolves with its new sequence. The
   * stored subject is used only if it is a valid operation subject; otherwise throws an
   * {@link ActorError} with code {@link INVALID_DEAD_LETTER}.
   */
  resubmit(dlqSeq: number): Promise<SignalResult>;
  /** Stops the reply subscription. Does not close the connection. */
  close(): void;
}
