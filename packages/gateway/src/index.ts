/**
 * @packageDocumentation
 * jetactor's HTTP gateway: a Fastify app that signals, calls, reads, lists and deletes
 * actors over NATS JetStream. `buildApp(opts)` builds it without listening; `main.ts`
 * connects to NATS from the environment and listens.
 */
export { buildApp } from './app.js';
export { ERROR_CODES, GatewayError, OPERATION_FAILED_STATUS, errorBody, isGatewayErrorCode } from './errors.js';
export type { ErrorCodeInfo, ErrorResponseBody, GatewayErrorCode, GatewayErrorOptions } from './errors.js';
export { GATEWAY_DEFAULTS, REDACTED_LOG_PATHS, resolveGatewayOptions } from './options.js';
export type { GatewayLoggerOptions, GatewayOptions, ResolvedGatewayOptions } from './options.js';
export { toHttpError } from './plugins/errors.js';
export type { HttpError } from './plugins/errors.js';
