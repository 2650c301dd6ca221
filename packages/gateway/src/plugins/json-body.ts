import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { GatewayError } from '../errors.js';

/**
 * Every request body is the operation's input as JSON text, whatever the
 * `Content-Type` (`curl -d 3` sends a form type): an empty or blank body means
 * "no input" (so `curl -X POST` with `Content-Type: application/json` works), anything
 * else must parse as JSON or the request fails with 400 `INVALID_JSON`. Fastify's own
 * JSON parser is kept for the parsing itself, so prototype poisoning is still refused.
 */
const jsonBodyPlugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
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
