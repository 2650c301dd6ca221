/**
 * `defineActor`: an actor type as a typed object — its initial state, its operations (which
 * change the state, one at a time through the stream) and its queries (which only read it).
 * The state, input and result types of every operation and query are inferred from the
 * definition, and each input is validated by the entry's schema before its handler runs.
 */
import { ActorError, ErrorCode, HandlerError, UnknownOperationError, CANCEL_TIMER_OPERATION, validateName, validateTimerId } from '../protocol/index.js';
import { compileInput, type CompiledInput } from './input-schema.js';
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

interface Compiled<H> {
  input: CompiledInput;
  handler: H;
}

function compileEntries<H>(type: string, kind: 'operation' | 'query', entries: object | undefined): Map<string, Compiled<H>> {
  const out = new Map<string, Compiled<H>>();
  for (const [name, entry] of Object.entries(entries ?? {}) as Array<[string, unknown]>) {
    validateName('op', name);
    if (name.startsWith('$')) throw new TypeError(`actor '${type}': ${kind} '${name}' is reserved`);
    const label = kind === 'operation' ? name : `query ${name}`;
    if (typeof entry === 'function') {
      out.set(name, { input: compileInput(label, undefined), handler: entry as H });
    } else if (typeof entry === 'object' && entry !== null && typeof (entry as { handler?: unknown }).handler === 'function') {
      const spec = entry as { input?: unknown; handler: H };
      out.set(name, { input: compileInput(`${label}`, spec.input), handler: spec.handler });
    } else {
      throw new TypeError(`actor '${type}': ${kind} '${name}' must be a handler function or { input, handler }`);
    }
  }
  return out;
}

/** Checks `version` and `migrate`; returns the version, the oldest migrated version and the migrations in order. */
function compileVersions(type: string, version: unknown, migrate: unknown): { version: number; oldest: number; steps: ReadonlyMap<number, (s: unknown) => unknown> } {
  const v = version ?? 1;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new TypeError(`actor '${type}': version must be an integer >= 1, got ${JSON.stringify(version)}`);
  if (migrate !== undefined && (typeof migrate !== 'object' || migrate === null || Array.isArray(migrate))) {
    throw new TypeError(`actor '${type}': migrate must be an object of functions by version, e.g. { 1: (state) => … }`);
  }
  const steps = new Map<number, (s: unknown) => unknown>();
  for (const [k, fn] of Object.entries((migrate ?? {}) as Record<string, unknown>)) {
    const from = /^[1-9][0-9]{0,15}$/.test(k) ? Number(k) : NaN;
    if (!(from >= 1 && from < v)) throw new TypeError(`actor '${type}': migrate key ${JSON.stringify(k)} must be a version from 1 to ${v - 1} (it upgrades that version's state to the next)`);
    if (typeof fn !== 'function') throw new TypeError(`actor '${type}': migrate[${k}] must be a function (state) => state`);
    steps.set(from, fn as (s: unknown) => unknown);
  }
  let oldest = v;
  while (steps.has(oldest - 1)) oldest--;
  if (steps.size !== v - oldest) {
    throw new TypeError(`actor '${type}': migrate must run without a gap up to version ${v - 1}; migration ${oldest - 1} -> ${oldest} is missing`);
  }
  return { version: v, oldest, steps };
}

/** A subject token a binding may use literally: what NATS allows in a token, less wildcards. */
const LITERAL_TOKEN = /^[A-Za-z0-9_=-]{1,64}$/;

/** Checks the bindings of a definition: literal or `*` tokens, a key wildcard that exists, an operation the type has. */
function compileBindings(type: string, raw: unknown, ops: ReadonlyMap<string, unknown>): readonly SubjectBinding[] {
  if (raw === undefined) return Object.freeze([]);
  if (!Array.isArray(raw)) throw new TypeError(`actor '${type}': subscribe must be an array of { subject, key, op }`);
  const out: SubjectBinding[] = [];
  for (const b of raw as unknown[]) {
    const { subject, key, op } = (b ?? {}) as Partial<SubjectBinding>;
    const where = `actor '${type}': binding ${JSON.stringify(subject)}`;
    if (typeof subject !== 'string' || subject.length > 200) throw new TypeError(`${where}: subject must be a string of at most 200 characters`);
    const tokens = subject.split('.');
    if (tokens.some((t) => t !== '*' && !LITERAL_TOKEN.test(t))) {
      throw new TypeError(`${where}: each token must be '*' or [A-Za-z0-9_=-] ('>' is not allowed: the key must be one token)`);
    }
    if (tokens[0] === '*' || tokens[0] === 'actors' || tokens[0]?.startsWith('$') || tokens[0] === '_INBOX') {
      throw new TypeError(`${where}: the first token must be a literal other than 'actors' and '_INBOX'`);
    }
    const wildcards = tokens.filter((t) => t === '*').length;
    if (typeof key !== 'number' || !Number.isInteger(key) || key < 1 || key > wildcards) {
      throw new TypeError(`${where}: key must be the number (from 1) of one of its ${wildcards} '*' tokens`);
    }
    if (typeof op !== 'string' || !ops.has(op)) throw new TypeError(`${where}: op ${JSON.stringify(op)} is not an operation of the type`);
    out.push(Object.freeze({ subject, key, op }));
  }
  return Object.freeze(out);
}

/** {@link ActorError}s an operation's handler threw itself: its deliberate refusals (see {@link isRefusal}). */
const refusals = new WeakSet<object>();

/** Error codes that stay dead letters even when a handler throws them: bad input, and what is no deliberate refusal. */
const NEVER_REFUSALS: ReadonlySet<string> = new Set([ErrorCode.InvalidInput, ErrorCode.HandlerError]);

/**
 * True for an error an operation's handler threw on purpose: an {@link ActorError} of its own
 * (`INSUFFICIENT_FUNDS`), not the runtime's (input validation, an unknown operation, a state
 * that cannot be stored) and not `INVALID_INPUT` or `HANDLER_ERROR`. Such an error is the
 * operation's outcome (answered, kept, counted), not a dead letter.
 */
export function isRefusal(err: unknown): boolean {
  return err instanceof ActorError && refusals.has(err) && !NEVER_REFUSALS.has(err.code);
}

/** Runs a handler; anything it throws but an {@link ActorError} becomes a {@link HandlerError}. */
function guarded<T>(what: string, type: string, run: () => T, refusal = false): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof ActorError) {
      if (refusal) refusals.add(err);
      throw err;
    }
    throw new HandlerError(`${what} of '${type}' failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

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
    upgrade(state: unknown, from: number): S {
      if (from === versions.version) return state as S;
      if (from > versions.version) throw new ActorError(ErrorCode.RecordTooNew, `actor '${type}': the record was written by version ${from}, newer than this definition's ${versions.version}`);
      if (from < versions.oldest) {
        throw new ActorError(
          ErrorCode.RecordTooOld,
          `actor '${type}': the record was written by version ${from}; version ${versions.version} migrates records from version ${versions.oldest} on (add migrate[${from}] … migrate[${versions.oldest - 1}])`,
        );
      }
      let s = state;
      for (let v = from; v < versions.version; v++) {
        const step = versions.steps.get(v) as (s: unknown) => unknown;
        try {
          s = step(s);
        } catch (err) {
          throw new ActorError(ErrorCode.MigrationFailed, `actor '${type}': migrate[${v}] (version ${v} -> ${v + 1}) failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
      }
      return s as S;
    },
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
