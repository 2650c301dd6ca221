import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import { rejectNonDecimalNumbers, type RouteSchemas } from '../schemas.js';
import { actorRoutes } from './actors.js';
import { counterRoutes } from './counter.js';
import { deadLetterRoutes } from './dlq.js';
import { createHandlers, type HandlerSettings } from './handlers.js';
import { liveRoutes, type LiveSettings } from './live.js';
import { serviceRoutes } from './services.js';
import { timerRoutes } from './timers.js';

/** Options of {@link apiRoutes}. */
export interface ApiRoutesOptions {
  /** Timeouts for the handlers. */
  settings: HandlerSettings;
  /** The route schemas. */
  schemas: RouteSchemas;
  /** Bounds of the event streams. */
  live: LiveSettings;
}

/**
 * Every `/api` route, in one encapsulated context with its hooks: the per-client rate
 * limit and bearer auth with scopes first (`onRequest`, before the body is read), and
 * after validation `requireNats` answers 503 while NATS is down, so a 4xx is the same
 * whether NATS is up or not. The actor's type, key and op go on the request's one log line
 * (request-log) and on the error handler's lines, not on a child logger per request.
 */
export const apiRoutes: FastifyPluginCallback<ApiRoutesOptions> = (app: FastifyInstance, opts, done) => {
  // Rate limit first, so that guessing tokens is limited too; then bearer auth and scopes.
  // A feature that is off adds no hook: every request would run it for nothing.
  if (app.limitRate !== undefined) app.addHook('onRequest', app.limitRate);
  if (app.authEnabled) app.addHook('onRequest', app.authenticate);
  app.addHook('preValidation', rejectNonDecimalNumbers);
  app.addHook('preHandler', app.requireNats);

  // Routes typed from their TypeBox schemas (params, query, headers); Ajv still validates.
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  const handlers = createHandlers(typed, opts.settings);
  counterRoutes(typed, handlers, opts.schemas);
  actorRoutes(typed, handlers, opts.schemas);
  timerRoutes(typed, opts.settings, opts.schemas);
  deadLetterRoutes(typed, opts.settings, opts.schemas);
  liveRoutes(typed, opts.settings, opts.schemas, opts.live);
  serviceRoutes(typed, opts.settings);
  done();
};
