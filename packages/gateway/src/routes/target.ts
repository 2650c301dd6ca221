/** The actor a request addresses: path parameters, or a route's fixed parts (`config.actor`). */
import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Fixed parts of the actor a route addresses, for parts that are not path parameters. */
    actor?: Partial<ActorTarget>;
  }
}

/** The actor (and operation) a request addresses. */
export interface ActorTarget {
  type: string;
  key: string;
  op: string;
}

/** The actor addressed by `request`: path parameters first, then the route's fixed parts. */
export function targetOf(request: FastifyRequest): Partial<ActorTarget> {
  const params = (request.params ?? {}) as Partial<ActorTarget>;
  const fixed = request.routeOptions.config.actor ?? {};
  return {
    type: params.type ?? fixed.type,
    key: params.key ?? fixed.key,
    op: params.op ?? fixed.op,
  };
}
