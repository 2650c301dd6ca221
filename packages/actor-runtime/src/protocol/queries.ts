/**
 * The query protocol over NATS request-reply, shared by the workers' query service and the
 * query client: a request on `<prefix>.query.<type>.<key>.<name>` whose payload is the
 * query's input as JSON (or empty), optional headers `Min-Seq` and `Timeout-Ms`; a reply
 * `{"result":…,"seq":N}` (N: the stream sequence of the last operation in the state the
 * query read, 0 if never written) or `{"error":{"code","message"}}`.
 */
import { ActorError, ErrorCode, InvalidInputError, type ErrorBody } from './errors.js';

/** A query's answer. */
export interface QueryResult<R = unknown> {
  result: R;
  /** Stream sequence of the last operation in the state the query read; 0 if the actor was never written. */
  seq: number;
}

/** Options of one query. */
export interface QueryOptions {
  /** Wait until the state includes the operation with this stream sequence (e.g. a signal's `seq`). */
  minSeq?: number;
  /** How long to wait for the answer (and for `minSeq`), in ms. Default: the client's (5000). */
  timeoutMs?: number;
}

/**
 * The built-in query every worker answers for the types it hosts: the actor's state as its
 * definition shows it (a record an older version wrote, migrated), for readers without the code.
 */
export const STATE_QUERY = '$state';

/** The result of {@link STATE_QUERY}. */
export interface StateQueryResult {
  state: unknown;
  /** The version whose shape `state` has (the answering worker's, or the record's when newer). */
  version: number;
  revision: number;
  exists: boolean;
}

/** Code of an answer the worker could not give for a reason of its own (details in its log). */
export const QUERY_INTERNAL_ERROR = 'INTERNAL_ERROR';

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A success reply; a result JSON cannot hold is `RESULT_NOT_SERIALIZABLE`, one larger than
 * `maxBytes` `RESULT_TOO_LARGE` (thrown as {@link ActorError}s).
 */
export function encodeResult(result: unknown, seq: number, maxBytes: number): Uint8Array {
  let json: string | undefined;
  try {
    json = JSON.stringify(result);
  } catch (err) {
    throw new ActorError(ErrorCode.ResultNotSerializable, `the query returned a result that is not JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const data = enc.encode(`{"result":${json ?? 'null'},"seq":${seq}}`);
  if (data.length > maxBytes) throw new ActorError(ErrorCode.ResultTooLarge, `the query returned a result of ${data.length} bytes as JSON; the limit is ${maxBytes}`);
  return data;
}

/** An error reply. */
export function encodeError(error: ErrorBody): Uint8Array {
  return enc.encode(JSON.stringify({ error: { code: error.code, message: error.message } }));
}

/** Parses a reply; throws an {@link ActorError} with the reply's code for an error reply, and for one of no known shape. */
export function decodeReply(data: Uint8Array): QueryResult {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(data));
  } catch {
    v = undefined;
  }
  const r = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const e = r.error as Record<string, unknown> | undefined;
  if (typeof e === 'object' && e !== null && typeof e.code === 'string' && typeof e.message === 'string') throw new ActorError(e.code, e.message);
  if ('result' in r && Number.isSafeInteger(r.seq) && (r.seq as number) >= 0) return { result: r.result, seq: r.seq as number };
  throw new ActorError(QUERY_INTERNAL_ERROR, 'the query answer has no known shape');
}

/** A `Min-Seq` or `Timeout-Ms` header value: undefined when absent; throws {@link InvalidInputError} when malformed. */
export function headerInt(name: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > max) throw new InvalidInputError(`header ${name} must be an integer from 0 to ${max}, got ${JSON.stringify(value.slice(0, 32))}`);
  return n;
}
