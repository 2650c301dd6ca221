/** What a fold does with records and operations of other versions of a definition. */
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { PartitionBlockedError, UnknownOperationError } from '../protocol/index.js';
import type { DecodedOp } from './decode.js';
import { checkRecordSize, serialize } from './fold-json.js';
import { touch, type FoldEnv, type KeyFold } from './key-fold.js';
import type { CachedRecord } from './record-cache.js';

/** The one place the fold decides about an unknown operation: the injected action, else a dead letter. */
export function unknownOperationAction(env: Pick<FoldEnv, 'unknownOperation'>, type: string, op: string): 'dead-letter' | 'wait' {
  return env.unknownOperation ? env.unknownOperation(type, op) : 'dead-letter';
}

/** Throws for an operation `def` does not have: UNKNOWN_OPERATION, or a wait (see {@link unknownOperationAction}). */
export function checkKnown(def: AnyActorDefinition, name: string, op: DecodedOp, env: FoldEnv): void {
  if (def.hasOperation(name)) return;
  if (unknownOperationAction(env, def.type, name) === 'wait') {
    throw new PartitionBlockedError({ reason: 'unknown-operation', seq: op.seq, type: def.type, key: op.key, op: name, version: def.version });
  }
  throw new UnknownOperationError(def.type, name);
}

/** The version of the definition that wrote a record (absent: 1). */
export function versionOf(rec: CachedRecord): number {
  return rec.version ?? 1;
}

/** Sets the record's version (kept absent for 1, as records without versions were written). */
export function setVersion(rec: CachedRecord, v: number): void {
  if (v > 1) rec.version = v;
  else delete rec.version;
}

/**
 * Migrates a record written by an older version of `def` (its state, parsed from the stored
 * JSON) to `def.version`, before any handler sees it; the record is written back at the new
 * version with the operation's commit. A migration that throws, a record older than the oldest
 * migration and a migrated state that cannot be stored fail the operation and leave the record
 * as it was.
 */
export function migrateRecord(f: KeyFold, def: AnyActorDefinition, op: DecodedOp, env: FoldEnv): void {
  const rec = f.rec;
  const state = def.upgrade(JSON.parse(rec.json as string) as unknown, versionOf(rec));
  const json = serialize(state, 'state', env.maxStateBytes);
  checkRecordSize(json, f.fx, env.maxStateBytes);
  rec.json = json;
  setVersion(rec, def.version);
  touch(f, op.seq);
}
