import { ActorError, ErrorCode } from '@jetactor/actor-runtime';
import { AuthScope } from '../auth-config.js';
import { withDeadline } from '../deadline.js';
import { GatewayError } from '../errors.js';
import type { RouteSchemas, TypedApp } from '../schemas.js';
import { expiredError, type HandlerSettings } from './handlers.js';

/**
 * The dead-letter routes: `GET /api/dlq?limit=&cursor=` lists failed operations with
 * their reason (scope `read`); `POST /api/dlq/:dlqSeq/resubmit` publishes one again
 * (scope `admin`: it re-runs an operation), answering 202 with its new `seq`.
 */
export function deadLetterRoutes(app: TypedApp, settings: HandlerSettings, schemas: RouteSchemas): void {
  const expired = (what: string): (() => Error) => expiredError(app, what, settings.requestTimeoutMs);

  app.get('/api/dlq', { schema: schemas.deadLetters, config: { scope: AuthScope.Read } }, async (request, reply) => {
    const { limit, cursor } = request.query;
    const page = await withDeadline(
      app.actorClient().deadLetters({ limit, cursor }),
      settings.requestTimeoutMs,
      expired('listing dead letters'),
    );
    return reply.send(page);
  });

  app.post('/api/dlq/:dlqSeq/resubmit', { schema: schemas.resubmit, config: { scope: AuthScope.Admin } }, async (request, reply) => {
    const { dlqSeq } = request.params;
    let result;
    try {
      result = await withDeadline(app.actorClient().resubmit(dlqSeq), settings.requestTimeoutMs, expired('resubmit'));
    } catch (err) {
      if (err instanceof ActorError && err.code === ErrorCode.NotFound) {
        throw new GatewayError('UNKNOWN_DEAD_LETTER', `no dead letter ${dlqSeq}`, { cause: err });
      }
      throw err;
    }
    request.log.info({ dlqSeq, seq: result.seq }, 'dead letter resubmitted');
    return reply.code(202).send({ resubmitted: dlqSeq, seq: result.seq, ...(result.duplicate ? { duplicate: true } : {}) });
  });
}
