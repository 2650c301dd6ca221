/**
 * The worker: wiring of ownership (control view, heartbeat, leases, the reconcile in worker/,
 * retention) and processing (one partition processor per owned partition). Data flows one way:
 * the control view and the clock feed the plan; the plan's actions take or give back leases and
 * start or stop processors; processors report back by settling.
 */
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/nats-core';
import { pino, type Logger } from 'pino';
import type { AnyActorDefinition } from './definition/define-actor.js';
import { ConfigError, FencedError, controlKeys } from './protocol/index.js';
import { ControlView } from './ownership/control-view.js';
import { laneIdOf } from './ownership/placement.js';
import { RetentionLoop } from './ownership/retention.js';
import { BindingMovers } from './processing/binding-movers.js';
import { RecordCache } from './processing/record-cache.js';
import { provisionBindings } from './store/bindings.js';
import { provisionTopology, type Topology } from './store/provision.js';
import { encodeJson, type MemberRecord } from './store/records.js';
import { bindingOwner } from './worker/binding-owner.js';
import { LaneRegistration } from './worker/lane-registration.js';
import { logOwnership } from './worker/ownership-log.js';
import { PartitionOwnership } from './worker/partition-ownership.js';
import { PlacementView } from './worker/placement-view.js';
import { resolveWorkerOptions, type Worker, type WorkerHooks, type WorkerOptions } from './worker-options.js';

export { resolveWorkerOptions, type Worker, type WorkerHooks, type WorkerOptions } from './worker-options.js';

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
  private readonly placement: PlacementView;
  private readonly laneRegistration: LaneRegistration;
  /** The partitions this worker owns, and the reconcile that changes them. */
  private readonly ownership: PartitionOwnership;
  private topology: Topology | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private ticking = false;
  private readonly startedAt = new Date().toISOString();
  private retention: RetentionLoop | null = null;
  private nextRetentionAt = 0;
  private recovering: Promise<void> | null = null;
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
    this.laneRegistration = new LaneRegistration(this.lane, this.types);
    this.view = new ControlView(this.id, this.log, () => {
      this.placement.invalidate();
      this.ownership.scheduleReconcile();
    });
    this.placement = new PlacementView(this.view, {
      id: this.id,
      lane: this.lane,
      types: this.types,
      partitions: this.cfg.topology.partitions,
      leaseTtlMs: this.cfg.leaseTtlMs,
      stopping: () => this.stopping,
      waiting: () => this.ownership.waitingPartitions(),
      owned: () => [...this.ownership.owned.keys()],
    });
    const ownerOf = bindingOwner({ owned: () => this.ownership.owned, stopping: () => this.stopping, placement: () => this.placement.now(), names: this.cfg.names, lane: this.lane });
    this.movers = new BindingMovers(this.nc, this.log, ownerOf);
    this.ownership = new PartitionOwnership({
      id: this.id,
      lane: this.lane,
      nc: this.nc,
      cfg: this.cfg,
      actors: this.actors,
      cache: this.cache,
      log: this.log,
      hooks: this.hooks,
      view: this.view,
      placement: this.placement,
      movers: this.movers,
      topology: () => this.topology,
      stopping: () => this.stopping,
      recover: (reason) => this.recover(reason),
    });
  }

  async start(): Promise<void> {
    const topo = await provisionTopology(this.nc, this.cfg.topology);
    await this.provisionBindings(topo);
    this.topology = topo;
    this.retention = new RetentionLoop(() => this.topology, this.cfg.names, this.cfg.topology.retainMs, this.log, this.cfg.topology.duplicateWindowMs, () => this.placement.laneIds());
    this.log.info(
      { partitions: topo.partitions, stream: this.cfg.names.stream, server: topo.serverVersion, actors: [...this.actors.keys()] },
      'worker starting',
    );
    // The lane before the heartbeat: a member naming a lane nobody registered would be a home
    // that retention and take-overs do not see.
    await this.laneRegistration.register(topo.control);
    await this.heartbeat();
    await this.view.start(topo.control);
    // Placement needs every lane and member the bucket holds: no partition before they are read.
    await this.view.ready;
    await this.movers.start(topo.control, () => this.topology);
    this.timer = setInterval(() => void this.tick(), this.cfg.heartbeatMs);
    this.timer.unref?.();
    this.ownership.scheduleReconcile();
  }

  settled(): boolean {
    return this.ownership.settled();
  }

  private async tick(): Promise<void> {
    // A slow tick (a loaded machine) must not overlap the next one.
    if (this.stopping || this.ticking) return;
    this.ticking = true;
    try {
      await Promise.all([this.heartbeat(), this.ownership.renewAll(), this.laneRegistration.touch(this.topology?.control)]);
      // One worker purges what every partition has applied: the owner of partition 0 in the
      // lane that dead-letters strays (one live lane, the same for everyone).
      if (this.ownership.owned.get(0)?.running && this.placement.now().strayLane === this.lane && performance.now() >= this.nextRetentionAt) {
        this.nextRetentionAt = performance.now() + this.cfg.retentionIntervalMs;
        void this.retention?.tick();
      }
    } finally {
      this.ticking = false;
    }
    this.movers.sync();
    this.ownership.scheduleReconcile();
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
      waiting: this.ownership.waitingPartitions(),
    };
    try {
      await control.put(controlKeys.member(this.id), encodeJson(rec));
    } catch (err) {
      this.log.warn({ err: String(err) }, 'heartbeat failed');
      this.recover('heartbeat failed');
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
        for (const o of [...this.ownership.owned.values()]) this.ownership.lose(o, new FencedError('the stream or control bucket was recreated'));
        for (let p = 0; p < topo.partitions; p++) this.cache.dropPartition(p);
        await this.heartbeat();
        await this.view.start(topo.control);
        await this.movers.start(topo.control, () => this.topology);
        this.ownership.scheduleReconcile();
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

  ownedPartitions(): number[] {
    return this.ownership.ownedPartitions();
  }

  partitionStatus(): Array<{ partition: number; checkpoint: number; lag: number; epoch: number; timers: number }> {
    return this.ownership.partitionStatus();
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
    const keepAlive = setInterval(() => void this.ownership.renewAll(), this.cfg.heartbeatMs);
    const t0 = performance.now();
    const released = await this.ownership.handOver().finally(() => clearInterval(keepAlive));
    logOwnership(this.log, { acquired: [], restarted: [], released, reason: 'shutdown' }, t0, this.ownedPartitions().length, this.topology?.partitions);
    this.view.stop();
    this.log.info('worker stopped');
  }
}
