/**
 * The life of one owned partition: starting its processor once the lease is held, restarting
 * it after a failure, handing it over gracefully. The worker owns the state; this file holds
 * what happens to it.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import { FencedError, deadLetterSubject } from '../protocol/index.js';
import { PartitionProcessor } from '../processing/partition-processor.js';
import type { RecordCache } from '../processing/record-cache.js';
import type { Topology } from '../store/provision.js';
import type { resolveWorkerOptions, WorkerHooks } from '../worker-options.js';
import { mayWrite, releaseLease, type Owned } from './leases.js';
import type { Placement } from './placement.js';

/** What the lifecycle needs of the worker. */
export interface LifecycleHost {
  readonly nc: NatsConnection;
  readonly cfg: ReturnType<typeof resolveWorkerOptions>;
  readonly actors: ReadonlyMap<string, AnyActorDefinition>;
  readonly cache: RecordCache;
  readonly log: Logger;
  readonly hooks: WorkerHooks;
  readonly owned: Map<number, Owned>;
  topology(): Topology | null;
  /** The worker's lane (service). */
  readonly lane: string;
  /** Which lane applies which type now. */
  placement(): Placement;
  /** The ids of the registered lanes. */
  laneIds(): string[];
  lose(o: Owned, err: Error): void;
  recover(reason: string): void;
  scheduleReconcile(): void;
}

/** Starts the processor of a partition whose lease `o` holds; a failure schedules a restart. */
export async function startPartition(h: LifecycleHost, o: Owned, t0 = performance.now()): Promise<void> {
  const topo = h.topology();
  if (!topo || o.proc) return;
  // The duties are fixed for the processor's life: a change restarts it (worker.ts).
  const placement = h.placement();
  const duties = placement.dutiesOf(h.lane);
  o.duties = duties.join(',');
  const lane = h.lane;
  const proc = new PartitionProcessor({
    lane,
    // What the lane applies is fixed for the processor's life (its checkpoint says so); whether
    // it skips or dead-letters another type follows the live placement (a type registered or
    // removed since: a new service's type is never a stray, a removed one is).
    duty: (type) => {
      if (placement.duty(lane, type) === 'apply') return 'apply';
      const now = h.placement().duty(lane, type);
      return now === 'apply' ? 'skip' : now;
    },
    duties,
    lanes: () => h.laneIds(),
    // An operation this version does not know waits (the partition stops at it) while a newer
    // version of its type is live: that version may know it, and the partition moves to it.
    // A type this worker does not host but its lane applies (a worker of the same service with
    // more types, mid-deploy) waits too, for a worker hosting it.
    unknownOperation: (type) => {
      const now = h.placement();
      if (!h.actors.has(type)) return now.registered.has(type) ? 'wait' : 'dead-letter';
      const newest = Math.max(now.versions.get(type) ?? 0, now.registeredVersions.get(type) ?? 0);
      return newest > (h.actors.get(type)?.version ?? 0) ? 'wait' : 'dead-letter';
    },
    partition: o.partition,
    epoch: o.epoch,
    nc: h.nc,
    topology: topo,
    names: h.cfg.names,
    actors: h.actors,
    cache: h.cache,
    log: h.log,
    maxBatch: h.cfg.maxBatch,
    sharedRead: h.cfg.readMode === 'shared',
    // After failures it reads on its own consumer until it commits again: its rewinds to the
    // checkpoint must not make the shared reader re-read every other partition's backlog.
    readAloneUntilProgress: o.failures > 0,
    // Only a commit counts as getting better: starting says nothing (failures come in commits).
    onProgress: () => {
      o.failures = 0;
    },
    maxStateBytes: maxStateBytes(h),
    maxSendBytes: h.cfg.topology.maxPayloadBytes,
    leaseValid: () => mayWrite(o, h.owned.get(o.partition)),
    deadLetterSubject: (type, key, op) => deadLetterSubject(h.cfg.names, type, key, op),
    hooks: {
      ...h.hooks,
      // A partition waiting for a newer version is reported in the heartbeat, and the lane's
      // newest generation takes it over (reconcile.ts desiredLanePartitions).
      onBlocked: (info) => {
        o.waitsForNewer = info.seq;
        h.hooks.onBlocked?.(info);
      },
      onCommit: (info) => {
        if (o.waitsForNewer && info.checkpoint >= o.waitsForNewer) o.waitsForNewer = 0;
        h.hooks.onCommit?.(info);
      },
    },
  });
  o.proc = proc;
  try {
    await proc.start();
  } catch (err) {
    proc.abort();
    o.proc = null;
    partitionFailed(h, o, err);
    return;
  }
  if (o.releasing || h.owned.get(o.partition) !== o) {
    // Released or lost while starting.
    proc.abort();
    o.proc = null;
    return;
  }
  o.running = true;
  const ms = performance.now() - t0;
  h.log.debug({ partition: o.partition, epoch: o.epoch, checkpoint: proc.checkpoint, ms: Math.round(ms) }, 'partition acquired');
  h.hooks.onAcquire?.({ partition: o.partition, epoch: o.epoch, checkpoint: proc.checkpoint, ms });
  proc.done.then(
    () => {
      // Ended without being asked (consumer closed): restart it.
      if (o.proc === proc && !o.releasing) {
        o.proc = null;
        o.running = false;
        partitionFailed(h, o, new Error('partition reader ended'));
      }
    },
    (err: unknown) => {
      if (o.proc !== proc) return;
      o.proc = null;
      o.running = false;
      if (err instanceof FencedError) h.lose(o, err);
      else partitionFailed(h, o, err, proc.commitFailed);
    },
  );
}


/** First and largest wait before a failed partition restarts, ms (doubling in between). */
const RESTART_BASE_MS = 200;
const RESTART_MAX_MS = 30_000;

/**
 * The wait before the `failures`-th restart in a row: doubling from {@link RESTART_BASE_MS} up
 * to {@link RESTART_MAX_MS}, drawn from its upper half (jitter: partitions that failed together
 * do not restart together).
 */
export function restartBackoff(failures: number, random = Math.random()): number {
  const ceiling = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.min(Math.max(failures, 1) - 1, 20));
  return Math.round(ceiling / 2 + (random * ceiling) / 2);
}

/**
 * A failure that may mean the stream or a bucket is gone (deleted, a wiped server): worth
 * provisioning again. Other commit failures (a refused or timed-out write) are not, and
 * provisioning costs about ten JetStream API calls.
 */
function mayBeMissingStream(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === JetStreamApiCodes.StreamNotFound;
  return /no stream stores|stream not found|no responders/i.test(String(err));
}

/**
 * A partition's processor failed: restart it from the checkpoint after a backoff that grows
 * until it commits again. A failure outside a commit (start, reading) provisions again.
 */
export function partitionFailed(h: LifecycleHost, o: Owned, err: unknown, inCommit = false): void {
  if (!inCommit || mayBeMissingStream(err)) h.recover(`partition ${o.partition} failed`);
  o.failures++;
  const backoff = restartBackoff(o.failures);
  o.restartAt = performance.now() + backoff;
  h.cache.dropPartition(o.partition);
  h.log.warn({ partition: o.partition, err: String(err), failures: o.failures, retryInMs: backoff }, 'partition processing failed; restarting from checkpoint');
  setTimeout(() => h.scheduleReconcile(), backoff).unref?.();
}

/** Graceful hand-over: final commit and checkpoint, then the lease is deleted. */
export async function releasePartition(h: LifecycleHost, o: Owned, reason: 'rebalance' | 'shutdown'): Promise<void> {
  const control = h.topology()?.control;
  if (!control) return;
  o.releasing = true;
  h.log.debug({ partition: o.partition, reason }, 'releasing partition');
  try {
    await o.proc?.stop();
  } catch (err) {
    h.log.warn({ partition: o.partition, err: String(err) }, 'final commit failed; the next owner replays from the checkpoint');
  }
  try {
    await releaseLease(control, o);
  } catch (err) {
    h.log.warn({ partition: o.partition, err: String(err) }, 'lease delete failed; it will expire');
  }
  if (h.owned.get(o.partition) === o) h.owned.delete(o.partition);
  h.cache.dropPartition(o.partition);
  h.log.debug({ partition: o.partition, reason }, 'partition released');
  h.hooks.onRelease?.({ partition: o.partition, reason });
}


/** The configured state bound, never above what one NATS message can carry with the record around it. */
function maxStateBytes(h: LifecycleHost): number {
  const serverMax = (h.nc.info?.max_payload ?? 1024 * 1024) - 1024;
  return Math.min(h.cfg.maxStateBytes ?? serverMax, serverMax);
}
