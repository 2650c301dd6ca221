/**
 * The pure part of processing: folding one key's operations onto its record. No I/O; what
 * must be written, answered and logged is returned for the committer.
 *
 * The record keeps the state as the JSON text KV stores (`json`), never as a live object a
 * handler could have changed: each fold parses its own copy, a handler's outcome is
 * serialized at once (so a state that cannot be stored is that operation's error, not a
 * commit that fails forever), and "changed" means "serializes differently". A handler that
 * mutates its input in place therefore loses nothing, and what the worker caches is exactly
 * what KV holds.
 */
import { DELETE_OPERATION, type AnyActorDefinition, type OperationContext } from '../definition/define-actor.js';
import { ActorError, ErrorCode, HandlerError, UnknownActorError, toErrorBody, type ErrorBody } from '../errors.js';
import { decodePayload, type DecodedOp } from './decode.js';
import type { CachedRecord } from './record-cache.js';

/** What the fold needs to know besides the operations. */
export interface FoldEnv {
  actors: ReadonlyMap<string, AnyActorDefinition>;
  /** Largest serialized state (and result) in bytes; a record must fit in one NATS message. */
  maxStateBytes: number;
  /** Keep the applied states for a debug log line per operation. */
  debug?: boolean;
}

/** One key's operations folded onto its record; its outputs wait for the commit. */
export interface KeyFold {
  /** Working copy of the record (the cache keeps the committed one). */
  rec: CachedRecord;
  /** The record changed and must be written. */
  dirty: boolean;
  // Created on first use: most keys of a batch have no reply, no error and one operation.
  /** Reply bodies (JSON text) for callers, sent after the checkpoint. */
  replies?: Array<{ inbox: string; body: string }>;
  /** Outcomes (JSON text, like a reply body) of operations that carry an idempotency key. */
  outcomes?: Array<{ seq: number; body: string }>;
  /** Failed operations: the committer makes them error results, kept outcomes, dead letters and log lines. */
  failures?: Array<{ op: DecodedOp; error: ErrorBody; cause: unknown }>;
  /** `<type>.<op>` of every applied operation (interned strings). */
  applied?: string[];
  /** With `debug`: every applied operation and the state after it. */
  trace?: Array<{ op: DecodedOp; state: string | null }>;
}

/** What a handler sees; the `Date` is made only if the handler reads `time`. */
class OpContext implements OperationContext {
  constructor(
    readonly type: string,
    readonly key: string,
    readonly op: string,
    readonly seq: number,
    private readonly ms: number,
  ) {}

  get time(): Date {
    return new Date(this.ms);
  }
}

const opNames = new Map<string, string>();
/** `<type>.<op>`, one string per pair for the life of the process (a handful of pairs). */
function opName(type: string, op: string): string {
  const k = `${type}\u0000${op}`;
  let name = opNames.get(k);
  if (name === undefined) {
    name = `${type}.${op}`;
    if (opNames.size < 10_000) opNames.set(k, name);
  }
  return name;
}

/** Serializes a state or result; throws the given code for anything JSON cannot hold. */
function serialize(value: unknown, what: 'state' | 'result', maxBytes: number): string {
  const code = what === 'state' ? ErrorCode.StateNotSerializable : ErrorCode.ResultNotSerializable;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new ActorError(code, `the handler returned a ${what} that is not JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (json === undefined) throw new ActorError(code, `the handler returned a ${what} that is not JSON (${typeof value})`);
  // Most states are short ASCII: the length is then the size and no byte count is needed.
  if (json.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(json);
    if (bytes > maxBytes) {
      throw new ActorError(
        what === 'state' ? ErrorCode.StateTooLarge : ErrorCode.ResultTooLarge,
        `the handler returned a ${what} of ${bytes} bytes as JSON; the limit is ${maxBytes}`,
      );
    }
  }
  return json;
}

/** Checks a handler's return value: an object with `state` (and an optional `result`), both JSON. */
function outcomeJson(out: unknown, maxBytes: number): { state: string; result: string; live: unknown } {
  if (typeof out !== 'object' || out === null || !('state' in out)) {
    throw new HandlerError(`the handler must return { state, result }, got ${out === null ? 'null' : typeof out}`);
  }
  const { state, result } = out as { state: unknown; result?: unknown };
  const stateJson = serialize(state, 'state', maxBytes);
  const resultJson = result === undefined ? 'null' : serialize(result, 'result', maxBytes);
  // Numbers, strings and booleans come back from JSON as they went in (NaN does not: it is
  // stored as null, so it is read back from the text like any object).
  const plain = (typeof state === 'number' && Number.isFinite(state)) || typeof state === 'string' || typeof state === 'boolean';
  return { state: stateJson, result: resultJson, live: plain ? state : UNPARSED };
}

/** Marker: the live state must be parsed from the record's JSON before the next handler. */
const UNPARSED: unique symbol = Symbol('unparsed');

/**
 * Folds one key's operations (stream order) onto a copy of `base`: operations at or below
 * the record's seq are skipped (applied before a crash or hand-over), failures become error
 * results and dead letters, an outcome that leaves the stored JSON as it was writes nothing
 * (a read on a never-written actor creates no record).
 */
export function foldKey(base: CachedRecord, ops: readonly DecodedOp[], env: FoldEnv): KeyFold {
  const rec: CachedRecord = { ...base };
  const f: KeyFold = { rec, dirty: false };
  let live: unknown = UNPARSED;
  for (const op of ops) {
    if (op.seq <= rec.seq) continue; // applied before a crash or hand-over: never twice
    try {
      const def = env.actors.get(op.type);
      if (!def) throw new UnknownActorError(op.type);
      let resultJson = 'null';
      if (op.op === DELETE_OPERATION) {
        if (rec.json !== null) {
          rec.json = null;
          rec.seq = op.seq;
          f.dirty = true;
        }
        live = UNPARSED;
      } else {
        // The JSON this operation is measured against: a deleted actor's is its initial state.
        const before = rec.json ?? initialJson(def, env.maxStateBytes);
        const input = decodePayload(op.data);
        const ctx: OperationContext = new OpContext(op.type, op.key, op.op, op.seq, op.time);
        const current = live === UNPARSED ? parseLive(rec, before) : live;
        live = UNPARSED; // the handler may change `current` in place, and may throw half-way
        const out = outcomeJson(def.apply(current, op.op, input, ctx), env.maxStateBytes);
        if (out.state !== before) {
          rec.json = out.state;
          rec.seq = op.seq;
          f.dirty = true;
        }
        live = out.live;
        resultJson = out.result;
      }
      if (op.reply || op.hasMsgId) {
        const body = `{"result":${resultJson},"seq":${op.seq}}`;
        if (op.reply) (f.replies ??= []).push({ inbox: op.reply, body });
        if (op.hasMsgId) (f.outcomes ??= []).push({ seq: op.seq, body });
      }
      (f.applied ??= []).push(opName(op.type, op.op));
      if (env.debug) (f.trace ??= []).push({ op, state: rec.json });
    } catch (err) {
      live = UNPARSED;
      // The committer answers, keeps the outcome of and dead-letters every failure.
      (f.failures ??= []).push({ op, error: toErrorBody(err), cause: err });
    }
  }
  return f;
}

const initialJsons = new WeakMap<AnyActorDefinition, string>();
/**
 * The initial state's JSON, once per definition: `initialState` is deterministic by contract
 * (it is what a never-written actor reads as), so it need not be called and serialized for
 * every operation on a new key.
 */
function initialJson(def: AnyActorDefinition, maxBytes: number): string {
  let json = initialJsons.get(def);
  if (json === undefined) {
    json = serialize(def.initialState(), 'state', maxBytes);
    initialJsons.set(def, json);
  }
  return json;
}

/** A fresh copy of the record's state for a handler (the initial state when there is none). */
function parseLive(rec: CachedRecord, before: string): unknown {
  // The initial state goes through JSON too: a handler sees the same thing before the first
  // write as after it, and cannot change an initial-state object the definition shares.
  return JSON.parse(rec.json ?? before) as unknown;
}
