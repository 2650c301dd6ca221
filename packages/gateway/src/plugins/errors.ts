import { ActorError, OperationFailedError } from '@jetactor/actor-runtime';
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError as NatsTimeoutError,
} from '@nats-io/nats-core';
import type { FastifyError, FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ERROR_CODES, GatewayError, OPERATION_FAILED_STATUS, errorBody, isGatewayErrorCode } from '../errors.js';

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
};

function isNatsConnectionError(err: unknown): boolean {
  return (
    err instanceof ClosedConnectionError ||
    err instanceof ConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof NoRespondersError ||
    (err instanceof RequestError && err.isNoResponders())
  );
}

/**
 * Maps any thrown value to the status, code and message the client gets. Branches on
 * classes and codes only. `natsReady` tells whether NATS is connected now: a NATS
 * failure while it is not is a 503, not a 500 or 504.
 */
export function toHttpError(err: unknown, natsReady: boolean): HttpError {
  if (err instanceof GatewayError) return { status: err.statusCode, code: err.code, message: err.message };
  if (err instanceof OperationFailedError) {
    return { status: OPERATION_FAILED_STATUS, code: err.code, message: err.message };
  }
  if (err instanceof ActorError) {
    if (err.code === 'TIMEOUT' && !natsReady) return unavailable();
    if (isGatewayErrorCode(err.code) && ERROR_CODES[err.code].status < 500) {
      return { status: ERROR_CODES[err.code].status, code: err.code, message: err.message };
    }
    if (err.code === 'TIMEOUT') return { status: ERROR_CODES.TIMEOUT.status, code: 'TIMEOUT', message: err.message };
    return natsReady ? internal() : unavailable();
  }
  if (isNatsConnectionError(err)) return unavailable();
  if (err instanceof NatsTimeoutError) {
    return natsReady
      ? { status: ERROR_CODES.TIMEOUT.status, code: 'TIMEOUT', message: 'NATS did not answer in time' }
      : unavailable();
  }
  const fastifyError = err as Partial<FastifyError> | null;
  if (fastifyError !== null && typeof fastifyError === 'object' && typeof fastifyError.code === 'string') {
    const code = FASTIFY_CODES[fastifyError.code];
    if (code !== undefined) return { status: ERROR_CODES[code].status, code, message: ERROR_MESSAGES[code] ?? code };
    const status = fastifyError.statusCode;
    // Other client errors that Fastify raises itself (bad Content-Length, aborted bodies, ...).
    if (typeof status === 'number' && status >= 400 && status < 500 && fastifyError.code.startsWith('FST_')) {
      return { status: 400, code: 'INVALID_REQUEST', message: fastifyError.message ?? 'bad request' };
    }
  }
  return natsReady ? internal() : unavailable();
}

const ERROR_MESSAGES: Partial<Record<GatewayError['code'], string>> = {
  PAYLOAD_TOO_LARGE: 'request body is larger than the body limit',
  UNSUPPORTED_MEDIA_TYPE: 'Content-Type header is malformed',
  INVALID_JSON: 'request body is not valid JSON',
  NOT_FOUND: 'no such route',
};

function unavailable(): HttpError {
  return { status: ERROR_CODES.NATS_UNAVAILABLE.status, code: 'NATS_UNAVAILABLE', message: 'not connected to NATS; retry later' };
}

function internal(): HttpError {
  return { status: ERROR_CODES.INTERNAL_ERROR.status, code: 'INTERNAL_ERROR', message: 'internal server error' };
}

function routeFields(request: FastifyRequest): Record<string, unknown> {
  const params = (request.params ?? {}) as Record<string, unknown>;
  const { type, key, op } = params;
  return { type, key, op };
}

const errorsPlugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const http = toHttpError(err, app.natsReady());
    if (http.status >= 500) request.log.error({ err, ...routeFields(request), code: http.code }, 'request failed');
    else request.log.info({ ...routeFields(request), code: http.code, reason: http.message }, 'request rejected');
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
