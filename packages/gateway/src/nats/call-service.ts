import type { ActorClient } from '@jetactor/actor-runtime';
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import type { FastifyBaseLogger } from 'fastify';
import { errorBody } from '../errors.js';
import { toHttpError } from '../plugins/errors.js';

/** Options of {@link serveCalls}. */
export interface CallServiceOptions {
  /** First subject token of operations (the runtime's `subjectPrefix`). Default `actors`. */
  subjectPrefix?: string;
  /** Queue group, so that several gateways share the calls. Default `jetactor-gateway`. */
  queue?: string;
  /** Timeout of a call without a `Timeout-Ms` header, in ms. Default 5000. */
  defaultTimeoutMs?: number;
  /** Largest accepted `Timeout-Ms` header, in ms. Default 60000. */
  maxTimeoutMs?: number;
  /** Where to log failed calls. */
  log?: FastifyBaseLogger;
}

/** Header with the call's idempotency key (as HTTP's `Idempotency-Key`). */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
/** Header with the call's timeout in ms (as HTTP's `?timeoutMs=`). */
export const TIMEOUT_HEADER = 'Timeout-Ms';
/** Header on error replies with the HTTP status the same error would have. */
export const STATUS_HEADER = 'Jetactor-Status';

const enc = new TextEncoder();
const dec = new TextDecoder();

function reply(msg: Msg, body: unknown, status?: number): void {
  if (!msg.reply) return;
  let h;
  if (status !== undefined) {
    h = natsHeaders();
    h.set(STATUS_HEADER, String(status));
  }
  msg.respond(enc.encode(JSON.stringify(body)), h ? { headers: h } : undefined);
}

/**
 * Serves `<prefix>.call.<type>.<key>.<op>` as a NATS request entry point for calls:
 * the request payload is the operation's JSON input (or empty), the reply is
 * `{"result":...,"seq":N}` once the state is committed, or `{"error":{"code","message"}}`
 * with the HTTP-equivalent status in the `Jetactor-Status` header. Optional request
 * headers: `Idempotency-Key`, `Timeout-Ms`.
 *
 * ```sh
 * nats req actors.call.counter.mykey.add 3
 * ```
 */
export function serveCalls(nc: NatsConnection, client: ActorClient, opts: CallServiceOptions = {}): Subscription {
  const prefix = opts.subjectPrefix ?? 'actors';
  const defaultTimeoutMs = opts.defaultTimeoutMs ?? 5_000;
  const maxTimeoutMs = opts.maxTimeoutMs ?? 60_000;

  const handle = async (msg: Msg): Promise<void> => {
    const tokens = msg.subject.split('.');
    const [, , type, key, op] = tokens;
    try {
      if (tokens.length !== 5 || type === undefined || key === undefined || op === undefined) {
        reply(msg, errorBody('INVALID_REQUEST', `call subjects are ${prefix}.call.<type>.<key>.<op>`), 400);
        return;
      }
      let input: unknown;
      const text = dec.decode(msg.data);
      if (text.trim() !== '') {
        try {
          input = JSON.parse(text);
        } catch {
          reply(msg, errorBody('INVALID_JSON', 'request payload is not valid JSON'), 400);
          return;
        }
      }
      const idempotencyKey = msg.headers?.get(IDEMPOTENCY_KEY_HEADER) || undefined;
      const timeoutHeader = msg.headers?.get(TIMEOUT_HEADER);
      const asked = timeoutHeader ? Number(timeoutHeader) : defaultTimeoutMs;
      const timeoutMs = Number.isSafeInteger(asked) && asked > 0 ? Math.min(asked, maxTimeoutMs) : defaultTimeoutMs;
      client.parseInput(type, op, input);
      const { result, seq } = await client.call(type, key, op, input, { idempotencyKey, timeoutMs });
      reply(msg, { result: result ?? null, seq });
    } catch (err) {
      const http = toHttpError(err, !nc.isClosed());
      if (http.status >= 500) opts.log?.error({ err, type, key, op, code: http.code }, 'NATS call failed');
      reply(msg, errorBody(http.code, http.message), http.status);
    }
  };

  return nc.subscribe(`${prefix}.call.*.*.*`, {
    queue: opts.queue ?? 'jetactor-gateway',
    callback: (err, msg) => {
      if (err) {
        opts.log?.error({ err }, 'call subscription failed');
        return;
      }
      void handle(msg);
    },
  });
}
