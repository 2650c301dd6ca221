/**
 * The one table of error codes: every code the runtime, the gateway or the CLI reports, with
 * the HTTP status the gateway sends it with and one line a user understands. The runtime's
 * `ErrorCode` (protocol/errors.ts), the gateway's `ERROR_CODES` and docs/errors.md are derived
 * from it (a test checks the docs). Like fastify's `lib/errors.js`.
 *
 * `status`: absent for the CLI's own codes. An operation that a worker applied and answered
 * with an error (`?wait=true`) is sent as 422 with the worker's code, whatever its status
 * here; a runtime code of status 500 reaches a client only that way (else `INTERNAL_ERROR`).
 * `runtime`: the code's name in the runtime's `ErrorCode` object.
 */
import { nameChars, RESERVED_TYPES } from './name-rules.js';

/** One row of the {@link ERROR_TABLE}. */
export interface ErrorInfo {
  /** HTTP status the gateway sends with the code; absent for a code of the CLI alone. */
  readonly status?: number;
  /** The code's name in the runtime's `ErrorCode` object, when the runtime raises it. */
  readonly runtime?: string;
  /** One line a user understands (Markdown). */
  readonly description: string;
}

/** Every error code, in the order docs/errors.md lists them. */
export const ERROR_TABLE = {
  INVALID_REQUEST: { status: 400,
    description: 'A query parameter or header is missing, unknown or malformed (numbers are decimal digits: no `0x`, exponent, sign or spaces); the message names it.' },
  INVALID_TYPE: { status: 400, runtime: 'InvalidType',
    description: `The actor type is not ${nameChars('type', true)}, or is one of the reserved ${[...RESERVED_TYPES].sort().map((t) => `\`${t}\``).join(' and ')}.` },
  INVALID_KEY: { status: 400, runtime: 'InvalidKey',
    description: `The actor key is not ${nameChars('key', true)} (no \`.\`, \`*\`, \`>\` or spaces).` },
  INVALID_OPERATION: { status: 400, runtime: 'InvalidOperation',
    description: `The operation name is not ${nameChars('op', true)}.` },
  INVALID_INPUT: { status: 400, runtime: 'InvalidInput',
    description: 'The operation\'s input (body or `?value=`) was rejected by the operation\'s input schema (or parser); the message says where and what, e.g. `add: input.value must be integer, got 1.5` for `?value=1.5`.' },
  INVALID_TIMER: { status: 400, runtime: 'InvalidTimer',
    description: `A timer cannot be set or named: a bad \`delayMs\`, \`at\`, \`every\` (100 ms to 10 years), \`cron\` (one that matches no time within 10 years, e.g. \`0 0 31 2 *\`) or timer id (${nameChars('timerId', true)}), a time past the largest valid date, or \`at\` with \`delayMs\`, or \`every\` with \`cron\`; the message says which. From a handler's \`schedule\`, the operation's error (422 with \`?wait=true\`).` },
  INVALID_JSON: { status: 400,
    description: 'The request body is not JSON (an empty body is allowed and means "no input").' },
  INVALID_IDEMPOTENCY_KEY: { status: 400,
    description: 'The `Idempotency-Key` header is not 1-128 HTTP token characters (letters, digits, `!#$%&\'*+-.^_~`, backtick and pipe; no spaces, commas, quotes or slashes).' },
  UNAUTHORIZED: { status: 401,
    description: 'Auth tokens are configured and the request has no valid `Authorization: Bearer <token>` header.' },
  FORBIDDEN: { status: 403,
    description: 'The bearer token is valid but lacks the route\'s scope (`read` for GET, `write` for mutations, `read` and `write` for `?wait=true`, `admin` for resubmitting dead letters).' },
  NOT_FOUND: { status: 404, runtime: 'NotFound',
    description: 'No such route.' },
  UNKNOWN_DEAD_LETTER: { status: 404,
    description: 'No dead letter with that `dlqSeq` (never written, or dropped from `ACTORS_DLQ` by age or at its bounds).' },
  UNKNOWN_ACTOR: { status: 404, runtime: 'UnknownActor',
    description: 'No worker has registered an actor type of that name (see "How the gateway finds actor types").' },
  UNKNOWN_SERVICE: { status: 404,
    description: '`DELETE /api/services/:id`: no service (lane) of that id is registered (`GET /api/status` lists them under `services`).' },
  UNKNOWN_OPERATION: { status: 404, runtime: 'UnknownOperation',
    description: 'The actor type has no operation of that name.' },
  REQUEST_TIMEOUT: { status: 408,
    description: 'The client did not send the whole request in time (`GATEWAY_HEADERS_TIMEOUT_MS` for the headers, `GATEWAY_RECEIVE_TIMEOUT_MS` for all of it); the connection is closed and nothing was done.' },
  PAYLOAD_TOO_LARGE: { status: 413, runtime: 'PayloadTooLarge',
    description: 'The request body is larger than the body limit (64 KiB by default).' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415,
    description: 'The `Content-Type` header is malformed, or the body has a `Content-Encoding` other than `identity` (the gateway does not decompress).' },
  HANDLER_ERROR: { status: 422, runtime: 'HandlerError',
    description: 'With `?wait=true`: the operation\'s handler threw something that is no `ActorError` (a bug); the actor\'s state is unchanged. A dead letter.' },
  RESULT_OUT_OF_RANGE: { status: 422, runtime: 'ResultOutOfRange',
    description: 'With `?wait=true`: the counter refused an operation that would produce a value out of range; the state is unchanged. A refusal, no dead letter.' },
  MIGRATION_FAILED: { status: 422, runtime: 'MigrationFailed',
    description: 'A state migration of the actor\'s type (`defineActor({ migrate })`) threw on its record: with `?wait=true` the operation failed (a dead letter) and the record is unchanged; on a read, the record cannot be shown in the current version\'s shape.' },
  RECORD_TOO_OLD: { status: 422, runtime: 'RecordTooOld',
    description: 'The actor\'s record was written by a version older than the oldest its type migrates from: the operation failed (a dead letter), or the read cannot show it.' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, runtime: 'IdempotencyKeyReused',
    description: 'The `Idempotency-Key` was already used, within the duplicate window (2 minutes), for another operation or another input on this actor; nothing was published. Use a new key for a new operation.' },
  INVALID_DEAD_LETTER: { status: 422, runtime: 'InvalidDeadLetter',
    description: 'The dead letter names no valid operation subject (`actors.<type>.<key>.<op>`), e.g. it was published to `ACTORS_DLQ` by someone else; it is not resubmitted.' },
  SERVICE_LIVE: { status: 409, runtime: 'ServiceLive',
    description: '`DELETE /api/services/:id`: the service still has a live worker; stop its workers before removing it.' },
  RATE_LIMITED: { status: 429,
    description: 'Rate limiting is on (`GATEWAY_RATE_LIMIT`) and the client sent more requests than it allows per minute; wait the seconds in `Retry-After`.' },
  HEADERS_TOO_LARGE: { status: 431,
    description: 'The request\'s headers are larger than Node\'s limit (16 KiB); the connection is closed.' },
  INTERNAL_ERROR: { status: 500,
    description: 'An unexpected error in the gateway; details are in its log, never in the response.' },
  NATS_UNAVAILABLE: { status: 503,
    description: 'The gateway is not connected to NATS (or lost the connection during the request); retry later.' },
  NOT_PROVISIONED: { status: 503,
    description: 'NATS is up but no JetStream stream answered: JetStream is off, the actors stream or buckets do not exist yet (a worker creates them at start; until then no actor type is registered either), or a cluster is electing their leader; retry later.' },
  STREAM_FULL: { status: 503, runtime: 'StreamFull',
    description: 'The operations stream reached its byte bound: new operations are refused, never old ones dropped, until the workers catch up and applied operations are purged; retry later.' },
  TIMEOUT: { status: 504, runtime: 'Timeout',
    description: 'The operation, result or `?minSeq` state did not arrive within the timeout; a signal may still be applied, so retry with the same `Idempotency-Key`.' },
  STATE_NOT_SERIALIZABLE: { status: 422, runtime: 'StateNotSerializable',
    description: 'An operation\'s error (422 with `?wait=true`): the handler returned a state that is not JSON (a BigInt, a cycle, `undefined`, a function); the state is unchanged. A dead letter.' },
  STATE_TOO_LARGE: { status: 422, runtime: 'StateTooLarge',
    description: 'An operation\'s error (422 with `?wait=true`): the handler returned a state whose record would exceed the server\'s message size; the state is unchanged. A dead letter.' },
  RESULT_NOT_SERIALIZABLE: { status: 500, runtime: 'ResultNotSerializable',
    description: 'An operation\'s error (422 with `?wait=true`): the handler returned a result that is not JSON. From a query, the gateway answers `INTERNAL_ERROR`.' },
  RESULT_TOO_LARGE: { status: 500, runtime: 'ResultTooLarge',
    description: 'An operation\'s error (422 with `?wait=true`): the handler returned a result too large for one NATS message. From a query, the gateway answers `INTERNAL_ERROR`.' },
  INVALID_SEND: { status: 422, runtime: 'InvalidSend',
    description: 'An operation\'s error (422 with `?wait=true`): the handler returned a `send` that names no valid operation, or more than 100 sends. A dead letter.' },
  FENCED: { status: 500, runtime: 'Fenced',
    description: 'A worker lost a partition to a newer owner while writing; it stops and the new owner goes on. Never sent to a client (the gateway answers `INTERNAL_ERROR`).' },
  CONFIG_ERROR: { status: 500, runtime: 'Config',
    description: 'Invalid configuration of a worker or client (the message names the setting); it does not start. Never sent by the gateway (it answers `INTERNAL_ERROR`).' },
  SERVER_VERSION: { status: 500, runtime: 'ServerVersion',
    description: 'The nats-server is older than the oldest the runtime supports (2.10); the worker does not start.' },
  PARTITION_MISMATCH: { status: 500, runtime: 'PartitionMismatch',
    description: 'The operations stream exists with another partition count than the worker\'s; the worker does not start.' },
  UNSUPPORTED: { status: 500, runtime: 'Unsupported',
    description: 'The feature needs a newer nats-server than the one connected (the message says which).' },
  RECORD_TOO_NEW: { status: 500, runtime: 'RecordTooNew',
    description: 'A record was written by a newer version of its actor type than this worker runs: its partition waits for a newer worker (never a dead letter; `jetactor status` shows it).' },
  PARTITION_BLOCKED: { status: 500, runtime: 'PartitionBlocked',
    description: 'A partition waits at an operation its worker must not apply or dead-letter (an operation its version does not know, with `unknownOperation: \'wait\'`); `jetactor status` shows it.' },
  UNAVAILABLE: {
    description: 'CLI with `--gateway`: the gateway cannot be reached, or its watch stream broke (NATS itself unreachable is `NATS_UNAVAILABLE`).' },
  USAGE: {
    description: 'CLI: the command line is wrong (an unknown option, both `--nats` and `--gateway`, input that is not JSON); the message says what.' },
  NOT_AVAILABLE: {
    description: 'CLI: the installed `@jetactor/actor-runtime` has no such feature (e.g. dead letters); upgrade it.' },
  ERROR: {
    description: 'CLI: a failure with no code of its own (a bug); the message says what failed.' },
} as const satisfies Record<string, ErrorInfo>;

/** Any code of the {@link ERROR_TABLE}. */
export type TableErrorCode = keyof typeof ERROR_TABLE;

/** True if `code` is in the {@link ERROR_TABLE}. */
export function isTableErrorCode(code: unknown): code is TableErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_TABLE, code);
}
