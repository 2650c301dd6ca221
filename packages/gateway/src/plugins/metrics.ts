import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prefix of every gateway metric. */
export const GATEWAY_METRICS_PREFIX = 'jetactor_gateway_';

/** Upper bounds of the request latency histogram, in seconds. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The gateway's metrics, in their own registry (never prom-client's global one). */
export interface GatewayMetrics {
  /** The registry `/metrics` serves. */
  readonly registry: Registry;
  /** `jetactor_gateway_http_requests_total{method,route,status}`. */
  readonly requests: Counter<'method' | 'route' | 'status'>;
  /** `jetactor_gateway_http_request_duration_seconds{method,route}`. */
  readonly duration: Histogram<'method' | 'route'>;
  /** `jetactor_gateway_sse_streams`: open Server-Sent Events streams. */
  readonly sseStreams: Gauge;
  /** `jetactor_gateway_sse_dropped_total`: streams closed because their reader fell too far behind. */
  readonly sseDropped: Counter;
  /** `jetactor_gateway_connections_refused_total`: connections closed at once because `maxConnections` were open. */
  readonly connectionsRefused: Counter;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The gateway's Prometheus metrics. */
    gatewayMetrics: GatewayMetrics;
  }
}

/** Options of {@link metrics}. */
export interface MetricsPluginOptions {
  /** Also export Node process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

/** Creates the gateway's metrics in a fresh registry. */
export function createGatewayMetrics(opts: MetricsPluginOptions = {}): GatewayMetrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: GATEWAY_METRICS_PREFIX });
  return {
    registry,
    requests: new Counter({
      name: `${GATEWAY_METRICS_PREFIX}http_requests_total`,
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: `${GATEWAY_METRICS_PREFIX}http_request_duration_seconds`,
      help: 'Time from receiving an HTTP request to the end of its response, by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers: [registry],
    }),
    sseStreams: new Gauge({
      name: `${GATEWAY_METRICS_PREFIX}sse_streams`,
      help: 'Server-Sent Events streams (live state watches) open now.',
      registers: [registry],
    }),
    sseDropped: new Counter({
      name: `${GATEWAY_METRICS_PREFIX}sse_dropped_total`,
      help: 'Server-Sent Events streams closed by the gateway because the client stopped reading and the unsent data passed the bound.',
      registers: [registry],
    }),
    connectionsRefused: new Counter({
      name: `${GATEWAY_METRICS_PREFIX}connections_refused_total`,
      help: 'Client connections closed on arrival because the gateway already had its maximum open (GATEWAY_MAX_CONNECTIONS).',
      registers: [registry],
    }),
  };
}

const metricsPlugin: FastifyPluginCallback<MetricsPluginOptions> = (app: FastifyInstance, opts, done) => {
  const m = createGatewayMetrics(opts);
  app.decorate('gatewayMetrics', m);
  app.addHook('onResponse', (request, reply, next) => {
    // The route pattern, not the URL, keeps the label set bounded; unknown routes share one.
    const route = request.routeOptions.url ?? 'unmatched';
    m.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    m.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    next();
  });
  app.get(
    '/metrics',
    {
      logLevel: 'warn',
      schema: {
        summary: 'Prometheus metrics',
        description: 'Requests by route and status, request latency, open and dropped event streams and Node process metrics, in the Prometheus text format.',
        tags: ['operations'],
        response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => {
      const body = await m.registry.metrics();
      return reply.type(m.registry.contentType).send(body);
    },
  );
  done();
};

/** Counts every response by route and status, times it, and serves `GET /metrics`. */
export const metrics = fp(metricsPlugin, { name: 'jetactor-metrics', fastify: '5.x' });
