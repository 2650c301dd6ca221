/**
 * The registered actor types in the OpenAPI document: one path per type and operation,
 * `POST /api/actors/<type>/{key}/<op>`, with the operation's input JSON Schema as its request
 * body (the generic route `POST /api/actors/{type}/{key}/{op}` serves them all). The paths
 * follow the registry: rewritten in the generated document whenever a type is registered,
 * changed or removed, so `/docs/json` is current without a restart.
 */
import { namePattern } from '@jetactor/actor-runtime/protocol';
import type { ActorCatalog, CatalogEntry } from '../catalog/actor-catalog.js';
import { IDEMPOTENCY_KEY_PATTERN, TIMER_QUERY } from '../schemas.js';

/** The extension that marks a path as a registered operation: `{ type, op }`. */
export const OPERATION_EXTENSION = 'x-jetactor-operation';

/** An OpenAPI document as far as this module touches it. */
export interface OpenApiObject {
  paths?: Record<string, Record<string, unknown>>;
  tags?: Array<{ name: string; description?: string }>;
}

function operationPaths(entry: CatalogEntry, errorResponse: object): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [op, described] of Object.entries(entry.descriptor.operations)) {
    const body = described.input ?? { description: 'any JSON; this operation has no registered schema, its worker validates the input' };
    paths[`/api/actors/${entry.type}/{key}/${op}`] = {
      post: {
        tags: [`actor: ${entry.type}`],
        summary: `${entry.type}.${op}: signal (202) or, with ?wait=true, call (200)`,
        description: `Input validated against the schema the workers registered for \`${entry.type}.${op}\` (400 \`INVALID_INPUT\` otherwise)${described.inputOptional ? '; the body may be left out' : ''}.`,
        [OPERATION_EXTENSION]: { type: entry.type, op },
        parameters: [
          { name: 'key', in: 'path', required: true, schema: { type: 'string', pattern: namePattern('key') } },
          { name: 'wait', in: 'query', required: false, schema: { type: 'boolean' } },
          { name: 'timeoutMs', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } },
          ...Object.entries(TIMER_QUERY).map(([name, { description, ...schema }]) => ({ name, in: 'query', required: false, description, schema })),
          { name: 'idempotency-key', in: 'header', required: false, schema: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN } },
        ],
        requestBody: { required: described.input !== undefined && described.inputOptional !== true, content: { 'application/json': { schema: body } } },
        responses: {
          '200': { description: 'With ?wait=true: `{"result","seq"}` once applied' },
          '202': { description: 'Signaled: `{"signaled","type","key","seq"}` once stored; with a timer parameter, scheduled: `{"scheduled","type","key","id","at","seq"}`' },
          default: errorResponse,
        },
      },
    };
  }
  return paths;
}

/**
 * Puts the catalog's operations into `doc` (in place), replacing what an earlier call put
 * there. Returns `doc`.
 */
export function applyActorPaths<T extends OpenApiObject>(doc: T, catalog: ActorCatalog, errorResponse: object): T {
  const paths = (doc.paths ??= {});
  for (const [path, item] of Object.entries(paths)) {
    if (Object.values(item).some((op) => typeof op === 'object' && op !== null && OPERATION_EXTENSION in op)) delete paths[path];
  }
  const tags = (doc.tags ?? []).filter((t) => !t.name.startsWith('actor: '));
  for (const entry of catalog.entries()) {
    Object.assign(paths, operationPaths(entry, errorResponse));
    tags.push({ name: `actor: ${entry.type}`, description: `The operations of '${entry.type}', as its workers registered them.` });
  }
  doc.tags = tags;
  return doc;
}
