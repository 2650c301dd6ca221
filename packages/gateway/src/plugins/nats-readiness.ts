import type { FastifyInstance, FastifyPluginCallback, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { GatewayError, errorBody } from '../errors.js';

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
}

const natsReadinessPlugin: FastifyPluginCallback<NatsReadinessOptions> = (app: FastifyInstance, opts, done) => {
  const { isReady } = opts;
  app.decorate('natsReady', isReady);
  const requireNats: preHandlerHookHandler = (_request, _reply, next) => {
    next(isReady() ? undefined : new GatewayError('NATS_UNAVAILABLE', 'not connected to NATS; retry later'));
  };
  app.decorate('requireNats', requireNats);

  app.get('/healthz', { logLevel: 'warn' }, (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', { logLevel: 'warn' }, (_request, reply) => {
    if (isReady()) return reply.send({ status: 'ok', nats: 'connected' });
    return reply.code(503).send(errorBody('NATS_UNAVAILABLE', 'not connected to NATS'));
  });
  done();
};

/**
 * NATS readiness: decorates `natsReady()` and the `requireNats` hook (routes that need
 * NATS answer 503 at once instead of queueing behind a reconnect), and serves
 * `GET /healthz` (always 200: the process is up) and `GET /readyz` (200 only while
 * NATS is connected).
 */
export const natsReadiness = fp(natsReadinessPlugin, { name: 'jetactor-nats-readiness', fastify: '5.x' });
