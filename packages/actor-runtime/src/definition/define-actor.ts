/**
 * `defineActor`: an actor type as a typed object — its initial state, its operations (which
 * change the state, one at a time through the stream) and its queries (which only read it).
 * The state, input and result types of every operation and query are inferred from the
 * definition, and each input is validated by the entry's schema before its handler runs.
 */
import { ActorError, ErrorCode, UnknownOperationError, CANCEL_TIMER_OPERATION, validateName, validateTimerId } from '../protocol/index.js';
import { compileBindings } from './bindings.js';
import { compileEntries, type Compiled } from './entries.js';
import { guarded } from './refusals.js';
import { compileVersions, upgradeState } from './versions.js';
import type {
  ActorDescriptor,
  OperationContext,
  OperationEntry,
  OperationHandler,
  OperationOutcome,
  OperationSignatures,
  QueryContext,
  QueryEntry,
  QueryHandler,
  QuerySignatures,
  SignatureMap,
  SubjectBinding,
} from './types.js';

export type { OperationContext, OperationOutcome, QueryContext, Send, SubjectBinding, TimerSpec } from './types.js';

/** Options of {@link defineActor}; `O` and `Q` are the `operations` and `queries` objects. */
export interface ActorDefinitionOptions<S, O, Q = Record<never, never>> {
  /** Actor type; one subject token (`[A-Za-z0-9_=-]`, at most 64 characters; not `call` or `query`). */
  type: string;
  /** The state of an actor that has never been written (or was deleted). Called for each such actor; must be JSON. */
  initialState: () => S;
  /**
   * Operations by name (`[A-Za-z0-9_-]`, at most 64 characters; names starting with `$` are
   * the runtime's). Each is a bare {@link OperationHandler} (its input is `unknown`: check it
   * yourself) or `{ input, handler }` with a TypeBox schema, a Standard Schema or a parser.
   */
  operations: O;
  /** Read-only queries by name, answered from the stored state without a trip through the stream. */
  queries?: Q;
  /**
   * NATS subjects this type listens to: each message published on one becomes an ordered,
   * exactly-once operation of the actor keyed by one of its tokens, e.g.
   * `[{ subject: 'devices.*.telemetry', key: 1, op: 'reading' }]`.
   */
  subscribe?: readonly SubjectBinding[];
  /**
   * The definition's version: an integer >= 1, default 1. Every record a worker writes carries
   * it; a worker never writes a record a newer version wrote (that partition waits for a newer
   * worker), and an older record is migrated by `migrate` before any handler sees it.
   */
  version?: number;
  /**
   * State migrations: `migrate[n]` turns the state a version-`n` record holds into version
   * `n + 1`'s. They run in order (1 -> 2 -> 3 …) inside the fold when a record older than
   * `version` is loaded for an operation, and where the state is read; like handlers they are
   * pure and deterministic (they see only the state, as parsed from its JSON) and return the
   * new state. Keys run from the oldest version still migrated up to `version - 1` without a gap;
   * a record older than the oldest key is refused (`RECORD_TOO_OLD`).
   */
  // The older shapes are the author's to know: each migration gets its version's state as parsed JSON.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  migrate?: Record<number, (state: any) => unknown>;
}

/**
 * A typed actor definition, as returned by {@link defineActor}. `S` is the state, `O` and `Q`
 * the {@link Signature}s of its operations and queries (what a typed client sends and gets).
 */
export interface ActorDefinition<S = unknown, O extends SignatureMap = SignatureMap, Q extends SignatureMap = SignatureMap> {
  readonly type: string;
  readonly initialState: () => S;
  /** Names of the user operations. */
  readonly operationNames: readonly string[];
  /** Names of the queries. */
  readonly queryNames: readonly string[];
  /** The subject bindings (empty when the type has none). */
  readonly subscribe: readonly SubjectBinding[];
  /** The definition's version (1 when not given). */
  readonly version: number;
  /** The oldest record version this definition migrates from (`version` when it has no migrations). */
  readonly oldestVersion: number;
  /**
   * The state of a record written by version `from`, migrated to {@link version} (the same
   * state when `from` is `version`). Throws an {@link ActorError} `RECORD_TOO_OLD` when `from` is
   * older than {@link oldestVersion}, `MIGRATION_FAILED` when a migration throws, and
   * `RECORD_TOO_NEW` when `from` is newer than `version`.
   */
  upgrade(state: unknown, from: number): S;
  /** True if the actor has the operation (user operations and the built-in `$delete` and `$cancel`). */
  hasOperation(op: string): boolean;
  /** True if the actor has the query. */
  hasQuery(name: string): boolean;
  /** Validates raw input for `op`; throws {@link UnknownOperationError} or {@link InvalidInputError}. */
  parseInput(op: string, raw: unknown): unknown;
  /** Validates raw input for the query `name`; throws an `UNKNOWN_OPERATION` {@link ActorError} or {@link InvalidInputError}. */
  parseQueryInput(name: string, raw: unknown): unknown;
  /**
   * Runs `op` on `state` (which it may change in place). Throws {@link UnknownOperationError},
   * {@link InvalidInputError}, a thrown {@link ActorError} as it is, anything else as a {@link HandlerError}.
   */
  apply(state: S, op: string, raw: unknown, ctx: OperationContext): OperationOutcome<S>;
  /** Runs the query `name` on `state`; throws like {@link ActorDefinition.apply}. */
  query(state: S, name: string, raw: unknown, ctx: QueryContext): unknown;
  /** The actor's operations and queries with their input JSON Schemas, as plain JSON (a fresh copy each call). */
  describe(): ActorDescriptor;
  /** Type information only (never set at run time): what typed clients derive their types from. */
  readonly '~types'?: { readonly state: S; readonly operations: O; readonly queries: Q };
}

/** An actor definition of any state, operations and queries, as held in registries. */
export type AnyActorDefinition = ActorDefinition<unknown, SignatureMap, SignatureMap>;

/** The state type of a definition. */
export type StateOf<D> = D extends ActorDefinition<infer S, SignatureMap, SignatureMap> ? S : never;

/** The built-in operation that deletes an actor's state. */
export const DELETE_OPERATION = '$delete';

/**
 * Defines an actor: a type, an initial state, operations and (optionally) queries. Handlers
 * are pure and deterministic (see the README's "Handler contract"); the types of state,
 * inputs and results are inferred:
 *
 * ```ts
 * import { Type } from '@sinclair/typebox';
 *
 * export const list = defineActor({
 *   type: 'list',
 *   initialState: (): string[] => [],
 *   operations: {
 *     push: { input: Type.String({ maxLength: 100 }), handler: (items, item) => ({ state: [...items, item], result: items.length + 1 }) },
 *     clear: () => ({ state: [], result: null }),
 *   },
 *   queries: { size: (items) => items.length },
 * });
 * ```
 */
export function defineActor<
  S,
  TO extends Record<string, unknown>,
  O,
  TQ extends Record<string, unknown> = Record<never, never>,
  Q = Record<never, never>,
>(
  options: ActorDefinitionOptions<S, O & { [K in keyof TO]: OperationEntry<S, TO[K]> }, Q & { [K in keyof TQ]: QueryEntry<S, TQ[K]> }>,
): ActorDefinition<S, OperationSignatures<O>, QuerySignatures<Q>> {
  const type = options.type;
  validateName('type', type);
  if (typeof options.initialState !== 'function') throw new TypeError(`actor '${type}': initialState must be a function`);
  if (typeof options.operations !== 'object' || options.operations === null) throw new TypeError(`actor '${type}': operations must be an object`);
  const ops = compileEntries<OperationHandler<S>>(type, 'operation', options.operations);
  const queries = compileEntries<QueryHandler<S>>(type, 'query', options.queries);
  const operation = (op: string): Compiled<OperationHandler<S>> => {
    const c = ops.get(op);
    if (!c) throw new UnknownOperationError(type, op);
    return c;
  };
  const query = (name: string): Compiled<QueryHandler<S>> => {
    const c = queries.get(name);
    if (!c) throw new ActorError(ErrorCode.UnknownOperation, `actor '${type}' has no query '${name}'`);
    return c;
  };
  const subscribe = compileBindings(type, options.subscribe, ops);
  const versions = compileVersions(type, options.version, options.migrate);
  const descriptor = JSON.stringify({
    type,
    version: versions.version,
    operations: Object.fromEntries([...ops].map(([name, c]) => [name, c.input.descriptor])),
    queries: Object.fromEntries([...queries].map(([name, c]) => [name, c.input.descriptor])),
    ...(subscribe.length > 0 ? { subscribe: [...subscribe] } : {}),
  } satisfies ActorDescriptor);
  return Object.freeze({
    type,
    initialState: options.initialState,
    operationNames: Object.freeze([...ops.keys()]),
    queryNames: Object.freeze([...queries.keys()]),
    subscribe,
    version: versions.version,
    oldestVersion: versions.oldest,
    upgrade: (state: unknown, from: number): S => upgradeState(type, versions, state, from) as S,
    hasOperation: (op: string) => op === DELETE_OPERATION || op === CANCEL_TIMER_OPERATION || ops.has(op),
    hasQuery: (name: string) => queries.has(name),
    parseInput(op: string, raw: unknown): unknown {
      if (op === DELETE_OPERATION) return undefined;
      if (op === CANCEL_TIMER_OPERATION) {
        validateTimerId((raw as { id?: unknown } | null | undefined)?.id);
        return raw;
      }
      return operation(op).input.parse(raw);
    },
    parseQueryInput: (name: string, raw: unknown): unknown => query(name).input.parse(raw),
    apply(state: S, op: string, raw: unknown, ctx: OperationContext): OperationOutcome<S> {
      const c = operation(op);
      const input = c.input.parse(raw);
      return guarded(`handler '${op}'`, type, () => c.handler(state, input, ctx), true);
    },
    query(state: S, name: string, raw: unknown, ctx: QueryContext): unknown {
      const c = query(name);
      const input = c.input.parse(raw);
      return guarded(`query '${name}'`, type, () => c.handler(state, input, ctx));
    },
    describe: (): ActorDescriptor => JSON.parse(descriptor) as ActorDescriptor,
  });
}
