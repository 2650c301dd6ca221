import { validateName } from '@jetactor/actor-runtime';
import { type ActorClient } from '@jetactor/actor-runtime/client';
import { CallHeaders, callSubjects, isValidReplySubject, parseCallSubject, STATUS_HEADER as RUNTIME_STATUS_HEADER } from '@jetactor/actor-runtime/protocol';
import { entryOf, type ActorCatalog } from '../catalog/actor-catalog.js';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import type { FastifyBaseLogger } from 'fastify';
import { GatewayError, errorBody } from '../errors.js';
import { toHttpError } from '../plugins/errors.js';
import { unsupportedEncoding } from '../plugins/json-body.js';
import { DECIMAL_DIGITS, IDEMPOTENCY_RULE, isValidIdempotencyKey } from '../schemas.js';

/** Options of {@link serveCalls}. */
export interface CallServiceOptions {
  /** First subject token of operations (the runtime's `subjectPrefix`). Default `actors`. */
  subjectPrefix?: string;
  /**
   * Prefix of the inboxes callers are answered on (the runtime's `inboxPrefix`). A request
   * whose reply subject is not a literal subject under it is dropped unanswered (and logged):
   * the gateway answers with its own credentials, so a forged reply subject such as
   * `$KV.actors.counter.victim` must never be written to. Default `_INBOX`.
   */
  inboxPrefix?: string;
  /** Queue group, so that several gateways share the calls. Default `jetactor-gateway`. */
  queue?: string;
  /** Service name for `$SRV` discovery (`nats micro ls`). Default `jetactor-gateway`. */
  serviceName?: string;
  /** Service version for `$SRV` discovery (semver). Default `0.1.0`. */
  serviceVersion?: string;
  /** Timeout of a call without a `Timeout-Ms` header, in ms. Default 5000. */
  defaultTimeoutMs?: number;
  /** Largest accepted `Timeout-Ms` header, in ms. Default 60000. */
  maxTimeoutMs?: number;
  /** Where to log failed calls. */
  log?: FastifyBaseLogger;
  /** The actor types served (the registered ones); unset: the client's own definitions validate. */
  catalog?: ActorCatalog;
}

/** Header with the call's idempotency key (as HTTP's `Idempotency-Key`). */
export const IDEMPOTENCY_KEY_HEADER = CallHeaders.IdempotencyKey;
/** Header with the call's timeout in ms (as HTTP's `?timeoutMs=`). */
export const TIMEOUT_HEADER = CallHeaders.TimeoutMs;
/** Header naming the payload's encoding: only `identity` (or none) is accepted. */
export const CONTENT_ENCODING_HEADER = CallHeaders.ContentEncoding;
/** Header on error replies with the HTTP status the same error would have. */
export const STATUS_HEADER = RUNTIME_STATUS_HEADER;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Name of the call endpoint in `$SRV.INFO`. */
export const CALL_ENDPOINT = 'call';

function reply(msg: ServiceMsg, body: unknown): void {
  if (!msg.reply) return;
  msg.respond(enc.encode(JSON.stringify(body)));
}

/**
 * An error reply: the JSON error body, the HTTP-equivalent status in `Jetactor-Status`,
 * and the NATS micro error headers (`Nats-Service-Error`, `Nats-Service-Error-Code`)
 * so that generic service clients see a failure too.
 */
function replyError(msg: ServiceMsg, code: string, message: string, status: number): void {
  if (!msg.reply) return;
  const h = natsHeaders();
  h.set(STATUS_HEADER, String(status));
  msg.respondError(status, `${code}: ${message}`.replace(/[\r\n]+/g, ' '), enc.encode(JSON.stringify(errorBody(code, message))), {
    headers: h,
  });
}

/** A header given once, or undefined when it is absent; a repeated one is refused by {@link callHeadersError}. */
function once(h: MsgHdrs, name: string): string | undefined | null {
  if (!h.has(name)) return undefined;
  const values = h.values(name);
  return values.length === 1 ? (values[0] ?? '') : null;
}

/**
 * What is wrong with a call's headers, by the rules HTTP applies to the same values:
 * `Idempotency-Key` as the routes' header schema, `Timeout-Ms` as `?timeoutMs=` (decimal
 * digits, 1 to `maxTimeoutMs`), and no `Content-Encoding` but identity. Undefined when fine.
 */
function callHeadersError(h: MsgHdrs | undefined, maxTimeoutMs: number): GatewayError | undefined {
  if (h === undefined) return undefined;
  const key = once(h, IDEMPOTENCY_KEY_HEADER);
  if (key === null || (key !== undefined && !isValidIdempotencyKey(key))) {
    return new GatewayError('INVALID_IDEMPOTENCY_KEY', `${IDEMPOTENCY_RULE}, given once`);
  }
  const timeout = once(h, TIMEOUT_HEADER);
  if (timeout === null || (timeout !== undefined && (!DECIMAL_DIGITS.test(timeout) || Number(timeout) < 1 || Number(timeout) > maxTimeoutMs))) {
    return new GatewayError(
      'INVALID_REQUEST',
      `${TIMEOUT_HEADER} must be a whole number of ms in decimal digits from 1 to ${maxTimeoutMs}, given once (got ${JSON.stringify((timeout ?? h.values(TIMEOUT_HEADER).join(', ')).slice(0, 64))})`,
    );
  }
  return h.has(CONTENT_ENCODING_HEADER) ? unsupportedEncoding(h.values(CONTENT_ENCODING_HEADER).join(', ')) : undefined;
}

/**
 * Serves `<prefix>.call.<type>.<key>.<op>` as a NATS service (`@nats-io/services`, so
 * `$SRV.PING|INFO|STATS` discovery and `nats micro` work) and request entry point for calls:
 * the request payload is the operation's JSON input (or empty), the reply (only ever to a
 * literal inbox subject under `inboxPrefix`; other requests are dropped) is
 * `{"result":...,"seq":N}` once the state is committed, or `{"error":{"code","message"}}`
 * with the HTTP-equivalent status in the `Jetactor-Status` header. Optional request
 * headers, checked as HTTP checks the same values (a bad one is a 4xx error reply):
 * `Idempotency-Key` (1-128 token characters), `Timeout-Ms` (decimal ms, 1 to `maxTimeoutMs`),
 * `Content-Encoding` (only `identity`: the payload is never decompressed).
 *
 * ```sh
 * nats req actors.call.counter.mykey.add 3
 * ```
 */
export async function serveCalls(nc: NatsConnection, client: ActorClient, opts: CallServiceOptions = {}): Promise<Service> {
  const prefix = opts.subjectPrefix ?? 'actors';
  const defaultTimeoutMs = opts.defaultTimeoutMs ?? 5_000;
  const maxTimeoutMs = opts.maxTimeoutMs ?? 60_000;

  const replyNames = { inboxPrefix: opts.inboxPrefix ?? '_INBOX', subjectPrefix: prefix };

  const handle = async (msg: ServiceMsg): Promise<void> => {
    if (!isValidReplySubject(msg.reply, replyNames)) {
      // Not even applied: nobody could be told the result, and the requester named a subject
      // it may not be answered on.
      opts.log?.warn(
        { subject: msg.subject.slice(0, 300), reply: (msg.reply ?? '').slice(0, 300) },
        `NATS call dropped: its reply subject is no literal subject under '${replyNames.inboxPrefix}.'`,
      );
      return;
    }
    const call = parseCallSubject(msg.subject);
    const { type, key, op } = call ?? {};
    try {
      if (call === null || type === undefined || key === undefined || op === undefined) {
        replyError(msg, 'INVALID_REQUEST', `call subjects are ${prefix}.call.<type>.<key>.<op>`, 400);
        return;
      }
      const headerError = callHeadersError(msg.headers, maxTimeoutMs);
      if (headerError !== undefined) {
        replyError(msg, headerError.code, headerError.message, headerError.statusCode);
        return;
      }
      let input: unknown;
      const text = dec.decode(msg.data);
      if (text.trim() !== '') {
        try {
          input = JSON.parse(text);
        } catch {
          replyError(msg, 'INVALID_JSON', 'request payload is not valid JSON', 400);
          return;
        }
      }
      const idempotencyKey = msg.headers?.has(IDEMPOTENCY_KEY_HEADER) ? msg.headers.get(IDEMPOTENCY_KEY_HEADER) : undefined;
      const timeoutMs = msg.headers?.has(TIMEOUT_HEADER) ? Number(msg.headers.get(TIMEOUT_HEADER)) : defaultTimeoutMs;
      if (opts.catalog) {
        validateName('type', type);
        validateName('key', key);
        validateName('op', op);
        entryOf(opts.catalog, type).check(op, input);
      } else client.parseInput(type, op, input);
      const { result, seq, duplicate } = await client.call(type, key, op, input, { idempotencyKey, timeoutMs });
      reply(msg, { result: result ?? null, seq, ...(duplicate ? { duplicate: true } : {}) });
    } catch (err) {
      const http = toHttpError(err, !nc.isClosed());
      if (http.status >= 500) opts.log?.error({ err, type, key, op, code: http.code }, 'NATS call failed');
      replyError(msg, http.code, http.message, http.status);
    }
  };

  const service = await new Svcm(nc).add({
    name: opts.serviceName ?? 'jetactor-gateway',
    version: opts.serviceVersion ?? '0.1.0',
    description: `jetactor calls: request ${prefix}.call.<type>.<key>.<op> with the JSON input; the reply is {"result","seq"} once applied`,
    queue: opts.queue ?? 'jetactor-gateway',
  });
  service.addEndpoint(CALL_ENDPOINT, {
    subject: callSubjects(prefix),
    metadata: { input: 'JSON (or empty)', reply: '{"result":...,"seq":N} or {"error":{"code","message"}}' },
    handler: (err, msg) => {
      if (err) {
        opts.log?.error({ err }, 'call endpoint failed');
        return;
      }
      void handle(msg);
    },
  });
  return service;
}
