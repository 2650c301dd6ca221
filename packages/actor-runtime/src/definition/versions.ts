/**
 * A definition's version and state migrations: `version` and `migrate` checked when the actor
 * is defined, and a stored state upgraded from the version that wrote it.
 */
import { ActorError, ErrorCode } from '../protocol/index.js';

/** A definition's checked version, the oldest version it migrates from, and its migrations by the version they upgrade. */
export interface CompiledVersions {
  version: number;
  oldest: number;
  steps: ReadonlyMap<number, (s: unknown) => unknown>;
}

/** Checks `version` and `migrate`; returns the version, the oldest migrated version and the migrations in order. */
export function compileVersions(type: string, version: unknown, migrate: unknown): CompiledVersions {
  const v = version ?? 1;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new TypeError(`actor '${type}': version must be an integer >= 1, got ${JSON.stringify(version)}`);
  if (migrate !== undefined && (typeof migrate !== 'object' || migrate === null || Array.isArray(migrate))) {
    throw new TypeError(`actor '${type}': migrate must be an object of functions by version, e.g. { 1: (state) => … }`);
  }
  const steps = new Map<number, (s: unknown) => unknown>();
  for (const [k, fn] of Object.entries((migrate ?? {}) as Record<string, unknown>)) {
    const from = /^[1-9][0-9]{0,15}$/.test(k) ? Number(k) : NaN;
    if (!(from >= 1 && from < v)) throw new TypeError(`actor '${type}': migrate key ${JSON.stringify(k)} must be a version from 1 to ${v - 1} (it upgrades that version's state to the next)`);
    if (typeof fn !== 'function') throw new TypeError(`actor '${type}': migrate[${k}] must be a function (state) => state`);
    steps.set(from, fn as (s: unknown) => unknown);
  }
  let oldest = v;
  while (steps.has(oldest - 1)) oldest--;
  if (steps.size !== v - oldest) {
    throw new TypeError(`actor '${type}': migrate must run without a gap up to version ${v - 1}; migration ${oldest - 1} -> ${oldest} is missing`);
  }
  return { version: v, oldest, steps };
}

/**
 * The state of a record written by version `from`, migrated to `versions.version` (see
 * `ActorDefinition.upgrade`): `RECORD_TOO_NEW`, `RECORD_TOO_OLD` or `MIGRATION_FAILED` otherwise.
 */
export function upgradeState(type: string, versions: CompiledVersions, state: unknown, from: number): unknown {
  if (from === versions.version) return state;
  if (from > versions.version) throw new ActorError(ErrorCode.RecordTooNew, `actor '${type}': the record was written by version ${from}, newer than this definition's ${versions.version}`);
  if (from < versions.oldest) {
    throw new ActorError(
      ErrorCode.RecordTooOld,
      `actor '${type}': the record was written by version ${from}; version ${versions.version} migrates records from version ${versions.oldest} on (add migrate[${from}] … migrate[${versions.oldest - 1}])`,
    );
  }
  let s = state;
  for (let v = from; v < versions.version; v++) {
    const step = versions.steps.get(v) as (s: unknown) => unknown;
    try {
      s = step(s);
    } catch (err) {
      throw new ActorError(ErrorCode.MigrationFailed, `actor '${type}': migrate[${v}] (version ${v} -> ${v + 1}) failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  return s;
}
