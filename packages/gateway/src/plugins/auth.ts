import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyPluginCallback, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { GatewayError } from '../errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** An `onRequest` hook that fails with 401 `UNAUTHORIZED` unless the bearer token is accepted (a no-op without tokens). */
    authenticate: onRequestHookHandler;
  }
}

/** Options of {@link auth}. */
export interface AuthOptions {
  /** Accepted bearer tokens; empty means no authentication. */
  tokens: readonly string[];
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

const authPlugin: FastifyPluginCallback<AuthOptions> = (app: FastifyInstance, opts, done) => {
  // Compare digests in constant time so neither a token's content nor its length leaks.
  const accepted = opts.tokens.map(digest);
  const authenticate: onRequestHookHandler = (request, reply, next) => {
    if (accepted.length === 0) {
      next();
      return;
    }
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const given = match?.[1] === undefined ? undefined : digest(match[1]);
    let ok = false;
    for (const token of accepted) if (given !== undefined && timingSafeEqual(token, given)) ok = true;
    if (!ok) {
      reply.header('www-authenticate', 'Bearer');
      next(new GatewayError('UNAUTHORIZED', 'missing or invalid bearer token'));
      return;
    }
    next();
  };
  app.decorate('authenticate', authenticate);
  done();
};

/** Bearer-token authentication for the `/api` routes (`authenticate` hook). */
export const auth = fp(authPlugin, { name: 'jetactor-auth', fastify: '5.x' });
