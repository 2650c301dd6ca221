/** A stored record as the client shows it: an {@link ActorSnapshot}, migrated to the newest version known. */
import type { KV, KvEntry } from '@nats-io/kv';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, decodeReply, ErrorCode, partitionOf, QueryHeaders, querySubject, stateKey, STATE_QUERY, TimeoutError, type ActorNames, type QueryResult, type StateQueryResult } from '../protocol/index.js';
import { decodeJson, versionOfRecord, type StateRecord } from '../store/records.js';
import { checkpointKeysOf, passedBy } from './cluster-status.js';
import type { ActorSnapshot } from './results.js';

/** The snapshot of `entry` (none: the initial state), in the shape of `def`'s version when given. */
export function snapshotOf(def: AnyActorDefinition | undefined, type: string, key: string, entry: KvEntry | null): ActorSnapshot {
  const initial: unknown = def ? def.initialState() : null;
  if (!entry || entry.operation !== 'PUT') return { type, key, state: initial, seq: 0, revision: entry?.revision ?? 0, exists: false };
  const rec = decodeJson<StateRecord>(entry.value);
  if (!rec) return { type, key, state: initial, seq: 0, revision: entry.revision, exists: false };
  const written = versionOfRecord(rec);
  // With the definition, an older record reads in its version's shape (never older than the code's).
  const migrate = def !== undefined && !rec.deleted && written < def.version;
  const version = migrate ? def.version : written;
  return {
    type,
    key,
    state: rec.deleted ? initial : migrate ? def.upgrade(rec.state, written) : rec.state,
    seq: rec.seq,
    revision: entry.revision,
    exists: rec.deleted !== true,
    ...(version > 1 ? { version } : {}),
  };
}

/**
 * `snap` in the shape of the newest version known: migrated by this client's definition when
 * it has one, else, when older than `opts.version`, by a worker hosting the type.
 */
export async function migratedSnapshot(nc: NatsConnection, names: ActorNames, def: AnyActorDefinition | undefined, snap: ActorSnapshot, opts: { timeoutMs: number; version?: number }): Promise<ActorSnapshot> {
  const { type, key } = snap;
  const written = snap.version ?? 1;
  if (!snap.exists) return snap;
  if (def) return written < def.version ? { ...snap, state: def.upgrade(snap.state, written), version: def.version } : snap;
  if (opts.version === undefined || written >= opts.version) return snap;
  // Written by an older version, and this client has no code to migrate it: a worker hosting
  // the type reads it migrated (from this record or a newer one).
  const timeoutMs = opts.timeoutMs;
  const h = headers();
  h.set(QueryHeaders.MinSeq, String(snap.seq));
  h.set(QueryHeaders.TimeoutMs, String(timeoutMs));
  let answer: QueryResult;
  try {
    answer = decodeReply((await nc.request(querySubject(names, type, key, STATE_QUERY), new Uint8Array(0), { timeout: timeoutMs + 250, headers: h })).data);
  } catch (err) {
    if (err instanceof ActorError) throw err;
    throw new ActorError(
      ErrorCode.UnknownActor,
      `${type}/${key} was written by version ${written} of '${type}' and no worker hosting version ${opts.version} answered to read it migrated: ${String(err)}`,
      { cause: err },
    );
  }
  const current = answer.result as StateQueryResult;
  return { ...snap, state: current.state, seq: answer.seq, revision: current.revision, exists: current.exists, ...(current.version > 1 ? { version: current.version } : {}) };
}

/** Where {@link readSnapshot} reads: the state bucket, the control bucket, the stream's partition count, the type's definition. */
export interface SnapshotSource {
  kv: KV;
  control(): Promise<KV>;
  partitions(): Promise<number>;
  def: AnyActorDefinition | undefined;
}

/**
 * The snapshot of `type`/`key` once it holds the operation at `minSeq`: the key's record or its
 * partition's checkpoint passing `minSeq` both mean it is applied. Polls with a short backoff
 * until `timeoutMs`, then throws a {@link TimeoutError}.
 */
export async function readSnapshot(source: SnapshotSource, type: string, key: string, minSeq: number, timeoutMs: number): Promise<ActorSnapshot> {
  const k = stateKey(type, key);
  const first = snapshotOf(source.def, type, key, await source.kv.get(k));
  if (first.seq >= minSeq) return first;
  const deadline = performance.now() + timeoutMs;
  const control = await source.control();
  const ckKeys = await checkpointKeysOf(control, type, partitionOf(type, key, await source.partitions()));
  let delay = 2;
  for (;;) {
    const snap = snapshotOf(source.def, type, key, await source.kv.get(k));
    if (snap.seq >= minSeq) return snap;
    if (await passedBy(control, ckKeys, type, minSeq)) return snapshotOf(source.def, type, key, await source.kv.get(k));
    if (performance.now() + delay > deadline) {
      throw new TimeoutError(`state of ${type}/${key} did not reach seq ${minSeq} in time (now ${snap.seq})`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(50, delay * 2);
  }
}
