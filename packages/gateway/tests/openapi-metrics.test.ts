/**
 * The OpenAPI document (valid, lists every route), the interactive docs page, the
 * dashboard's files and the Prometheus metrics, on an in-memory client.
 */
import { validate } from '@readme/openapi-parser';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/index.js';
import { createMemoryClient } from './support/memory-client.js';

let app: FastifyInstance;

beforeAll(async () => {
  app = await buildApp({ client: createMemoryClient() });
});

afterAll(async () => {
  await app?.close();
});

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { summary?: string; tags?: string[]; responses?: Record<string, unknown> }>>;
}

/** A path with its parameters' names dropped: `/api/{type}` and `/api/:type` both become `/api/{}`. */
const shape = (path: string): string => path.replace(/\{[^}]+\}|:[^/]+/g, '{}');

/**
 * Every route the app serves, as `[METHOD, shape]`, read from Fastify's own route tree
 * (`printRoutes` per method; a line's depth is its indentation, its path the labels of
 * its ancestors joined).
 */
function servedRoutes(a: FastifyInstance): Array<[string, string]> {
  const routes: Array<[string, string]> = [];
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
    const stack: string[] = [];
    for (const line of a.printRoutes({ method, commonPrefix: false }).split('\n')) {
      const m = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
      if (!m) continue;
      const depth = (m[1] ?? '').length / 4;
      const path = (depth === 0 ? '' : (stack[depth - 1] ?? '')) + (m[2] ?? '');
      stack[depth] = path;
      stack.length = depth + 1;
      if (m[3]?.split(',').map((x) => x.trim()).includes(method)) routes.push([method, shape(path)]);
    }
  }
  return routes;
}

/** Routes that are pages or assets, not API: the dashboard and the docs UI itself. */
const isPage = (path: string): boolean => path === '/' || path.startsWith('/dashboard/') || path === '/docs' || path.startsWith('/docs/');

/** One series of a Prometheus text page, or 0 when absent. */
function sample(page: string, series: string): number {
  for (const line of page.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return 0;
}

describe('OpenAPI', () => {
  it('serves a valid OpenAPI 3 document at /docs/json', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<OpenApiDocument>();
    expect(doc.openapi).toMatch(/^3\./);
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, JSON.stringify(result)).toBe(true);
  });

  it('lists every route the gateway serves, with a summary, tags and documented errors on /api', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<OpenApiDocument>();
    const routes = servedRoutes(app).filter(([, path]) => !isPage(path));
    // The ones this feature added, so that a broken route table cannot pass as "nothing to check".
    expect(routes).toEqual(
      expect.arrayContaining(
        [
          ['GET', '/api/actors/{type}/{key}/watch'],
          ['GET', '/api/watch/{type}'],
          ['GET', '/api/status'],
          ['GET', '/metrics'],
          ['GET', '/readyz'],
          ['POST', '/api/counter/{op}'],
          ['POST', '/api/counter/{key}/{op}'],
          ['DELETE', '/api/actors/{type}/{key}'],
        ].map(([m, p]) => [m, shape(p ?? '')]),
      ),
    );
    const documented = new Map<string, OpenApiDocument['paths'][string][string]>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) documented.set(`${method.toUpperCase()} ${shape(path)}`, op);
    }
    for (const [method, path] of routes) {
      const op = documented.get(`${method} ${path}`);
      expect(op, `${method} ${path} is in the document`).toBeDefined();
      expect(op?.summary, `${method} ${path} has a summary`).toBeTruthy();
      expect(op?.tags?.length, `${method} ${path} has a tag`).toBeGreaterThan(0);
      if (path.startsWith('/api/')) expect(op?.responses?.default, `${method} ${path} documents its errors`).toBeDefined();
    }
    expect(documented.size).toBe(routes.length);
    // Pages are not API.
    expect(doc.paths['/']).toBeUndefined();
  });

  it('describes the event stream of the watch routes', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<OpenApiDocument>();
    const watch = doc.paths['/api/actors/{type}/{key}/watch']?.get?.responses?.['200'] as { content?: Record<string, unknown> };
    expect(Object.keys(watch?.content ?? {})).toEqual(['text/event-stream']);
  });

  it('serves the interactive page at /docs', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('swagger-ui');
  });
});

describe('dashboard files', () => {
  it('serves the page, its script and its style with a strict content security policy', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toContain('<h1>jetactor</h1>');
    for (const [url, type] of [
      ['/dashboard/app.js', 'text/javascript'],
      ['/dashboard/style.css', 'text/css'],
    ] as const) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toContain(type);
      expect(res.body.length, url).toBeGreaterThan(500);
    }
  });

  it('can be turned off, and so can the docs', async () => {
    const bare = await buildApp({ client: createMemoryClient(), dashboard: false, docs: false });
    try {
      expect((await bare.inject({ method: 'GET', url: '/' })).statusCode).toBe(404);
      expect((await bare.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(404);
      expect((await bare.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    } finally {
      await bare.close();
    }
  });
});

describe('/metrics', () => {
  it('exposes request counts by route and status and a latency histogram, and they move with operations', async () => {
    const scrape = async (): Promise<string> => {
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toContain('text/plain');
      return res.body;
    };
    const route = '/api/counter/:key/:op';
    const accepted = `jetactor_gateway_http_requests_total{method="POST",route="${route}",status="202"}`;
    const rejected = `jetactor_gateway_http_requests_total{method="POST",route="${route}",status="400"}`;
    const latencyCount = `jetactor_gateway_http_request_duration_seconds_count{method="POST",route="${route}"}`;
    const before = await scrape();

    for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'POST', url: '/api/counter/m/add?value=2' })).statusCode).toBe(202);
    expect((await app.inject({ method: 'POST', url: '/api/counter/m/add?value=x' })).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/no/such/route' })).statusCode).toBe(404);

    const after = await scrape();
    expect(sample(after, accepted) - sample(before, accepted)).toBe(3);
    expect(sample(after, rejected) - sample(before, rejected)).toBe(1);
    expect(sample(after, latencyCount) - sample(before, latencyCount)).toBe(4);
    // Unknown URLs share one label value, so scanners cannot blow up the series count.
    expect(sample(after, 'jetactor_gateway_http_requests_total{method="GET",route="unmatched",status="404"}')).toBeGreaterThanOrEqual(1);
    expect(after).toContain(`jetactor_gateway_http_request_duration_seconds_bucket{le="0.005",method="POST",route="${route}"}`);
    expect(after).toMatch(/^jetactor_gateway_sse_streams 0$/m);
    expect(after).toContain('jetactor_gateway_process_resident_memory_bytes');
  });
});
