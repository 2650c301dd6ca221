import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { ActorCatalog } from '../catalog/actor-catalog.js';
import { ERROR_CODES } from '../errors.js';
import { applyActorPaths, type OpenApiObject } from './openapi-actors.js';

/** Where the interactive API page is served; the document is at `<prefix>/json`. */
export const DOCS_PREFIX = '/docs';

/** Options of {@link openApi}. */
export interface OpenApiOptions {
  /** Version of the API shown in the document. */
  version: string;
  /** Whether bearer tokens are required on `/api` routes. */
  authEnabled: boolean;
  /** The registered actor types: each operation gets a path with its input schema. */
  catalog: ActorCatalog;
}

interface RouteDoc {
  summary: string;
  description?: string;
  tags: string[];
}

/** Summaries and tags of the routes, by `METHOD url`; routes not listed get a tag from their path. */
const ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'POST /api/counter/:op': {
    tags: ['counter'],
    summary: "Signal an operation to the seed's counter (key `counter`)",
    description: '`POST /api/counter/add?value=3` (or JSON body `{"value":3}`), `POST /api/counter/reset`. 202 once the operation is stored; `?wait=true` answers 200 with its result once applied.',
  },
  'GET /api/counter': { tags: ['counter'], summary: "Read the seed's counter as `{\"value\": n}`" },
  'POST /api/counter/:key/:op': { tags: ['counter'], summary: 'Signal an operation to the counter of any key' },
  'GET /api/counter/:key': { tags: ['counter'], summary: 'Read the counter of any key as `{"value": n}`; a missing counter reads as 0' },
  'POST /api/actors/:type/:key/:op': {
    tags: ['actors'],
    summary: 'Signal (202) or, with `?wait=true`, call (200) any operation; with `?delayMs=`, `?at=`, `?every=` or `?cron=`, schedule it (202)',
    description:
      'An `Idempotency-Key` header de-duplicates retries: a retry answers the original `seq` with `duplicate: true`. ' +
      'A timer parameter stores the operation as a timer of the actor instead: 202 `{"scheduled","type","key","id","at","seq"}`, ' +
      'applied exactly once at its time (`id` replaces a timer of the same id; a retry with the same `Idempotency-Key` gets the same id and time).',
  },
  'GET /api/actors/:type/:key/timers': {
    tags: ['timers'],
    summary: "List an actor's timers, soonest first (none for an actor never written)",
    description: '`?minSeq=N` waits until the record includes the operation with sequence N (e.g. the `seq` a schedule answered).',
  },
  'DELETE /api/actors/:type/:key/timers/:id': {
    tags: ['timers'],
    summary: "Cancel one of an actor's timers (an ordered operation): 202 once stored, `?wait=true` 200 with `cancelled` true or false",
  },
  'GET /api/actors/:type/:key': {
    tags: ['actors'],
    summary: "Read an actor's state",
    description: '`?minSeq=N` waits until the state includes the operation with sequence N (read-your-writes).',
  },
  'GET /api/actors/:type': { tags: ['actors'], summary: 'List the actors of a type in the order of their last update, paged by `cursor`' },
  'DELETE /api/actors/:type/:key': { tags: ['actors'], summary: "Delete an actor's state (an ordered operation like any other)" },
  'GET /api/actors/:type/:key/watch': {
    tags: ['live'],
    summary: "Stream an actor's state changes as Server-Sent Events",
    description: 'The current state first (unless `?updatesOnly=true`), then one `change` event per committed change. The watch stops when the client disconnects.',
  },
  'GET /api/watch/:type': {
    tags: ['live'],
    summary: 'Stream the state changes of every actor of a type as Server-Sent Events',
  },
  'GET /api/status': {
    tags: ['live'],
    summary: 'Workers, the partitions each owns, checkpoints and lag',
  },
  'GET /healthz': { tags: ['operations'], summary: 'Liveness: 200 while the process is up' },
  'GET /readyz': {
    tags: ['operations'],
    summary: 'Readiness: 200 while NATS is connected and the stream and buckets exist',
  },
};

const TAGS = [
  { name: 'counter', description: "The seed's counter routes." },
  { name: 'actors', description: 'Signal, call, read, list and delete actors of any registered type.' },
  { name: 'timers', description: "An actor's timers: operations scheduled to run later (set with a timer parameter of the signal route)." },
  { name: 'live', description: 'Live state (Server-Sent Events) and cluster status.' },
  { name: 'operations', description: 'Health, readiness and metrics.' },
];

const errorResponse = {
  description: `An error: \`{"error":{"code","message"}}\`. Codes: ${Object.keys(ERROR_CODES).join(', ')}; a failed \`?wait=true\` operation answers 422 with the worker's code.`,
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

function docOf(method: string, url: string): RouteDoc | undefined {
  const known = ROUTE_DOCS[`${method} ${url}`];
  if (known) return known;
  const part = url.split('/')[2];
  return url.startsWith('/api/') && part ? { tags: [part], summary: `${method} ${url}` } : undefined;
}

const openApiPlugin: FastifyPluginAsync<OpenApiOptions> = async (app: FastifyInstance, opts) => {
  // @fastify/swagger generates the document once and caches it: keep a handle on it and
  // rewrite its actor paths in place when the registry changes.
  let generated: OpenApiObject | undefined;
  const unsubscribe = opts.catalog.onChange(() => {
    if (generated) applyActorPaths(generated, opts.catalog, errorResponse);
  });
  app.addHook('onClose', (_app, done) => {
    unsubscribe();
    done();
  });
  await app.register(swagger, {
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
      generated = applyActorPaths(documentObject.openapiObject as OpenApiObject, opts.catalog, errorResponse);
      return documentObject.openapiObject;
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'jetactor gateway',
        version: opts.version,
        description:
          'Durable actors on NATS JetStream over HTTP. Operations on one actor are applied one at a time, in order; state is durable. ' +
          'The same calls are served over NATS at `actors.call.<type>.<key>.<op>`.',
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description:
              'One of the tokens in `GATEWAY_AUTH_TOKENS`, with the scope the route needs: `read` for GET, `write` for the other methods (and `read` as well for `?wait=true`, whose result shows state), `admin` for resubmitting dead letters.',
          },
        },
      },
    },
    // Documentation only: the routes' validation keeps its own schemas.
    transform: ({ schema: given, url, route }) => {
      const schema = (given ?? {}) as Record<string, unknown>;
      if (schema.hide === true) return { schema: given, url };
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const doc = docOf(String(methods[0]), url);
      const out: Record<string, unknown> = { ...schema };
      if (doc) {
        out.tags ??= doc.tags;
        out.summary ??= doc.summary;
        if (doc.description !== undefined) out.description ??= doc.description;
      }
      if (url.startsWith('/api/') || url === '/readyz') {
        out.response = { ...(schema.response as Record<string, unknown> | undefined), default: errorResponse };
      }
      if (opts.authEnabled && url.startsWith('/api/')) out.security = [{ bearerAuth: [] }];
      return { schema: out, url };
    },
  });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { docExpansion: 'list', deepLinking: true },
  });
};

/**
 * The OpenAPI 3.1 document of every route, generated from the route schemas, at
 * `/docs/json` (and `/docs/yaml`), with Swagger UI at `/docs`. Register it before the
 * routes: it collects them as they are added.
 */
export const openApi = fp(openApiPlugin, { name: 'jetactor-openapi', fastify: '5.x' });
