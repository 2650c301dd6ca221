/**
 * The settings of a process from its environment, declared as TypeBox schemas and read with
 * fastify's `env-schema` (Ajv: coercion to numbers, defaults, one error per bad variable):
 * {@link WORKER_ENV} maps each worker variable to its {@link WorkerOptions} field (a variable
 * left unset keeps the runtime's default); {@link parseEnv} reads any such schema (the gateway's too).
 */
import { Type, type Static, type TObject, type TSchema, type TUnsafe } from '@sinclair/typebox';
import envSchema from 'env-schema';
import { ConfigError } from '../protocol/index.js';
import type { WorkerOptions } from '../worker-options.js';

/** What {@link parseEnv} reads of a variable's schema to word its error. */
interface VariableSchema {
  type?: unknown;
  allOf?: readonly VariableSchema[];
  minimum?: number;
  maximum?: number;
  description?: string;
}

/** The rule a variable breaks, as its error says it: `an integer >= 1 (ms ...)`, or its schema's description. */
function ruleOf(schema: VariableSchema): string {
  const integer = [schema, ...(schema.allOf ?? [])].find((s) => s.type === 'integer');
  if (integer === undefined) return schema.description ?? 'valid';
  const { minimum, maximum } = integer;
  const range =
    minimum !== undefined && maximum !== undefined && maximum < Number.MAX_SAFE_INTEGER ? ` from ${minimum} to ${maximum}` : minimum !== undefined ? ` >= ${minimum}` : '';
  return `an integer${range}${schema.description !== undefined ? ` (${schema.description})` : ''}`;
}

/**
 * The variables of `schema` read from `env`: an unset or blank variable is left out (or takes its
 * schema's default), numbers are coerced, and the first variable that breaks its schema is a
 * {@link ConfigError} that names it: `NAME must be <rule>, got '<value>'`.
 */
export function parseEnv<T extends TObject>(schema: T, env: NodeJS.ProcessEnv): Static<T> {
  const data: Record<string, string> = {};
  for (const name of Object.keys(schema.properties)) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') data[name] = value;
  }
  try {
    return envSchema<Static<T>>({ schema, data, env: false });
  } catch (err) {
    const first = (err as { errors?: readonly { instancePath?: string }[] }).errors?.[0];
    const name = first?.instancePath?.split('/')[1];
    if (name === undefined || !Object.hasOwn(schema.properties, name)) throw err;
    const rule = ruleOf(schema.properties[name] as VariableSchema);
    throw new ConfigError(`${name} must be ${rule}, got '${(env[name] ?? '').slice(0, 64)}'`, undefined, { cause: err });
  }
}

/**
 * A whole number written in decimal digits only (spaces around allowed; no sign, `0x`, exponent
 * or fraction), from `minimum` to the largest safe integer; `description` says what it counts.
 */
export function decimalEnv(minimum: number, description: string): TUnsafe<number> {
  return Type.Unsafe<number>({
    description,
    // env-schema's Ajv coerces within allOf: the pattern sees the string, the integer part the number.
    allOf: [
      { type: 'string', pattern: '^\\s*[0-9]+\\s*$' },
      { type: 'integer', minimum, maximum: Number.MAX_SAFE_INTEGER },
    ],
  });
}

const optionalInteger = (): TSchema => Type.Optional(Type.Integer());

/**
 * The worker's variables. Integers are anything `Number()` reads as one (the worker validates
 * their ranges); `ACTORS_READ` is validated by the worker too.
 */
export const WORKER_ENV = Type.Object({
  WORKER_ID: Type.Optional(Type.String()),
  JETACTOR_SERVICE: Type.Optional(Type.String()),
  ACTORS_INBOX_PREFIX: Type.Optional(Type.String()),
  ACTORS_PARTITIONS: Type.Optional(Type.Integer()),
  ACTORS_REPLICAS: Type.Optional(Type.Integer()),
  LEASE_TTL_MS: Type.Optional(Type.Integer()),
  HEARTBEAT_MS: Type.Optional(Type.Integer()),
  MAX_BATCH: Type.Optional(Type.Integer()),
  ACTORS_READ: Type.Optional(Type.String()),
  MAX_CACHED_RECORDS: Type.Optional(Type.Integer()),
  MAX_STATE_BYTES: Type.Optional(Type.Integer()),
  ACTORS_MAX_BYTES: Type.Optional(Type.Integer()),
  ACTORS_RETAIN_MS: Type.Optional(Type.Integer()),
  ACTORS_DLQ_MAX_BYTES: Type.Optional(Type.Integer()),
  ACTORS_DLQ_MAX_MSGS: Type.Optional(Type.Integer()),
  ACTORS_DLQ_MAX_AGE_MS: Type.Optional(Type.Integer()),
  // Read by runWorker (run-worker.ts).
  WORKER_HEAP_GROWTH_PERCENT: Type.Optional(Type.Integer()),
  METRICS_PORT: Type.Optional(Type.Integer()),
  METRICS_HOST: Type.Optional(Type.String()),
  LOG_LEVEL: Type.Optional(Type.String()),
});

/** An integer variable, or undefined when unset or blank; anything else is a {@link ConfigError} naming it. */
export function intEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  return parseEnv(Type.Object({ [name]: optionalInteger() }), env)[name] as number | undefined;
}

/**
 * A duration in ms from `env[name]` (default `fallback`): a whole number from 1 to `max`, else a
 * `ConfigError` naming the variable. For actor packages' settings (`CART_IDLE_MS`, ...).
 */
export function durationMsEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const ms = intEnv(env, name) ?? fallback;
  if (ms < 1 || ms > max) throw new ConfigError(`${name} must be a positive integer of milliseconds, at most ${max}, got '${env[name]}'`);
  return ms;
}

/** The fields of `o` that are set (so a missing variable keeps the runtime's default). */
function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The worker options the environment sets. */
export type EnvWorkerOptions = Omit<WorkerOptions, 'nc' | 'actors' | 'logger' | 'hooks'>;

/** The worker options of {@link WORKER_ENV}'s variables in `env`. The worker validates the values. */
export function workerOptionsFromEnv(env: NodeJS.ProcessEnv): EnvWorkerOptions {
  const v = parseEnv(WORKER_ENV, env);
  return definedOnly({
    id: v.WORKER_ID,
    service: v.JETACTOR_SERVICE,
    names: v.ACTORS_INBOX_PREFIX !== undefined ? { inboxPrefix: v.ACTORS_INBOX_PREFIX } : undefined,
    partitions: v.ACTORS_PARTITIONS,
    replicas: v.ACTORS_REPLICAS,
    leaseTtlMs: v.LEASE_TTL_MS,
    heartbeatMs: v.HEARTBEAT_MS,
    maxBatch: v.MAX_BATCH,
    readMode: v.ACTORS_READ as 'shared' | 'partition' | undefined,
    maxCachedRecords: v.MAX_CACHED_RECORDS,
    maxStateBytes: v.MAX_STATE_BYTES,
    topology: definedOnly({
      maxBytes: v.ACTORS_MAX_BYTES,
      retainMs: v.ACTORS_RETAIN_MS,
      dlqMaxBytes: v.ACTORS_DLQ_MAX_BYTES,
      dlqMaxMsgs: v.ACTORS_DLQ_MAX_MSGS,
      dlqMaxAgeMs: v.ACTORS_DLQ_MAX_AGE_MS,
    }),
  });
}
