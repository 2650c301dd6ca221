/**
 * JSON schemas of the routes: one place for the name rules, query parameters and
 * response shapes. Fastify validates requests with them (and they can feed an
 * OpenAPI document); {@link formatSchemaError} turns a failure into a registered code.
 */
import { MAX_KEY_LENGTH, namePattern, nameRule, RESERVED_TYPES as RUNTIME_RESERVED_TYPES } from '@jetactor/actor-runtime/protocol';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type TObject, type TUnsafe } from '@sinclair/typebox';
import type { FastifyBaseLogger, FastifyInstance, preValidationHookHandler, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import { GatewayError } from './errors.js';

/** Largest `Idempotency-Key` header length. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
/** Largest `?limit=` of a listing. */
export const MAX_LIST_LIMIT = 1000;
/** `?limit=` of a listing when none is given. */
export const DEFAULT_LIST_LIMIT = 100;
/** Types that collide with other subjects (`actors.call.…`, `actors.query.…`): the runtime's list, as an array for JSON Schema. */
export const RESERVED_TYPES: readonly string[] = [...RUNTIME_RESERVED_TYPES].sort();

const TYPE_RULE = nameRule('type');
const KEY_RULE = nameRule('key');
const OP_RULE = nameRule('op');
/**
 * An `Idempotency-Key` (HTTP header or NATS call header alike): 1-128 HTTP token characters
 * (RFC 9110 `tchar`).
 */
export const IDEMPOTENCY_KEY_PATTERN = `^[A-Za-z0-9!#$%&'*+.^_\`|~-]{1,${MAX_IDEMPOTENCY_KEY_LENGTH}}$`;
/** What a bad `Idempotency-Key` is told. */
export const IDEMPOTENCY_RULE = `Idempotency-Key must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} token characters [A-Za-z0-9!#$%&'*+.^_\`|~-]`;
const IDEMPOTENCY_KEY_RE = new RegExp(IDEMPOTENCY_KEY_PATTERN);
/** True when `value` is a valid {@link IDEMPOTENCY_KEY_PATTERN}. */
export function isValidIdempotencyKey(value: string): boolean {
  return IDEMPOTENCY_KEY_RE.test(value);
}

const typeSchema = {
  type: 'string',
  pattern: namePattern('type'),
  not: { enum: RESERVED_TYPES },
} as const;
const keySchema = { type: 'string', pattern: namePattern('key') } as const;
const opSchema = { type: 'string', pattern: namePattern('op') } as const;
/** The path parameters that name an actor and operation, typed for the routes. */
const NAME_PARAMS = { type: Type.Unsafe<string>(typeSchema), key: Type.Unsafe<string>(keySchema), op: Type.Unsafe<string>(opSchema) };
/** A path parameter that names an actor or operation. */
export type NameParam = keyof typeof NAME_PARAMS;

/** `?value=` is a JSON number; kept a string here so that `?value=` (empty) is not coerced to 0. */
const valueSchema = Type.String({ pattern: '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$' });

const idempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ pattern: IDEMPOTENCY_KEY_PATTERN })),
});

const snapshotSchema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    key: { type: 'string' },
    state: {},
    seq: { type: 'integer' },
    revision: { type: 'integer' },
  },
  required: ['type', 'key', 'seq', 'revision'],
} as const;

const signaledSchema = {
  type: 'object',
  properties: {
    signaled: { type: 'string' },
    type: { type: 'string' },
    key: { type: 'string' },
    seq: { type: 'integer' },
    duplicate: { type: 'boolean' },
  },
  required: ['signaled', 'type', 'key', 'seq'],
} as const;

/** 202 of a signal route with a timer (`?delayMs=`, `?at=`, `?every=`, `?cron=`). */
const scheduledSchema = {
  type: 'object',
  properties: {
    scheduled: { type: 'string', description: 'The operation scheduled.' },
    type: { type: 'string' },
    key: { type: 'string' },
    id: { type: 'string', description: 'The timer id (to list or cancel it).' },
    at: { type: 'string', description: 'When it runs (first), ISO 8601.' },
    seq: { type: 'integer', description: 'Stream sequence of the message that sets the timer.' },
    duplicate: { type: 'boolean' },
  },
  required: ['scheduled', 'type', 'key', 'id', 'at', 'seq'],
} as const;

/** Digits of a ms count (kept a string, so `?delayMs=` (empty) is not coerced to 0). */
const MS_PATTERN = '^[0-9]{1,16}$';

/** The timer query parameters of the signal routes: any of them schedules the operation instead of signaling it. */
export const TIMER_QUERY = {
  delayMs: Type.String({ pattern: MS_PATTERN, description: 'Run the operation this many ms from now (a timer) instead of now. Not with `at`.' }),
  at: Type.String({ minLength: 1, maxLength: 64, description: 'Run the operation at this time: ISO 8601 or ms since the epoch (a time in the past runs at once).' }),
  id: Type.String({
    pattern: namePattern('timerId'),
    description: 'The timer id (replaces a timer of the same id). Default: derived from the Idempotency-Key, else random.',
  }),
  every: Type.String({ pattern: MS_PATTERN, description: 'Recurring: again every this many ms (100 ms to 10 years). Not with `cron`.' }),
  cron: Type.String({ minLength: 1, maxLength: 200, description: 'Recurring: at each match of this cron expression (5 or 6 fields, UTC); it must match within 10 years.' }),
};

const TIMER_RULES = {
  delayMs: 'delayMs must be a whole number of ms',
  at: 'at must be an ISO 8601 time or ms since the epoch (at most 64 characters)',
  id: nameRule('timerId'),
  every: 'every must be a whole number of ms (at least 100)',
  cron: 'cron must be a cron expression of 1-200 characters',
} as const;

/** One of an actor's timers, as `GET /api/actors/:type/:key/timers` lists it. */
const timerSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    at: { type: 'string', description: 'When it runs next, ISO 8601.' },
    op: { type: 'string' },
    target: {
      type: 'object',
      description: 'The actor the operation is applied to (this one unless the timer targets another).',
      properties: { type: { type: 'string' }, key: { type: 'string' } },
      required: ['type', 'key'],
    },
    input: { description: "The operation's input; absent for none." },
    every: { type: 'integer', description: 'Recurring every this many ms.' },
    cron: { type: 'string', description: 'Recurring by this cron expression (UTC).' },
  },
  required: ['id', 'at', 'op', 'target'],
} as const;

const timerListSchema = {
  type: 'object',
  properties: { type: { type: 'string' }, key: { type: 'string' }, timers: { type: 'array', items: timerSchema } },
  required: ['type', 'key', 'timers'],
} as const;

const cancelSentSchema = {
  type: 'object',
  properties: {
    cancelled: { type: 'string', description: 'The id of the timer to cancel.' },
    type: { type: 'string' },
    key: { type: 'string' },
    seq: { type: 'integer' },
    duplicate: { type: 'boolean' },
  },
  required: ['cancelled', 'type', 'key', 'seq'],
} as const;

const cancelOutcomeSchema = {
  type: 'object',
  properties: {
    result: {
      type: ['object', 'null'],
      description: '`cancelled` is false when the actor had no such timer; null for a retry whose outcome is no longer kept.',
      properties: { cancelled: { type: 'boolean' }, id: { type: 'string' } },
      required: ['cancelled', 'id'],
    },
    seq: { type: 'integer' },
    duplicate: { type: 'boolean' },
  },
  required: ['result', 'seq'],
} as const;

const resultSchema = {
  type: 'object',
  properties: { result: {}, seq: { type: 'integer' }, duplicate: { type: 'boolean' } },
  required: ['seq'],
} as const;

/** A dead letter: a failed operation kept in `ACTORS_DLQ` with the reason. */
const deadLetterSchema = {
  type: 'object',
  properties: {
    dlqSeq: { type: 'integer' },
    seq: { type: 'integer' },
    subject: { type: 'string' },
    type: { type: 'string' },
    key: { type: 'string' },
    op: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
    payload: { type: 'string' },
    time: { type: 'string' },
    timer: {
      type: 'object',
      description: 'The timer headers of a message that set a timer and failed, as sent; a resubmit sends them again (the timer is asked for again).',
      properties: { id: { type: 'string' }, at: { type: 'string' }, delayMs: { type: 'string' }, everyMs: { type: 'string' }, cron: { type: 'string' } },
    },
    resubmitted: { type: 'integer', description: 'The operation was resubmitted from this earlier dead letter (its dlqSeq) and failed again.' },
  },
  required: ['dlqSeq', 'seq', 'subject', 'type', 'key', 'op', 'code', 'message', 'payload', 'time'],
} as const;

const counterValueSchema = { type: 'object', properties: { value: {} } } as const;

function params<N extends NameParam>(names: readonly N[]): TObject<{ [K in N]: TUnsafe<string> }> {
  const properties = Object.fromEntries(names.map((n) => [n, NAME_PARAMS[n]])) as { [K in N]: TUnsafe<string> };
  return Type.Object(properties, { additionalProperties: false });
}

/** The gateway's app as its routes see it: request parts typed from the route's TypeBox schemas. */
export type TypedApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Builds the route schemas; `maxTimeoutMs` bounds `?timeoutMs=`. */
export function routeSchemas(maxTimeoutMs: number) {
  const timeoutMs = Type.Integer({ minimum: 1, maximum: maxTimeoutMs });
  // A safe integer, in decimal digits (rejectNonDecimalNumbers).
  const minSeq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
  const readQuery = Type.Partial(Type.Object({ minSeq, timeoutMs }), { additionalProperties: false });
  const limit = Type.Integer({ minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT });
  const noQuery = Type.Object({}, { additionalProperties: false });
  return {
    /** `POST /api/actors/:type/:key/:op` and the counter signal routes (params vary). */
    signal: <N extends NameParam>(paramNames: readonly N[]) => ({
      params: params(paramNames),
      querystring: Type.Partial(Type.Object({ value: valueSchema, wait: Type.Boolean(), timeoutMs, ...TIMER_QUERY }), { additionalProperties: false }),
      headers: idempotencyHeaders,
      response: { 200: resultSchema, 202: { anyOf: [signaledSchema, scheduledSchema] } },
    }),
    /** `GET /api/actors/:type/:key`. */
    read: {
      params: params(['type', 'key']),
      querystring: readQuery,
      response: { 200: snapshotSchema },
    },
    /** `GET /api/counter`. */
    counterRead: {
      querystring: readQuery,
      response: { 200: counterValueSchema },
    },
    /** `GET /api/counter/:key`. */
    counterReadByKey: {
      params: params(['key']),
      querystring: readQuery,
      response: { 200: counterValueSchema },
    },
    /** `GET /api/actors/:type`. */
    list: {
      params: params(['type']),
      querystring: Type.Partial(
        Type.Object({
          prefix: Type.String({ pattern: `^[A-Za-z0-9_=-]{0,${MAX_KEY_LENGTH}}$` }),
          limit,
          cursor: Type.String({
            pattern: '^[0-9]{1,16}$',
            description: 'The `nextCursor` of the previous page (opaque digits: a position in the state bucket, not a key).',
          }),
        }),
        { additionalProperties: false },
      ),
      response: {
        200: {
          type: 'object',
          properties: {
            items: { type: 'array', items: snapshotSchema },
            nextCursor: { type: ['string', 'null'] },
          },
          required: ['items', 'nextCursor'],
        },
      },
    },
    /** `DELETE /api/actors/:type/:key`. */
    remove: {
      params: params(['type', 'key']),
      querystring: noQuery,
      headers: idempotencyHeaders,
      response: { 202: signaledSchema },
    },
    /** `GET /api/actors/:type/:key/timers`. */
    timers: {
      params: params(['type', 'key']),
      querystring: readQuery,
      response: { 200: timerListSchema },
    },
    /** `DELETE /api/actors/:type/:key/timers/:id`. */
    cancelTimer: {
      params: Type.Object({ type: NAME_PARAMS.type, key: NAME_PARAMS.key, id: TIMER_QUERY.id }, { additionalProperties: false }),
      querystring: Type.Partial(Type.Object({ wait: Type.Boolean(), timeoutMs }), { additionalProperties: false }),
      headers: idempotencyHeaders,
      response: { 200: cancelOutcomeSchema, 202: cancelSentSchema },
    },
    /** `GET /api/dlq`. */
    deadLetters: {
      querystring: Type.Partial(Type.Object({ limit, cursor: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) }), { additionalProperties: false }),
      response: {
        200: {
          type: 'object',
          properties: {
            items: { type: 'array', items: deadLetterSchema },
            nextCursor: { type: ['integer', 'null'] },
          },
          required: ['items', 'nextCursor'],
        },
      },
    },
    /** `POST /api/dlq/:dlqSeq/resubmit`. */
    resubmit: {
      params: Type.Object({ dlqSeq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }, { additionalProperties: false }),
      querystring: noQuery,
      response: {
        202: {
          type: 'object',
          properties: { resubmitted: { type: 'integer' }, seq: { type: 'integer' }, duplicate: { type: 'boolean' } },
          required: ['resubmitted', 'seq'],
        },
      },
    },
  } as const;
}

/** The route schemas, built for the configured timeout bound. */
export type RouteSchemas = ReturnType<typeof routeSchemas>;

/**
 * A whole number as the API takes it in a query or path parameter and in a NATS call's
 * `Timeout-Ms` header: decimal digits only (no sign, `0x`, exponent, fraction or spaces), at
 * most 16 of them (so always finite; the schemas' bounds then apply).
 */
export const DECIMAL_DIGITS = /^[0-9]{1,16}$/;

/** What {@link rejectNonDecimalNumbers} reads of a route schema part. */
interface PropertiesSchema {
  properties?: Record<string, { type?: unknown } | undefined>;
}

/** The first field of `values` that its schema types `integer` and that is not {@link DECIMAL_DIGITS}, if any (no arrays built: this runs on every request). */
function nonDecimalIn(values: unknown, schema: unknown): string | undefined {
  const properties = (schema as PropertiesSchema | undefined)?.properties;
  if (properties === undefined || values === null || typeof values !== 'object') return undefined;
  const record = values as Record<string, unknown>;
  for (const name in record) {
    if (!Object.hasOwn(record, name) || !Object.hasOwn(properties, name) || properties[name]?.type !== 'integer') continue;
    const raw = record[name];
    if (typeof raw === 'string' && !DECIMAL_DIGITS.test(raw)) return name;
  }
  return undefined;
}

/**
 * A `preValidation` hook (before Ajv coerces them) that refuses an integer query or path
 * parameter not written as {@link DECIMAL_DIGITS}: Ajv's coercion reads `0x10` as 16, `1e3`
 * as 1000, ` 5` and `+5` as 5, and `1e400` as Infinity (which skips `integer`, `minimum` and
 * `maximum`, so `?minSeq=1e400` would wait for a sequence that never comes).
 */
export const rejectNonDecimalNumbers: preValidationHookHandler = (request, _reply, next) => {
  const { schema } = request.routeOptions;
  const inQuery = nonDecimalIn(request.query, schema?.querystring);
  const name = inQuery ?? nonDecimalIn(request.params, schema?.params);
  if (name === undefined) {
    next();
    return;
  }
  const [part, values] = inQuery === undefined ? ['path parameter', request.params] : ['query parameter', request.query];
  const got = shown((values as Record<string, unknown>)[name]);
  next(new GatewayError('INVALID_REQUEST', `${part} '${name.slice(0, 64)}' must be a whole number in decimal digits (got ${got})`));
};

/** The parts of an Ajv error that {@link formatSchemaError} reads. */
export interface SchemaErrorLike {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
  data?: unknown;
}

function shown(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/**
 * Fastify's `schemaErrorFormatter`: turns the first schema failure of a request part
 * into a {@link GatewayError} with a registered code and a message that says what is wrong.
 */
export function formatSchemaError(errors: readonly SchemaErrorLike[], dataVar: string): GatewayError {
  const first = errors[0] ?? {};
  const field = (first.instancePath ?? '').replace(/^\//, '').split('/')[0] ?? '';
  const got = 'data' in first && first.data !== undefined ? ` (got ${shown(first.data)})` : '';

  if (dataVar === 'params') {
    if (field === 'type') return new GatewayError('INVALID_TYPE', `${TYPE_RULE}${got}`);
    if (field === 'key') return new GatewayError('INVALID_KEY', `${KEY_RULE}${got}`);
    if (field === 'op') return new GatewayError('INVALID_OPERATION', `${OP_RULE}${got}`);
    if (field === 'id') return new GatewayError('INVALID_TIMER', `${TIMER_RULES.id}${got}`);
  }
  if (dataVar === 'headers' && field === 'idempotency-key') {
    return new GatewayError('INVALID_IDEMPOTENCY_KEY', IDEMPOTENCY_RULE);
  }
  if (dataVar === 'querystring') {
    if (first.keyword === 'additionalProperties') {
      const name = first.params?.additionalProperty;
      return new GatewayError('INVALID_REQUEST', `unknown query parameter ${shown(name)}`);
    }
    if (field === 'value') return new GatewayError('INVALID_INPUT', `query parameter 'value' must be a number${got}`);
    const timerRule = Object.hasOwn(TIMER_RULES, field) ? TIMER_RULES[field as keyof typeof TIMER_RULES] : undefined;
    if (timerRule !== undefined) return new GatewayError('INVALID_TIMER', `${timerRule}${got}`);
    if (field === 'cursor') return new GatewayError('INVALID_REQUEST', `query parameter 'cursor' must be the nextCursor of a previous page${got}`);
    if (field !== '') {
      return new GatewayError('INVALID_REQUEST', `query parameter '${field}' ${first.message ?? 'is invalid'}${got}`);
    }
  }
  if (dataVar === 'body') return new GatewayError('INVALID_INPUT', `body ${first.message ?? 'is invalid'}`);
  return new GatewayError('INVALID_REQUEST', `${dataVar}${field ? ` '${field}'` : ''} ${first.message ?? 'is invalid'}`);
}
