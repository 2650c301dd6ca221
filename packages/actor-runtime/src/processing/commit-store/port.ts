/**
 * The storage port of the commit: every write and read a partition's commit makes, by key,
 * with the bytes already formatted (record-io.ts, the checkpoint, the index entries). The
 * JetStream implementation (jetstream.ts) is the production one; the in-memory one
 * (memory.ts) lets the commit's step order be tested without a server.
 */
import type { MsgHdrs } from '@nats-io/nats-core';

/** The last value of a key: its revision and bytes, or a delete (or purge) marker. */
export interface StoreEntry {
  revision: number;
  value: Uint8Array;
  /** A delete or purge marker: the key has no value. */
  deleted: boolean;
}

/** True while the lease is surely held; a write checks it right before it goes out. */
export type WriteGuard = () => boolean;

/**
 * What a failed write means for the commit: `conflict` a compare-and-set lost (someone else
 * wrote), `too-large` the value exceeds a bound of the store, `stream-full` the operations
 * stream is at its byte bound; anything else is a plain failure.
 */
export type StoreErrorKind = 'conflict' | 'too-large' | 'stream-full';

/**
 * Where a commit stores what it writes. Writes given an `expectedRevision` are
 * compare-and-set (0: the key must have no entry at all) and resolve with the new revision;
 * a lost compare-and-set rejects with an error whose {@link CommitStore.errorKind} is `conflict`.
 * Writes given a guard reject (before writing) when it returns false.
 */
export interface CommitStore {
  /** The record of state key `<type>.<key>`; null when it never had an entry. */
  readRecord(key: string): Promise<StoreEntry | null>;
  /** Writes a record (compare-and-set on `expectedRevision`). */
  writeRecord(key: string, body: Uint8Array, expectedRevision: number, guard: WriteGuard): Promise<number>;
  /** Removes the record's history up to `revision` (a tombstone), keeping any newer write. */
  purgeRecord(key: string, revision: number): Promise<void>;

  /** Keeps the outcome of operation `seq` (its reply body), for a retried request. */
  writeOutcome(seq: number, body: Uint8Array): Promise<void>;
  /** Publishes a dead letter; a second one with the same `msgId` is dropped. */
  publishDeadLetter(subject: string, data: Uint8Array, headers: MsgHdrs, msgId: string): Promise<void>;
  /** Publishes a send to the operations stream; a second one with the same `msgId` is dropped. */
  publishSend(subject: string, data: Uint8Array, msgId: string, headers: ReadonlyArray<readonly [string, string]>, guard: WriteGuard): Promise<void>;

  /** State keys of partition `p` that have an unsent marker (sends waiting for room). */
  listMarkers(p: number): Promise<string[]>;
  /** Writes the unsent marker of a key. */
  writeMarker(p: number, key: string, guard: WriteGuard): Promise<void>;
  /** Deletes the unsent marker of a key. */
  deleteMarker(p: number, key: string, guard: WriteGuard): Promise<void>;

  /** Calls `each` with every timer-index entry of partition `p` (state key, revision, value or null for none). */
  scanTimerEntries(p: number, each: (stateKey: string, revision: number, value: Uint8Array | null) => void): Promise<void>;
  /** Writes the timer-index entry of a key (compare-and-set; an empty value: no timers). */
  writeTimerEntry(p: number, stateKey: string, value: Uint8Array, expectedRevision: number, guard: WriteGuard): Promise<number>;

  /** The checkpoint of partition `p` for `lane` (undefined: the default lane's key). */
  readCheckpoint(p: number, lane?: string): Promise<StoreEntry | null>;
  /** Writes the checkpoint (compare-and-set). */
  writeCheckpoint(p: number, lane: string | undefined, value: Uint8Array, expectedRevision: number, guard: WriteGuard): Promise<number>;

  /** What a rejected write means (undefined: a plain failure). */
  errorKind(err: unknown): StoreErrorKind | undefined;
}
