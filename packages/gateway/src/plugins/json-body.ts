import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { GatewayError } from '../errors.js';

/**
 * The error for a body sent with a `Content-Encoding` other than `identity` (HTTP header or
 * NATS call header): the gateway does not decompress, and reading gzip bytes as JSON would
 * at best fail obscurely. Undefined when the encoding is fine (none, empty or `identity`).
 */
export function unsupportedEncoding(contentEncoding: string | undefined): GatewayError | undefined {
  if (contentEncoding === undefined) return undefined;
  const encoding = contentEncoding.trim();
  if (encoding === '' || encoding.toLowerCase() === 'identity') return undefined;
  return new GatewayError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Content-Encoding ${JSON.stringify(encoding.slice(0, 64))} is not supported: send the body uncompressed (no Content-Encoding, or identity)`,
  );
}

/**
 * Every request body is the operation's input as JSON text, whatever the
 * `Content-Type` (`curl -d 3` sends a form type): an empty or blank body means
 * "no input" (so `curl -X POST` with `Content-Type: application/json` works), anything
 * else must parse as JSON or the request fails with 400 `INVALID_JSON`. Fastify's own
 * JSON parser is kept for the parsing itself, so prototype poisoning is still refused. A
 * `Content-Encoding` other than `identity` is refused with 415 before the body is read.
 */
const jsonBodyPlugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
  // Before the body is read (and after auth, which runs on onRequest).
  app.addHook('preParsing', (request, _reply, payload, next) => {
    const header = request.headers['content-encoding'];
    next(unsupportedEncoding(Array.isArray(header) ? header.join(', ') : header) ?? null, payload);
  });
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') {
        done(null, undefined);
        return;
      }
      void parseJson(request, text, (err: Error | null, parsed?: unknown) => {
        if (err) done(new GatewayError('INVALID_JSON', 'request body is not valid JSON', { cause: err }));
        else done(null, parsed);
      });
    },
  );
  done();
};

/** Parses every request body as JSON; see {@link jsonBodyPlugin}. */
export const jsonBody = fp(jsonBodyPlugin, { name: 'jetactor-json-body', fastify: '5.x' });
