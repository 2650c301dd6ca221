import type { FastifyInstance, FastifyPluginCallback, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { withDeadline } from '../deadline.js';
import { GatewayError, errorBody } from '../errors.js';

/** How long `/readyz` waits for the stream and bucket check, in ms. */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

declare module 'fastify' {
  interface FastifyInstance {
    /** True while NATS is connected. */
    natsReady(): boolean;
    /** A `preHandler` hook that fails with 503 `NATS_UNAVAILABLE` while NATS is not connected. */
    requireNats: preHandlerHookHandler;
  }
}

/** Options of {@link natsReadiness}. */
export interface NatsReadinessOptions {
  /** Whether NATS is connected right now. */
  isReady: () => boolean;
  /** Resolves with the missing stream and buckets (empty: all there); unset: not checked. */
  checkProvisioned?: () => Promise<readonly string[]>;
}

const natsReadinessPlugin: FastifyPluginCallback<NatsReadinessOptions> = (app: FastifyInstance, opts, done) => {
  const { isReady } = opts;
  app.decorate('natsReady', isReady);
  const requireNats: preHandlerHookHandler = (_request, _reply, next) => {
    next(isReady() ? undefined : new GatewayError('NATS_UNAVAILABLE', 'not connected to NATS; retry later'));
  };
  app.decorate('requireNats', requireNats);

  app.get('/healthz', { logLevel: 'warn' }, (_request, reply) => reply.send({ status: 'ok' }));
  const { checkProvisioned } = opts;
  app.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    if (!isReady()) return reply.code(503).send(errorBody('NATS_UNAVAILABLE', 'not connected to NATS'));
    if (checkProvisioned === undefined) return reply.send({ status: 'ok', nats: 'connected' });
    let missing: readonly string[];
    try {
      missing = await withDeadline(
        checkProvisioned(),
        READINESS_CHECK_TIMEOUT_MS,
        () => new Error(`stream and bucket check took over ${READINESS_CHECK_TIMEOUT_MS} ms`),
      );
    } catch (err) {
      app.log.warn({ err }, 'readiness check failed');
      return reply.code(503).send(errorBody('NATS_UNAVAILABLE', 'NATS did not answer the stream and bucket check'));
    }
    if (missing.length > 0) {
      return reply.code(503).send(errorBody('NOT_PROVISIONED', `missing in JetStream: ${missing.join(', ')} (a worker creates them at start)`));
    }
    return reply.send({ status: 'ok', nats: 'connected', provisioned: true });
  });
  done();
};

/**
 * NATS readiness: decorates `natsReady()` and the `requireNats` hook (routes that need
 * NATS answer 503 at once instead of queueing behind a reconnect), and serves
 * `GET /healthz` (always 200: the process is up) and `GET /readyz` (200 only while
 * NATS is connected and, given `checkProvisioned`, the stream and buckets exist).
 */
export const natsReadiness = fp(natsReadinessPlugin, { name: 'jetactor-nats-readiness', fastify: '5.x' });
