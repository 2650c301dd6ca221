/**
 * A typed view of an {@link ActorClient}, derived from actor definitions (as Restate derives
 * clients from its objects): `typed.actor(counter).call('k1', 'add', 3)` resolves to a
 * `number`, and a wrong operation name or input type is a compile error.
 */
import type { ActorDefinition } from '../definition/define-actor.js';
import type { SignatureMap } from '../definition/types.js';
import type { QueryOptions } from '../protocol/index.js';
import type { ActorClient, ActorSnapshot, SignalResult } from './actor-client.js';
import { runQuery } from './query-client.js';

/** Options of a typed signal (those of {@link ActorClient.signal}). */
export type SignalOptions = NonNullable<Parameters<ActorClient['signal']>[4]>;
/** Options of a typed call (those of {@link ActorClient.call}). */
export type CallOptions = NonNullable<Parameters<ActorClient['call']>[4]>;
/** Options of a typed read (those of {@link ActorClient.read}). */
export type ReadOptions = NonNullable<Parameters<ActorClient['read']>[2]>;

/** The input argument and options of an operation or query: the input may be left out when it accepts `undefined`. */
export type InputArgs<I, Opts> = undefined extends I ? [input?: I, opts?: Opts] : [input: I, opts?: Opts];

/** A call's result with its stream sequence. */
export interface TypedCallResult<R> {
  result: R;
  /** Stream sequence of the operation (pass it as `minSeq` to read your write). */
  seq: number;
  /** True when the idempotency key was seen before; `result` is then the original's (null once no longer kept). */
  duplicate?: boolean;
}

/** An actor's state, typed. A never-written or deleted actor has its initial state. */
export interface TypedSnapshot<S> extends Omit<ActorSnapshot, 'state'> {
  state: S;
}

/**
 * Typed operations on the actors of one definition. Results and states come back as JSON:
 * declare them as JSON types (a `Date` arrives as a string).
 */
export interface ActorHandle<S, O extends SignatureMap, Q extends SignatureMap> {
  readonly definition: ActorDefinition<S, O, Q>;
  /** Publishes `op` to actor `key`; resolves once stored in the stream. Input is validated here first. */
  signal<K extends keyof O & string>(key: string, op: K, ...args: InputArgs<O[K]['input'], SignalOptions>): Promise<SignalResult>;
  /** Publishes `op` and resolves with its result once its state is committed. */
  call<K extends keyof O & string>(key: string, op: K, ...args: InputArgs<O[K]['input'], CallOptions>): Promise<O[K]['result']>;
  /** As {@link ActorHandle.call}, with the operation's stream sequence. */
  callWithSeq<K extends keyof O & string>(key: string, op: K, ...args: InputArgs<O[K]['input'], CallOptions>): Promise<TypedCallResult<O[K]['result']>>;
  /** Reads actor `key`'s state; with `minSeq`, waits until it includes that operation. */
  read(key: string, opts?: ReadOptions): Promise<TypedSnapshot<S>>;
  /** Runs the query `name` on actor `key`'s stored state, here (one KV read; no stream, no worker). */
  query<K extends keyof Q & string>(key: string, name: K, ...args: InputArgs<Q[K]['input'], QueryOptions>): Promise<Q[K]['result']>;
  /** Deletes actor `key`'s state, as an ordered operation. */
  delete(key: string, opts?: SignalOptions): Promise<SignalResult>;
}

/** Typed handles on actor types. */
export interface TypedClient {
  /** The typed operations of `definition`'s actors. */
  actor<S, O extends SignatureMap, Q extends SignatureMap>(definition: ActorDefinition<S, O, Q>): ActorHandle<S, O, Q>;
}

/**
 * Wraps `client` with types taken from actor definitions. Create `client` with no `actors`,
 * or with every definition you pass to {@link TypedClient.actor}: a client that knows other
 * types only refuses the rest as unknown.
 */
export function createTypedClient(client: ActorClient): TypedClient {
  return {
    actor<S, O extends SignatureMap, Q extends SignatureMap>(def: ActorDefinition<S, O, Q>): ActorHandle<S, O, Q> {
      const callWithSeq = async (key: string, op: string, input?: unknown, opts?: CallOptions): Promise<TypedCallResult<never>> => {
        def.parseInput(op, input);
        const r = await client.call(def.type, key, op, input, opts);
        return { result: r.result as never, seq: r.seq, ...(r.duplicate !== undefined ? { duplicate: r.duplicate } : {}) };
      };
      return {
        definition: def,
        // async: a refused input is a rejection, like every other failure
        signal: async (key: string, op: string, input?: unknown, opts?: SignalOptions) => {
          def.parseInput(op, input);
          return client.signal(def.type, key, op, input, opts);
        },
        callWithSeq,
        call: async (key: string, op: string, input?: unknown, opts?: CallOptions) => (await callWithSeq(key, op, input, opts)).result,
        read: async (key: string, opts?: ReadOptions): Promise<TypedSnapshot<S>> => {
          const snap = await client.read(def.type, key, opts);
          return { ...snap, state: (snap.exists ? snap.state : def.initialState()) as S };
        },
        query: async (key: string, name: string, input?: unknown, opts?: QueryOptions) => (await runQuery(client, def, key, name, input, opts)).result,
        delete: (key: string, opts?: SignalOptions) => client.delete(def.type, key, opts),
      } as ActorHandle<S, O, Q>;
    },
  };
}
