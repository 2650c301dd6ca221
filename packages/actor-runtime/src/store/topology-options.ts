/** Options of the stream and buckets a deployment provisions, and their defaults. */
import type { ActorNames } from '../protocol/index.js';

/** How the stream and buckets are created. */
export interface TopologyOptions {
  /** Stream, subject and bucket names. */
  names: ActorNames;
  /** Number of partitions; fixed when the stream is created. Default 32. */
  partitions: number;
  /** Replicas of the stream and buckets (1, or 3 in a cluster). Default 1. */
  replicas: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped, in ms. Default 120000 (2 min). */
  duplicateWindowMs: number;
  /**
   * Bound of the operations stream in bytes; when it is reached, new operations are refused
   * (discard new) rather than old ones dropped. 0 or less: no bound. Default 1 GiB.
   * Applied operations are purged by the workers (see `retainMs`), so the bound is reached
   * only while workers fall behind.
   */
  maxBytes: number;
  /**
   * How long applied operations stay in the stream before the workers purge them, in ms
   * (at least the duplicate window: a retried publish is compared with its original).
   * Default 1 hour. Unapplied operations are never purged, however old.
   */
  retainMs: number;
  /** Largest operation payload the stream accepts, in bytes. Default 65536. */
  maxPayloadBytes: number;
  /** How long dead letters are kept, in ms; 0: no age bound. Default 14 days. */
  dlqMaxAgeMs: number;
  /**
   * Bound of the dead-letter stream in bytes: past it the oldest dead letters are dropped
   * (invalid traffic must not fill the disk). 0: no bound. Default 256 MiB.
   */
  dlqMaxBytes: number;
  /** Most dead letters kept; past it the oldest are dropped. 0: no bound. Default 1,000,000. */
  dlqMaxMsgs: number;
}

/** Default {@link TopologyOptions}. */
export function defaultTopology(names: ActorNames, overrides: Partial<Omit<TopologyOptions, 'names'>> = {}): TopologyOptions {
  return {
    names,
    partitions: 32,
    replicas: 1,
    duplicateWindowMs: 120_000,
    maxBytes: 1024 ** 3,
    retainMs: 3600_000,
    maxPayloadBytes: 64 * 1024,
    dlqMaxAgeMs: 14 * 24 * 3600_000,
    dlqMaxBytes: 256 * 1024 ** 2,
    dlqMaxMsgs: 1_000_000,
    ...overrides,
  };
}
