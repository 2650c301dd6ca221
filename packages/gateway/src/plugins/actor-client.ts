import type { ActorClient, ActorWatcher } from '@jetactor/actor-runtime/client';
import { entryOf, type ActorCatalog, type CatalogEntry } from '../catalog/actor-catalog.js';
import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { GatewayError } from '../errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The actor client; throws 503 `NATS_UNAVAILABLE` while there is none or NATS is down. */
    actorClient(): ActorClient;
    /** The actor client and the registered type `type`; throws 404 `UNKNOWN_ACTOR` for a type no worker registered. */
    actorOf(type: string): { client: ActorClient; actor: CatalogEntry };
    /** The actor types served. */
    readonly actorCatalog: ActorCatalog;
    /** The actor state watcher; throws 503 `NATS_UNAVAILABLE` while there is none or NATS is down. */
    actorWatcher(): ActorWatcher;
  }
}

/** Options of {@link actorClient}. */
export interface ActorClientPluginOptions {
  /** Returns the client, or `undefined` while NATS has not connected yet. */
  getClient: () => ActorClient | undefined;
  /** The actor types served. */
  catalog: ActorCatalog;
  /** Returns the state watcher, or `undefined` while NATS has not connected yet (or none is configured). */
  getWatcher?: () => ActorWatcher | undefined;
}

const actorClientPlugin: FastifyPluginCallback<ActorClientPluginOptions> = (app: FastifyInstance, opts, done) => {
  const { getClient } = opts;
  const actorClient = (): ActorClient => {
    const client = getClient();
    if (client === undefined || !app.natsReady()) {
      throw new GatewayError('NATS_UNAVAILABLE', 'not connected to NATS; retry later');
    }
    return client;
  };
  app.decorate('actorClient', actorClient);
  app.decorate('actorCatalog', opts.catalog);
  app.decorate('actorOf', (type: string) => {
    const client = actorClient();
    return { client, actor: entryOf(opts.catalog, type) };
  });
  app.decorate('actorWatcher', () => {
    const watcher = opts.getWatcher?.();
    if (watcher === undefined || !app.natsReady()) {
      throw new GatewayError('NATS_UNAVAILABLE', 'not connected to NATS; retry later');
    }
    return watcher;
  });
  done();
};

/** Decorates the app with the actor client (`actorClient()`, `actorOf(type)`). */
export const actorClient = fp(actorClientPlugin, {
  name: 'jetactor-actor-client',
  fastify: '5.x',
  dependencies: ['jetactor-nats-readiness'],
});
