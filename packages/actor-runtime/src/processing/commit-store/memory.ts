/**
 * The commit's storage port in memory: the same keys and bytes as the JetStream store, with
 * compare-and-set by revision, msg-id deduplication of dead letters and sends, a byte bound on
 * values and an optional bound on stored sends (a full stream), and a hook that fails any
 * step before or after it takes effect. For tests of the commit without a server.
 */
import type { MsgHdrs } from '@nats-io/nats-core';
import { FencedError, controlKeys } from '../../protocol/index.js';
import type { CommitStore, StoreEntry, StoreErrorKind, WriteGuard } from './port.js';

/** The steps of a commit the memory store can fail. */
export type MemoryStoreStep = 'record' | 'purge' | 'outcome' | 'dead-letter' | 'send' | 'marker' | 'unmark' | 'timer-index' | 'checkpoint';

/** A failure of the memory store, of a kind the commit tells apart (or none). */
export class MemoryStoreError extends Error {
  constructor(
    message: string,
    readonly kind?: StoreErrorKind,
  ) {
    super(message);
    this.name = 'MemoryStoreError';
  }
}

/** A message stored in a stream of the memory store (dead letters, sends). */
export interface MemoryMessage {
  subject: string;
  data: Uint8Array;
  msgId: string;
  headers: ReadonlyArray<readonly [string, string]>;
}

export interface MemoryCommitStoreOptions {
  /** Largest value a write accepts, bytes (larger: a `too-large` failure). Default: no bound. */
  maxValueBytes?: number;
  /** Sends the operations stream takes before it is full (a `stream-full` failure). Default: no bound. */
  maxSends?: number;
  /**
   * Called at each step, `when` before it takes effect and after: throwing fails the step
   * there (after: the write is stored, its caller sees it fail, as with a lost ack).
   */
  inject?: (step: MemoryStoreStep, key: string, when: 'before' | 'after') => void;
}

interface Versioned {
  revision: number;
  value: Uint8Array;
  deleted: boolean;
}

/** A bucket: the last entry of each key, revisions counted over the bucket as in a stream. */
class MemoryBucket {
  private seq = 0;
  readonly entries = new Map<string, Versioned>();

  get(key: string): StoreEntry | null {
    const e = this.entries.get(key);
    return e ? { revision: e.revision, value: e.value, deleted: e.deleted } : null;
  }

  put(key: string, value: Uint8Array, expectedRevision?: number, deleted = false): number {
    const last = this.entries.get(key)?.revision ?? 0;
    if (expectedRevision !== undefined && expectedRevision !== last) {
      throw new MemoryStoreError(`wrong last sequence: ${last} (expected ${expectedRevision})`, 'conflict');
    }
    this.entries.set(key, { revision: ++this.seq, value, deleted });
    return this.seq;
  }
}

/** The commit store in memory; its buckets and streams are open for tests to read. */
export class MemoryCommitStore implements CommitStore {
  readonly state = new MemoryBucket();
  readonly outcomes = new MemoryBucket();
  readonly control = new MemoryBucket();
  readonly timers = new MemoryBucket();
  readonly deadLetters: MemoryMessage[] = [];
  readonly sends: MemoryMessage[] = [];
  private readonly msgIds = new Set<string>();

  constructor(private readonly o: MemoryCommitStoreOptions = {}) {}

  private async step<T>(step: MemoryStoreStep, key: string, guard: WriteGuard | undefined, value: Uint8Array | undefined, write: () => T): Promise<T> {
    await Promise.resolve();
    if (guard && !guard()) throw new FencedError(`lease not held, refusing to write ${key}`);
    this.o.inject?.(step, key, 'before');
    if (value && this.o.maxValueBytes !== undefined && value.length > this.o.maxValueBytes) {
      throw new MemoryStoreError(`message size exceeds maximum allowed (${value.length} bytes)`, 'too-large');
    }
    const out = write();
    this.o.inject?.(step, key, 'after');
    return out;
  }

  private publishOnce(to: MemoryMessage[], m: MemoryMessage): void {
    // Duplicates are dropped by msg id, as a stream does within its duplicate window.
    if (this.msgIds.has(m.msgId)) return;
    if (to === this.sends && this.o.maxSends !== undefined && this.sends.length >= this.o.maxSends) {
      throw new MemoryStoreError('insufficient resources: the stream is full', 'stream-full');
    }
    this.msgIds.add(m.msgId);
    to.push(m);
  }

  readRecord(key: string): Promise<StoreEntry | null> {
    return Promise.resolve(this.state.get(key));
  }

  writeRecord(key: string, body: Uint8Array, expectedRevision: number, guard: WriteGuard): Promise<number> {
    return this.step('record', key, guard, body, () => this.state.put(key, body, expectedRevision));
  }

  purgeRecord(key: string, revision: number): Promise<void> {
    return this.step('purge', key, undefined, undefined, () => {
      // A purge up to the tombstone's revision: a newer write survives it.
      if ((this.state.entries.get(key)?.revision ?? 0) <= revision) this.state.entries.delete(key);
    });
  }

  writeOutcome(seq: number, body: Uint8Array): Promise<void> {
    return this.step('outcome', String(seq), undefined, body, () => void this.outcomes.put(String(seq), body));
  }

  publishDeadLetter(subject: string, data: Uint8Array, headers: MsgHdrs, msgId: string): Promise<void> {
    const pairs: Array<[string, string]> = [];
    for (const [k, v] of headers) for (const x of v) pairs.push([k, x]);
    return this.step('dead-letter', msgId, undefined, data, () => this.publishOnce(this.deadLetters, { subject, data, msgId, headers: pairs }));
  }

  publishSend(subject: string, data: Uint8Array, msgId: string, headers: ReadonlyArray<readonly [string, string]>, guard: WriteGuard): Promise<void> {
    return this.step('send', msgId, guard, data, () => this.publishOnce(this.sends, { subject, data, msgId, headers }));
  }

  listMarkers(p: number): Promise<string[]> {
    const prefix = controlKeys.unsent(p, '');
    const keys = [...this.control.entries].filter(([k, e]) => k.startsWith(prefix) && !e.deleted).map(([k]) => k.slice(prefix.length));
    return Promise.resolve(keys);
  }

  writeMarker(p: number, key: string, guard: WriteGuard): Promise<void> {
    return this.step('marker', key, guard, undefined, () => void this.control.put(controlKeys.unsent(p, key), new Uint8Array(0)));
  }

  deleteMarker(p: number, key: string, guard: WriteGuard): Promise<void> {
    return this.step('unmark', key, guard, undefined, () => void this.control.put(controlKeys.unsent(p, key), new Uint8Array(0), undefined, true));
  }

  scanTimerEntries(p: number, each: (stateKey: string, revision: number, value: Uint8Array | null) => void): Promise<void> {
    const prefix = `${p}.`;
    for (const [k, e] of this.timers.entries) if (k.startsWith(prefix)) each(k.slice(prefix.length), e.revision, e.deleted ? null : e.value);
    return Promise.resolve();
  }

  writeTimerEntry(p: number, stateKey: string, value: Uint8Array, expectedRevision: number, guard: WriteGuard): Promise<number> {
    return this.step('timer-index', stateKey, guard, value, () => this.timers.put(`${p}.${stateKey}`, value, expectedRevision));
  }

  readCheckpoint(p: number, lane?: string): Promise<StoreEntry | null> {
    return Promise.resolve(this.control.get(controlKeys.checkpoint(p, lane)));
  }

  writeCheckpoint(p: number, lane: string | undefined, value: Uint8Array, expectedRevision: number, guard: WriteGuard): Promise<number> {
    return this.step('checkpoint', controlKeys.checkpoint(p, lane), guard, value, () => this.control.put(controlKeys.checkpoint(p, lane), value, expectedRevision));
  }

  errorKind(err: unknown): StoreErrorKind | undefined {
    return err instanceof MemoryStoreError ? err.kind : undefined;
  }
}
