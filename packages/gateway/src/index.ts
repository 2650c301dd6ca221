/**
 * @packageDocumentation
 * jetactor's HTTP gateway: a Fastify app that signals, calls, reads, lists and deletes
 * actors over NATS JetStream. `buildApp(opts)` builds it without listening;
 * `runGateway()` (what `main.ts` runs) reads the environment, connects to NATS in the
 * background and listens.
 */
export { buildApp } from './app.js';
export { catalogOf } from './catalog/actor-catalog.js';
export type { ActorCatalog, CatalogEntry } from './catalog/actor-catalog.js';
export { AUTH_SCOPES, AuthScope, WEAK_TOKEN_LENGTH, decideAuth, isLoopbackHost, normalizeAuthTokens, parseAuthTokens } from './auth-config.js';
export type { AuthDecision, AuthToken } from './auth-config.js';
export type { Principal } from './plugins/auth.js';
export { ERROR_CODES, GatewayError, OPERATION_FAILED_STATUS, errorBody, isGatewayErrorCode } from './errors.js';
export type { ErrorCodeInfo, ErrorResponseBody, GatewayErrorCode, GatewayErrorOptions } from './errors.js';
export { GATEWAY_DEFAULTS, REDACTED_LOG_PATHS, resolveGatewayOptions } from './options.js';
export type { GatewayLoggerOptions, GatewayOptions, ResolvedGatewayOptions } from './options.js';
export { toHttpError } from './plugins/errors.js';
export { GATEWAY_METRICS_PREFIX, LATENCY_BUCKETS_SECONDS, createGatewayMetrics } from './plugins/metrics.js';
export type { GatewayMetrics, MetricsPluginOptions } from './plugins/metrics.js';
export { READINESS_CHECK_TIMEOUT_MS } from './plugins/nats-readiness.js';
export { DOCS_PREFIX } from './plugins/openapi.js';
export { ACTOR_CHANGE_SCHEMA, CHANGE_EVENT, SSE_KEEPALIVE_MS, sseEvent } from './routes/live.js';
export type { HttpError } from './plugins/errors.js';
export {
  DEFAULT_LIST_LIMIT,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_LIST_LIMIT,
  RESERVED_TYPES,
  formatSchemaError,
  routeSchemas,
} from './schemas.js';
export type { RouteSchemas, SchemaErrorLike } from './schemas.js';
export { CALL_ENDPOINT, IDEMPOTENCY_KEY_HEADER, STATUS_HEADER, TIMEOUT_HEADER, serveCalls } from './nats/call-service.js';
export type { CallServiceOptions } from './nats/call-service.js';
export { connectInBackground } from './nats/connection.js';
export type { NatsLink, NatsLinkOptions } from './nats/connection.js';
export { runGateway } from './run-gateway.js';
export type { RunGatewayOptions, RunningGateway } from './run-gateway.js';
