/**
 * The `durability` section: what fsync per message costs. nats-server's file store fsyncs
 * every 2 minutes by default (a process crash loses nothing, a power loss can lose up to
 * that); with `sync_interval: always` every message is on disk before the server
 * acknowledges it, the durability Restate has (it fsyncs before it answers). The same call
 * and signal phases (system-phases.ts) run on the run's server (default) and on a second
 * server from the same binary with `jetstream { sync_interval: always }`, checked in its
 * /varz; each with a fresh worker and gateway.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '@jetactor/testing';
import type { BenchContext, PhaseResults } from './context.js';
import { Unit, type Figure, type Target } from './figures.js';
import { startJetactorStack } from './jetactor-stack.js';
import { applyNice } from './processes.js';
import { progress } from './progress.js';
import { measureCallsAndSignals } from './system-phases.js';
import { formatInt } from './stats.js';

/** The two settings measured. */
export const SyncMode = { Default: 'default', Always: 'always' } as const;
/** A nats-server fsync setting of the durability section. */
export type SyncMode = (typeof SyncMode)[keyof typeof SyncMode];

/** nats-server configuration that fsyncs every message before acknowledging it. */
export const SYNC_ALWAYS_CONFIG = 'jetstream {\n  sync_interval: always\n}';

const SECTION = 'Durability: nats-server fsync every 2 min (default) vs per message (sync_interval: always)';

/** A figure of the call and signal phases: how to name it, read it, and which way is better. */
export interface PhaseMetric {
  id: string;
  name: (ctx: BenchContext) => string;
  unit: Unit;
  /** `higher` for rates, `lower` for latencies and costs. */
  better: 'higher' | 'lower';
  value: (r: PhaseResults) => number;
  detail?: (r: PhaseResults) => Record<string, number | string>;
}

const cpuDetail = (cpu: Record<string, number>) => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [`${k}CpuCores`, v]));

/** The figures every system gets from the phases, in table order. */
export const PHASE_METRICS: readonly PhaseMetric[] = [
  { id: 'callP50', name: (ctx) => `call awaiting the result at ${formatInt(ctx.sizes.callRate)}/s, 1,000 keys, p50`, unit: Unit.Ms, better: 'lower', value: (r) => r.callP50 },
  {
    id: 'callP99',
    name: (ctx) => `call at ${formatInt(ctx.sizes.callRate)}/s p99`,
    unit: Unit.Ms,
    better: 'lower',
    value: (r) => r.callP99,
    detail: (r) => ({ maxMs: Number(r.callMax.toFixed(1)), errors: r.callErrors }),
  },
  {
    id: 'callRate',
    name: (ctx) => `calls/s as fast as answered (${ctx.sizes.httpConnections} connections, 1,000 keys)`,
    unit: Unit.PerSecond,
    better: 'higher',
    value: (r) => r.callsPerSecond,
    detail: (r) => ({ p99Ms: Number(r.callClosedP99.toFixed(1)), errors: r.callClosedErrors, ...cpuDetail(r.callCpu) }),
  },
  { id: 'cpuPerCall', name: () => `CPU per call (all of the system's processes)`, unit: Unit.Ms, better: 'lower', value: (r) => r.cpuMsPerCall },
  {
    id: 'signalRate',
    name: (ctx) => `one-way signals to one hot key accepted over HTTP (${ctx.sizes.httpConnections} connections)`,
    unit: Unit.PerSecond,
    better: 'higher',
    value: (r) => r.signalsPerSecond,
    detail: (r) => ({ refused: r.signalErrors, cpuMsPerSignal: Number(r.cpuMsPerSignal.toFixed(3)), ...cpuDetail(r.signalCpu) }),
  },
  {
    id: 'signalApplied',
    name: (ctx) => `signals applied/s (until the hot key holds all accepted, at most ${Math.max(10, ctx.sizes.httpMs / 1000)} s after the load)`,
    unit: Unit.PerSecond,
    better: 'higher',
    value: (r) => r.signalsAppliedPerSecond,
    detail: (r) => ({ backlogMs: Math.round(r.signalBacklogMs), unapplied: r.signalsUnapplied }),
  },
];

/** Figures of one system's phases, ids `<prefix>.<metric>`; `limitPrefix` compares each with another system's. */
export function phaseFigures(
  ctx: BenchContext,
  r: PhaseResults,
  opts: { prefix: string; section: string; label: string; limitPrefix?: string; target?: (m: PhaseMetric) => Target | undefined },
): Figure[] {
  return PHASE_METRICS.map((m) => {
    const target = opts.target?.(m);
    return {
      id: `${opts.prefix}.${m.id}`,
      section: opts.section,
      name: `${opts.label}: ${m.name(ctx)}`,
      value: m.value(r),
      unit: m.unit,
      ...(opts.limitPrefix ? { limitId: `${opts.limitPrefix}.${m.id}` } : {}),
      ...(target ? { target } : {}),
      detail: { system: opts.label, ...m.detail?.(r) },
    };
  });
}

/**
 * The phases on jetactor with the given fsync setting, measured once per run and server
 * (kept in `ctx.phases`).
 */
export async function jetactorPhases(ctx: BenchContext, mode: SyncMode, tag: string): Promise<PhaseResults> {
  const cached = ctx.phases.get(`jetactor.${mode}`);
  if (cached) return cached;
  const version = ctx.nc.info?.version ?? '?';
  let results: PhaseResults;
  if (mode === SyncMode.Default) {
    const stack = await startJetactorStack(ctx, `phases-${mode}`);
    try {
      results = await measureCallsAndSignals(ctx, stack.sut(`jetactor (nats-server ${version})`), tag);
    } finally {
      await stack.stop();
    }
  } else {
    progress(tag, `starting a second nats-server ${version} with sync_interval: always`);
    const server = await startNatsServer({ bin: ctx.natsServerBin, config: SYNC_ALWAYS_CONFIG, monitor: true });
    applyNice(ctx, server.pid);
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    try {
      const varz = await server.monitor<{ jetstream?: { config?: { sync_always?: boolean } } }>('/varz');
      if (varz.jetstream?.config?.sync_always !== true) throw new Error('the nats-server started with sync_interval: always does not report sync_always in /varz');
      const always: BenchContext = { ...ctx, server, nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
      const stack = await startJetactorStack(always, `phases-${mode}`);
      try {
        results = await measureCallsAndSignals(always, stack.sut(`jetactor (nats-server ${version}, sync_interval: always)`), tag);
      } finally {
        await stack.stop();
      }
    } finally {
      await nc.close();
      await server.stop();
    }
  }
  ctx.phases.set(`jetactor.${mode}`, results);
  return results;
}

/** Targets of issue 12: call p99 at 1,000/s within 10 ms by default and 40 ms with fsync per message. */
const P99_TARGET: Record<SyncMode, number> = { default: 10, always: 40 };

/** The section: the phases with each setting, the fsync-per-message figures as ratios of the default's. */
export async function measureDurability(ctx: BenchContext): Promise<Figure[]> {
  const byDefault = await jetactorPhases(ctx, SyncMode.Default, 'durability');
  const always = await jetactorPhases(ctx, SyncMode.Always, 'durability');
  const target = (mode: SyncMode) => (m: PhaseMetric) => (m.id === 'callP99' ? { max: P99_TARGET[mode] } : undefined);
  return [
    ...phaseFigures(ctx, byDefault, { prefix: 'durability.default', section: SECTION, label: 'default', target: target(SyncMode.Default) }),
    ...phaseFigures(ctx, always, { prefix: 'durability.always', section: SECTION, label: 'sync always', limitPrefix: 'durability.default', target: target(SyncMode.Always) }),
  ];
}
