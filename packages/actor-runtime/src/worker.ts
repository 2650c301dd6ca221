/**
 * The worker: wiring of ownership (control view, membership heartbeat, leases, the pure
 * reconcile plan, retention) and processing (one partition processor per owned partition).
 * Data flows one way: the control view and the clock feed the plan; the plan's actions take
 * or give back leases and start or stop processors; processors report back by settling.
 */
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/nats-core';
import { pino, type Logger } from 'pino';
import type { AnyActorDefinition } from './definition/define-actor.js';
import { ConfigError, FencedError, controlKeys } from './protocol/index.js';
import { ControlView } from './ownership/control-view.js';
import { acquireLease, mayWrite, renewLease, type Owned } from './ownership/leases.js';
import { laneIdOf, Placement, type LaneRecord, type LiveMember } from './ownership/placement.js';
import { desiredLanePartitions, liveMembers, planReconcile, type HeldView } from './ownership/reconcile.js';
import { partitionFailed, releasePartition, startPartition, type LifecycleHost } from './ownership/partition-lifecycle.js';
import { RetentionLoop } from './ownership/retention.js';
import { BindingMovers } from './processing/binding-mover.js';
import type { PartitionProcessor } from './processing/partition-processor.js';
import { RecordCache } from './processing/record-cache.js';
import { captureType, provisionBindings } from './store/bindings.js';
import { provisionTopology, type Topology } from './store/provision.js';
import { decodeJson, encodeJson, type MemberRecord } from './store/records.js';
import { resolveWorkerOptions, type Worker, type WorkerHooks, type WorkerOptions } from './worker-options.js';

export { resolveWorkerOptions } from './worker-options.js';

/** What one reconcile (or a stop) changed in what the worker owns. */
interface OwnershipChange {
  acquired: number[];
  restarted: number[];
  released: number[];
  reason: 'rebalance' | 'shutdown';
}
export type { Worker, WorkerHooks, WorkerOptions } from './worker-options.js';

/**
 * Creates a worker that hosts `actors`: it joins the membership in the control bucket,
 * takes the partitions the assignment gives it (leases with CAS, the lease revision is
 * the fencing epoch) and applies their operations.
 */
export function createWorker(opts: WorkerOptions): Worker {
  return new WorkerImpl(opts);
}

class WorkerImpl implements Worker {
  readonly id: string;
  /** The lane (service) this worker belongs to (ownership/placement.ts). */
  readonly lane: string;
  /** The hosted types and their versions, as the heartbeat and the lane's registration say. */
  private readonly types: Record<string, number>;
  private readonly cfg: ReturnType<typeof resolveWorkerOptions>;
  private readonly nc: NatsConnection;
  private readonly log: Logger;
  private readonly actors: Map<string, AnyActorDefinition>;
  private readonly cache: RecordCache;
  private readonly hooks: WorkerHooks;
  private readonly view: ControlView;
  private topology: Topology | null = null;
  private readonly owned = new Map<number, Owned>();
  private readonly acquiring = new Set<number>();
  private readonly acquireJobs = new Set<Promise<void>>();
  /** Each reconcile's ownership changes until they settle and are logged. */
  private readonly changing = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private ticking = false;
  private reconcileQueued = false;
  private reconciling: Promise<void> = Promise.resolve();
  private readonly startedAt = new Date().toISOString();
  private retention: RetentionLoop | null = null;
  private nextRetentionAt = 0;
  private recovering: Promise<void> | null = null;
  private readonly lifecycle: LifecycleHost;
  /** Moves the bindings' capture streams of the partitions this worker owns into the operations stream. */
  private readonly movers: BindingMovers;

  constructor(opts: WorkerOptions) {
    this.cfg = resolveWorkerOptions(opts);
    this.id = this.cfg.id;
    this.nc = opts.nc;
    this.log = (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ worker: this.id });
    this.actors = new Map(opts.actors.map((a) => [a.type, a]));
    if (this.actors.size !== opts.actors.length) throw new ConfigError('actors: two definitions share a type');
    const hosted: Array<[string, number]> = [...this.actors.values()].map((a) => [a.type, a.version]);
    this.types = Object.fromEntries(hosted.sort(([a], [b]) => (a < b ? -1 : 1)));
    this.lane = laneIdOf(Object.keys(this.types), this.cfg.service);
    this.cache = new RecordCache(this.cfg.maxCachedRecords);
    this.hooks = opts.hooks ?? {};
    this.view = new ControlView(this.id, this.log, () => {
      this.placementCache = null;
      this.scheduleReconcile();
    });
    this.movers = new BindingMovers(this.nc, this.log, (p, capture) => {
      const o = this.owned.get(p);
      // The lease is what counts, not the processor: a processor restarting after a failure
      // (a server restart) does not stop its partition's bindings.
      if (!o || o.releasing || this.stopping) return undefined;
      // Every lane owns every partition: one lane moves a capture, the home of its type (or, while
      // no live lane hosts the type, the lane that dead-letters strays; the type then waits in the stream).
      const placement = this.placementNow();
      const type = captureType(this.cfg.names, capture);
      if ((type !== undefined ? (placement.homes.get(type) ?? placement.strayLane) : placement.strayLane) !== this.lane) return undefined;
      return { token: o, guard: () => !o.releasing && mayWrite(o, this.owned.get(p)) };
    });
    this.lifecycle = {
      nc: this.nc,
      cfg: this.cfg,
      actors: this.actors,
      cache: this.cache,
      log: this.log,
      hooks: this.hooks,
      owned: this.owned,
      topology: () => this.topology,
      lane: this.lane,
      placement: () => this.placementNow(),
      laneIds: () => this.laneIds(),
      lose: (o, err) => this.lose(o, err),
      recover: (reason) => this.recover(reason),
      scheduleReconcile: () => this.scheduleReconcile(),
    };
  }

  async start(): Promise<void> {
    const topo = await provisionTopology(this.nc, this.cfg.topology);
    await this.provisionBindings(topo);
    this.topology = topo;
    this.retention = new RetentionLoop(() => this.topology, this.cfg.names, this.cfg.topology.retainMs, this.log, this.cfg.topology.duplicateWindowMs, () => this.laneIds());
    this.log.info(
      { partitions: topo.partitions, stream: this.cfg.names.stream, server: topo.serverVersion, actors: [...this.actors.keys()] },
      'worker starting',
    );
    // The lane before the heartbeat: a member naming a lane nobody registered would be a home
    // that retention and take-overs do not see.
    await this.registerLane(topo);
    await this.heartbeat();
    await this.view.start(topo.control);
    // Placement needs every lane and member the bucket holds: no partition before they are read.
    await this.view.ready;
    await this.movers.start(topo.control, () => this.topology);
    this.timer = setInterval(() => void this.tick(), this.cfg.heartbeatMs);
    this.timer.unref?.();
    this.scheduleReconcile();
  }

  /** The live members, each with its lane and hosted types (this worker as it is, unless leaving). */
  private liveMembers(): LiveMember[] {
    const live = liveMembers(this.view.members, this.view.serverNow(), this.cfg.leaseTtlMs, this.id, this.stopping);
    return live.map((id) => {
      if (id === this.id) return { id, lane: this.lane, types: this.types, waiting: this.waitingPartitions(), owned: [...this.owned.keys()] };
      const rec = this.view.members.get(id)?.value as MemberRecord | null | undefined;
      // A member of a version before lanes applies every type on the default lane's keys.
      return { id, lane: rec?.lane ?? 'default', types: rec?.types ?? {}, waiting: Array.isArray(rec?.waiting) ? rec.waiting : [], owned: Array.isArray(rec?.partitions) ? rec.partitions : [] };
    });
  }

  /** The registered lanes' ids, this worker's own included. */
  private laneIds(): string[] {
    return [...new Set([...this.view.lanes.keys(), this.lane])];
  }

  private placementCache: { at: number; placement: Placement } | null = null;

  /**
   * Which lane applies which type, from the live members, the registered lanes and the type
   * registry; computed again after each change of the control view, and at least every 200 ms
   * (liveness is judged on the clock).
   */
  private placementNow(): Placement {
    const now = performance.now();
    if (this.placementCache && now - this.placementCache.at < 200) return this.placementCache.placement;
    const placement = new Placement(this.liveMembers(), this.view.lanes.values(), this.view.registry);
    this.placementCache = { at: now, placement };
    return placement;
  }

  private desiredCache: { key: string; want: Set<number> } | null = null;

  /**
   * The partitions the lane's assignment gives this worker, computed again only when what it
   * depends on changed: reconcile runs at every change the control view sees (each lease
   * renewal of every service), and at 512 partitions the assignment was most of an idle
   * worker's CPU.
   */
  private desired(): Set<number> {
    const lane = this.liveMembers().filter((m) => m.lane === this.lane);
    const key = JSON.stringify([this.stopping, lane]);
    if (this.desiredCache?.key === key) return this.desiredCache.want;
    const want = desiredLanePartitions(this.cfg.topology.partitions, lane, this.id, this.stopping);
    this.desiredCache = { key, want };
    return want;
  }

  /**
   * Registers this worker's lane (`lanes.<id>`: its types and versions). A lane whose workers
   * host other types is refused while one of them is live: one lane, one set of types.
   */
  private async registerLane(topo: Topology): Promise<void> {
    const key = controlKeys.lane(this.lane);
    const entry = await topo.control.get(key);
    const stored = entry && entry.operation === 'PUT' ? decodeJson<LaneRecord>(entry.value) : null;
    const same = stored !== null && JSON.stringify(stored.types) === JSON.stringify(this.types);
    if (same) return;
    // The newest version registered for each type stays (an older worker started after a newer
    // one, a rollback: operations only the newer version knows must keep waiting for it).
    const types: Record<string, number> = { ...this.types };
    for (const [t, v] of Object.entries(stored?.types ?? {})) if (t in types && typeof v === 'number' && v > (types[t] ?? 0)) types[t] = v;
    if (stored !== null && JSON.stringify(stored.types) === JSON.stringify(types)) return;
    const now = new Date().toISOString();
    const rec: LaneRecord = { id: this.lane, types, registeredAt: now, seenAt: now };
    await topo.control.put(key, encodeJson(rec));
  }

  private laneSeenAt = 0;

  /** About once a minute, a live worker says in its lane's registration that the lane runs (`seenAt`: how long a service has been inactive). */
  private async touchLane(): Promise<void> {
    const control = this.topology?.control;
    if (!control || performance.now() - this.laneSeenAt < LANE_SEEN_MS) return;
    this.laneSeenAt = performance.now();
    try {
      const entry = await control.get(controlKeys.lane(this.lane));
      const stored = entry && entry.operation === 'PUT' ? decodeJson<LaneRecord>(entry.value) : null;
      if (!stored || !entry) return;
      await control.update(controlKeys.lane(this.lane), encodeJson({ ...stored, seenAt: new Date().toISOString() } satisfies LaneRecord), entry.revision);
    } catch {
      // Another worker of the lane touched it at the same time, or the bucket is away: next minute.
    }
  }

  settled(): boolean {
    const want = this.desired();
    if (want.size !== this.owned.size) return false;
    for (const p of want) if (!this.owned.get(p)?.running) return false;
    return true;
  }

  private async tick(): Promise<void> {
    // A slow tick (a loaded machine) must not overlap the next one.
    if (this.stopping || this.ticking) return;
    this.ticking = true;
    try {
      await Promise.all([this.heartbeat(), this.renewAll(), this.touchLane()]);
      // One worker purges what every partition has applied: the owner of partition 0 in the
      // lane that dead-letters strays (one live lane, the same for everyone).
      if (this.owned.get(0)?.running && this.placementNow().strayLane === this.lane && performance.now() >= this.nextRetentionAt) {
        this.nextRetentionAt = performance.now() + this.cfg.retentionIntervalMs;
        void this.retention?.tick();
      }
    } finally {
      this.ticking = false;
    }
    this.movers.sync();
    this.scheduleReconcile();
  }

  private async heartbeat(): Promise<void> {
    const control = this.topology?.control;
    if (!control) return;
    const rec: MemberRecord = {
      id: this.id,
      partitions: this.ownedPartitions(),
      lag: Object.fromEntries(this.partitionStatus().map((s) => [String(s.partition), s.lag])),
      startedAt: this.startedAt,
      host: hostname(),
      pid: process.pid,
      lane: this.lane,
      types: this.types,
      waiting: this.waitingPartitions(),
    };
    try {
      await control.put(controlKeys.member(this.id), encodeJson(rec));
    } catch (err) {
      this.log.warn({ err: String(err) }, 'heartbeat failed');
      this.recover('heartbeat failed');
    }
  }

  private async renewAll(): Promise<void> {
    const control = this.topology?.control;
    if (!control) return;
    await Promise.all(
      [...this.owned.values()].map(async (o) => {
        const lost = await renewLease(control, o, this.id, this.cfg.leaseTtlMs, (err) =>
          this.log.warn({ partition: o.partition, err: String(err) }, 'lease renewal failed'),
        );
        if (lost) this.lose(o, lost);
      }),
    );
  }

  private lose(o: Owned, err: Error): void {
    if (this.owned.get(o.partition) !== o) return;
    o.proc?.abort();
    this.owned.delete(o.partition);
    this.log.warn({ partition: o.partition, epoch: o.epoch, reason: err.message }, 'partition lost (fenced)');
    this.hooks.onRelease?.({ partition: o.partition, reason: 'fenced' });
  }

  private scheduleReconcile(): void {
    if (this.reconcileQueued) return;
    this.reconcileQueued = true;
    this.reconciling = this.reconciling.then(() => {
      this.reconcileQueued = false;
      try {
        this.reconcile();
      } catch (err) {
        this.log.error({ err }, 'reconcile failed');
      }
    });
  }

  private reconcile(): void {
    if (!this.topology) return;
    const held = new Map<number, HeldView>();
    for (const [p, o] of this.owned) held.set(p, { releasing: o.releasing, hasProcessor: o.proc !== null, restartAt: o.restartAt, validUntil: o.validUntil });
    const plan = planReconcile({
      want: this.desired(),
      held,
      acquiring: this.acquiring,
      leases: this.view.leasesOf(this.lane),
      selfId: this.id,
      leaseTtlMs: this.cfg.leaseTtlMs,
      now: performance.now(),
      serverNow: this.view.serverNow(),
      leaving: this.stopping,
    });
    const t0 = performance.now();
    const reason = this.stopping ? 'shutdown' : 'rebalance';
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
    const duties = this.placementNow().dutiesOf(this.lane).join(',');
    for (const o of this.owned.values()) {
      if (o.running && o.proc && !o.releasing && o.duties !== duties && !plan.release.includes(o.partition)) {
        jobs.push(noted(this.restartForDuties(o), o.partition, change.restarted, running(o.partition)));
      }
    }
    if (jobs.length === 0) return;
    // Releases and acquisitions run in the background; reconcile itself must not block the watch.
    const settled = jobs.map((j) => j.catch((err: unknown) => this.log.error({ err }, 'ownership change failed')));
    const logged = Promise.all(settled).then(() => {
      this.logOwnership(change, t0);
      this.movers.sync();
    });
    this.changing.add(logged);
    void logged.finally(() => this.changing.delete(logged));
  }

  /**
   * One info line per reconcile (and per stop) that changed what this worker owns: the
   * partitions taken, restarted after a failure and handed over, and how many it owns now.
   * Each partition's own line (epoch, checkpoint, timing) is at debug.
   */
  private logOwnership(change: OwnershipChange, t0: number): void {
    const { acquired, restarted, released, reason } = change;
    if (acquired.length + restarted.length + released.length === 0) return;
    const sorted = (ps: number[]) => (ps.length > 0 ? [...ps].sort((a, b) => a - b) : undefined);
    this.log.info(
      {
        acquired: sorted(acquired),
        restarted: sorted(restarted),
        released: sorted(released),
        reason: released.length > 0 ? reason : undefined,
        owned: this.ownedPartitions().length,
        partitions: this.topology?.partitions,
        ms: Math.round(performance.now() - t0),
      },
      'ownership changed',
    );
  }

  private acquire(p: number, observedRev: number): Promise<void> {
    const job = this.doAcquire(p, observedRev);
    this.acquireJobs.add(job);
    void job.finally(() => this.acquireJobs.delete(job));
    return job;
  }

  private async doAcquire(p: number, observedRev: number): Promise<void> {
    const control = this.topology?.control;
    if (!control) return;
    this.acquiring.add(p);
    const t0 = performance.now();
    try {
      const o = await acquireLease(control, p, observedRev, this.id, this.cfg.leaseTtlMs, this.lane);
      if (!o) return; // someone else won
      this.owned.set(p, o);
      await this.startProcessor(o, t0);
    } catch (err) {
      this.log.warn({ partition: p, err: String(err) }, 'acquire failed');
    } finally {
      this.acquiring.delete(p);
    }
  }

  /**
   * Provisions again after a failure that may mean the stream or the control bucket is gone
   * (a server wiped and restarted at the same address, an operator deleting a bucket). If
   * either was recreated, every partition is dropped and taken anew: lease revisions restart
   * in a new control bucket, and records and checkpoints name the incarnations they belong to.
   */
  private recover(reason: string): void {
    if (this.recovering || this.stopping || !this.topology) return;
    this.recovering = (async () => {
      try {
        const old = this.topology;
        const topo = await provisionTopology(this.nc, this.cfg.topology);
        if (this.stopping || (old && topo.streamCreated === old.streamCreated && topo.controlCreated === old.controlCreated)) return;
        this.log.warn({ reason, stream: this.cfg.names.stream, control: this.cfg.names.controlBucket }, 'the operations stream or the control bucket was recreated: taking every partition anew');
        this.topology = topo;
        for (const o of [...this.owned.values()]) this.lose(o, new FencedError('the stream or control bucket was recreated'));
        for (let p = 0; p < topo.partitions; p++) this.cache.dropPartition(p);
        await this.heartbeat();
        await this.view.start(topo.control);
        await this.movers.start(topo.control, () => this.topology);
        this.scheduleReconcile();
        // A recreated operations stream has no sources: add the capture streams again.
        await this.provisionBindings(topo).catch((err: unknown) => this.log.error({ err }, 'subject bindings could not be provisioned again'));
      } catch (err) {
        this.log.warn({ reason, err: String(err) }, 'provisioning again failed; retrying on the next failure');
      } finally {
        this.recovering = null;
      }
    })();
  }

  /** The hosted types' subject bindings: capture streams the operations stream sources. */
  private async provisionBindings(topo: Topology): Promise<void> {
    if (this.cfg.provisionBindings) await provisionBindings(topo, this.cfg.topology, [...this.actors.values()], { owner: this.id, log: this.log });
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
      this.log.warn({ partition: o.partition, err: String(err) }, 'final commit before a change of duties failed; restarting from the checkpoint');
    }
    if (this.owned.get(o.partition) !== o || o.releasing || this.stopping) return;
    await this.startProcessor(o);
  }

  private failed(o: Owned, err: unknown): void {
    partitionFailed(this.lifecycle, o, err);
  }

  private release(o: Owned, reason: 'rebalance' | 'shutdown'): Promise<void> {
    return releasePartition(this.lifecycle, o, reason);
  }

  /** Owned partitions whose processor waits for a newer version of a type. */
  private waitingPartitions(): number[] {
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

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.log.info({ partitions: this.ownedPartitions() }, 'worker stopping: handing over partitions');
    // Leave the membership first, so the others compute the new assignment at once and
    // take each partition the moment its lease is released.
    try {
      await this.topology?.control.delete(controlKeys.member(this.id));
    } catch {
      // It ages out anyway.
    }
    // The movers stop first: what they published is in the stream; the next owner goes on from their positions.
    await this.movers.stop();
    // Keep leases renewed while the final commits run.
    const keepAlive = setInterval(() => void this.renewAll(), this.cfg.heartbeatMs);
    const t0 = performance.now();
    const released: number[] = [];
    try {
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
    } finally {
      clearInterval(keepAlive);
    }
    this.logOwnership({ acquired: [], restarted: [], released, reason: 'shutdown' }, t0);
    this.view.stop();
    this.log.info('worker stopped');
  }
}

/** How often a live worker refreshes its lane's `seenAt`, ms. */
const LANE_SEEN_MS = 60_000;

