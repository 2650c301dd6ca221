/** One run of the suite on one nats-server: start it, run the sections, evaluate the figures. */
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '@jetactor/testing';
import { measureApplyRates } from './apply-rate.js';
import type { Args, Section } from './args.js';
import { FULL_SIZES, QUICK_SIZES, type BenchContext, type BenchSizes } from './context.js';
import { measureDurability } from './durability.js';
import { evaluate, type EvaluatedFigure, type Figure } from './figures.js';
import { measureGatewayThroughput } from './gateway-bench.js';
import { measureLatency } from './latency.js';
import { measureListPages } from './list-bench.js';
import { measurePeers } from './peers.js';
import { applyNice } from './processes.js';
import { progress } from './progress.js';
import { measureRawLimits } from './raw-limits.js';
import type { ComparisonRow, RunInfo } from './report.js';
import { measureServices } from './services-bench.js';
import { measureSoak } from './soak.js';
import { measureTimers } from './timers-bench.js';

/** What one run on one server produced. */
export interface SuiteRun {
  info: RunInfo;
  figures: EvaluatedFigure[];
}

const MEASURE: Record<Section, (ctx: BenchContext) => Promise<Figure[]>> = {
  raw: measureRawLimits,
  apply: async (ctx) => (await measureApplyRates(ctx)).figures,
  services: measureServices,
  latency: measureLatency,
  http: measureGatewayThroughput,
  list: measureListPages,
  timers: measureTimers,
  durability: measureDurability,
  peers: measurePeers,
  soak: measureSoak,
};

/** The sizes with only the apply scenarios of the given key counts (all when null). */
function applyOnly(sizes: BenchSizes, keys: readonly number[] | null): BenchSizes {
  if (!keys) return sizes;
  const apply = sizes.apply.filter((s) => keys.includes(s.keys));
  const missing = keys.filter((k) => !apply.some((s) => s.keys === k));
  if (missing.length > 0) throw new Error(`--apply-keys: no apply scenario with ${missing.join(', ')} keys (the run's: ${sizes.apply.map((s) => s.keys).join(', ')})`);
  return { ...sizes, apply };
}

/** Runs the selected sections on a nats-server started from `bin`; a failed section is recorded, the rest go on. */
export async function runSuite(args: Args, root: string, bin: string): Promise<SuiteRun> {
  const t0 = performance.now();
  const partitions = Number(process.env.ACTORS_PARTITIONS ?? 32);
  const server = await startNatsServer({ bin });
  // noAsyncTraces: the bench's own requests skip building an Error per request (nats.js).
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  const ctx: BenchContext = {
    server,
    natsServerBin: bin,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    partitions,
    sizes: applyOnly(args.quick ? QUICK_SIZES : FULL_SIZES, args.applyKeys),
    quick: args.quick,
    repoRoot: root,
    cpuProfDir: args.cpuProf ? join(root, 'bench-results/profiles') : null,
    nice: args.nice,
    phases: new Map(),
    soak: { minutes: args.minutes, sampleSeconds: args.sampleSeconds },
  };
  const info: RunInfo = {
    startedAt: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    node: process.version,
    natsServer: nc.info?.version ?? 'unknown',
    natsServerBin: bin,
    cpus: `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'unknown'}`,
    memoryGB: Math.round(totalmem() / 1e9),
    partitions,
    nice: args.nice,
    loadAvgStart: loadavg().map((l) => Number(l.toFixed(2))),
    errors: [],
  };
  const figures: Figure[] = [];
  try {
    if (args.nice !== null && !(applyNice(ctx, process.pid) && applyNice(ctx, server.pid))) {
      throw new Error(`--nice=${args.nice}: not allowed to change priorities (values below 0 need root)`);
    }
    process.stderr.write(
      `jetactor bench (${info.mode}): node ${info.node}, nats-server ${info.natsServer} (${bin}), ${info.cpus}, ${info.memoryGB} GB, ` +
        `${partitions} partitions, load average ${info.loadAvgStart.join(' ')}${args.nice !== null ? `, nice ${args.nice}` : ''}\n` +
        `nats-server, the worker, the gateway and the load generators share these ${cpus().length} cores; ` +
        `other processes on the machine skew the figures (see "others" CPU in the JSON).\n`,
    );
    for (const section of Object.keys(MEASURE) as Section[]) {
      if (!args.only.has(section)) continue;
      try {
        figures.push(...(await MEASURE[section](ctx)));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        info.errors.push({ section, message });
        progress(section, `FAILED: ${message}`);
      }
    }
  } finally {
    await nc.close();
    await server.stop();
  }
  info.loadAvgEnd = loadavg().map((l) => Number(l.toFixed(2)));
  info.durationS = Math.round((performance.now() - t0) / 1000);
  return { info, figures: evaluate(figures) };
}

/**
 * Every figure that all the runs have, in the first run's order, with each run's value.
 * Left out: Restate's figures (measured once per bench process, the same in every run) and
 * rows whose values repeat an earlier row's exactly (the peers section reuses the durability
 * section's jetactor phases).
 */
export function comparisonRows(runs: readonly SuiteRun[]): ComparisonRow[] {
  const [first, ...rest] = runs;
  if (!first) return [];
  const maps = rest.map((r) => new Map(r.figures.map((f) => [f.id, f])));
  const seen = new Set<string>();
  const rows: ComparisonRow[] = [];
  for (const f of first.figures) {
    if (f.id.startsWith('peers.restate.') || !maps.every((m) => m.has(f.id))) continue;
    const values = [f.value, ...maps.map((m) => m.get(f.id)?.value ?? Number.NaN)];
    const key = `${f.unit} ${values.join(' ')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ name: f.name, unit: f.unit, values });
  }
  return rows;
}
