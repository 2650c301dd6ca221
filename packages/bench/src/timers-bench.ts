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
 * - Hot keys: 5,000 operations on one actor, published at once, until its record shows the
 *   last applied: adds on a counter holding 999 timers against one holding none, transfers from
 *   one account (5,000 pending sends) against withdrawals. A key's batch must cost
 *   O(operations + its timers and sends), not their product (issue 18: 2.6 s and 4 s before).
 */
import { headers } from '@nats-io/nats-core';
import { Kvm, KvWatchInclude, type KvWatchEntry } from '@nats-io/kv';
import { defaultTopology, provisionTopology } from '@jetactor/actor-runtime/worker';
import { defaultNames, TimerHeaders, type StateRecord } from '@jetactor/actor-runtime/internal';
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
const HOT_OPS = 5000;
const HOT_TIMERS = 999;
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

/**
 * The latest records of one actor type as a watch delivers them: the state as a number
 * (`valueOf`: the counter's value, an account's balance), timers held, and when each was seen.
 */
class RecordTracker {
  readonly seen = new Map<string, { state: number; timers: number; at: number }>();
  private readonly loop: Promise<void>;
  constructor(
    private readonly watch: AsyncIterable<KvWatchEntry> & { stop(): void },
    type = 'counter',
    valueOf: (state: unknown) => number = (state) => state as number,
  ) {
    this.loop = (async () => {
      for await (const e of watch) {
        if (e.operation !== 'PUT') continue;
        const rec = JSON.parse(dec.decode(e.value)) as StateRecord<unknown> & { timers?: unknown[] };
        this.seen.set(e.key.slice(type.length + 1), { state: valueOf(rec.state), timers: rec.timers?.length ?? 0, at: Date.now() });
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

/**
 * Publishes {@link HOT_OPS} operations on one actor at once; resolves with the ms from the first
 * publish until the tracker saw its record reach `value`.
 */
async function hotBatch(ctx: BenchContext, worker: { running: boolean }, tracker: RecordTracker, key: string, subject: string, payload: Uint8Array, value: number): Promise<number> {
  const t0 = Date.now();
  await leanAckedPublish(ctx.nc, HOT_OPS, 2000, () => subject, payload);
  await until(`${HOT_OPS} operations on ${key}`, t0 + 120_000, worker, () => tracker.count([key], (r) => r.state === value) === 1);
  return (tracker.seen.get(key)?.at ?? t0) - t0;
}

/** The hot-key figures (see the header). */
async function measureHotKeys(ctx: BenchContext, worker: { running: boolean }, counters: RecordTracker): Promise<Figure[]> {
  const enc = new TextEncoder();
  const prefix = NAMES.subjectPrefix;
  await publishTimers(ctx, HOT_TIMERS, 500, () => Date.UTC(2099, 0, 1), () => `${prefix}.counter.hot.add`, (i) => `h${i}`);
  await until('timers of the hot counter', Date.now() + 60_000, worker, () => counters.count(['hot'], (r) => r.timers === HOT_TIMERS) === 1);
  const withTimers = await hotBatch(ctx, worker, counters, 'hot', `${prefix}.counter.hot.add`, ONE, HOT_OPS);
  const without = await hotBatch(ctx, worker, counters, 'cold', `${prefix}.counter.cold.add`, ONE, HOT_OPS);
  progress('timers', `  hot keys: ${HOT_OPS} adds on a counter with ${HOT_TIMERS} timers ${formatMs(withTimers)}, without ${formatMs(without)}`);

  const kv = await new Kvm(ctx.js).open(NAMES.stateBucket);
  const accounts = new RecordTracker(await kv.watch({ key: 'account.>', include: KvWatchInclude.UpdatesOnly }), 'account', (s) => (s as { balance: number }).balance);
  try {
    for (const key of ['hot-sender', 'hot-spender']) {
      await leanAckedPublish(ctx.nc, 1, 1, () => `${prefix}.account.${key}.deposit`, enc.encode(JSON.stringify({ amount: HOT_OPS })));
      await until(`a deposit to ${key}`, Date.now() + 30_000, worker, () => accounts.count([key], (r) => r.state === HOT_OPS) === 1);
    }
    const transfers = await hotBatch(ctx, worker, accounts, 'hot-sender', `${prefix}.account.hot-sender.transfer`, enc.encode('{"to":"hot-receiver","amount":1}'), 0);
    const withdrawals = await hotBatch(ctx, worker, accounts, 'hot-spender', `${prefix}.account.hot-spender.withdraw`, enc.encode('{"amount":1}'), 0);
    await until(`${HOT_OPS} deposits at the receiver`, Date.now() + 120_000, worker, () => accounts.count(['hot-receiver'], (r) => r.state === HOT_OPS) === 1);
    progress('timers', `  hot keys: ${HOT_OPS} transfers from one account ${formatMs(transfers)}, ${HOT_OPS} withdrawals ${formatMs(withdrawals)}`);
    const ratio = (a: number, b: number) => Math.round((a / Math.max(1, b)) * 100) / 100;
    return [
      {
        id: 'timers.hotKeyTimers',
        section: SECTION,
        name: `${formatInt(HOT_OPS)} adds on one counter holding ${HOT_TIMERS} timers, until applied`,
        value: withTimers,
        unit: Unit.Ms,
        detail: { withoutTimersMs: without, ratio: ratio(withTimers, without) },
      },
      {
        id: 'timers.hotKeySends',
        section: SECTION,
        name: `${formatInt(HOT_OPS)} transfers from one account (as many pending sends), until applied`,
        value: transfers,
        unit: Unit.Ms,
        detail: { withdrawalsMs: withdrawals, ratio: ratio(transfers, withdrawals) },
      },
    ];
  } finally {
    await accounts.stop();
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

      const hotKeys = await measureHotKeys(ctx, worker, tracker);

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
      ...hotKeys,
      ];
    } finally {
      await tracker.stop();
    }
  } finally {
    await worker.stop(15_000);
  }
}
