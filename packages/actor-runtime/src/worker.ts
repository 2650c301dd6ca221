import { hostname } from 'node:os';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { nuid, type NatsConnection, type QueuedIterator } from '@nats-io/nats-core';
import { pino, type Logger } from 'pino';
import type { AnyActorDefinition } from './definition/define-actor.js';
import { ConfigError, FencedError } from './errors.js';
import { deadLetterSubject, defaultNames, type ActorNames } from './names.js';
import { assignPartitions } from './ownership/assignment.js';
import { RetentionLoop } from './ownership/retention.js';
import { PartitionProcessor, type ProcessorHooks } from './processing/partition-processor.js';
import { RecordCache } from './processing/record-cache.js';
import { defaultTopology, provisionTopology, type Topology, type TopologyOptions } from './store/provision.js';
import { controlKeys, decodeJson, encodeJson, type LeaseRecord, type MemberRecord } from './store/records.js';

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
  /** Per-partition checkpoint and lag of what this worker owns. */
  partitionStatus(): Array<{ partition: number; checkpoint: number; lag: number; epoch: number }>;
  /** Resolves once the worker owns exactly the partitions the assignment gives it. */
  settled(): boolean;
}

interface Owned {
  partition: number;
  leaseRev: number;
  epoch: number;
  /** performance.now() until which the lease is surely ours. */
  validUntil: number;
  proc: PartitionProcessor | null;
  /** The processor has read its checkpoint and is consuming. */
  running: boolean;
  releasing: boolean;
  /** The renewal in flight, if any; never send two with the same revision. */
  renewing: Promise<void> | null;
  /** Set once the final commit is done: no more renewals, the lease is being deleted. */
  letGo: boolean;
  restartAt: number;
  failures: number;
}

interface Seen {
  revision: number;
  created: number;
  value: unknown;
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
  return {
    id,
    names,
    heartbeatMs,
    leaseTtlMs,
    maxBatch: positiveInt('maxBatch', o.maxBatch, 5000),
    maxCachedRecords: positiveInt('maxCachedRecords', o.maxCachedRecords, 200_000),
    maxStateBytes: o.maxStateBytes === undefined ? undefined : positiveInt('maxStateBytes', o.maxStateBytes, 1, 2),
    retentionIntervalMs: positiveInt('retentionIntervalMs', o.retentionIntervalMs, 5000, 10),
    topology: defaultTopology(names, {
      ...o.topology,
      partitions: positiveInt('partitions', o.partitions, 32),
      replicas: positiveInt('replicas', o.replicas, 1),
    }),
  };
}

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
  private readonly cfg: ReturnType<typeof resolveWorkerOptions>;
  private readonly nc: NatsConnection;
  private readonly log: Logger;
  private readonly actors: Map<string, AnyActorDefinition>;
  private readonly cache: RecordCache;
  private readonly hooks: WorkerHooks;
  private topology: Topology | null = null;
  private readonly owned = new Map<number, Owned>();
  private readonly acquiring = new Set<number>();
  private readonly acquireJobs = new Set<Promise<void>>();
  private readonly members = new Map<string, Seen>();
  private readonly leases = new Map<number, Seen>();
  private watcher: QueuedIterator<KvWatchEntry> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** serverTime - localTime, learned from our own heartbeat entries. */
  private clockOffset = 0;
  private stopping = false;
  private reconcileQueued = false;
  private reconciling: Promise<void> = Promise.resolve();
  private readonly startedAt = new Date().toISOString();
  private retention: RetentionLoop | null = null;
  private nextRetentionAt = 0;
  private recovering: Promise<void> | null = null;

  constructor(opts: WorkerOptions) {
    this.cfg = resolveWorkerOptions(opts);
    this.id = this.cfg.id;
    this.nc = opts.nc;
    this.log = (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ worker: this.id });
    this.actors = new Map(opts.actors.map((a) => [a.type, a]));
    if (this.actors.size !== opts.actors.length) throw new ConfigError('actors: two definitions share a type');
    this.cache = new RecordCache(this.cfg.maxCachedRecords);
    this.hooks = opts.hooks ?? {};
  }

  async start(): Promise<void> {
    const topo = await provisionTopology(this.nc, this.cfg.topology);
    this.topology = topo;
    this.retention = new RetentionLoop(() => this.topology, this.cfg.names, this.cfg.topology.retainMs, this.log);
    this.log.info(
      { partitions: topo.partitions, stream: this.cfg.names.stream, server: topo.serverVersion, actors: [...this.actors.keys()] },
      'worker starting',
    );
    await this.heartbeat();
    await this.startWatch();
    this.timer = setInterval(() => void this.tick(), this.cfg.heartbeatMs);
    this.timer.unref?.();
    this.scheduleReconcile();
  }

  /** Watches members and leases; restarts the watch if it ever ends while running. */
  private async startWatch(): Promise<void> {
    const control = this.topology?.control;
    if (!control || this.stopping) return;
    try {
      this.watcher = await control.watch({ key: ['members.>', 'leases.>'] });
    } catch (err) {
      this.log.warn({ err: String(err) }, 'control watch could not start; retrying');
      setTimeout(() => void this.startWatch(), 1000).unref?.();
      return;
    }
    const it = this.watcher;
    void this.watch(it).then(() => {
      if (this.stopping || this.watcher !== it) return;
      this.log.warn('control watch ended; restarting it');
      setTimeout(() => void this.startWatch(), 1000).unref?.();
    });
  }

  private async watch(it: QueuedIterator<KvWatchEntry>): Promise<void> {
    try {
      for await (const e of it) {
        const seen: Seen = {
          revision: e.revision,
          created: e.created.getTime(),
          value: e.operation === 'PUT' ? safeJson(e.value) : null,
        };
        if (e.key.startsWith('members.')) {
          const id = e.key.slice('members.'.length);
          if (id === this.id && e.operation === 'PUT') this.clockOffset = seen.created - Date.now();
          if (e.operation === 'PUT') this.members.set(id, seen);
          else this.members.delete(id);
        } else if (e.key.startsWith('leases.')) {
          const p = Number(e.key.slice('leases.'.length));
          if (e.operation === 'PUT') this.leases.set(p, seen);
          else this.leases.delete(p);
        }
        this.scheduleReconcile();
      }
    } catch (err) {
      if (!this.stopping) this.log.error({ err }, 'control watch failed');
    }
  }

  private serverNow(): number {
    return Date.now() + this.clockOffset;
  }

  private liveMembers(): string[] {
    const now = this.serverNow();
    const live = [...this.members.entries()]
      .filter(([, s]) => now - s.created < this.cfg.leaseTtlMs)
      .map(([id]) => id);
    if (!this.stopping && !live.includes(this.id)) live.push(this.id);
    return live;
  }

  private desired(): Set<number> {
    if (this.stopping) return new Set();
    const assignment = assignPartitions(this.cfg.topology.partitions, this.liveMembers());
    return new Set(assignment.get(this.id) ?? []);
  }

  settled(): boolean {
    const want = this.desired();
    if (want.size !== this.owned.size) return false;
    for (const p of want) if (!this.owned.get(p)?.running) return false;
    return true;
  }

  private ticking = false;

  private async tick(): Promise<void> {
    // A slow tick (a loaded machine) must not overlap the next one.
    if (this.stopping || this.ticking) return;
    this.ticking = true;
    try {
      await Promise.all([this.heartbeat(), this.renewAll()]);
      // One worker purges what every partition has applied: the owner of partition 0.
      if (this.owned.get(0)?.running && performance.now() >= this.nextRetentionAt) {
        this.nextRetentionAt = performance.now() + this.cfg.retentionIntervalMs;
        void this.retention?.tick();
      }
    } finally {
      this.ticking = false;
    }
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
      [...this.owned.values()].map((o) => {
        if (o.renewing || o.letGo) return o.renewing ?? Promise.resolve();
        o.renewing = this.renew(control, o).finally(() => {
          o.renewing = null;
        });
        return o.renewing;
      }),
    );
  }

  private async renew(control: KV, o: Owned): Promise<void> {
    const sent = performance.now();
    try {
      const value: LeaseRecord = { owner: this.id, epoch: o.epoch };
      o.leaseRev = await control.update(controlKeys.lease(o.partition), encodeJson(value), o.leaseRev);
      o.validUntil = sent + this.validity();
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
        this.lose(o, new FencedError(`lease of partition ${o.partition} was taken over`, { cause: err }));
      } else {
        this.log.warn({ partition: o.partition, err: String(err) }, 'lease renewal failed');
      }
    }
  }

  /** How long after sending a renewal the lease is surely still ours. */
  private validity(): number {
    return this.cfg.leaseTtlMs - Math.min(1000, this.cfg.leaseTtlMs / 5);
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
    const want = this.desired();
    const jobs: Promise<void>[] = [];
    for (const o of this.owned.values()) {
      if (!want.has(o.partition) && !o.releasing) jobs.push(this.release(o, this.stopping ? 'shutdown' : 'rebalance'));
      else if (!o.proc && !o.releasing && performance.now() >= o.restartAt && performance.now() < o.validUntil) {
        jobs.push(this.startProcessor(o));
      }
    }
    if (!this.stopping) {
      for (const p of want) {
        if (this.owned.has(p) || this.acquiring.has(p)) continue;
        const lease = this.leases.get(p);
        const expired = lease ? this.serverNow() - lease.created > this.cfg.leaseTtlMs : true;
        const ownedByUs = lease && (lease.value as LeaseRecord | null)?.owner === this.id;
        if (!lease || expired || ownedByUs) jobs.push(this.acquire(p, lease?.revision ?? 0));
      }
    }
    // Releases and acquisitions run in the background; reconcile itself must not block the watch.
    for (const j of jobs) j.catch((err: unknown) => this.log.error({ err }, 'ownership change failed'));
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
      const value = encodeJson({ owner: this.id, epoch: 0 } satisfies LeaseRecord);
      let rev: number;
      try {
        rev = observedRev > 0
          ? await control.update(controlKeys.lease(p), value, observedRev)
          : await control.create(controlKeys.lease(p), value);
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) return; // someone else won
        throw err;
      }
      const o: Owned = { partition: p, leaseRev: rev, epoch: rev, validUntil: t0 + this.validity(), proc: null, running: false, releasing: false, renewing: null, letGo: false, restartAt: 0, failures: 0 };
      this.owned.set(p, o);
      await this.startProcessor(o, t0);
    } catch (err) {
      this.log.warn({ partition: p, err: String(err) }, 'acquire failed');
    } finally {
      this.acquiring.delete(p);
    }
  }

  private async startProcessor(o: Owned, t0 = performance.now()): Promise<void> {
    const topo = this.topology;
    if (!topo || o.proc) return;
    const proc = new PartitionProcessor({
      partition: o.partition,
      epoch: o.epoch,
      nc: this.nc,
      topology: topo,
      names: this.cfg.names,
      actors: this.actors,
      cache: this.cache,
      log: this.log,
      maxBatch: this.cfg.maxBatch,
      maxStateBytes: this.maxStateBytes(),
      leaseValid: () => performance.now() < o.validUntil && this.owned.get(o.partition) === o,
      deadLetterSubject: (type, key, op) => deadLetterSubject(this.cfg.names, type, key, op),
      hooks: this.hooks,
    });
    o.proc = proc;
    try {
      await proc.start();
    } catch (err) {
      proc.abort();
      o.proc = null;
      this.failed(o, err);
      return;
    }
    if (o.releasing || this.owned.get(o.partition) !== o) {
      // Released or lost while starting.
      proc.abort();
      o.proc = null;
      return;
    }
    o.running = true;
    o.failures = 0;
    const ms = performance.now() - t0;
    this.log.info({ partition: o.partition, epoch: o.epoch, checkpoint: proc.checkpoint, ms: Math.round(ms) }, 'partition acquired');
    this.hooks.onAcquire?.({ partition: o.partition, epoch: o.epoch, checkpoint: proc.checkpoint, ms });
    proc.done.then(
      () => {
        // Ended without being asked (consumer closed): restart it.
        if (o.proc === proc && !o.releasing) {
          o.proc = null;
          o.running = false;
          this.failed(o, new Error('partition reader ended'));
        }
      },
      (err: unknown) => {
        if (o.proc !== proc) return;
        o.proc = null;
        o.running = false;
        if (err instanceof FencedError) this.lose(o, err);
        else this.failed(o, err);
      },
    );
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
        this.members.clear();
        this.leases.clear();
        const it = this.watcher;
        this.watcher = null;
        it?.stop();
        await this.heartbeat();
        await this.startWatch();
        this.scheduleReconcile();
      } catch (err) {
        this.log.warn({ reason, err: String(err) }, 'provisioning again failed; retrying on the next failure');
      } finally {
        this.recovering = null;
      }
    })();
  }

  private failed(o: Owned, err: unknown): void {
    this.recover(`partition ${o.partition} failed`);
    o.failures++;
    const backoff = Math.min(5000, 100 * 2 ** Math.min(o.failures, 6));
    o.restartAt = performance.now() + backoff;
    this.cache.dropPartition(o.partition);
    this.log.warn({ partition: o.partition, err: String(err), retryInMs: backoff }, 'partition processing failed; restarting from checkpoint');
    setTimeout(() => this.scheduleReconcile(), backoff).unref?.();
  }

  private async release(o: Owned, reason: 'rebalance' | 'shutdown'): Promise<void> {
    const control = this.topology?.control;
    if (!control) return;
    o.releasing = true;
    this.log.info({ partition: o.partition, reason }, 'releasing partition');
    try {
      await o.proc?.stop();
    } catch (err) {
      this.log.warn({ partition: o.partition, err: String(err) }, 'final commit failed; the next owner replays from the checkpoint');
    }
    // No renewal may change the revision under the delete.
    o.letGo = true;
    await o.renewing;
    try {
      await control.delete(controlKeys.lease(o.partition), { previousSeq: o.leaseRev });
    } catch (err) {
      this.log.warn({ partition: o.partition, err: String(err) }, 'lease delete failed; it will expire');
    }
    if (this.owned.get(o.partition) === o) this.owned.delete(o.partition);
    this.cache.dropPartition(o.partition);
    this.log.info({ partition: o.partition, reason }, 'partition released');
    this.hooks.onRelease?.({ partition: o.partition, reason });
  }

  /** The configured state bound, never above what one NATS message can carry with the record around it. */
  private maxStateBytes(): number {
    const serverMax = (this.nc.info?.max_payload ?? 1024 * 1024) - 1024;
    return Math.min(this.cfg.maxStateBytes ?? serverMax, serverMax);
  }

  ownedPartitions(): number[] {
    return [...this.owned.values()].filter((o) => o.running).map((o) => o.partition).sort((a, b) => a - b);
  }

  partitionStatus(): Array<{ partition: number; checkpoint: number; lag: number; epoch: number }> {
    return [...this.owned.values()]
      .filter((o): o is Owned & { proc: PartitionProcessor } => o.proc !== null && o.running)
      .map((o) => ({ partition: o.partition, checkpoint: o.proc.checkpoint, lag: o.proc.lag, epoch: o.epoch }))
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
    // Keep leases renewed while the final commits run.
    const keepAlive = setInterval(() => void this.renewAll(), this.cfg.heartbeatMs);
    try {
      await this.reconciling;
      await Promise.all([...this.acquireJobs]);
      await Promise.all([...this.owned.values()].map((o) => (o.releasing ? (o.proc?.done ?? Promise.resolve()).catch(() => undefined) : this.release(o, 'shutdown'))));
    } finally {
      clearInterval(keepAlive);
    }
    this.watcher?.stop();
    this.log.info('worker stopped');
  }
}

function safeJson(data: Uint8Array): unknown {
  try {
    return decodeJson(data);
  } catch {
    return null;
  }
}
