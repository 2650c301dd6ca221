/**
 * The CLI's gateway client checked against the gateway's OpenAPI document: every command runs
 * in-process with `--gateway`, against a fetch that answers from the document. Each request the
 * CLI makes must be an operation of the document (method and path template, query parameters,
 * headers, a body only where the document takes one), and each field the CLI reads from an
 * answer (at any depth, in its own code and in what it prints) must be in that operation's
 * response schema: the answers hold exactly the schema's fields, and a read of any other field
 * is recorded. A route renamed or a field dropped in the gateway fails this test.
 */
import { Writable } from 'node:stream';
import { counter } from '@jetactor/counter-actor';
import { ACTOR_CHANGE_SCHEMA, buildApp, catalogOf, sseEvent } from '@jetactor/gateway';
import type { ActorChange } from '@jetactor/actor-runtime';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/program.js';

interface Schema {
  type?: string | readonly string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  content?: Record<string, { schema?: Schema }>;
}
interface Parameter {
  name: string;
  in: string;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}
type Paths = Record<string, Record<string, Operation>>;

const GATEWAY = 'http://gateway.test:3000';
/** Headers every request may carry that are not the API's own parameters. */
const TRANSPORT_HEADERS = new Set(['accept', 'authorization', 'content-type']);
const SAMPLE_TIME = '2030-01-01T00:00:00.000Z';
/** The data of each `change` event of a watch (the document only describes the stream). */
const CHANGE_SCHEMA: Schema = ACTOR_CHANGE_SCHEMA;

/** The branches of a schema (anyOf/oneOf), or the schema itself. */
function branches(schema: Schema): Schema[] {
  return schema.anyOf ?? schema.oneOf ?? [schema];
}

function types(schema: Schema): string[] {
  return schema.type === undefined ? [] : typeof schema.type === 'string' ? [schema.type] : [...schema.type];
}

/** A value with every field `schema` defines (of every branch), and no other. */
function sample(schema: Schema): unknown {
  const all = branches(schema);
  const t = all.flatMap(types);
  if (t.includes('null') && !t.includes('array')) return null; // nextCursor null: `list --all` stops
  if (all.some((s) => s.properties !== undefined) || t.includes('object')) {
    const out: Record<string, unknown> = {};
    for (const s of all) for (const [k, v] of Object.entries(s.properties ?? {})) out[k] = sample(v);
    const extra = all.find((s) => typeof s.additionalProperties === 'object')?.additionalProperties;
    if (typeof extra === 'object') out.extra = sample(extra);
    return out;
  }
  if (t.includes('array')) return [sample(all.find((s) => s.items)?.items ?? {})];
  if (t.includes('integer') || t.includes('number')) return 1;
  if (t.includes('boolean')) return false;
  if (t.includes('string')) return SAMPLE_TIME;
  return 0;
}

/**
 * `value` behind a proxy that records each read of a field `schema` does not define (arrays:
 * their elements are checked against `items`; objects with `additionalProperties` or without
 * properties are open).
 */
function tracked(value: unknown, schema: Schema, where: string, misses: string[]): unknown {
  if (value === null || typeof value !== 'object') return value;
  const all = branches(schema);
  if (Array.isArray(value)) {
    const items = all.find((s) => s.items)?.items ?? {};
    return new Proxy(value, {
      get(target, prop, receiver) {
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof prop === 'string' && /^\d+$/.test(prop) ? tracked(v, items, `${where}[]`, misses) : v;
      },
    });
  }
  const open = all.some((s) => s.properties === undefined || typeof s.additionalProperties === 'object');
  const defined = new Map(all.flatMap((s) => Object.entries(s.properties ?? {})));
  return new Proxy(value, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop === 'symbol' || prop === 'toJSON' || prop === 'then' || prop in Object.prototype) return v;
      const field = defined.get(prop);
      if (field === undefined) {
        if (!open) misses.push(`${where}.${prop}`);
        return v;
      }
      return tracked(v, field, `${where}.${prop}`, misses);
    },
  });
}

function templateRegExp(template: string): RegExp {
  const escaped = template.split(/\{[^}]+\}/).map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('[^/]+')}$`);
}

/** The document's operations of `method` whose template matches `pathname`, most literal segments first. */
function operationsFor(paths: Paths, method: string, pathname: string): { template: string; op: Operation }[] {
  return Object.entries(paths)
    .filter(([template, item]) => item[method] !== undefined && templateRegExp(template).test(pathname))
    .map(([template, item]) => ({ template, op: item[method] as Operation }))
    .sort((a, b) => b.template.replace(/\{[^}]+\}/g, '').length - a.template.replace(/\{[^}]+\}/g, '').length);
}

function jsonSchemaOf(op: Operation, status: string): Schema | undefined {
  return op.responses[status]?.content?.['application/json']?.schema;
}

/** A request the CLI made, as the fake fetch saw it. */
interface Seen {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
}

/**
 * Checks `request` against the document and answers it from the chosen operation's response
 * schema; `problems` collects what does not match, `served` the answers (to track their reads).
 */
function answer(paths: Paths, request: Seen, problems: string[], served: Map<string, { schema: Schema; where: string }>): Response {
  const method = request.method.toLowerCase();
  const { pathname, searchParams } = request.url;
  const label = `${request.method} ${pathname}${request.url.search}`;
  const candidates = operationsFor(paths, method, decodeURIComponent(pathname));
  const first = candidates[0];
  if (first === undefined) {
    problems.push(`${label}: no ${request.method} operation of the document matches the path`);
    return new Response('{"error":{"code":"NOT_FOUND","message":"no such route"}}', { status: 404 });
  }
  const params = new Set((first.op.parameters ?? []).map((p) => `${p.in}:${p.name.toLowerCase()}`));
  for (const name of searchParams.keys()) if (!params.has(`query:${name.toLowerCase()}`)) problems.push(`${label}: ${first.template} has no query parameter '${name}'`);
  for (const name of Object.keys(request.headers)) {
    if (!TRANSPORT_HEADERS.has(name) && !params.has(`header:${name}`)) problems.push(`${label}: ${first.template} has no header parameter '${name}'`);
  }
  if (request.body !== undefined && !candidates.some((c) => c.op.requestBody !== undefined)) problems.push(`${label}: no matching operation takes a request body`);

  // The answer: a call or cancel with ?wait=true is 200; else 202 where the operation has one.
  const status = searchParams.get('wait') === 'true' ? '200' : candidates.some((c) => jsonSchemaOf(c.op, '202')) ? '202' : '200';
  const stream = candidates.find((c) => c.op.responses[status]?.content?.['text/event-stream'] !== undefined);
  if (stream !== undefined) {
    const change = sample(CHANGE_SCHEMA) as ActorChange;
    served.set(JSON.stringify(change), { schema: CHANGE_SCHEMA, where: `${stream.template} change` });
    return new Response(sseEvent(change), { status: 200, headers: { 'content-type': 'text/event-stream' } });
  }
  const answered = candidates.find((c) => jsonSchemaOf(c.op, status) !== undefined);
  const schema = answered === undefined ? undefined : jsonSchemaOf(answered.op, status);
  if (answered === undefined || schema === undefined) {
    problems.push(`${label}: no matching operation has a JSON ${status} response schema`);
    return new Response('{}', { status: Number(status) });
  }
  const text = JSON.stringify(sample(schema));
  served.set(text, { schema, where: `${request.method} ${answered.template} ${status}` });
  return new Response(text, { status: Number(status), headers: { 'content-type': 'application/json' } });
}

/** Every command the CLI has that talks to the gateway, with every option that changes the request. */
const COMMANDS: readonly string[][] = [
  ['signal', 'counter', 'k1', 'add', '3', '-i', 'retry-1'],
  ['call', 'counter', 'k1', 'add', '{"value":3}', '-i', 'retry-2'],
  ['get', 'counter', 'k1'],
  ['get', 'counter', 'k1', '--min-seq', '3'],
  ['list', 'counter', '--prefix', 'k', '--limit', '10', '--cursor', '5'],
  ['list', 'counter', '--all'],
  ['watch', 'counter', 'k1', '-n', '1'],
  ['watch', 'counter', 'k1', '-n', '1', '--updates-only'],
  ['watch', 'counter', '-n', '1'],
  ['status'],
  ['services'],
  ['services', 'rm', 'svc1'],
  ['dlq'],
  ['dlq', '--limit', '5', '--cursor', '2'],
  ['dlq', 'resubmit', '4'],
  ['schedule', 'counter', 'k1', 'add', '3', '--delay', '1000', '--id', 't1', '-i', 'retry-3'],
  ['schedule', 'counter', 'k1', 'add', '--at', SAMPLE_TIME],
  ['schedule', 'counter', 'k1', 'add', '--every', '1000'],
  ['schedule', 'counter', 'k1', 'add', '--cron', '0 * * * *'],
  ['timers', 'counter', 'k1'],
  ['cancel-timer', 'counter', 'k1', 't1', '-i', 'retry-4'],
  ['cancel-timer', 'counter', 'k1', 't1', '--wait'],
];

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

/** Runs `argv` against `paths`; resolves with the requests made, the problems found and the CLI's stderr. */
async function runAgainst(paths: Paths, argv: readonly string[], json: boolean): Promise<{ requests: Seen[]; problems: string[]; stderr: string }> {
  const requests: Seen[] = [];
  const problems: string[] = [];
  const served = new Map<string, { schema: Schema; where: string }>();
  const parse = JSON.parse.bind(JSON);
  vi.spyOn(JSON, 'parse').mockImplementation((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    const value: unknown = parse(text, reviver);
    const answered = served.get(text);
    return answered === undefined ? value : tracked(value, answered.schema, answered.where, problems);
  });
  vi.stubGlobal('fetch', (input: string | URL, init: RequestInit = {}) => {
    const seen: Seen = {
      method: init.method ?? 'GET',
      url: new URL(String(input)),
      headers: Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v])),
      body: typeof init.body === 'string' ? init.body : undefined,
    };
    requests.push(seen);
    return Promise.resolve(answer(paths, seen, problems, served));
  });
  const out = sink();
  const err = sink();
  const exitCode = process.exitCode;
  try {
    await run(['node', 'jetactor', '--gateway', GATEWAY, ...(json ? ['--json'] : []), ...argv], { stdout: out.stream, stderr: err.stream, env: {} });
  } finally {
    process.exitCode = exitCode;
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  }
  return { requests, problems, stderr: err.text() };
}

describe("the CLI's gateway client against the gateway's OpenAPI document", () => {
  let paths: Paths;
  beforeAll(async () => {
    const app = await buildApp({ client: () => undefined, catalog: catalogOf([counter]), dashboard: false });
    try {
      paths = (await app.inject('/docs/json')).json<{ paths: Paths }>().paths;
    } finally {
      await app.close();
    }
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it.each(COMMANDS.flatMap((argv) => [[argv.join(' '), argv, false] as const, [`--json ${argv.join(' ')}`, argv, true] as const]))(
    'jetactor %s: requests and read fields are in the document',
    async (_name, argv, json) => {
      const { requests, problems, stderr } = await runAgainst(paths, argv, json);
      expect(stderr).not.toMatch(/^(jetactor: |\{"error")/m);
      expect(requests.length).toBeGreaterThan(0);
      expect(problems).toEqual([]);
    },
  );

  it('fails for a route the gateway renamed, a query parameter it dropped and a response field it no longer has', async () => {
    const renamed: Paths = structuredClone(paths);
    const dlq = renamed['/api/dlq'];
    if (dlq === undefined) throw new Error('the document has no /api/dlq');
    delete renamed['/api/dlq'];
    renamed['/api/dead-letters'] = dlq;
    expect((await runAgainst(renamed, ['dlq'], false)).problems).toEqual(['GET /api/dlq?limit=100: no GET operation of the document matches the path']);

    const noLimit: Paths = structuredClone(paths);
    const list = noLimit['/api/actors/{type}']?.get;
    if (list === undefined) throw new Error('the document has no GET /api/actors/{type}');
    list.parameters = (list.parameters ?? []).filter((p) => p.name !== 'limit');
    expect((await runAgainst(noLimit, ['list', 'counter'], false)).problems).toContain(
      "GET /api/actors/counter?limit=100: /api/actors/{type} has no query parameter 'limit'",
    );

    const noSeq: Paths = structuredClone(paths);
    const read = noSeq['/api/actors/{type}/{key}']?.get?.responses['200']?.content?.['application/json']?.schema;
    if (read?.properties === undefined) throw new Error('the document has no snapshot schema');
    delete read.properties.seq;
    expect((await runAgainst(noSeq, ['get', 'counter', 'k1'], false)).problems).toContain('GET /api/actors/{type}/{key} 200.seq');
  });
});
