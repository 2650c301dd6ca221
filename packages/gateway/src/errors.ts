/**
 * The gateway's one registry of error codes. Every error a client can see has a code
 * from here, an HTTP status and a description; the README's "Errors" table lists the
 * same codes (a test keeps them in step). Like fastify's `lib/errors.js`.
 *
 * Error bodies are always `{"error":{"code":"...","message":"..."}}`.
 */

/** A registered error code: its default HTTP status and what it means to a client. */
export interface ErrorCodeInfo {
  /** HTTP status sent with the code. */
  readonly status: number;
  /** One sentence for the README's "Errors" table. */
  readonly description: string;
}

/**
 * Every error code the gateway sends, with its HTTP status and description.
 *
 * An operation that a worker applied and answered with an error (only seen with
 * `?wait=true`) is sent as 422 with the worker's code, whatever status that code has here.
 */
export const ERROR_CODES = {
  INVALID_REQUEST: {
    status: 400,
    description:
      'A query parameter or header is missing, unknown or malformed (numbers are decimal digits: no `0x`, exponent, sign or spaces); the message names it.',
  },
  INVALID_TYPE: {
    status: 400,
    description: "The actor type is not 1-64 characters of `[A-Za-z0-9_=-]`, or is one of the reserved `call` and `query`.",
  },
  INVALID_KEY: {
    status: 400,
    description: 'The actor key is not 1-128 characters of `[A-Za-z0-9_=-]` (no `.`, `*`, `>` or spaces).',
  },
  INVALID_OPERATION: {
    status: 400,
    description: 'The operation name is not 1-64 characters of `[A-Za-z0-9_-]`.',
  },
  INVALID_INPUT: {
    status: 400,
    description: "The operation's input (body or `?value=`) was rejected by the actor's input parser.",
  },
  INVALID_JSON: {
    status: 400,
    description: 'The request body is not JSON (an empty body is allowed and means "no input").',
  },
  INVALID_TIMER: {
    status: 400,
    description:
      'A timer cannot be set or named: a bad `delayMs`, `at`, `every` (100 ms to 10 years), `cron` (one that matches no time within 10 years, e.g. `0 0 31 2 *`) or timer id (1-64 characters of `[A-Za-z0-9_=-]`), a time past the largest valid date, or `at` with `delayMs`, or `every` with `cron`; the message says which.',
  },
  INVALID_IDEMPOTENCY_KEY: {
    status: 400,
    description:
      'The `Idempotency-Key` header is not 1-128 HTTP token characters (letters, digits, `!#$%&\'*+-.^_~`, backtick and pipe; no spaces, commas, quotes or slashes).',
  },
  UNAUTHORIZED: {
    status: 401,
    description: 'Auth tokens are configured and the request has no valid `Authorization: Bearer <token>` header.',
  },
  FORBIDDEN: {
    status: 403,
    description:
      "The bearer token is valid but lacks the route's scope (`read` for GET, `write` for mutations, `read` and `write` for `?wait=true`, `admin` for resubmitting dead letters).",
  },
  NOT_FOUND: {
    status: 404,
    description: 'No such route.',
  },
  UNKNOWN_DEAD_LETTER: {
    status: 404,
    description: 'No dead letter with that `dlqSeq` (never written, or aged out of `ACTORS_DLQ`).',
  },
  UNKNOWN_ACTOR: {
    status: 404,
    description: 'No actor type of that name is registered.',
  },
  UNKNOWN_SERVICE: {
    status: 404,
    description: 'No service (lane) of that id is registered (`GET /api/status` lists them under `services`).',
  },
  UNKNOWN_OPERATION: {
    status: 404,
    description: 'The actor type has no operation of that name.',
  },
  REQUEST_TIMEOUT: {
    status: 408,
    description:
      'The client did not send the whole request in time (`GATEWAY_HEADERS_TIMEOUT_MS` for the headers, `GATEWAY_RECEIVE_TIMEOUT_MS` for all of it); the connection is closed and nothing was done.',
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    description: 'The request body is larger than the body limit (64 KiB by default).',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    description: 'The `Content-Type` header is malformed, or the body has a `Content-Encoding` other than `identity` (the gateway does not decompress).',
  },
  HANDLER_ERROR: {
    status: 422,
    description: "With `?wait=true`: the operation's handler threw something that is no `ActorError` (a bug); the actor's state is unchanged. A dead letter.",
  },
  RESULT_OUT_OF_RANGE: {
    status: 422,
    description: 'With `?wait=true`: the counter refused an operation that would produce a value out of range; the state is unchanged. A refusal, no dead letter.',
  },
  MIGRATION_FAILED: {
    status: 422,
    description: "A state migration of the actor's type (`defineActor({ migrate })`) threw on its record: with `?wait=true` the operation failed (a dead letter) and the record is unchanged; on a read, the record cannot be shown in the current version's shape.",
  },
  RECORD_TOO_OLD: {
    status: 422,
    description: "The actor's record was written by a version older than the oldest its type migrates from: the operation failed (a dead letter), or the read cannot show it.",
  },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    description:
      'The `Idempotency-Key` was already used, within the duplicate window (2 minutes), for another operation or another input on this actor; nothing was published. Use a new key for a new operation.',
  },
  INVALID_DEAD_LETTER: {
    status: 422,
    description:
      'The dead letter names no valid operation subject (`actors.<type>.<key>.<op>`), e.g. it was published to `ACTORS_DLQ` by someone else; it is not resubmitted.',
  },
  SERVICE_LIVE: {
    status: 409,
    description: 'The service still has a live worker; stop its workers before removing it.',
  },
  RATE_LIMITED: {
    status: 429,
    description: 'The client sent more requests than `GATEWAY_RATE_LIMIT` allows per minute; wait the seconds in `Retry-After`.',
  },
  HEADERS_TOO_LARGE: {
    status: 431,
    description: "The request's headers are larger than Node's limit (16 KiB); the connection is closed.",
  },
  INTERNAL_ERROR: {
    status: 500,
    description: 'An unexpected error in the gateway; details are in its log, never in the response.',
  },
  NATS_UNAVAILABLE: {
    status: 503,
    description: 'The gateway is not connected to NATS (or lost the connection during the request); retry later.',
  },
  NOT_PROVISIONED: {
    status: 503,
    description:
      'NATS is up but no JetStream stream answered: JetStream is off, the actors stream or buckets do not exist yet (a worker creates them at start), or a cluster is electing their leader; retry later.',
  },
  STREAM_FULL: {
    status: 503,
    description:
      'The operations stream reached its byte bound: new operations are refused, never old ones dropped, until the workers catch up and applied operations are purged; retry later.',
  },
  TIMEOUT: {
    status: 504,
    description:
      'The operation, result or `?minSeq` state did not arrive within the timeout; a signal may still be applied, so retry with the same `Idempotency-Key`.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

/** One of the registered error codes. */
export type GatewayErrorCode = keyof typeof ERROR_CODES;

/** HTTP status of a failed operation result (`?wait=true`), whatever its code. */
export const OPERATION_FAILED_STATUS = 422;

/** Options of {@link GatewayError}. */
export interface GatewayErrorOptions {
  /** The underlying error, kept for logs. */
  cause?: unknown;
  /** HTTP status; defaults to the code's status in {@link ERROR_CODES}. */
  status?: number;
}

/** An error with a registered code; the error handler sends it as its status and JSON body. */
export class GatewayError extends Error {
  /** Stable, machine-readable code: a key of {@link ERROR_CODES}. */
  readonly code: GatewayErrorCode;
  /** HTTP status sent to the client. */
  readonly statusCode: number;

  constructor(code: GatewayErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.statusCode = options.status ?? ERROR_CODES[code].status;
  }
}

/** The JSON body of every error response. */
export interface ErrorResponseBody {
  error: {
    code: string;
    message: string;
  };
}

/** True if `code` is a registered error code. */
export function isGatewayErrorCode(code: unknown): code is GatewayErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** Builds the JSON error body. */
export function errorBody(code: string, message: string): ErrorResponseBody {
  return { error: { code, message } };
}
