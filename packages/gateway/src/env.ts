/**
 * The gateway's variables, as one TypeBox schema read with the runtime's `parseEnv`
 * (fastify's env-schema): an invalid value is a start-up error that names the variable.
 * Numbers are decimal digits only (`decimalEnv`), except `PORT` and
 * `JETACTOR_SERVICE_INACTIVE_MS`, which take anything `Number()` reads as an integer. The NATS
 * connection's variables are the runtime's `connectionOptionsFromEnv`.
 */
import { decimalEnv, parseEnv } from '@jetactor/actor-runtime';
import { Type, type Static } from '@sinclair/typebox';

/** Most gateway processes (`GATEWAY_PROCESSES`): more than a handful only adds context switches. */
export const MAX_PROCESSES = 64;

/** Every variable the gateway reads (besides the NATS connection's). */
export const GATEWAY_ENV = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ default: '127.0.0.1' }),
  LOG_LEVEL: Type.String({ default: 'info' }),
  // Parsed by decideAuth (auth-config.ts).
  GATEWAY_AUTH_TOKENS: Type.Optional(Type.String()),
  GATEWAY_AUTH: Type.Optional(Type.String()),
  GATEWAY_RATE_LIMIT: Type.Optional(decimalEnv(0, 'requests per client per minute; 0 = off')),
  GATEWAY_HEADERS_TIMEOUT_MS: Type.Optional(decimalEnv(1, "ms to receive a request's headers")),
  GATEWAY_RECEIVE_TIMEOUT_MS: Type.Optional(decimalEnv(1, 'ms to receive a whole request')),
  GATEWAY_IDLE_TIMEOUT_MS: Type.Optional(decimalEnv(1, 'ms a connection may stay silent')),
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS: Type.Optional(decimalEnv(1, 'ms a kept-alive connection may wait for its next request')),
  GATEWAY_MAX_CONNECTIONS: Type.Optional(decimalEnv(0, 'open connections; 0 = no cap')),
  GATEWAY_PROCESSES: Type.Optional(
    Type.Unsafe<number | 'auto'>({
      description: `'auto' or a whole number from 1 to ${MAX_PROCESSES}`,
      anyOf: [
        { const: 'auto' },
        { allOf: [{ type: 'string', pattern: '^\\s*[0-9]+\\s*$' }, { type: 'integer', minimum: 1, maximum: MAX_PROCESSES }] },
      ],
    }),
  ),
  ACTORS_INBOX_PREFIX: Type.Optional(
    Type.String({ pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', maxLength: 128, description: "literal subject tokens of [A-Za-z0-9_-] joined by '.'" }),
  ),
  JETACTOR_SERVICE_INACTIVE_MS: Type.Optional(Type.Integer({ minimum: 1000, maximum: Number.MAX_SAFE_INTEGER, description: 'ms' })),
});

/** The gateway's settings from `env`; throws a `ConfigError` naming the first invalid variable. */
export function gatewayEnv(env: NodeJS.ProcessEnv): Static<typeof GATEWAY_ENV> {
  return parseEnv(GATEWAY_ENV, env);
}
