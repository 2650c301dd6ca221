/** The worker's options, hooks and public interface, and how options are validated. */
import { hostname } from 'node:os';
import { nuid, type NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { AnyActorDefinition } from './definition/define-actor.js';
import { ConfigError, defaultNames, type ActorNames } from './protocol/index.js';
import type { ProcessorHooks } from './processing/partition-processor.js';
import { defaultTopology, type TopologyOptions } from './store/topology-options.js';

/** Options of {@link createWorker}. Durations are in milliseconds. */
export interface WorkerOptions {
  /** A connected NATS client; the worker does not close it. */
  nc: NatsConnection;
  /** The actor definitions this worker hosts. */
  actors: readonly AnyActorDefinition[];
  /** Member id, unique per process. Default `<host>-<pid>-<random>`. */
  id?: string;
  /** Stream, subject and bucket names. */
  names?: Partial<ActorNames>;
  /**
   * The service (lane) this worker belongs to: workers of one service host the same actor types
   * and share its partitions; each service applies only its own types (README, "Services and
   * versions"). Default: derived from the hosted types, so workers hosting the same types form
   * one service with no setting. Letters, digits, '_' and '-', starting with a letter.
   */
  service?: string;
  /** Partitions of a new stream (`ACTORS_PARTITIONS`). Default 32. */
  partitions?: number;
  /** Replicas of the stream and buckets. Default 1. */
  replicas?: number;
  /** A lease not renewed for this long may be taken by another worker. Default 5000. */
  leaseTtlMs?: number;
  /** How often leases and the membership heartbeat are renewed. Default 1000. */
  heartbeatMs?: number;
  /** Largest number of operations in one commit. Default 5000. */
  maxBatch?: number;
  /**
   * How partitions read the stream: `shared` (default), one unfiltered reader for every
   * partition the worker owns, skipping the others' operations (cheapest for nats-server), or
   * `partition`, one consumer filtered to each partition.
   */
  readMode?: 'shared' | 'partition';
  /** Bound of the in-memory record cache (entries); any value >= 1 works. Default 200000. */
  maxCachedRecords?: number;
  /**
   * Largest state (and result) a handler may return, as JSON bytes; larger is the operation's
   * `STATE_TOO_LARGE` error. Default and upper bound: the server's max_payload less 1 KiB.
   */
  maxStateBytes?: number;
  /** How often the owner of partition 0 purges applied operations from the stream, ms. Default 5000. */
  retentionIntervalMs?: number;
  /** Logger (pino). Default: pino at `LOG_LEVEL` or info. */
  logger?: Logger;
  /** Observers of commits, errors and ownership changes. */
  hooks?: WorkerHooks;
  /** Extra topology settings (duplicate window, retention, byte bound, payload limit). */
  topology?: Partial<Omit<TopologyOptions, 'names' | 'partitions' | 'replicas'>>;
  /**
   * Provision the subject bindings (`subscribe`) of the hosted types at start: capture streams
   * and the operations stream's sources. Default true; false where an operator provisions them
   * (`provisionBindings`) and workers lack the permissions.
   */
  provisionBindings?: boolean;
}

/** Observers of a worker. */
export interface WorkerHooks extends ProcessorHooks {
  /** Operations between a partition's checkpoint and the stream's first message were removed by someone else. */
  onGap?(info: { partition: number; checkpoint: number; firstSeq: number }): void;
  /** This worker took a partition (after its lease was acquired and reading started). */
  onAcquire?(info: { partition: number; epoch: number; checkpoint: number; ms: number }): void;
  /** This worker released a partition (graceful) or lost it (fenced, failed). */
  onRelease?(info: { partition: number; reason: 'rebalance' | 'shutdown' | 'fenced' | 'failed' }): void;
}

/** A running worker. */
export interface Worker {
  /** Member id. */
  readonly id: string;
  /** Provisions the stream and buckets, joins the membership and starts owning partitions. */
  start(): Promise<void>;
  /** Graceful leave: commits, checkpoints and releases every partition, then leaves. */
  stop(): Promise<void>;
  /** Partitions this worker reads now. */
  ownedPartitions(): number[];
  /** Per-partition checkpoint, lag and pending timers (the timer heap's entries: one per timer the partition's actors hold) of what this worker owns. */
  partitionStatus(): Array<{ partition: number; checkpoint: number; lag: number; epoch: number; timers: number }>;
  /** Resolves once the worker owns exactly the partitions the assignment gives it. */
  settled(): boolean;
}

/** Validates worker options and fills defaults; throws {@link ConfigError} naming the field. */
export function resolveWorkerOptions(o: WorkerOptions) {
  const positiveInt = (name: string, v: number | undefined, def: number, min = 1): number => {
    const value = v ?? def;
    if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${String(v)}`);
    return value;
  };
  if (!o.actors || o.actors.length === 0) throw new ConfigError('actors: at least one actor definition is needed');
  const heartbeatMs = positiveInt('heartbeatMs', o.heartbeatMs, 1000, 10);
  const leaseTtlMs = positiveInt('leaseTtlMs', o.leaseTtlMs, 5000, 100);
  if (leaseTtlMs < heartbeatMs * 2) throw new ConfigError(`leaseTtlMs (${leaseTtlMs}) must be at least twice heartbeatMs (${heartbeatMs})`);
  const names = defaultNames(o.names);
  const id = o.id ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${nuid.next().slice(-6)}`;
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new ConfigError(`id '${id}' may contain only letters, digits, '_' and '-'`);
  if (o.service !== undefined && (typeof o.service !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(o.service))) {
    throw new ConfigError(`service must be 1-64 letters, digits, '_' or '-', starting with a letter; got ${JSON.stringify(o.service)}`);
  }
  return {
    id,
    service: o.service,
    names,
    heartbeatMs,
    leaseTtlMs,
    maxBatch: positiveInt('maxBatch', o.maxBatch, 5000),
    readMode: readModeOf(o.readMode),
    maxCachedRecords: positiveInt('maxCachedRecords', o.maxCachedRecords, 200_000),
    maxStateBytes: o.maxStateBytes === undefined ? undefined : positiveInt('maxStateBytes', o.maxStateBytes, 1, 2),
    retentionIntervalMs: positiveInt('retentionIntervalMs', o.retentionIntervalMs, 5000, 10),
    provisionBindings: o.provisionBindings ?? true,
    topology: defaultTopology(names, {
      ...o.topology,
      partitions: positiveInt('partitions', o.partitions, 32),
      replicas: positiveInt('replicas', o.replicas, 1),
    }),
  };
}

function readModeOf(v: unknown): 'shared' | 'partition' {
  if (v === undefined) return 'shared';
  if (v === 'shared' || v === 'partition') return v;
  throw new ConfigError(`readMode must be 'shared' or 'partition', got ${JSON.stringify(v)}`);
}
