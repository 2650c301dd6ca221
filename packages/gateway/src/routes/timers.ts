/**
 * Timers over HTTP. Scheduling is the signal route with a timer query parameter
 * (`POST /api/actors/:type/:key/:op?delayMs=N`, or `at`, `every`, `cron`, and `id`), answered
 * 202 `{"scheduled","type","key","id","at","seq"}` (see the signal handler); here are the two
 * routes of their own: `GET /api/actors/:type/:key/timers` lists an actor's timers
 * from its record, `DELETE /api/actors/:type/:key/timers/:id` cancels one (the `$cancel`
 * operation: 202 once stored, `?wait=true` 200 with whether there was such a timer).
 */
import { CANCEL_TIMER_OPERATION } from '@jetactor/actor-runtime';
import { withDeadline } from '../deadline.js';
import { noteForLog } from '../plugins/request-log.js';
import type { RouteSchemas, TypedApp } from '../schemas.js';
import { DEADLINE_GRACE_MS, expiredError, idempotencyKeyOf, type HandlerSettings } from './handlers.js';

/** Registers `GET /api/actors/:type/:key/timers` (scope `read`) and `DELETE /api/actors/:type/:key/timers/:id` (scope `write`). */
export function timerRoutes(app: TypedApp, settings: HandlerSettings, schemas: RouteSchemas): void {
  app.get('/api/actors/:type/:key/timers', { schema: schemas.timers }, async (request, reply) => {
    const { type, key } = request.params;
    const { minSeq, timeoutMs = settings.defaultTimeoutMs } = request.query;
    const { client } = app.actorOf(type);
    const ms = minSeq === undefined ? settings.requestTimeoutMs : timeoutMs + DEADLINE_GRACE_MS;
    const list = await withDeadline(client.timers(type, key, { minSeq, timeoutMs }), ms, expiredError(app, 'listing timers', ms));
    return reply.send(list);
  });

  app.delete('/api/actors/:type/:key/timers/:id', { schema: schemas.cancelTimer, config: { actor: { op: CANCEL_TIMER_OPERATION } } }, async (request, reply) => {
    const { type, key, id } = request.params;
    const { wait, timeoutMs = settings.defaultTimeoutMs } = request.query;
    const idempotencyKey = idempotencyKeyOf(request);
    const { client } = app.actorOf(type);
    if (wait === true) {
      const r = await withDeadline(
        client.cancelTimer(type, key, id, { wait: true, timeoutMs, idempotencyKey }),
        timeoutMs + DEADLINE_GRACE_MS,
        expiredError(app, `cancelling timer '${id}'`, timeoutMs),
      );
      noteForLog(request, { seq: r.seq, timer: id });
      return reply.code(200).send({ result: r.result ?? null, seq: r.seq, ...(r.duplicate ? { duplicate: true } : {}) });
    }
    const sent = await withDeadline(
      client.cancelTimer(type, key, id, { idempotencyKey }),
      settings.requestTimeoutMs,
      expiredError(app, `cancelling timer '${id}'`, settings.requestTimeoutMs),
    );
    noteForLog(request, { seq: sent.seq, timer: id, ...(sent.duplicate ? { duplicate: true } : {}) });
    return reply.code(202).send(sent);
  });
}
