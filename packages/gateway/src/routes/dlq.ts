import { ActorError, ErrorCode } from '@jetactor/actor-runtime';
import type { FastifyInstance } from 'fastify';
import { AuthScope } from '../auth-config.js';
import { withDeadline } from '../deadline.js';
import { GatewayError } from '../errors.js';
import type { RouteSchemas } from '../schemas.js';
import { expiredError, type HandlerSettings } from './handlers.js';

/** Query of `GET /api/dlq`. */
interface DeadLettersQuery {
  limit?: number;
  cursor?: number;
}

/**
 * The dead-letter routes: `GET /api/dlq?limit=&cursor=` lists failed operations with
 * their reason (scope `read`); `POST /api/dlq/:dlqSeq/resubmit` publishes one again
 * (scope `admin`: it re-runs an operation), answering 202 with its new `seq`.
 */
export function deadLetterRoutes(app: FastifyInstance, settings: HandlerSettings, schemas: RouteSchemas): void {
  const expired = (what: string): (() => Error) => expiredError(app, what, settings.requestTimeoutMs);

  app.get('/api/dlq', { schema: schemas.deadLetters, config: { scope: AuthScope.Read } }, async (request, reply) => {
    const query = request.query as DeadLettersQuery;
    const page = await withDeadline(
      app.actorClient().deadLetters({ limit: query.limit, cursor: query.cursor }),
      settings.requestTimeoutMs,
      expired('listing dead letters'),
    );
    return reply.send(page);
  });

  app.post('/api/dlq/:dlqSeq/resubmit', { schema: schemas.resubmit, config: { scope: AuthScope.Admin } }, async (request, reply) => {
    const { dlqSeq } = request.params as { dlqSeq: number };
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
