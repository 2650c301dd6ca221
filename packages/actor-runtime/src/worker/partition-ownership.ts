/**
 * The partitions one worker owns: the reconcile that takes and gives back leases and starts,
 * restarts and stops their processors (ownership/reconcile.ts plans it), the lease renewals,
 * and the hand-over of everything when the worker stops.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { AnyActorDefinition } from '../definition/define-actor.js';
import type { ControlView } from '../ownership/control-view.js';
import { acquireLease, renewLease, type Owned } from '../ownership/leases.js';
import { releasePartition, startPartition, type LifecycleHost } from '../ownership/partition-lifecycle.js';
import { planReconcile, type HeldView } from '../ownership/reconcile.js';
import type { BindingMovers } from '../processing/binding-movers.js';
import type { PartitionProcessor } from '../processing/partition-processor.js';
import type { RecordCache } from '../processing/record-cache.js';
import type { Topology } from '../store/provision.js';
import type { resolveWorkerOptions, WorkerHooks } from '../worker-options.js';
import { logOwnership, type OwnershipChange } from './ownership-log.js';
import type { PlacementView } from './placement-view.js';

/** The worker as its partitions' ownership needs it. */
export interface OwnershipHost {
  readonly id: string;
  readonly lane: string;
  readonly nc: NatsConnection;
  readonly cfg: ReturnType<typeof resolveWorkerOptions>;
  readonly actors: ReadonlyMap<string, AnyActorDefinition>;
  readonly cache: RecordCache;
  readonly log: Logger;
  readonly hooks: WorkerHooks;
  readonly view: ControlView;
  readonly placement: PlacementView;
  readonly movers: BindingMovers;
  topology(): Topology | null;
  /** True while the worker leaves. */
  stopping(): boolean;
  recover(reason: string): void;
}

/** The partitions one worker owns, and the changes that take and give them back. */
export class PartitionOwnership {
  readonly owned = new Map<number, Owned>();
  private readonly acquiring = new Set<number>();
  private readonly acquireJobs = new Set<Promise<void>>();
  /** Each reconcile's ownership changes until they settle and are logged. */
  private readonly changing = new Set<Promise<void>>();
  private reconcileQueued = false;
  private reconciling: Promise<void> = Promise.resolve();
  private readonly lifecycle: LifecycleHost;

  constructor(private readonly h: OwnershipHost) {
    this.lifecycle = {
      nc: h.nc,
      cfg: h.cfg,
      actors: h.actors,
      cache: h.cache,
      log: h.log,
      hooks: h.hooks,
      owned: this.owned,
      topology: () => h.topology(),
      lane: h.lane,
      placement: () => h.placement.now(),
      laneIds: () => h.placement.laneIds(),
      lose: (o, err) => this.lose(o, err),
      recover: (reason) => h.recover(reason),
      scheduleReconcile: () => this.scheduleReconcile(),
    };
  }

  /** True once the worker owns exactly the partitions the assignment gives it, each running. */
  settled(): boolean {
    const want = this.h.placement.desired();
    if (want.size !== this.owned.size) return false;
    for (const p of want) if (!this.owned.get(p)?.running) return false;
    return true;
  }

  async renewAll(): Promise<void> {
    const control = this.h.topology()?.control;
    if (!control) return;
    await Promise.all(
      [...this.owned.values()].map(async (o) => {
        const lost = await renewLease(control, o, this.h.id, this.h.cfg.leaseTtlMs, (err) =>
          this.h.log.warn({ partition: o.partition, err: String(err) }, 'lease renewal failed'),
        );
        if (lost) this.lose(o, lost);
      }),
    );
  }

  lose(o: Owned, err: Error): void {
    if (this.owned.get(o.partition) !== o) return;
    o.proc?.abort();
    this.owned.delete(o.partition);
    this.h.log.warn({ partition: o.partition, epoch: o.epoch, reason: err.message }, 'partition lost (fenced)');
    this.h.hooks.onRelease?.({ partition: o.partition, reason: 'fenced' });
  }

  scheduleReconcile(): void {
    if (this.reconcileQueued) return;
    this.reconcileQueued = true;
    this.reconciling = this.reconciling.then(() => {
      this.reconcileQueued = false;
      try {
        this.reconcile();
      } catch (err) {
        this.h.log.error({ err }, 'reconcile failed');
      }
    });
  }

  private reconcile(): void {
    if (!this.h.topology()) return;
    const stopping = this.h.stopping();
    const held = new Map<number, HeldView>();
    for (const [p, o] of this.owned) held.set(p, { releasing: o.releasing, hasProcessor: o.proc !== null, restartAt: o.restartAt, validUntil: o.validUntil });
    const plan = planReconcile({
      want: this.h.placement.desired(),
      held,
      acquiring: this.acquiring,
      leases: this.h.view.leasesOf(this.h.lane),
      selfId: this.h.id,
      leaseTtlMs: this.h.cfg.leaseTtlMs,
      now: performance.now(),
      serverNow: this.h.view.serverNow(),
      leaving: stopping,
    });
    const t0 = performance.now();
    const reason = stopping ? 'shutdown' : 'rebalance';
    const change: OwnershipChange = { acquired: [], restarted: [], released: [], reason };
    const jobs: Promise<void>[] = [];
    // Each job notes its partition once it took effect (a lost race or a failure does not count).
    const noted = (job: Promise<void>, p: number, into: number[], tookEffect: () => boolean) =>
      job.then(() => {
        if (tookEffect()) into.push(p);
      });
    for (const p of plan.release) {
      const o = this.owned.get(p) as Owned;
      jobs.push(noted(this.release(o, reason), p, change.released, () => this.owned.get(p) !== o));
    }
    const running = (p: number) => () => this.owned.get(p)?.running === true;
    for (const p of plan.restart) jobs.push(noted(this.startProcessor(this.owned.get(p) as Owned), p, change.restarted, running(p)));
    for (const a of plan.acquire) jobs.push(noted(this.acquire(a.partition, a.observedRev), a.partition, change.acquired, running(a.partition)));
    // The lane's duties changed (a lane hosting some of its types started or stopped): each
    // running processor commits and starts again with the new ones.
    const duties = this.h.placement.now().dutiesOf(this.h.lane).join(',');
    for (const o of this.owned.values()) {
      if (o.running && o.proc && !o.releasing && o.duties !== duties && !plan.release.includes(o.partition)) {
        jobs.push(noted(this.restartForDuties(o), o.partition, change.restarted, running(o.partition)));
      }
    }
    if (jobs.length === 0) return;
    // Releases and acquisitions run in the background; reconcile itself must not block the watch.
    const settled = jobs.map((j) => j.catch((err: unknown) => this.h.log.error({ err }, 'ownership change failed')));
    const logged = Promise.all(settled).then(() => {
      logOwnership(this.h.log, change, t0, this.ownedPartitions().length, this.h.topology()?.partitions);
      this.h.movers.sync();
    });
    this.changing.add(logged);
    void logged.finally(() => this.changing.delete(logged));
  }

  private acquire(p: number, observedRev: number): Promise<void> {
    const job = this.doAcquire(p, observedRev);
    this.acquireJobs.add(job);
    void job.finally(() => this.acquireJobs.delete(job));
    return job;
  }

  private async doAcquire(p: number, observedRev: number): Promise<void> {
    const control = this.h.topology()?.control;
    if (!control) return;
    this.acquiring.add(p);
    const t0 = performance.now();
    try {
      const o = await acquireLease(control, p, observedRev, this.h.id, this.h.cfg.leaseTtlMs, this.h.lane);
      if (!o) return; // someone else won
      this.owned.set(p, o);
      await this.startProcessor(o, t0);
    } catch (err) {
      this.h.log.warn({ partition: p, err: String(err) }, 'acquire failed');
    } finally {
      this.acquiring.delete(p);
    }
  }

  private startProcessor(o: Owned, t0 = performance.now()): Promise<void> {
    return startPartition(this.lifecycle, o, t0);
  }

  /** Commits and stops `o`'s processor, then starts a new one with the lane's current duties. */
  private async restartForDuties(o: Owned): Promise<void> {
    const proc = o.proc;
    if (!proc) return;
    // Detached first: its end is asked for, not a failure to restart from.
    o.proc = null;
    o.running = false;
    try {
      await proc.stop();
    } catch (err) {
      this.h.log.warn({ partition: o.partition, err: String(err) }, 'final commit before a change of duties failed; restarting from the checkpoint');
    }
    if (this.owned.get(o.partition) !== o || o.releasing || this.h.stopping()) return;
    await this.startProcessor(o);
  }

  private release(o: Owned, reason: 'rebalance' | 'shutdown'): Promise<void> {
    return releasePartition(this.lifecycle, o, reason);
  }

  /**
   * Hands every partition over (the worker stops): waits for the reconcile and acquisitions
   * under way, releases what is owned (final commits), and waits for the changes a reconcile
   * started. Resolves with the partitions this released.
   */
  async handOver(): Promise<number[]> {
    const released: number[] = [];
    await this.reconciling;
    await Promise.all([...this.acquireJobs]);
    await Promise.all(
      [...this.owned.values()].map((o) =>
        o.releasing
          ? (o.proc?.done ?? Promise.resolve()).catch(() => undefined)
          : this.release(o, 'shutdown').then(() => {
              if (this.owned.get(o.partition) !== o) released.push(o.partition);
            }),
      ),
    );
    // Hand-overs a reconcile started (the leave above triggers one) finish and are logged too.
    await Promise.all([...this.changing]);
    return released;
  }

  /** Owned partitions whose processor waits for a newer version of a type. */
  waitingPartitions(): number[] {
    return [...this.owned.values()].filter((o) => (o.waitsForNewer ?? 0) > 0).map((o) => o.partition).sort((a, b) => a - b);
  }

  ownedPartitions(): number[] {
    return [...this.owned.values()].filter((o) => o.running).map((o) => o.partition).sort((a, b) => a - b);
  }

  partitionStatus(): Array<{ partition: number; checkpoint: number; lag: number; epoch: number; timers: number }> {
    return [...this.owned.values()]
      .filter((o): o is Owned & { proc: PartitionProcessor } => o.proc !== null && o.running)
      .map((o) => ({ partition: o.partition, checkpoint: o.proc.checkpoint, lag: o.proc.lag, epoch: o.epoch, timers: o.proc.timers.size }))
      .sort((a, b) => a.partition - b.partition);
  }
}
