import type { RouteSchemas, TypedApp } from '../schemas.js';
import type { Handlers } from './handlers.js';

/**
 * The generic actor routes: signal or call any operation, read (with `?minSeq`), list
 * and delete actors of any registered type.
 */
export function actorRoutes(app: TypedApp, handlers: Handlers, schemas: RouteSchemas): void {
  app.post('/api/actors/:type/:key/:op', { schema: schemas.signal(['type', 'key', 'op']) }, handlers.signal);
  app.get('/api/actors/:type/:key', { schema: schemas.read }, handlers.read);
  app.get('/api/actors/:type', { schema: schemas.list }, handlers.list);
  app.delete('/api/actors/:type/:key', { schema: schemas.remove, config: { actor: { op: 'delete' } } }, handlers.remove);
}
