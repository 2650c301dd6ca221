import rateLimitPlugin from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync, onRequestAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { GatewayError } from '../errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * An `onRequest` hook that answers 429 `RATE_LIMITED` with `Retry-After` once a client
     * has used its requests of the window; `undefined` while rate limiting is off (no hook
     * to run on every request).
     */
    limitRate: onRequestAsyncHookHandler | undefined;
  }
}

/** Options of {@link rateLimit}. */
export interface RateLimitOptions {
  /** Requests per client per window; 0 turns rate limiting off. */
  max: number;
  /** Window length, in ms. */
  timeWindowMs: number;
}

const rateLimitPluginImpl: FastifyPluginAsync<RateLimitOptions> = async (app: FastifyInstance, opts) => {
  if (opts.max === 0) {
    app.decorate('limitRate', undefined);
    return;
  }
  await app.register(rateLimitPlugin, {
    global: false,
    max: opts.max,
    timeWindow: opts.timeWindowMs,
    // A client is its bearer token when it has a valid one (several clients behind one
    // address keep their own budgets), else its address: guessing tokens is limited too.
    keyGenerator: (request) => {
      const principal = app.principalOf(request);
      return principal === undefined ? `ip:${request.ip}` : `principal:${principal.id}`;
    },
    errorResponseBuilder: (_request, context) =>
      new GatewayError('RATE_LIMITED', `rate limit of ${context.max} requests per ${opts.timeWindowMs / 1000} s exceeded; retry in ${context.after}`),
  });
  // Fastify's preHandler and onRequest async hooks have the same (request, reply) shape.
  const limiter: onRequestAsyncHookHandler = app.rateLimit();
  app.decorate('limitRate', limiter);
};

/**
 * Per-client rate limiting (`@fastify/rate-limit`, in-memory, per gateway process):
 * decorates the `limitRate` hook. A client is its bearer token's principal or, without
 * a valid token, its IP address.
 */
export const rateLimit = fp(rateLimitPluginImpl, {
  name: 'jetactor-rate-limit',
  fastify: '5.x',
  dependencies: ['jetactor-auth'],
});
