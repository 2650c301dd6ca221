/**
 * The `timers` section: what pending timers cost and how they fire. The default worker runs
 * as its own process; timers are set over plain NATS (the `Jetactor-Timer-At` header on a
 * counter `add`), so each timer that fires adds 1 to its counter.
 *
 * - Pending: `sizes.timers` timers (100,000 in a full run) over a tenth as many counters,
 *   all due at one instant some seconds ahead: how fast they are set (each is an ordered
 *   operation: record and timer-index writes) and the worker's RSS while they wait.
 * - Burst: they all fire at that instant: the fire rate (timers applied per second until the
 *   last counter holds its count) and how late each counter's last timer was applied.
 * - Normal load: 1,000 timers on fresh counters due over 5 s: lateness p50/p99/max of each
 *   timer's add being visible in its record (the issue asks for within 1 s).
 */
import { headers } from '@nats-io/nats-core';
import { Kvm, KvWatchInclude, type KvWatchEntry } from '@nats-io/kv';
import { defaultNames, defaultTopology, provisionTopology, TimerHeaders, type StateRecord } from '@jetactor/actor-runtime';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { memoryOf, startWorker, tail } from './processes.js';
import { progress, sleep } from './progress.js';
import { deleteStreams, leanAckedPublish } from './raw-limits.js';
import { formatInt, formatMs, perSecond, summarize } from './stats.js';

const SECTION = 'Timers (default worker, separate process)';
const NAMES = defaultNames();
const TIMERS_PER_KEY = 10;
const SPREAD_TIMERS = 1000;
const SPREAD_MS = 5000;
const dec = new TextDecoder();
const ONE = new TextEncoder().encode('1');

/** Acked publishes of timer-setting operations, `window` in flight; a refused one fails the run. */
function publishTimers(ctx: BenchContext, count: number, window: number, at: (i: number) => number, subjectOf: (i: number) => string, idOf: (i: number) => string): Promise<number> {
  return leanAckedPublish(ctx.nc, count, window, subjectOf, ONE, {
    seqs: new Uint32Array(count),
    headersOf: (i) => {
      const h = headers();
      h.set(TimerHeaders.At, String(at(i)));
      h.set(TimerHeaders.Id, idOf(i));
      return h;
    },
  });
}

/** The latest counter records as a watch delivers them: state, timers held, and when each was seen. */
class RecordTracker {
  readonly seen = new Map<string, { state: number; timers: number; at: number }>();
  private readonly loop: Promise<void>;
  constructor(private readonly watch: AsyncIterable<KvWatchEntry> & { stop(): void }) {
    this.loop = (async () => {
      for await (const e of watch) {
        if (e.operation !== 'PUT') continue;
        const rec = JSON.parse(dec.decode(e.value)) as StateRecord<number> & { timers?: unknown[] };
        this.seen.set(e.key.slice('counter.'.length), { state: rec.state, timers: rec.timers?.length ?? 0, at: Date.now() });
      }
    })();
  }

  /** Keys of `keys` for which `ok` holds now. */
  count(keys: readonly string[], ok: (r: { state: number; timers: number; at: number }) => boolean): number {
    let n = 0;
    for (const k of keys) {
      const r = this.seen.get(k);
      if (r && ok(r)) n++;
    }
    return n;
  }

  async stop(): Promise<void> {
    this.watch.stop();
    await this.loop;
  }
}

/** Polls `done` every 200 ms until it holds; fails past the deadline or when the worker is gone. */
async function until(what: string, deadline: number, worker: { running: boolean }, done: () => boolean, report?: () => string): Promise<void> {
  let last = 0;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not done by the deadline${report ? ` (${report()})` : ''}`);
    if (!worker.running) throw new Error(`the worker exited while waiting for ${what}`);
    if (report && Date.now() - last > 2000) {
      last = Date.now();
      progress('timers', `  ${what}: ${report()}`);
    }
    await sleep(200);
  }
}

export async function measureTimers(ctx: BenchContext): Promise<Figure[]> {
  const total = ctx.sizes.timers;
  const keys = Math.max(1, Math.floor(total / TIMERS_PER_KEY));
  await deleteStreams(ctx.jsm, [NAMES.stream, `KV_${NAMES.stateBucket}`, `KV_${NAMES.controlBucket}`, `KV_${NAMES.timerBucket}`, `KV_${NAMES.outcomeBucket}`]);
  await provisionTopology(ctx.nc, defaultTopology(NAMES, { partitions: ctx.partitions }));
  const kv = await new Kvm(ctx.js).open(NAMES.stateBucket);

  const worker = startWorker(ctx, 'worker-timers');
  try {
    const control = await new Kvm(ctx.js).open(NAMES.controlBucket);
    const t0 = performance.now();
    for (;;) {
      let leases = 0;
      for await (const _k of await control.keys('leases.>')) leases++;
      if (leases >= ctx.partitions) break;
      if (!worker.running) throw new Error(`worker exited:\n${tail(worker)}`);
      if (performance.now() - t0 > 30_000) throw new Error(`worker took no partitions in 30 s:\n${tail(worker)}`);
      await sleep(100);
    }
    const baseline = memoryOf(worker.pid);

    // Pending, then a burst: every timer due at one instant, far enough ahead to set them all first.
    const burstKeys = Array.from({ length: keys }, (_, k) => `tm${k}`);
    const leadMs = ctx.quick ? 8000 : 30_000;
    const dueAt = Date.now() + leadMs;
    progress('timers', `setting ${formatInt(total)} timers over ${formatInt(keys)} counters, all due in ${leadMs / 1000} s`);
    const tracker = new RecordTracker(await kv.watch({ key: 'counter.>', include: KvWatchInclude.UpdatesOnly }));
    try {
      // Interleaved over the counters, as timers of many actors would arrive.
      const setMs = await publishTimers(ctx, total, 2000, () => dueAt, (i) => `${NAMES.subjectPrefix}.counter.${burstKeys[i % keys] as string}.add`, (i) => `b${Math.floor(i / keys)}`);
      await until('timers stored', dueAt - 200, worker, () => tracker.count(burstKeys, (r) => r.timers === TIMERS_PER_KEY) === keys, () => `${formatInt(tracker.count(burstKeys, (r) => r.timers === TIMERS_PER_KEY))} of ${formatInt(keys)} counters hold their timers`);
      const storedMs = performance.now() - t0;
      const pendingMem = memoryOf(worker.pid);
      const setRate = perSecond(total, setMs);
      progress('timers', `  published in ${formatMs(setMs)} (${formatInt(setRate)}/s), all stored after ${formatMs(storedMs)}; worker RSS ${Math.round(baseline.rss / 1e6)} MB -> ${Math.round(pendingMem.rss / 1e6)} MB`);

      const complete = (r: { state: number }) => r.state >= TIMERS_PER_KEY;
      await until('burst', dueAt + Math.max(60_000, total / 2), worker, () => tracker.count(burstKeys, complete) === keys, () => `${formatInt(tracker.count(burstKeys, complete))} of ${formatInt(keys)} counters complete`);
      const reached = burstKeys.map((k) => (tracker.seen.get(k)?.at ?? 0) - dueAt);
      const lastMs = Math.max(...reached);
      const fireRate = perSecond(total, Math.max(1, lastMs));
      const burstLate = summarize(reached);
      progress('timers', `  burst: ${formatInt(total)} fired and applied in ${formatMs(lastMs)} (${formatInt(fireRate)}/s); a counter complete p50 ${formatMs(burstLate.p50)} after due`);
      if (Math.min(...reached) < 0) throw new Error('a burst timer was applied before its time');

      // Normal load: timers due over a few seconds, each on a counter of its own.
      const spreadKeys = Array.from({ length: SPREAD_TIMERS }, (_, k) => `ts${k}`);
      const spreadStart = Date.now() + 2000;
      const atOf = (i: number) => spreadStart + Math.floor((i * SPREAD_MS) / SPREAD_TIMERS);
      await publishTimers(ctx, SPREAD_TIMERS, 500, atOf, (i) => `${NAMES.subjectPrefix}.counter.${spreadKeys[i] as string}.add`, () => 'once');
      const fired = (r: { state: number }) => r.state >= 1;
      await until('normal load', spreadStart + SPREAD_MS + 60_000, worker, () => tracker.count(spreadKeys, fired) === SPREAD_TIMERS);
      const lateness = spreadKeys.map((k, i) => (tracker.seen.get(k)?.at ?? 0) - atOf(i));
      const late = summarize(lateness);
      progress('timers', `  normal load: ${SPREAD_TIMERS} timers over ${SPREAD_MS / 1000} s, lateness p50 ${formatMs(late.p50)}, p99 ${formatMs(late.p99)}, max ${formatMs(late.max)}`);
      if (Math.min(...lateness) < 0) throw new Error('a timer was applied before its time');

      const perTimer = Math.max(0, (pendingMem.rss - baseline.rss) / total);
      return [
      { id: 'timers.setRate', section: SECTION, name: `timers set (acked, ${formatInt(total)} over ${formatInt(keys)} counters)`, value: setRate, unit: Unit.PerSecond, detail: { timers: total, keys, ms: Math.round(setMs) } },
      {
        id: 'timers.pendingRss',
        section: SECTION,
        name: `worker RSS with ${formatInt(total)} timers pending (${formatInt(Math.round(perTimer))} bytes per timer over the idle worker)`,
        value: pendingMem.rss,
        unit: Unit.Bytes,
        detail: { baselineRssBytes: baseline.rss, peakRssBytes: pendingMem.peak, bytesPerTimer: Math.round(perTimer) },
      },
      { id: 'timers.fireRate', section: SECTION, name: `fire rate (${formatInt(total)} due at once, applied)`, value: fireRate, unit: Unit.PerSecond, detail: { lastAppliedAfterDueMs: Math.round(lastMs), p50CompleteMs: Math.round(burstLate.p50) } },
      { id: 'timers.lateP50', section: SECTION, name: `lateness p50 (${SPREAD_TIMERS} timers over ${SPREAD_MS / 1000} s, applied and visible)`, value: late.p50, unit: Unit.Ms, target: { max: 1000 } },
      { id: 'timers.lateP99', section: SECTION, name: 'lateness p99', value: late.p99, unit: Unit.Ms, target: { max: 1000 }, detail: { maxMs: Math.round(late.max) } },
      ];
    } finally {
      await tracker.stop();
    }
  } finally {
    await worker.stop(15_000);
  }
}
