import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { REDACTED_LOG_PATHS, resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from './options.js';
import { actorClient } from './plugins/actor-client.js';
import { auth } from './plugins/auth.js';
import { dashboard } from './plugins/dashboard.js';
import { clientErrorHandler, errorsHandler, sendFrameworkError } from './plugins/errors.js';
import { jsonBody } from './plugins/json-body.js';
import { metrics } from './plugins/metrics.js';
import { natsReadiness } from './plugins/nats-readiness.js';
import { openApi } from './plugins/openapi.js';
import { rateLimit } from './plugins/rate-limit.js';
import { lazyChildLoggerFactory, requestLog } from './plugins/request-log.js';
import { apiRoutes } from './routes/api.js';
import { formatSchemaError, routeSchemas, type SchemaErrorLike } from './schemas.js';

/**
 * Longest path parameter the router accepts. Above the longest valid key, so that a
 * too-long key is a 400 `INVALID_KEY` from the schema rather than a 404.
 */
const MAX_PARAM_LENGTH = 512;

/** The gateway package's version, for the OpenAPI document (src/ and dist/ are both one level down). */
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function loggerOptions(opts: ResolvedGatewayOptions): Pick<FastifyServerOptions, 'logger' | 'loggerInstance'> {
  if (opts.loggerInstance !== undefined) return { loggerInstance: opts.loggerInstance };
  if (opts.logger === false) return { logger: false };
  const given = opts.logger === true ? {} : opts.logger;
  const redact = given.redact;
  const paths = [...REDACTED_LOG_PATHS, ...(Array.isArray(redact) ? redact : (redact?.paths ?? []))];
  const censor = Array.isArray(redact) || redact === undefined ? '[redacted]' : (redact.censor ?? '[redacted]');
  return { logger: { ...given, redact: { paths, censor } } };
}

/**
 * Closes each connection that arrives while `max` are open, and counts it with `refused`.
 * One process: Node's `server.maxConnections` does it ('drop'). A copy of a multi-process
 * gateway (`GATEWAY_PROCESSES`, `max` its share of the total) closes them itself: there a
 * connection Node refuses goes back to the primary, which hands it to another copy, round and
 * round while every copy is full (the client hangs unanswered and the primary spins a core).
 */
function capConnections(server: Server, max: number, refused: () => void): void {
  if (!cluster.isWorker) {
    server.maxConnections = max;
    server.on('drop', refused);
    return;
  }
  let open = 0;
  server.on('connection', (socket: Socket) => {
    if (open >= max) {
      socket.destroy();
      refused();
      return;
    }
    open++;
    socket.once('close', () => open--);
  });
}

/**
 * Builds the gateway's Fastify app (routes, validation, error handling, readiness)
 * without listening. Use `app.inject()` in tests, `app.listen()` in `main.ts`.
 *
 * ```ts
 * const app = await buildApp({ client: createActorClient(nc, { actors: [counter] }) });
 * await app.listen({ port: 3000, host: '127.0.0.1' });
 * ```
 */
export async function buildApp(options: GatewayOptions): Promise<FastifyInstance> {
  const opts = resolveGatewayOptions(options);
  const logging = loggerOptions(opts);
  const app = Fastify({
    ...logging,
    // Each request's logger (its reqId child) is made only if something logs through it.
    ...(logging.logger === false ? {} : { childLoggerFactory: lazyChildLoggerFactory }),
    bodyLimit: opts.bodyLimit,
    // Deadlines of a connection (see GatewayOptions): Fastify's defaults have none for
    // receiving a request or for a silent connection, so a client trickling its body held a
    // connection for ever. Node enforces the receive deadlines on a check every
    // connectionsCheckingInterval (30 s by default): a quarter of the headers deadline keeps
    // them within 25%.
    requestTimeout: opts.receiveTimeoutMs,
    connectionTimeout: opts.idleTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    http: {
      headersTimeout: opts.headersTimeoutMs,
      requestTimeout: opts.receiveTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.max(10, Math.floor(opts.headersTimeoutMs / 4))),
    },
    clientErrorHandler,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    ajv: {
      // Reject unknown query parameters instead of silently dropping them, and coerce
      // query strings to numbers/booleans but never arrays.
      customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true, verbose: true },
    },
    schemaErrorFormatter: (errors, dataVar) => formatSchemaError(errors as SchemaErrorLike[], dataVar),
    // Fastify's own 503 while closing has another body shape. Without it, the rare request
    // that reaches a closing app (Node closes kept-alive sockets after their response) is
    // served normally: NATS is drained only after the app has closed.
    return503OnClosing: false,
    // One line per request, written by the request-log plugin.
    logController: new LogController({ disableRequestLogging: true }),
    // A malformed percent-encoding or an overlong path segment, found by the router before
    // any route: answered in the gateway's error shape instead of Fastify's.
    frameworkErrors: (err, request, reply) => sendFrameworkError(err, request, reply),
  });

  // First: the OpenAPI document collects routes as they are added, and metrics count every route.
  if (opts.docs) await app.register(openApi, { version: VERSION, authEnabled: opts.authTokens.length > 0, catalog: opts.catalog });
  await app.register(metrics);
  // The cap on open connections: those over it are closed on arrival and counted.
  if (opts.maxConnections > 0) capConnections(app.server, opts.maxConnections, () => app.gatewayMetrics.connectionsRefused.inc());
  await app.register(requestLog);
  await app.register(natsReadiness, { isReady: opts.isReady, checkProvisioned: opts.checkProvisioned });
  await app.register(errorsHandler);
  await app.register(jsonBody);
  await app.register(auth, { tokens: opts.authTokens });
  await app.register(rateLimit, { max: opts.rateLimitPerMinute, timeWindowMs: 60_000 });
  await app.register(actorClient, { getClient: opts.getClient, getWatcher: opts.getWatcher, catalog: opts.catalog });
  await app.register(apiRoutes, {
    settings: { defaultTimeoutMs: opts.defaultTimeoutMs, requestTimeoutMs: opts.requestTimeoutMs },
    schemas: routeSchemas(opts.maxTimeoutMs),
    live: { maxBufferedBytes: opts.sseMaxBufferedBytes, keepAliveMs: opts.sseKeepAliveMs },
  });
  if (opts.dashboard) await app.register(dashboard);
  return app;
}
