import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { AuthScope, type AuthToken } from '../auth-config.js';
import { GatewayError } from '../errors.js';

/** The caller a request's bearer token identifies. */
export interface Principal {
  /** Stable, non-secret id of the token: `token-<n>`, its position in the configuration (1-based). */
  readonly id: string;
  /** What the token may do. */
  readonly scopes: ReadonlySet<AuthScope>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * An `onRequest` hook: 401 `UNAUTHORIZED` without a valid bearer token, 403 `FORBIDDEN`
     * when the token lacks the route's scope (`config.scope`, else `read` for GET/HEAD and
     * `write` for the rest). A no-op while auth is off (the `/api` routes then do not add it).
     */
    authenticate: onRequestHookHandler;
    /** True when bearer tokens are configured. */
    authEnabled: boolean;
    /** The principal of a request's bearer token, or undefined (none, unknown, or auth off). Memoized per request. */
    principalOf(request: FastifyRequest): Principal | undefined;
  }
  interface FastifyContextConfig {
    /** Scope a route needs. Default: `read` for GET and HEAD, `write` for other methods. */
    scope?: AuthScope;
  }
}

/** Options of {@link auth}. */
export interface AuthOptions {
  /** Accepted bearer tokens with their scopes; empty means no authentication. */
  tokens: readonly AuthToken[];
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

const BEARER_RE = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** The scope a route needs. */
export function requiredScope(request: FastifyRequest): AuthScope {
  const configured = request.routeOptions.config.scope;
  if (configured !== undefined) return configured;
  return request.method === 'GET' || request.method === 'HEAD' ? AuthScope.Read : AuthScope.Write;
}

/** True when a write asks for its result (`?wait=true`, as the route schemas accept it; read before validation). */
function awaitsResult(request: FastifyRequest): boolean {
  const query = request.query as Record<string, unknown> | null;
  return request.method !== 'GET' && request.method !== 'HEAD' && query !== null && typeof query === 'object' && query.wait === 'true';
}

const authPlugin: FastifyPluginCallback<AuthOptions> = (app: FastifyInstance, opts, done) => {
  // Compare SHA-256 digests with timingSafeEqual against every configured token, with no
  // early exit, so neither a token's content, its length nor its position leaks.
  const accepted = opts.tokens.map((t, i) => ({
    digest: digest(t.token),
    principal: Object.freeze({ id: `token-${i + 1}`, scopes: new Set(t.scopes) }),
  }));
  const memo = new WeakMap<FastifyRequest, Principal | null>();

  const principalOf = (request: FastifyRequest): Principal | undefined => {
    if (accepted.length === 0) return undefined;
    const cached = memo.get(request);
    if (cached !== undefined) return cached ?? undefined;
    const header = request.headers.authorization;
    const match = typeof header === 'string' && header.length <= 4096 ? BEARER_RE.exec(header) : null;
    let found: Principal | null = null;
    if (match?.[1] !== undefined) {
      const given = digest(match[1]);
      for (const t of accepted) if (timingSafeEqual(t.digest, given) && found === null) found = t.principal;
    }
    memo.set(request, found);
    return found ?? undefined;
  };

  const authenticate: onRequestHookHandler = (request, reply, next) => {
    if (accepted.length === 0) {
      next();
      return;
    }
    const principal = principalOf(request);
    if (principal === undefined) {
      reply.header('www-authenticate', 'Bearer');
      next(new GatewayError('UNAUTHORIZED', 'missing or invalid bearer token'));
      return;
    }
    const scope = requiredScope(request);
    if (!principal.scopes.has(scope)) {
      reply.header('www-authenticate', `Bearer error="insufficient_scope", scope="${scope}"`);
      next(new GatewayError('FORBIDDEN', `this token lacks the '${scope}' scope that ${request.method} ${request.routeOptions.url ?? 'this route'} needs`));
      return;
    }
    // An awaited result shows the actor's state (`get`, or the new total of `add`): a token
    // that may only write gets 202 and a seq, not what is stored.
    if (awaitsResult(request) && !principal.scopes.has(AuthScope.Read)) {
      reply.header('www-authenticate', `Bearer error="insufficient_scope", scope="${AuthScope.Read}"`);
      next(new GatewayError('FORBIDDEN', `this token lacks the 'read' scope that awaiting a result (?wait=true) needs: a result shows the actor's state`));
      return;
    }
    next();
  };
  app.decorate('authenticate', authenticate);
  app.decorate('authEnabled', accepted.length > 0);
  app.decorate('principalOf', principalOf);
  done();
};

/**
 * Bearer-token authentication with scopes for the `/api` routes: decorates the
 * `authenticate` hook and `principalOf(request)`.
 */
export const auth = fp(authPlugin, { name: 'jetactor-auth', fastify: '5.x' });
