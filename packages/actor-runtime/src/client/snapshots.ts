/** A stored record as the client shows it: an {@link ActorSnapshot}, migrated to the newest version known. */
import type { KvEntry } from '@nats-io/kv';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { ActorError, decodeReply, ErrorCode, QueryHeaders, querySubject, STATE_QUERY, type ActorNames, type QueryResult, type StateQueryResult } from '../protocol/index.js';
import { decodeJson, versionOfRecord, type StateRecord } from '../store/records.js';
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
