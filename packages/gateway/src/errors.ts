/**
 * The gateway's error codes: the runtime's one error table (code, HTTP status, description),
 * from which docs/errors.md is generated. Every error a client can see has a code from it.
 *
 * Error bodies are always `{"error":{"code":"...","message":"..."}}`.
 */

import { ERROR_TABLE } from '@jetactor/actor-runtime/protocol';

/** A registered error code: its default HTTP status and what it means to a client. */
export interface ErrorCodeInfo {
  /** HTTP status sent with the code. */
  readonly status: number;
  /** One line for docs/errors.md. */
  readonly description: string;
}

type Table = typeof ERROR_TABLE;
type HttpCodes = { readonly [C in keyof Table as Table[C] extends { status: number } ? C : never]: Table[C] & ErrorCodeInfo };

/**
 * Every error code the gateway sends, with its HTTP status and description: the rows of the
 * runtime's one error table (protocol/error-table.ts) that have an HTTP status.
 *
 * An operation that a worker applied and answered with an error (only seen with
 * `?wait=true`) is sent as 422 with the worker's code, whatever status that code has here.
 */
export const ERROR_CODES: HttpCodes = Object.freeze(
  Object.fromEntries(Object.entries(ERROR_TABLE as Readonly<Record<string, { status?: number }>>).filter(([, info]) => info.status !== undefined)) as HttpCodes,
);

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
