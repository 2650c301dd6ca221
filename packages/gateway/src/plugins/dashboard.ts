import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';

/** The dashboard's files (plain HTML, CSS and JS), next to src/ and dist/ in the package. */
const PUBLIC_DIR = new URL('../../public/', import.meta.url);

/** The files served, by URL path. */
const ASSETS: ReadonlyArray<{ url: string; file: string; type: string }> = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/dashboard/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { url: '/dashboard/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
];

/** Only our own scripts, styles and API: the page loads nothing from elsewhere. */
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const dashboardPlugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
  for (const asset of ASSETS) {
    // Read once at start: a missing file is a packaging error to see at once, not per request.
    const body = readFileSync(new URL(asset.file, PUBLIC_DIR));
    app.get(asset.url, { logLevel: 'warn', schema: { hide: true } }, (_request, reply) =>
      reply
        .type(asset.type)
        .header('cache-control', 'no-cache')
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .header('x-content-type-options', 'nosniff')
        .send(body),
    );
  }
  done();
};

/**
 * The dashboard at `/`: the actors of a type with their live values (Server-Sent Events),
 * the workers and the partitions each owns with their lag, and recent errors.
 */
export const dashboard = fp(dashboardPlugin, { name: 'jetactor-dashboard', fastify: '5.x' });
