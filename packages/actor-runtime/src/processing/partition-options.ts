/** The options of a partition processor (partition-processor.ts). */
import type { NatsConnection } from '@nats-io/nats-core';
import type { ActorNames } from '../protocol/index.js';
import type { Topology } from '../store/provision.js';
import type { CommitterOptions, ProcessorHooks } from './commit-types.js';

/** Options of a `PartitionProcessor`: the committer's, less what the processor makes itself. */
export interface PartitionProcessorOptions extends Omit<CommitterOptions, 'store' | 'aborted' | 'hooks' | 'timers' | 'nc' | 'topology' | 'names'> {
  nc: NatsConnection;
  topology: Topology;
  names: ActorNames;
  /** Largest number of operations folded into one commit. */
  maxBatch: number;
  /**
   * Read through the worker's one unfiltered reader of the stream (the `SharedReader` of shared-reader.ts)
   * instead of a consumer filtered to this partition. Default false.
   */
  sharedRead?: boolean;
  /**
   * With `sharedRead`: read with this partition's own consumer until a commit succeeded and
   * the partition caught up, then move to the shared reader. A partition restarted after
   * failures does this, so its rewinds to the checkpoint do not make the shared reader re-read
   * every other partition's backlog.
   */
  readAloneUntilProgress?: boolean;
  /** Called after every successful commit of operations (and only then: it resets the restart backoff). */
  onProgress?: () => void;
  hooks?: ProcessorHooks & {
    /** Operations between the checkpoint and the stream's first message are gone (not by jetactor's own purge). */
    onGap?(info: { partition: number; checkpoint: number; firstSeq: number }): void;
  };
}
