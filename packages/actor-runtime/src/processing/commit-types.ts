/** What the committer of a batch works with, and what it reports. */
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { type BlockedAt, type ErrorBody, type ActorNames } from '../protocol/index.js';
import type { Failure, UnknownOperationAction } from './key-fold.js';
import type { StoredTimer } from '../store/records.js';
import type { Topology } from '../store/provision.js';
import type { CommitStore } from './commit-store/port.js';
import type { CachedRecord, RecordCache } from './record-cache.js';
import type { Duty } from '../ownership/placement.js';


/** Observations the processor reports (metrics, logs, tests). */
export interface ProcessorHooks {
  /** A batch was committed. */
  onCommit?(info: {
    partition: number;
    ops: number;
    keys: number;
    errors: number;
    commitMs: number;
    checkpoint: number;
    /** Applied operations by `<type>.<op>`. */
    byOperation: Record<string, number>;
  }): void;
  /** An operation failed and is a dead letter: bad payload or names, unknown actor or op, a handler's throw that is no `ActorError`, unstorable outcome, failed migration. */
  onOperationError?(info: { partition: number; type: string; key: string; op: string; seq: number; error: ErrorBody; subject: string; payload: Uint8Array }): void;
  /** A handler refused an operation on purpose (threw an `ActorError` of its own): an outcome, answered and kept, not a dead letter. */
  onOperationRefused?(info: { partition: number; type: string; key: string; op: string; seq: number; error: ErrorBody }): void;
  /**
   * The partition stopped at an operation it must not apply or dead-letter (a record a newer
   * version wrote, or an unknown operation the {@link CommitterOptions.unknownOperation} action
   * keeps waiting): what came before it is committed, the partition restarts from there after
   * a backoff. Reported at each such stop; the next commit past `seq` ends it.
   */
  onBlocked?(info: BlockedAt & { partition: number }): void;
  /** An operation carried a reply header that is not a literal inbox subject; it was applied and not answered. */
  onRefusedReply?(info: { partition: number; seq: number; reply: string }): void;
}

/** The timer index as the commit sees it (timer-index.ts): it follows each record's timers. */
export interface CommitTimers {
  /** Makes the index hold exactly `timers` for `stateKey` (a write before the checkpoint). */
  sync(stateKey: string, timers: readonly StoredTimer[] | undefined): Promise<void>;
}

/** What a {@link BatchCommitter} works with. */
export interface CommitterOptions {
  partition: number;
  /** Fencing epoch: the lease revision at acquisition. */
  epoch: number;
  /** Where replies go (core publishes to callers' inboxes). */
  nc: Pick<NatsConnection, 'publish'>;
  /** What the commit needs of the topology: the incarnations, the partitions, the msg-id salt. */
  topology: Pick<Topology, 'salt' | 'streamCreated' | 'controlCreated' | 'partitions'>;
  names: Pick<ActorNames, 'stream' | 'subjectPrefix'>;
  /** Where the commit reads and writes (commit-store/port.ts). */
  store: CommitStore;
  actors: ReadonlyMap<string, AnyActorDefinition>;
  cache: RecordCache;
  log: Logger;
  /** Largest serialized state or result, bytes. */
  maxStateBytes: number;
  /** Largest input of a send, bytes (the operations stream's payload bound). Default: `maxStateBytes`. */
  maxSendBytes?: number;
  /** True while the lease is surely held; checked right before every write. */
  leaseValid: () => boolean;
  /** True once the processor was aborted: write nothing more. */
  aborted: () => boolean;
  /** Dead-letter subject of a failed operation; omit to keep no dead letters. */
  deadLetterSubject?: (type: string, key: string, op: string) => string;
  hooks?: ProcessorHooks;
  /** The partition's timer index; each commit makes it follow the records' timers. */
  timers?: CommitTimers;
  /** The lane (service) whose checkpoint this is (ownership/placement.ts); default: the default lane. */
  lane?: string;
  /** What the lane does with each type's operations; absent: applies every one. */
  duty?: (type: string) => Duty;
  /**
   * The types this processor applies (`*`: strays), kept in its checkpoint. When it is not
   * covered by what the checkpoint lists, the partition starts from the lowest checkpoint of
   * any lane, so the types it took over are read from where their previous home left them.
   */
  duties?: readonly string[];
  /** The registered lanes' ids (whose checkpoints the lowest one is taken from). */
  lanes?: () => readonly string[];
  /** What the fold does with an operation the definition does not know (default: dead letter); see fold.ts `unknownOperationAction`. */
  unknownOperation?: UnknownOperationAction;
}


/** The reply body (and kept outcome) of a failed operation. */
export function errorBody(f: Failure): string {
  return JSON.stringify({ error: f.error, seq: f.op.seq });
}

/** The record of a key that was never written. */
export function newRecord(partition: number): CachedRecord {
  return { json: null, seq: 0, revision: 0, partition };
}

