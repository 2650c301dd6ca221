/**
 * Registering actor types as a worker host does (`runWorker` writes `types.<type>` after
 * `start()`), for tests that run `createWorker` in-process, and waiting until a gateway
 * has read them.
 */
import { type AnyActorDefinition } from '@jetactor/actor-runtime';
import { registerActorTypes, type ActorNames } from '@jetactor/actor-runtime/internal';
import { waitFor } from '@jetactor/testing';
import type { NatsConnection } from '@nats-io/nats-core';
import type { FastifyInstance } from 'fastify';
import type {} from '../../src/plugins/actor-client.js';

/** Writes the registry records of `actors` for the started worker `workerId`. */
export async function registerTypes(nc: NatsConnection, workerId: string, actors: readonly AnyActorDefinition[], names?: Partial<ActorNames>): Promise<void> {
  await registerActorTypes(nc, actors, { workerId, names });
}

/** Resolves once the gateway `app` serves every type in `types` (its registry watch has read them). */
export async function waitForTypes(app: FastifyInstance, types: readonly string[], timeoutMs = 15_000): Promise<void> {
  await waitFor(() => types.every((t) => app.actorCatalog.get(t) !== undefined), { timeoutMs, message: `the gateway to learn the types ${types.join(', ')}` });
}
