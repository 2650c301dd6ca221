/**
 * The types of an actor definition: what handlers see and return, the forms an operation or
 * query may take, and how the input, result and state types of each are derived from them.
 */
import type { OptionalKind, Static, TSchema } from '@sinclair/typebox';
import type { StandardInput, StandardOutput, StandardSchemaV1 } from './standard-schema.js';

/**
 * What an operation handler sees besides state and input. Everything here is the same when
 * the operation is replayed (after a crash or a hand-over), so a handler that reads only its
 * state, input and context is deterministic.
 */
export interface OperationContext {
  /** Actor type. */
  readonly type: string;
  /** Actor key. */
  readonly key: string;
  /** Operation name. */
  readonly op: string;
  /** Stream sequence of the operation message (unique, increasing per partition). */
  readonly seq: number;
  /** Time the operation was stored in the stream (not the time it is applied). */
  readonly time: Date;
  /** The id of the timer of this actor that fired the operation; undefined for any other operation. */
  readonly timer?: string;
}

/** What a query handler sees besides state and input. */
export interface QueryContext {
  /** Actor type. */
  readonly type: string;
  /** Actor key. */
  readonly key: string;
  /** Query name. */
  readonly query: string;
  /** Stream sequence of the last operation in the state read; 0 if the actor was never written. */
  readonly seq: number;
  /** False when the actor was never written or was deleted (the state is then the initial state). */
  readonly exists: boolean;
}

/**
 * An operation for another actor (or this one), returned in an outcome's `send`. It is
 * published exactly once, after the state it came with is committed, and the sends of one
 * actor to another arrive in the order they were returned.
 */
export interface Send {
  /** Actor type; this actor's type when left out. */
  type?: string;
  /** Actor key; this actor's key when left out. */
  key?: string;
  /** Operation name (a user operation of the receiving type). */
  op: string;
  /** The operation's input; JSON-serializable. */
  input?: unknown;
}

/**
 * A timer an operation sets, returned in an outcome's `schedule`. At its time the runtime
 * applies `op` (with `input`) to this actor, or sends it to `type`/`key` when given; it fires
 * exactly once (once per occurrence when recurring), never early. Setting an id this actor
 * already has replaces that timer.
 */
export interface TimerSpec {
  /** The timer's id among this actor's timers (`[A-Za-z0-9_=-]`, at most 64 characters). */
  id: string;
  /** Operation to apply when the timer fires. */
  op: string;
  /** The operation's input; JSON-serializable. */
  input?: unknown;
  /** Target actor type; this actor's type when left out. */
  type?: string;
  /** Target actor key; this actor's key when left out. */
  key?: string;
  /** Fire this many ms after the operation's time (`ctx.time`), not after the wall clock. */
  afterMs?: number;
  /** Fire at this time: ms since the epoch, an ISO 8601 string or a Date. */
  at?: number | string | Date;
  /** Recurring: fire every this many ms (at least 100); the first time is `at`/`afterMs`, else one period from now. */
  every?: number;
  /** Recurring: a cron expression (5 or 6 fields, UTC), e.g. `0 * * * *`; the first time is the next match. */
  cron?: string;
}

/** What an operation handler returns: the next state and the result for the caller. */
export interface OperationOutcome<S, R = unknown> {
  /** The next state; JSON-serializable. Returning the state unchanged writes nothing. */
  state: S;
  /** The caller's result; JSON-serializable (`undefined` is sent as `null`). */
  result: R;
  /** Operations for other actors (or this one), published exactly once after the state is committed. */
  send?: readonly Send[];
  /** Timers to set (or replace, by id) on this actor. */
  schedule?: readonly TimerSpec[];
  /** Ids of this actor's timers to cancel (an id it does not have is ignored). */
  cancel?: readonly string[];
}

/**
 * A subject binding: every message any NATS client publishes on `subject` becomes the
 * operation `op` of the actor whose key is the subject's `key`-th wildcard token, in order
 * and exactly once (the runtime provisions the capture).
 */
export interface SubjectBinding {
  /** A NATS subject with `*` wildcards (no `>`), e.g. `devices.*.telemetry`. */
  subject: string;
  /** Which `*` of `subject` is the actor key, counting from 1 (like `{{wildcard(1)}}`). */
  key: number;
  /** The operation each message becomes; its payload is the input. */
  op: string;
}

/**
 * An operation handler: `(state, input, ctx) => ({ state, result })`. The handler contract
 * (the README's "Handler contract" says the same):
 *
 * - **Pure and deterministic.** It reads only `state`, `input` and `ctx` (type, key, op, seq,
 *   time) and does no I/O, no `Date.now()`, no `Math.random()`: after a crash or a hand-over
 *   the next owner replays operations from the checkpoint and must reach the same state.
 * - **Returns `{ state, result }`**, both JSON-serializable (plain objects, arrays, strings,
 *   finite numbers, booleans, null; `undefined` as the result is sent as `null`). Each at most
 *   the worker's `maxStateBytes` as JSON (default: the server's `max_payload` − 1 KiB). A state
 *   that is not JSON or too large fails the operation (`STATE_NOT_SERIALIZABLE`,
 *   `STATE_TOO_LARGE`; `RESULT_…` for the result).
 * - **May change `state` in place** and return it: the handler gets its own copy, parsed
 *   from the stored JSON. A state that serializes as it was writes nothing.
 * - **A throw fails the operation**: the state stays as it was (changes made before the throw
 *   are dropped) and the partition moves on. A thrown `ActorError` of the handler's own (e.g.
 *   `INSUFFICIENT_FUNDS`) is a refusal: the caller gets its code, and it is the operation's
 *   outcome, not a dead letter. Anything else thrown is `HANDLER_ERROR` and a dead letter.
 */
export type OperationHandler<S, I = unknown, R = unknown> = (state: S, input: I, ctx: OperationContext) => OperationOutcome<S, R>;

/**
 * A read-only query: `(state, input, ctx) => result`, answered from the stored state without
 * a trip through the stream (and so without ordering after operations still in the stream:
 * pass `minSeq` to wait for one). Same contract as an {@link OperationHandler}: pure,
 * deterministic, a JSON-serializable result; a change to `state` is discarded; a throw is
 * `HANDLER_ERROR` (or the thrown `ActorError`'s code) for the caller only.
 */
export type QueryHandler<S, I = unknown, R = unknown> = (state: S, input: I, ctx: QueryContext) => R;

/** Turns raw JSON input into `I`, or throws an `InvalidInputError` that says what is wrong. */
export type InputParser<I = unknown> = (raw: unknown) => I;

/**
 * What validates an operation's or query's input: a TypeBox schema (its JSON Schema is what
 * {@link ActorDescriptor} shows), any Standard Schema (zod, valibot, …; synchronous), or a
 * parser function.
 */
export type InputSource = TSchema | StandardSchemaV1 | InputParser;

/** A TypeBox schema made optional with `Type.Optional(…)`: the input may be left out. */
type OptionalSchema = { readonly [OptionalKind]: 'Optional' };

/** The type a handler receives for the input source `Src`; `unknown` for no source. */
export type HandlerInputOf<Src> = Src extends StandardSchemaV1
  ? StandardOutput<Src>
  : Src extends TSchema
    ? Src extends OptionalSchema
      ? Static<Src> | undefined
      : Static<Src>
    : Src extends InputParser<infer I>
      ? I
      : unknown;

/** The type a caller may send for the input source `Src` (a parser accepts anything). */
export type CallerInputOf<Src> = Src extends StandardSchemaV1
  ? StandardInput<Src>
  : Src extends TSchema
    ? HandlerInputOf<Src>
    : unknown;

/** An operation with a validated input: the handler's input type follows from `input`. */
export interface OperationSpec<S, Src = InputSource, R = unknown> {
  /** A TypeBox schema, a Standard Schema or a parser; invalid input is an `InvalidInputError`. */
  input: Src;
  handler: OperationHandler<S, HandlerInputOf<Src>, R>;
}

/** A query with a validated input. */
export interface QuerySpec<S, Src = InputSource, R = unknown> {
  /** A TypeBox schema, a Standard Schema or a parser; invalid input is an `InvalidInputError`. */
  input: Src;
  handler: QueryHandler<S, HandlerInputOf<Src>, R>;
}

/** One entry of `operations`: a bare handler (input `unknown`) or a spec with an input source. */
export type OperationEntry<S, Src = unknown> = OperationHandler<S> | OperationSpec<S, Src>;

/** One entry of `queries`: a bare query handler (input `unknown`) or a spec with an input source. */
export type QueryEntry<S, Src = unknown> = QueryHandler<S> | QuerySpec<S, Src>;

/** The types of one operation or query as a caller sees them. */
export interface Signature<I = unknown, R = unknown> {
  /** What a caller sends. */
  input: I;
  /** What the caller gets back (after a JSON round trip). */
  result: R;
}

/** Signatures by operation or query name. */
export type SignatureMap = Record<string, Signature>;

type EntryResult<E> = E extends { handler: (...args: never[]) => infer O } ? O : E extends (...args: never[]) => infer O ? O : never;

/** The {@link Signature}s of an `operations` object. */
export type OperationSignatures<O> = {
  [K in keyof O]: Signature<O[K] extends { input: infer Src } ? CallerInputOf<Src> : unknown, EntryResult<O[K]> extends { result: infer R } ? R : never>;
};

/** The {@link Signature}s of a `queries` object. */
export type QuerySignatures<Q> = {
  [K in keyof Q]: Signature<Q[K] extends { input: infer Src } ? CallerInputOf<Src> : unknown, EntryResult<Q[K]>>;
};

/** A JSON Schema object (draft-07 compatible), as plain JSON. */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** What a definition says about one operation or query, as JSON. */
export interface InputDescriptor {
  /** JSON Schema of the input, when the entry declares a schema (a parser or a bare handler has none). */
  input?: JsonSchema;
  /** True when the input may be left out (an empty payload); only set together with `input`. */
  inputOptional?: true;
}

/**
 * A serializable description of an actor type: its operations and queries and their input
 * schemas. Workers register it so that a gateway without the actor's code can validate input
 * and document each operation.
 */
export interface ActorDescriptor {
  type: string;
  /** The definition's version (absent in what workers before versions registered: 1). */
  version?: number;
  operations: Record<string, InputDescriptor>;
  queries: Record<string, InputDescriptor>;
  /** Subjects the type is bound to (absent when none). */
  subscribe?: SubjectBinding[];
}
