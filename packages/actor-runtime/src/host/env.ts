/**
 * The worker's settings from the environment: one place that maps each variable to its
 * {@link WorkerOptions} field (a variable left unset keeps the runtime's default).
 */
import { ConfigError } from '../protocol/index.js';
import type { WorkerOptions } from '../worker-options.js';

/** An integer variable, or undefined when unset or empty; anything else is a {@link ConfigError} naming it. */
export function intEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ConfigError(`${name} must be an integer, got '${v}'`);
  return n;
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

/**
 * Reads `WORKER_ID`, `JETACTOR_SERVICE`, `ACTORS_INBOX_PREFIX`, `ACTORS_PARTITIONS`, `ACTORS_REPLICAS`,
 * `LEASE_TTL_MS`, `HEARTBEAT_MS`, `MAX_BATCH`, `ACTORS_READ`, `MAX_CACHED_RECORDS`, `MAX_STATE_BYTES`,
 * `ACTORS_MAX_BYTES`, `ACTORS_RETAIN_MS`, `ACTORS_DLQ_MAX_BYTES`, `ACTORS_DLQ_MAX_MSGS` and
 * `ACTORS_DLQ_MAX_AGE_MS`. The worker validates the values.
 */
export function workerOptionsFromEnv(env: NodeJS.ProcessEnv): EnvWorkerOptions {
  return definedOnly({
    id: env.WORKER_ID || undefined,
    service: env.JETACTOR_SERVICE || undefined,
    names: env.ACTORS_INBOX_PREFIX ? { inboxPrefix: env.ACTORS_INBOX_PREFIX } : undefined,
    partitions: intEnv(env, 'ACTORS_PARTITIONS'),
    replicas: intEnv(env, 'ACTORS_REPLICAS'),
    leaseTtlMs: intEnv(env, 'LEASE_TTL_MS'),
    heartbeatMs: intEnv(env, 'HEARTBEAT_MS'),
    maxBatch: intEnv(env, 'MAX_BATCH'),
    readMode: (env.ACTORS_READ || undefined) as 'shared' | 'partition' | undefined,
    maxCachedRecords: intEnv(env, 'MAX_CACHED_RECORDS'),
    maxStateBytes: intEnv(env, 'MAX_STATE_BYTES'),
    topology: definedOnly({
      maxBytes: intEnv(env, 'ACTORS_MAX_BYTES'),
      retainMs: intEnv(env, 'ACTORS_RETAIN_MS'),
      dlqMaxBytes: intEnv(env, 'ACTORS_DLQ_MAX_BYTES'),
      dlqMaxMsgs: intEnv(env, 'ACTORS_DLQ_MAX_MSGS'),
      dlqMaxAgeMs: intEnv(env, 'ACTORS_DLQ_MAX_AGE_MS'),
    }),
  });
}
