/**
 * Operation payloads, replies and kept outcomes. An operation's payload is its input as JSON
 * (empty: no input). A worker answers a call on its `Jetactor-Reply` inbox with
 * `{"result":…,"seq":N}` or `{"error":{"code","message"},"seq":N}` (N: the operation's stream
 * sequence), and keeps the same body as the outcome of an operation published with an
 * idempotency key, under the key `<seq>` of the outcome bucket.
 */
import { InvalidInputError, type ErrorBody } from './errors.js';

/** What a caller of an operation gets back (and what the outcome bucket keeps). */
export type OperationReply = { result: unknown; seq: number } | { error: ErrorBody; seq: number };

/** The body of an error reply (and kept outcome) of the operation at `seq`. */
export function encodeErrorReply(error: ErrorBody, seq: number): string {
  return JSON.stringify({ error, seq });
}

/** The body of a success reply, from the result already as JSON. */
export function encodeResultReply(resultJson: string, seq: number): string {
  return `{"result":${resultJson},"seq":${seq}}`;
}

/** Key of an operation's kept outcome in the outcome bucket: its stream sequence. */
export function outcomeKey(seq: number): string {
  return String(seq);
}

const dec = new TextDecoder();

/**
 * Parses a reply body `{"result":…,"seq":N}` or `{"error":{"code","message"},"seq":N}`;
 * null for anything else (a worker never sends another shape).
 */
export function parseOperationReply(data: Uint8Array): OperationReply | null {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(data));
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) return null;
  const seq = r.seq as number;
  if ('error' in r) {
    const e = r.error as Record<string, unknown> | null;
    if (e === null || typeof e !== 'object' || typeof e.code !== 'string' || typeof e.message !== 'string') return null;
    return { error: { code: e.code, message: e.message }, seq };
  }
  if (!('result' in r)) return null;
  return { result: r.result, seq };
}

/** Short ASCII payloads (`3`, `{"value":3}`) skip TextDecoder, whose per-call cost dominates for them. */
const SHORT_PAYLOAD = 64;

function payloadText(data: Uint8Array): string {
  if (data.length <= SHORT_PAYLOAD) {
    let ascii = true;
    for (let i = 0; i < data.length; i++) {
      if ((data[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, data as unknown as number[]);
  }
  return dec.decode(data);
}

/** Parses an operation payload: empty is `undefined`, anything else must be JSON. */
export function decodePayload(data: Uint8Array): unknown {
  if (data.length === 0) return undefined;
  const text = payloadText(data).trim();
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidInputError(`payload is not valid JSON: ${text.length > 64 ? `${text.slice(0, 64)}…` : text}`);
  }
}

