/**
 * Worker metrics in the Prometheus format, fed by the worker hooks (served by
 * `metrics-server.ts` on `METRICS_PORT`).
 */
import type { StreamState } from '@nats-io/jetstream';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BlockedAt } from '../protocol/index.js';
import type { Worker, WorkerHooks } from '../worker-options.js';

/** Prefix of every worker metric. */
export const WORKER_METRICS_PREFIX = 'jetactor_worker_';

/** The worker's metrics: hooks to pass to `createWorker`, and the registry to serve. */
export interface WorkerMetrics {
  /** The registry the metrics server serves (never prom-client's global one). */
  readonly registry: Registry;
  /** Pass these to `createWorker({ hooks })`. */
  readonly hooks: WorkerHooks;
  /**
   * Reads owned partitions, checkpoints and lag from `worker` at each scrape, and the
   * dead-letter stream's state from `deadLetters` (one read per scrape) when given.
   */
  attach(worker: Worker, deadLetters?: () => Promise<DeadLetterStreamState>): void;
}

/** What the metrics read of the dead-letter stream (its `state` in a stream info). */
export type DeadLetterStreamState = Pick<StreamState, 'messages' | 'bytes' | 'first_seq'>;

/** Options of {@link createWorkerMetrics}. */
export interface WorkerMetricsOptions {
  /** Also export Node process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

/** Creates the worker's metrics in a fresh registry. */
export function createWorkerMetrics(opts: WorkerMetricsOptions = {}): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  const p = WORKER_METRICS_PREFIX;
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: p });
  let worker: Worker | undefined;
  let deadLetters: (() => Promise<DeadLetterStreamState>) | undefined;
  // One read of the dead-letter stream serves the gauges of one scrape (they collect at once).
  let dlqRead: { at: number; state: Promise<DeadLetterStreamState | null> } | undefined;
  const dlqState = () => {
    if (!deadLetters) return Promise.resolve(null);
    const now = performance.now();
    if (!dlqRead || now - dlqRead.at > 500) dlqRead = { at: now, state: deadLetters().catch(() => null) };
    return dlqRead.state;
  };
  /** A gauge of the dead-letter stream; a failed read (NATS away) keeps the last value. */
  const dlqGauge = (name: string, help: string, value: (s: DeadLetterStreamState) => number) =>
    new Gauge({
      name: `${p}${name}`,
      help,
      registers,
      async collect() {
        const s = await dlqState();
        if (s) this.set(value(s));
      },
    });
  dlqGauge('dead_letters', 'Dead letters the dead-letter stream holds (the stream\'s figure: the same on every worker).', (s) => s.messages);
  dlqGauge('dead_letter_bytes', 'Bytes the dead-letter stream holds.', (s) => s.bytes);
  dlqGauge(
    'dead_letters_dropped',
    'Dead letters the dead-letter stream dropped, oldest first, at its bounds (age, ACTORS_DLQ_MAX_BYTES, ACTORS_DLQ_MAX_MSGS) since it was created.',
    // Dead letters are never deleted one by one: all below the first sequence were dropped.
    (s) => Math.max(0, s.first_seq - 1),
  );

  const applied = new Counter({
    name: `${p}operations_applied_total`,
    help: 'Operations applied and committed, by actor type and operation (errors excluded).',
    labelNames: ['type', 'op'],
    registers,
  });
  const errors = new Counter({
    name: `${p}operation_errors_total`,
    help: 'Operations that failed and became dead letters (bad input, unknown actor or operation, a throw that is no ActorError, unstorable outcome, failed migration), by type, operation and error code.',
    labelNames: ['type', 'op', 'code'],
    registers,
  });
  const refused = new Counter({
    name: `${p}operations_refused_total`,
    help: "Operations a handler refused on purpose (an ActorError of its own, e.g. INSUFFICIENT_FUNDS): answered and kept as outcomes, not dead letters; by type, operation and error code.",
    labelNames: ['type', 'op', 'code'],
    registers,
  });
  const commits = new Counter({ name: `${p}commits_total`, help: 'Batches committed.', registers });
  const batchSize = new Histogram({
    name: `${p}commit_batch_size`,
    help: 'Operations per committed batch.',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers,
  });
  const commitSeconds = new Histogram({
    name: `${p}commit_duration_seconds`,
    help: 'Time to commit a batch (state records, checkpoint, replies).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const acquisitions = new Counter({ name: `${p}partition_acquisitions_total`, help: 'Partitions this worker took.', registers });
  const releases = new Counter({
    name: `${p}partition_releases_total`,
    help: 'Partitions this worker let go, by reason (rebalance, shutdown, fenced, failed).',
    labelNames: ['reason'],
    registers,
  });
  new Gauge({
    name: `${p}owned_partitions`,
    help: 'Partitions this worker owns and reads now.',
    registers,
    collect() {
      this.set(worker?.ownedPartitions().length ?? 0);
    },
  });
  new Gauge({
    name: `${p}partition_lag`,
    help: 'Operations stored but not applied yet, per owned partition.',
    labelNames: ['partition'],
    registers,
    collect() {
      // Only what is owned now: a released partition's series disappears.
      this.reset();
      for (const s of worker?.partitionStatus() ?? []) this.set({ partition: String(s.partition) }, s.lag);
    },
  });
  new Gauge({
    name: `${p}timer_heap_entries`,
    help: 'Entries in the timer heaps of the partitions this worker owns (one per pending timer; growth beside a steady number of timers is a leak).',
    registers,
    collect() {
      let entries = 0;
      for (const s of worker?.partitionStatus() ?? []) entries += s.timers;
      this.set(entries);
    },
  });
  new Gauge({
    name: `${p}partition_checkpoint`,
    help: 'Stream sequence up to which each owned partition is applied.',
    labelNames: ['partition'],
    registers,
    collect() {
      this.reset();
      for (const s of worker?.partitionStatus() ?? []) this.set({ partition: String(s.partition) }, s.checkpoint);
    },
  });

  // Partitions that wait at an operation they must not apply (a record a newer version wrote).
  const blocked = new Map<number, BlockedAt>();
  new Gauge({
    name: `${p}partition_blocked`,
    help: 'Owned partitions that wait at an operation this worker must not apply (reason newer-record: a record written by a newer version of the type); the value is the seq they wait at. Alert on it.',
    labelNames: ['partition', 'type', 'reason', 'version', 'record_version'],
    registers,
    collect() {
      this.reset();
      for (const [partition, b] of blocked) {
        this.set({ partition: String(partition), type: b.type, reason: b.reason, version: String(b.version), record_version: String(b.recordVersion ?? '') }, b.seq);
      }
    },
  });

  const hooks: WorkerHooks = {
    onCommit(info) {
      const b = blocked.get(info.partition);
      if (b && info.checkpoint >= b.seq) blocked.delete(info.partition);
      commits.inc();
      batchSize.observe(info.ops);
      commitSeconds.observe(info.commitMs / 1000);
      for (const [name, count] of Object.entries(info.byOperation)) {
        const dot = name.indexOf('.');
        applied.inc({ type: name.slice(0, dot), op: name.slice(dot + 1) }, count);
      }
    },
    onOperationError(info) {
      errors.inc({ type: info.type, op: info.op, code: info.error.code });
    },
    onOperationRefused(info) {
      refused.inc({ type: info.type, op: info.op, code: info.error.code });
    },
    onAcquire() {
      acquisitions.inc();
    },
    onBlocked(info) {
      const { partition, ...at } = info;
      blocked.set(partition, at);
    },
    onRelease(info) {
      blocked.delete(info.partition);
      releases.inc({ reason: info.reason });
    },
  };

  return {
    registry,
    hooks,
    attach(w, dlq) {
      worker = w;
      deadLetters = dlq;
    },
  };
}
