/**
 * One log line per request, written when the response is sent: method, url, the actor
 * (type, key, op) from the route, the operation's seq and what else a handler noted, the
 * status, the error code of a rejected request, and the duration. Fastify's own two lines
 * ("incoming request", "request completed") are off: at tens of thousands of requests a
 * second, two lines and a child logger per request were 20-40% of the gateway's throughput.
 * The request's own logger (`request.log`, with its `reqId`) is made only when something
 * logs through it ({@link lazyChildLoggerFactory}); the one line is written by the app's
 * logger with the `reqId` among its fields, where that child would have put it.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginCallback, FastifyRequest, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { levels, type Bindings, type ChildLoggerOptions } from 'pino';
import { targetOf } from '../routes/target.js';

const INFO = levels.values.info as number;

declare module 'fastify' {
  interface FastifyRequest {
    /** Fields for this request's log line (seq, duplicate, code, reason…). */
    logFields: Record<string, unknown> | null;
  }
}

/** The label of the request id in log lines (Fastify's default `requestIdLogLabel`). */
const REQUEST_ID_LABEL = 'reqId';

/** The log methods of a Fastify logger. */
const LOG_METHODS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type LogMethodName = (typeof LOG_METHODS)[number];
type LogMethod = (...args: unknown[]) => void;

/**
 * A request's logger that creates its pino child (`parent.child({ reqId })`) the first time
 * something logs through it, so a request that logs nothing (all of them, but for their one
 * line) costs no child logger. What it writes is the child's: the same bindings, the same line.
 */
class LazyChildLogger implements Record<LogMethodName, LogMethod> {
  declare fatal: LogMethod;
  declare error: LogMethod;
  declare warn: LogMethod;
  declare info: LogMethod;
  declare debug: LogMethod;
  declare trace: LogMethod;
  declare silent: LogMethod;
  private made: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
  ) {}

  /** The child logger, made on first use. */
  get logger(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings));
  }

  get level(): string {
    return this.made === undefined ? this.parent.level : this.made.level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }
}
for (const name of LOG_METHODS) {
  LazyChildLogger.prototype[name] = function (this: LazyChildLogger, ...args: unknown[]): void {
    const method: LogMethod = this.logger[name];
    method.apply(this.logger, args);
  };
}

/**
 * Fastify's `childLoggerFactory`: the request's logger, made lazily. A route with its own
 * log level or serializers (`/healthz`, `/metrics`, the dashboard) gets its child at once.
 */
export const lazyChildLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, opts) => {
  if (opts.level !== undefined || opts.serializers !== undefined) return logger.child(bindings, opts);
  return new LazyChildLogger(logger, bindings);
};

/** Adds fields to the request's one log line. */
export function noteForLog(request: FastifyRequest, fields: Record<string, unknown>): void {
  request.logFields = request.logFields ? Object.assign(request.logFields, fields) : { ...fields };
}

const requestLogPlugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
  app.decorateRequest('logFields', null);
  app.addHook('onResponse', (request, reply, next) => {
    // Fastify's logger type has no isLevelEnabled; compare with pino's own level values.
    if ((levels.values[request.log.level] ?? INFO) <= INFO) {
      app.log.info(
        {
          [REQUEST_ID_LABEL]: request.id,
          method: request.method,
          url: request.url,
          ...targetOf(request),
          ...request.logFields,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 100) / 100,
        },
        'request',
      );
    }
    next();
  });
  done();
};

/** The one-line-per-request log. */
export const requestLog = fp(requestLogPlugin, { name: 'jetactor-request-log', fastify: '5.x' });

