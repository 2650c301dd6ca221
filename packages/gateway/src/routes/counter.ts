import type { RouteSchemas, TypedApp } from '../schemas.js';
import type { Handlers } from './handlers.js';

/** Type of the seed's counter routes. */
export const COUNTER_TYPE = 'counter';
/** Key of `/api/counter` and `/api/counter/:op`: the seed's single counter. */
export const DEFAULT_COUNTER_KEY = 'counter';

/**
 * The seed's routes: `POST /api/counter/add?value=3`, `POST /api/counter/reset`,
 * `GET /api/counter` (key `counter`), and the same for any key under `/api/counter/:key`.
 */
export function counterRoutes(app: TypedApp, handlers: Handlers, schemas: RouteSchemas): void {
  const seed = { actor: { type: COUNTER_TYPE, key: DEFAULT_COUNTER_KEY } };
  const anyKey = { actor: { type: COUNTER_TYPE } };
  app.post('/api/counter/:op', { schema: schemas.signal(['op']), config: seed }, handlers.signal);
  app.get('/api/counter', { schema: schemas.counterRead, config: seed }, handlers.counterValue);
  app.post('/api/counter/:key/:op', { schema: schemas.signal(['key', 'op']), config: anyKey }, handlers.signal);
  app.get('/api/counter/:key', { schema: schemas.counterReadByKey, config: anyKey }, handlers.counterValue);
}
