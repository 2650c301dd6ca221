/**
 * The cost of services (lanes, ownership/placement.ts in actor-runtime): workers hosting
 * different actor types share one stream, each service owning every partition for its own
 * types with its own leases and checkpoints, its reader skipping the other's operations.
 *
 * 1. Apply rates at 1 key and 1,000 keys, stream preloaded, in three set-ups: one service (the
 *    default worker) applying counter adds; the same worker applying counter adds and as many
 *    tally adds (the same work in one service); two services, a worker hosting only the counter
 *    and one hosting only the tally (`JETACTOR_ACTORS`), with the same two loads.
 * 2. What more leases and checkpoints cost: control-bucket writes per second (the
 *    `KV_actors_ctl` stream's message rate, by key prefix) and the workers' CPU, at 32 and 512
 *    partitions, one service against two, idle and under a steady load.
 */
import { Kvm, type KvWatchEntry } from '@nats-io/kv';
import { defaultNames } from '@jetactor/actor-runtime/internal';
import type { ManagedProcess } from '@jetactor/testing';
import { laneOfKey, runApplyScenario, type ApplyResult, type ApplySetup, type ApplyWorker } from './apply-rate.js';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { CpuMeter, machineBusyMs, startWorker, tail } from './processes.js';
import { progress, sleep } from './progress.js';
import { formatInt, perSecond } from './stats.js';
import { freshTopology } from './topology.js';

const NAMES = defaultNames();
const APPLY_SECTION = 'Services: apply rates, two services sharing the stream vs one (stream preloaded)';
const CONTROL_SECTION = 'Services: control-bucket writes and workers\' CPU (more leases and checkpoints)';
const ONE = new TextEncoder().encode('1');
const TALLY = new TextEncoder().encode('{"label":"n"}');

/** Workers of this section run without a metrics server: two of them share the machine (and its default port). */
const QUIET = { METRICS_PORT: '0' };
const DEFAULT_WORKER: ApplyWorker = { name: 'worker', env: QUIET };
const COUNTER_WORKER: ApplyWorker = { name: 'counters', env: { ...QUIET, JETACTOR_ACTORS: 'counter', JETACTOR_SERVICE: 'counters' } };
const TALLY_WORKER: ApplyWorker = { name: 'tallies', env: { ...QUIET, JETACTOR_ACTORS: 'tally', JETACTOR_SERVICE: 'tallies' } };

/** The three set-ups of the apply rates, by id. */
export const SERVICE_SETUPS = {
  /** One service (the default worker), counter adds only. */
  one: { loads: [{ type: 'counter', lane: 'default' }], workers: [DEFAULT_WORKER] },
  /** One service (the default worker), counter adds and as many tally adds. */
  oneBoth: { loads: [{ type: 'counter', lane: 'default' }, { type: 'tally', lane: 'default' }], workers: [DEFAULT_WORKER] },
  /** Two services: a worker hosting only the counter, one hosting only the tally; the same two loads. */
  two: { loads: [{ type: 'counter', lane: 'counters' }, { type: 'tally', lane: 'tallies' }], workers: [COUNTER_WORKER, TALLY_WORKER] },
} satisfies Record<string, ApplySetup>;
/** Id of an apply set-up. */
export type ServiceSetupId = keyof typeof SERVICE_SETUPS;

/** The raw limit an apply rate at `keys` keys is compared with (as in the apply section). */
function rawLimit(keys: number): string {
  return keys === 1 ? 'raw.orderedRead' : 'raw.orderedReadAll';
}

const cores = (v: number | undefined) => Number((v ?? Number.NaN).toFixed(2));

/**
 * The apply-rate figures of one key count: each set-up's total and per-type rates. Two
 * services are compared with one service (their ratio is the row's; the same work in one
 * service is the "also" ratio); one service with the raw limit of the same run.
 */
export function servicesApplyFigures(keys: number, results: Record<ServiceSetupId, ApplyResult>): Figure[] {
  const k = `keys${keys}`;
  const id = (setup: ServiceSetupId, what: string) => `services.${setup}.${k}.${what}`;
  const keysText = `${formatInt(keys)} key${keys === 1 ? '' : 's'}`;
  const rateOf = (r: ApplyResult, type: string) => r.loads.find((l) => l.type === type)?.rate ?? Number.NaN;
  const detailOf = (r: ApplyResult) => ({
    opsPerType: r.scenario.ops,
    ms: Math.round(r.ms),
    startupMs: Math.round(r.startupMs),
    ...Object.fromEntries(Object.entries(r.cpu).map(([name, v]) => [`${name}CpuCores`, cores(v)])),
  });
  const { one, oneBoth, two } = results;
  const ops = formatInt(one.scenario.ops);
  return [
    {
      id: id('one', 'counter'),
      section: APPLY_SECTION,
      name: `${keysText}: one service, counter adds (${ops} ops)`,
      value: one.rate,
      unit: Unit.PerSecond,
      limitId: rawLimit(keys),
      detail: detailOf(one),
    },
    {
      id: id('oneBoth', 'total'),
      section: APPLY_SECTION,
      name: `${keysText}: one service, counter + tally adds (${ops} each), total`,
      value: oneBoth.rate,
      unit: Unit.PerSecond,
      limitId: id('one', 'counter'),
      alsoId: rawLimit(keys),
      detail: { ...detailOf(oneBoth), counterRate: Math.round(rateOf(oneBoth, 'counter')), tallyRate: Math.round(rateOf(oneBoth, 'tally')) },
    },
    {
      id: id('two', 'counter'),
      section: APPLY_SECTION,
      name: `${keysText}: two services, the counter service`,
      value: rateOf(two, 'counter'),
      unit: Unit.PerSecond,
      limitId: id('one', 'counter'),
      alsoId: rawLimit(keys),
      detail: detailOf(two),
    },
    {
      id: id('two', 'tally'),
      section: APPLY_SECTION,
      name: `${keysText}: two services, the tally service`,
      value: rateOf(two, 'tally'),
      unit: Unit.PerSecond,
      limitId: id('one', 'counter'),
      detail: { tallyRateInOneService: Math.round(rateOf(oneBoth, 'tally')) },
    },
    {
      id: id('two', 'total'),
      section: APPLY_SECTION,
      name: `${keysText}: two services, total`,
      value: two.rate,
      unit: Unit.PerSecond,
      limitId: id('one', 'counter'),
      alsoId: id('oneBoth', 'total'),
    },
  ];
}

/** What one window of the control-cost runs measured. */
export interface ControlWindow {
  /** Messages stored in the control bucket's stream per second (every write and delete). */
  writesPerSec: number;
  /** The same by key prefix (`leases`, `checkpoints`, `members`, ...), per second. */
  byPrefix: Record<string, number>;
  /** Cores used by the workers together, by nats-server, and by the rest of the machine. */
  workerCores: number;
  serverCores: number;
  otherCores: number;
  /** Workers' log lines in the window saying a lease renewal failed, and a partition was lost (fenced). */
  renewalFailures: number;
  fenced: number;
}

/** How many of a worker's log lines since position `since` (a `lineCount`) match `re`. */
function linesSince(w: ManagedProcess, since: number, re: RegExp): number {
  const fresh = w.lines.slice(Math.max(0, w.lines.length - (w.lineCount - since)));
  return fresh.filter((l) => re.test(l)).length;
}

/** One control-cost run: a number of partitions and services, idle then under load. */
export interface ControlRun {
  partitions: number;
  services: 1 | 2;
  idle: ControlWindow;
  load: ControlWindow;
  /** Operations per second of the load (each of the counter and the tally). */
  loadRate: number;
}

/** The control-cost figures: writes per second and workers' CPU, two services compared with one. */
export function controlFigures(runs: readonly ControlRun[]): Figure[] {
  const figures: Figure[] = [];
  for (const r of runs) {
    for (const phase of ['idle', 'load'] as const) {
      const w = r[phase];
      const base = `p${r.partitions}.${phase}`;
      const what = `${r.partitions} partitions, ${r.services === 1 ? 'one service' : 'two services'}, ${phase === 'idle' ? 'idle' : `load ${formatInt(r.loadRate)} + ${formatInt(r.loadRate)} ops/s`}`;
      const limit = (kind: string) => (r.services === 2 ? { limitId: `services.${kind}.${base}.s1` } : {});
      figures.push(
        {
          id: `services.ctl.${base}.s${r.services}`,
          section: CONTROL_SECTION,
          name: `control-bucket writes, ${what}`,
          value: w.writesPerSec,
          unit: Unit.PerSecond,
          ...limit('ctl'),
          detail: {
            ...Object.fromEntries(Object.entries(w.byPrefix).map(([p, v]) => [`${p}PerSec`, Math.round(v)])),
            renewalFailures: w.renewalFailures,
            fenced: w.fenced,
          },
        },
        {
          id: `services.cpu.${base}.s${r.services}`,
          section: CONTROL_SECTION,
          name: `workers' CPU, ms per second (1,000 = a core), ${what}`,
          value: w.workerCores * 1000,
          unit: Unit.Ms,
          ...limit('cpu'),
          detail: { workerCpuCores: cores(w.workerCores), serverCpuCores: cores(w.serverCores), otherCpuCores: cores(w.otherCores) },
        },
      );
    }
  }
  return figures;
}

/** Resolves once each of `lanes` holds a lease of every partition (the default lane's keys have no lane token). */
async function waitForAllLeases(ctx: BenchContext, lanes: readonly string[], workers: readonly ManagedProcess[]): Promise<void> {
  const control = await new Kvm(ctx.js).open(NAMES.controlBucket);
  const deadline = performance.now() + 120_000;
  for (;;) {
    const held = new Map(lanes.map((l) => [l, 0]));
    for await (const key of await control.keys('leases.>')) {
      const lane = laneOfKey(key);
      if (held.has(lane)) held.set(lane, (held.get(lane) as number) + 1);
    }
    if ([...held.values()].every((n) => n >= ctx.partitions)) return;
    const exited = workers.find((w) => !w.running);
    if (exited) throw new Error(`worker exited:\n${tail(exited)}`);
    if (performance.now() > deadline) throw new Error(`leases after 120 s: ${[...held].map(([l, n]) => `${l} ${n}/${ctx.partitions}`).join(', ')}`);
    await sleep(250);
  }
}

/**
 * Measures a window: the control stream's messages (and, from a watch of every key, their
 * prefixes), the workers' and the server's CPU, while `during` runs (at least `ms`).
 */
async function controlWindow(ctx: BenchContext, workers: readonly ManagedProcess[], ms: number, during: () => Promise<void> = () => sleep(ms)): Promise<ControlWindow> {
  const control = await new Kvm(ctx.js).open(NAMES.controlBucket);
  const counts: Record<string, number> = {};
  const watch = await control.watch({ key: '>', include: 'updates', ignoreDeletes: false });
  const watching = (async () => {
    for await (const e of watch as AsyncIterable<KvWatchEntry>) {
      const dot = e.key.indexOf('.');
      const prefix = dot < 0 ? e.key : e.key.slice(0, dot);
      counts[prefix] = (counts[prefix] ?? 0) + 1;
    }
  })();
  const stream = `KV_${NAMES.controlBucket}`;
  const seq0 = (await ctx.jsm.streams.info(stream)).state.last_seq;
  const pids: Record<string, number | undefined> = { server: ctx.server.pid };
  workers.forEach((w, i) => (pids[`w${i}`] = w.pid));
  const meter = new CpuMeter(pids);
  const busy0 = machineBusyMs();
  const lines0 = workers.map((w) => w.lineCount);
  const t0 = performance.now();
  await during();
  const elapsed = performance.now() - t0;
  const used = meter.read();
  const busy = (machineBusyMs() - busy0) / elapsed;
  const seq1 = (await ctx.jsm.streams.info(stream)).state.last_seq;
  watch.stop();
  await watching;
  const workerCores = workers.reduce((a, _, i) => a + (used[`w${i}`] ?? 0), 0);
  const serverCores = used.server ?? Number.NaN;
  const count = (re: RegExp) => workers.reduce((a, w, i) => a + linesSince(w, lines0[i] as number, re), 0);
  return {
    renewalFailures: count(/lease renewal failed/),
    fenced: count(/partition lost/),
    writesPerSec: perSecond(seq1 - seq0, elapsed),
    byPrefix: Object.fromEntries(Object.entries(counts).map(([p, n]) => [p, perSecond(n, elapsed)])),
    workerCores,
    serverCores,
    // The bench's own process publishes the load and watches; it counts as "others" here.
    otherCores: Math.max(0, busy - workerCores - serverCores),
  };
}

/** Publishes `rate` counter adds and `rate` tally adds per second over 1,000 keys each, for `ms`. */
async function steadyLoad(ctx: BenchContext, rate: number, ms: number): Promise<number> {
  const tickMs = 20;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const t0 = performance.now();
  let sent = 0;
  for (let tick = 1; performance.now() - t0 < ms; tick++) {
    for (let i = 0; i < perTick; i++, sent++) {
      const key = `k${sent % 1000}`;
      ctx.nc.publish(`${NAMES.subjectPrefix}.counter.${key}.add`, ONE);
      ctx.nc.publish(`${NAMES.subjectPrefix}.tally.${key}.add`, TALLY);
    }
    const wait = t0 + tick * tickMs - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await ctx.nc.flush();
  return sent;
}

/**
 * One control-cost run on a fresh topology of `partitions` partitions: the workers of one
 * service (the default worker) or two (counter-only and tally-only) start and take every
 * lease, settle, then an idle window and a window of steady counter and tally adds.
 */
async function controlRun(base: BenchContext, partitions: number, services: 1 | 2): Promise<ControlRun> {
  const ctx: BenchContext = { ...base, partitions };
  const label = `services ${partitions} partitions, ${services} service${services === 1 ? '' : 's'}`;
  const { windowMs, loadRate } = ctx.sizes.services;
  await freshTopology(ctx);
  const spec = services === 1 ? [DEFAULT_WORKER] : [COUNTER_WORKER, TALLY_WORKER];
  const lanes = services === 1 ? ['default'] : ['counters', 'tallies'];
  const workers = spec.map((w) => startWorker(ctx, `${w.name}-p${partitions}`, w.env));
  try {
    const t0 = performance.now();
    await waitForAllLeases(ctx, lanes, workers);
    progress(label, `  every lease held after ${Math.round(performance.now() - t0)} ms; settling`);
    await sleep(3000);
    const idle = await controlWindow(ctx, workers, windowMs);
    progress(label, `  idle: ${formatInt(idle.writesPerSec)} control writes/s, workers ${idle.workerCores.toFixed(2)} cores, ${idle.renewalFailures} renewals failed, ${idle.fenced} partitions lost`);
    const before = (await ctx.jsm.streams.info(NAMES.stream)).state.messages;
    let sent = 0;
    const load = await controlWindow(ctx, workers, windowMs, async () => {
      sent = await steadyLoad(ctx, loadRate, windowMs);
    });
    const stored = (await ctx.jsm.streams.info(NAMES.stream)).state.messages - before;
    if (stored < 2 * sent) throw new Error(`the load's core publishes were not all stored: ${stored} of ${2 * sent}`);
    progress(label, `  load (${formatInt(2 * sent)} ops): ${formatInt(load.writesPerSec)} control writes/s, workers ${load.workerCores.toFixed(2)} cores, ${load.renewalFailures} renewals failed, ${load.fenced} partitions lost`);
    return { partitions, services, idle, load, loadRate };
  } finally {
    await Promise.all(workers.map((w) => w.stop(15_000)));
  }
}

/** The services section: apply rates (one vs two services) and the cost of more leases and checkpoints. */
export async function measureServices(ctx: BenchContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const s of ctx.sizes.services.apply) {
    const results = {} as Record<ServiceSetupId, ApplyResult>;
    for (const id of Object.keys(SERVICE_SETUPS) as ServiceSetupId[]) results[id] = await runApplyScenario(ctx, s, SERVICE_SETUPS[id]);
    figures.push(...servicesApplyFigures(s.keys, results));
  }
  const runs: ControlRun[] = [];
  for (const partitions of ctx.sizes.services.partitions) {
    for (const services of [1, 2] as const) runs.push(await controlRun(ctx, partitions, services));
  }
  figures.push(...controlFigures(runs));
  return figures;
}
