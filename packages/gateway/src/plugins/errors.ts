import { ActorError, ErrorCode, OperationFailedError } from '@jetactor/actor-runtime';
import { classifyNatsError, isNatsConnectionError, NATS_UNAVAILABLE_MESSAGE } from '@jetactor/actor-runtime/protocol';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ERROR_CODES, GatewayError, OPERATION_FAILED_STATUS, errorBody, isGatewayErrorCode } from '../errors.js';
import { noteForLog } from './request-log.js';
import { targetOf } from '../routes/target.js';

/** What the error handler sends for a thrown value. */
export interface HttpError {
  /** HTTP status. */
  status: number;
  /** Error code (registered, or a worker's code for a failed operation). */
  code: string;
  /** Message for the client; never a stack trace. */
  message: string;
}

/** Fastify's own errors that clients can cause, by Fastify code. */
const FASTIFY_CODES: Readonly<Record<string, GatewayError['code']>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_NOT_FOUND: 'NOT_FOUND',
  FST_ERR_BAD_URL: 'INVALID_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'INVALID_REQUEST',
};

/**
 * Maps any thrown value to the status, code and message the client gets. Branches on
 * classes and codes only. `natsReady` tells whether NATS is connected now: a NATS
 * failure while it is not is a 503, not a 500 or 504.
 */
export function toHttpError(err: unknown, natsReady: boolean): HttpError {
  // Client errors first: they answer the same whether NATS is up or not.
  if (err instanceof GatewayError) return { status: err.statusCode, code: err.code, message: err.message };
  if (err instanceof OperationFailedError) {
    return { status: OPERATION_FAILED_STATUS, code: err.code, message: err.message };
  }
  if (err instanceof ActorError && isGatewayErrorCode(err.code) && ERROR_CODES[err.code].status < 500) {
    return { status: ERROR_CODES[err.code].status, code: err.code, message: err.message };
  }
  const fastifyError = fastifyClientError(err);
  if (fastifyError !== undefined) return fastifyError;

  // Everything else is the server's side; while NATS is away, that is the reason.
  if (!natsReady || isNatsConnectionError(err)) return unavailable();
  if (err instanceof ActorError && err.code === ErrorCode.StreamFull) {
    return {
      status: ERROR_CODES.STREAM_FULL.status,
      code: 'STREAM_FULL',
      message: 'the operations stream is full: operations are refused until the workers catch up; retry later',
    };
  }
  if (err instanceof ActorError && err.code === 'TIMEOUT') {
    return { status: ERROR_CODES.TIMEOUT.status, code: 'TIMEOUT', message: err.message };
  }
  const nats = classifyNatsError(err);
  if (nats !== undefined) return { status: ERROR_CODES[nats.code].status, code: nats.code, message: nats.message };
  return { status: ERROR_CODES.INTERNAL_ERROR.status, code: 'INTERNAL_ERROR', message: 'internal server error' };
}

/** A client error that Fastify raised itself (body limit, bad JSON, bad Content-Length, ...). */
function fastifyClientError(err: unknown): HttpError | undefined {
  const e = err as Partial<FastifyError> | null;
  if (e === null || typeof e !== 'object' || typeof e.code !== 'string' || !e.code.startsWith('FST_')) return undefined;
  const code = FASTIFY_CODES[e.code];
  if (code !== undefined) {
    return { status: ERROR_CODES[code].status, code, message: FASTIFY_MESSAGES[e.code] ?? ERROR_MESSAGES[code] ?? code };
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: 400, code: 'INVALID_REQUEST', message: e.message ?? 'bad request' };
  }
  return undefined;
}

/** Messages for Fastify errors that share a registered code with others. */
const FASTIFY_MESSAGES: Readonly<Record<string, string>> = {
  FST_ERR_BAD_URL: 'the URL path has a malformed percent-encoding',
  FST_ERR_MAX_PARAM_LENGTH: 'a path segment is far too long (keys are at most 128 characters, types and operations 64)',
};

const ERROR_MESSAGES: Partial<Record<GatewayError['code'], string>> = {
  PAYLOAD_TOO_LARGE: 'request body is larger than the body limit',
  UNSUPPORTED_MEDIA_TYPE: 'Content-Type header is malformed',
  INVALID_JSON: 'request body is not valid JSON',
  NOT_FOUND: 'no such route',
};

function unavailable(): HttpError {
  return { status: ERROR_CODES.NATS_UNAVAILABLE.status, code: 'NATS_UNAVAILABLE', message: NATS_UNAVAILABLE_MESSAGE };
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}


/**
 * Fastify's `frameworkErrors` handler: errors the router finds before any route (a
 * malformed percent-encoding, an overlong path segment), sent in the gateway's error shape.
 */
export function sendFrameworkError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const http = toHttpError(err, true);
  noteForLog(request, { code: http.code, reason: http.message });
  void reply.code(http.status).type('application/json; charset=utf-8').send(errorBody(http.code, http.message));
}

/** What a connection-level failure (no request to answer through Fastify) is sent as, by Node's error code. */
const CLIENT_ERRORS: Readonly<Record<string, { code: GatewayError['code']; message: string }>> = {
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'REQUEST_TIMEOUT', message: 'the request was not received in time; the connection is closed' },
  HPE_HEADER_OVERFLOW: { code: 'HEADERS_TOO_LARGE', message: 'the request headers are too large' },
};

/**
 * Fastify's `clientErrorHandler`: errors Node's HTTP parser raises on a connection before
 * any route (a request not received within the deadlines, oversized headers, a malformed
 * request) are answered in the gateway's error shape, then the connection is closed. Like
 * Node's own handler, nothing is written once a response has started on the socket.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const known = err.code === undefined ? undefined : CLIENT_ERRORS[err.code];
  const code = known?.code ?? 'INVALID_REQUEST';
  const body = JSON.stringify(errorBody(code, known?.message ?? 'malformed HTTP request'));
  this.log.debug({ err, code }, 'client error');
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && inFlight?.headersSent !== true) {
    const status = ERROR_CODES[code].status;
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

const errorsPlugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const http = toHttpError(err, app.natsReady());
    if (http.code === 'INTERNAL_ERROR') request.log.error({ err, ...targetOf(request), code: http.code }, 'request failed');
    else if (http.status >= 500) request.log.warn({ ...targetOf(request), code: http.code, reason: http.message, cause: errorName(err) }, 'request failed');
    // A 4xx is no event of the gateway's: its code and reason go on the request's one line.
    noteForLog(request, { code: http.code, reason: http.message });
    return reply.code(http.status).type('application/json; charset=utf-8').send(errorBody(http.code, http.message));
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    return reply
      .code(ERROR_CODES.NOT_FOUND.status)
      .send(errorBody('NOT_FOUND', `no route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}`));
  });
  done();
};

/**
 * Sends every error as `{"error":{"code","message"}}` with the status from the error
 * registry, and unknown routes as 404 `NOT_FOUND`. Never sends a stack trace.
 */
export const errorsHandler = fp(errorsPlugin, {
  name: 'jetactor-errors',
  fastify: '5.x',
  dependencies: ['jetactor-nats-readiness'],
});
