/** The JSON of states, results and timer inputs as a fold checks and keeps them. */
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, ErrorCode, HandlerError, InvalidInputError } from '../protocol/index.js';
import type { EffectsDraft } from './effects-draft.js';
import type { FoldEnv } from './key-fold.js';
import type { CachedRecord } from './record-cache.js';

const opNames = new Map<string, string>();
/** `<type>.<op>`, one string per pair for the life of the process (a handful of pairs). */
export function opName(type: string, op: string): string {
  const k = `${type}\u0000${op}`;
  let name = opNames.get(k);
  if (name === undefined) {
    name = `${type}.${op}`;
    if (opNames.size < 10_000) opNames.set(k, name);
  }
  return name;
}

/** Serializes a state or result; throws the given code for anything JSON cannot hold. */
export function serialize(value: unknown, what: 'state' | 'result', maxBytes: number): string {
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
export function outcomeJson(out: unknown, maxBytes: number): { state: string; result: string; live: unknown } {
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
export const UNPARSED: unique symbol = Symbol('unparsed');

/**
 * A record whose state, timers and outbox together would not fit one message fails its
 * operation. Counted in UTF-8 bytes, as the message carries them: 348k `€` are 348k
 * characters but 1,044k bytes. The timers' and sends' bytes are the draft's running count.
 */
export function checkRecordSize(json: string, fx: EffectsDraft, maxBytes: number): void {
  const effects = fx.bytes();
  // A UTF-16 unit is at most 3 bytes: count the state's bytes only when that could pass the bound.
  if (json.length * 3 + effects <= maxBytes) return;
  const bytes = Buffer.byteLength(json) + effects;
  if (bytes > maxBytes) {
    throw new ActorError(ErrorCode.StateTooLarge, `the record with its state, timers and pending sends would be ${bytes} bytes as JSON; the limit is ${maxBytes}`);
  }
}

const initialJsons = new WeakMap<AnyActorDefinition, string>();
/**
 * The initial state's JSON, once per definition: `initialState` is deterministic by contract
 * (it is what a never-written actor reads as), so it need not be called and serialized for
 * every operation on a new key.
 */
export function initialJson(def: AnyActorDefinition, maxBytes: number): string {
  let json = initialJsons.get(def);
  if (json === undefined) {
    json = serialize(def.initialState(), 'state', maxBytes);
    initialJsons.set(def, json);
  }
  return json;
}

/** A fresh copy of the record's state for a handler (the initial state when there is none). */
export function parseLive(rec: CachedRecord, def: AnyActorDefinition, env: FoldEnv): unknown {
  // The initial state goes through JSON too: a handler sees the same thing before the first
  // write as after it, and cannot change an initial-state object the definition shares.
  return JSON.parse(rec.json ?? initialJson(def, env.maxStateBytes)) as unknown;
}

/**
 * A timer's input as the JSON text the timer keeps. JSON.parse reads nesting of any depth but
 * JSON.stringify recurses: an input nested too deeply to write back is the operation's
 * INVALID_INPUT, not a HANDLER_ERROR from a stack overflow.
 */
export function storableInput(input: unknown): string | undefined {
  try {
    return JSON.stringify(input);
  } catch (err) {
    throw new InvalidInputError(err instanceof RangeError ? 'input is nested too deeply to be kept with a timer' : 'input cannot be kept with a timer', { cause: err });
  }
}
