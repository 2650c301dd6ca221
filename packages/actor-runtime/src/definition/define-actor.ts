import { ActorError, HandlerError, UnknownOperationError } from '../errors.js';
import { validateName } from '../names.js';

/** What a handler sees besides state and input. Everything here is deterministic on replay. */
export interface OperationContext {
  /** Actor type. */
  readonly type: string;
  /** Actor key. */
  readonly key: string;
  /** Operation name. */
  readonly op: string;
  /** Stream sequence of the operation message. */
  readonly seq: number;
  /** Time the operation was stored in the stream. */
  readonly time: Date;
}

/** What a handler returns: the next state and the result for the caller. */
export interface OperationOutcome<S, R = unknown> {
  state: S;
  result: R;
}

/** A pure, deterministic operation handler: no I/O, no clocks, no randomness. */
export type OperationHandler<S, I = unknown, R = unknown> = (
  state: S,
  input: I,
  ctx: OperationContext,
) => OperationOutcome<S, R>;

/** An operation with an input parser: `input` turns the raw JSON into `I` or throws {@link InvalidInputError}. */
export interface OperationSpec<S, I = unknown, R = unknown> {
  input: (raw: unknown) => I;
  handler: OperationHandler<S, I, R>;
}

/** An actor definition of any state and operations, as held in registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyActorDefinition = ActorDefinition<any, any>;

/** Either a bare handler (input passed through as parsed JSON) or a spec with an input parser. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type OperationEntry<S> = OperationHandler<S, any, unknown> | OperationSpec<S, any, unknown>;

/** Options of {@link defineActor}. */
export interface ActorDefinitionOptions<S, O extends Record<string, OperationEntry<S>>> {
  /** Actor type; one subject token (`[A-Za-z0-9_=-]`, at most 64 characters). */
  type: string;
  /** The state of an actor that has never been written. */
  initialState: () => S;
  /** Operations by name. Names starting with `$` are reserved for the runtime. */
  operations: O;
}

/** A typed actor definition, as returned by {@link defineActor}. */
export interface ActorDefinition<S = unknown, O extends Record<string, OperationEntry<S>> = Record<string, OperationEntry<S>>> {
  readonly type: string;
  readonly initialState: () => S;
  readonly operations: O;
  /** Names of the user operations. */
  readonly operationNames: readonly string[];
  /** True if the actor has the operation (user operations and the built-in `$delete`). */
  hasOperation(op: string): boolean;
  /** Validates and converts raw input for `op`; throws {@link UnknownOperationError} or {@link InvalidInputError}. */
  parseInput(op: string, raw: unknown): unknown;
  /** Runs `op` on `state`; throws {@link ActorError}s for bad input or a failing handler. */
  apply(state: S, op: string, raw: unknown, ctx: OperationContext): OperationOutcome<S>;
}

/** The built-in operation that deletes an actor's state. */
export const DELETE_OPERATION = '$delete';

/**
 * Defines an actor: a type, an initial state and pure operation handlers.
 *
 * ```ts
 * export const counter = defineActor({
 *   type: 'counter',
 *   initialState: () => 0,
 *   operations: { add: (state: number, n: number) => ({ state: state + n, result: state + n }) },
 * });
 * ```
 */
export function defineActor<S, O extends Record<string, OperationEntry<S>>>(
  options: ActorDefinitionOptions<S, O>,
): ActorDefinition<S, O> {
  validateName('type', options.type);
  if (typeof options.initialState !== 'function') {
    throw new TypeError(`actor '${options.type}': initialState must be a function`);
  }
  const names = Object.keys(options.operations);
  for (const name of names) {
    validateName('op', name);
    if (name.startsWith('$')) throw new TypeError(`actor '${options.type}': operation '${name}' is reserved`);
  }
  const ops = new Map<string, OperationSpec<S>>(
    names.map((name) => {
      const entry = options.operations[name] as OperationEntry<S>;
      const spec: OperationSpec<S> =
        typeof entry === 'function' ? { input: (raw: unknown) => raw, handler: entry } : entry;
      return [name, spec];
    }),
  );
  const lookup = (op: string): OperationSpec<S> => {
    const spec = ops.get(op);
    if (!spec) throw new UnknownOperationError(options.type, op);
    return spec;
  };
  return Object.freeze({
    type: options.type,
    initialState: options.initialState,
    operations: options.operations,
    operationNames: Object.freeze(names),
    hasOperation: (op: string) => op === DELETE_OPERATION || ops.has(op),
    parseInput(op: string, raw: unknown): unknown {
      if (op === DELETE_OPERATION) return undefined;
      return lookup(op).input(raw);
    },
    apply(state: S, op: string, raw: unknown, ctx: OperationContext): OperationOutcome<S> {
      const spec = lookup(op);
      const input = spec.input(raw);
      try {
        return spec.handler(state, input, ctx);
      } catch (err) {
        if (err instanceof ActorError) throw err;
        throw new HandlerError(`handler '${op}' of '${options.type}' failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    },
  });
}
