import { ActorError, ErrorCode } from '@jetactor/actor-runtime';
import { Type } from '@sinclair/typebox';
import { AuthScope } from '../auth-config.js';
import { withDeadline } from '../deadline.js';
import { GatewayError } from '../errors.js';
import type { TypedApp } from '../schemas.js';
import { expiredError, type HandlerSettings } from './handlers.js';

const removeSchema = {
  params: Type.Object({ id: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$' }) }, { additionalProperties: false }),
  response: {
    200: {
      type: 'object',
      properties: { removed: { type: 'string' }, types: { type: 'array', items: { type: 'string' } } },
      required: ['removed', 'types'],
    },
  },
} as const;

/**
 * `DELETE /api/services/:id` (scope `admin`): removes a service (lane) none of whose workers is
 * live: its registration, leases and checkpoints, and the types only it hosted. Its operations
 * stop holding the stream's retention; operations of those types become dead letters. 409
 * `SERVICE_LIVE` while one of its workers runs, 404 `UNKNOWN_SERVICE` for an id never registered.
 * The services and their state are in `GET /api/status` (`services`).
 */
export function serviceRoutes(app: TypedApp, settings: HandlerSettings): void {
  const expired = expiredError(app, 'removing a service', settings.requestTimeoutMs);
  app.delete('/api/services/:id', { schema: removeSchema, config: { scope: AuthScope.Admin } }, async (request, reply) => {
    const { id } = request.params;
    try {
      const removed = await withDeadline(app.actorClient().removeService(id), settings.requestTimeoutMs, expired);
      request.log.info(removed, 'service removed');
      return reply.send(removed);
    } catch (err) {
      if (err instanceof ActorError && err.code === ErrorCode.NotFound) throw new GatewayError('UNKNOWN_SERVICE', err.message, { cause: err });
      throw err;
    }
  });
}
