/** The worker's log line of what changed in the partitions it owns. */
import type { Logger } from 'pino';

/** What one reconcile (or a stop) changed in what the worker owns. */
export interface OwnershipChange {
  acquired: number[];
  restarted: number[];
  released: number[];
  reason: 'rebalance' | 'shutdown';
}

/**
 * One info line per reconcile (and per stop) that changed what this worker owns: the
 * partitions taken, restarted after a failure and handed over, and how many it owns now
 * (`owned` of `partitions`). Each partition's own line (epoch, checkpoint, timing) is at debug.
 */
export function logOwnership(log: Logger, change: OwnershipChange, t0: number, owned: number, partitions: number | undefined): void {
  const { acquired, restarted, released, reason } = change;
  if (acquired.length + restarted.length + released.length === 0) return;
  const sorted = (ps: number[]) => (ps.length > 0 ? [...ps].sort((a, b) => a - b) : undefined);
  log.info(
    {
      acquired: sorted(acquired),
      restarted: sorted(restarted),
      released: sorted(released),
      reason: released.length > 0 ? reason : undefined,
      owned,
      partitions,
      ms: Math.round(performance.now() - t0),
    },
    'ownership changed',
  );
}
