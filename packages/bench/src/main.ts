#!/usr/bin/env node
/**
 * jetactor's benchmark suite. Run it with `npm run bench` (builds first, finds a
 * nats-server) or, after a build, `node packages/bench/dist/main.js [options]`:
 *
 *   --quick            a smoke run of about a minute (smaller sizes, shorter runs)
 *   --only=a,b         sections: raw, apply, latency, http, list, timers (default: all)
 *   --out=PATH         JSON results (default bench-results/latest.json)
 *   --markdown=PATH    also write the table as Markdown
 *   --cpu-prof         CPU profiles (node --cpu-prof) of the worker, gateway and minimal route
 *                      into bench-results/profiles/
 *   --nice=N           run every process of the bench at priority N (e.g. -10, needs root),
 *                      to keep other work on a shared machine from skewing the figures
 *
 * It starts its own nats-server (NATS_SERVER_BIN, PATH or the repo cache) on a free port
 * with a temp store, measures NATS's raw limits and jetactor side by side in the same run,
 * prints a table with every figure's ratio to its limit, and writes the results as JSON.
 * Workers, the gateway and the load generators run as separate processes; all of them
 * share this machine's cores with nats-server (and with whatever else runs on it).
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '@jetactor/testing';
import { measureApplyRates } from './apply-rate.js';
import { FULL_SIZES, QUICK_SIZES, type BenchContext } from './context.js';
import { evaluate, type Figure } from './figures.js';
import { measureGatewayThroughput } from './gateway-bench.js';
import { measureLatency } from './latency.js';
import { measureListPages } from './list-bench.js';
import { applyNice } from './processes.js';
import { progress } from './progress.js';
import { measureRawLimits } from './raw-limits.js';
import { measureTimers } from './timers-bench.js';
import { renderMarkdown, renderTable, writeResults, type RunInfo } from './report.js';

const SECTIONS = ['raw', 'apply', 'latency', 'http', 'list', 'timers'] as const;
type Section = (typeof SECTIONS)[number];

interface Args {
  quick: boolean;
  only: Set<Section>;
  out: string;
  markdown: string | null;
  cpuProf: boolean;
  nice: number | null;
}

function parseArgs(argv: readonly string[], root: string): Args {
  const args: Args = { quick: false, only: new Set(SECTIONS), out: join(root, 'bench-results/latest.json'), markdown: null, cpuProf: false, nice: null };
  for (const a of argv) {
    if (a === '--quick') args.quick = true;
    else if (a === '--cpu-prof') args.cpuProf = true;
    else if (a.startsWith('--nice=')) {
      const n = Number(a.slice('--nice='.length));
      if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error(`--nice takes an integer from -20 to 19, got '${a.slice(7)}'`);
      args.nice = n;
    }
    else if (a.startsWith('--only=')) {
      const wanted = a.slice('--only='.length).split(',').filter(Boolean);
      const bad = wanted.filter((w) => !(SECTIONS as readonly string[]).includes(w));
      if (bad.length > 0) throw new Error(`--only: unknown section ${bad.join(', ')} (sections: ${SECTIONS.join(', ')})`);
      args.only = new Set(wanted as Section[]);
    } else if (a.startsWith('--out=')) args.out = resolve(a.slice('--out='.length));
    else if (a.startsWith('--markdown=')) args.markdown = resolve(a.slice('--markdown='.length));
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench -- [--quick] [--only=raw,apply,latency,http,list,timers] [--out=PATH] [--markdown=PATH] [--cpu-prof] [--nice=N]\n');
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (try --help)`);
  }
  return args;
}

async function main(): Promise<void> {
  const root = resolve(process.env.JETACTOR_ROOT ?? process.cwd());
  const args = parseArgs(process.argv.slice(2), root);
  const t0 = performance.now();
  const partitions = Number(process.env.ACTORS_PARTITIONS ?? 32);
  const server = await startNatsServer();
  // noAsyncTraces: the bench's own requests skip building an Error per request (nats.js).
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  const ctx: BenchContext = {
    server,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    partitions,
    sizes: args.quick ? QUICK_SIZES : FULL_SIZES,
    quick: args.quick,
    repoRoot: root,
    cpuProfDir: args.cpuProf ? join(root, 'bench-results/profiles') : null,
    nice: args.nice,
  };
  if (args.nice !== null && !(applyNice(ctx, process.pid) && applyNice(ctx, server.pid))) {
    throw new Error(`--nice=${args.nice}: not allowed to change priorities (values below 0 need root)`);
  }
  const info: RunInfo = {
    startedAt: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    node: process.version,
    natsServer: nc.info?.version ?? 'unknown',
    cpus: `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'unknown'}`,
    memoryGB: Math.round(totalmem() / 1e9),
    partitions,
    nice: args.nice,
    loadAvgStart: loadavg().map((l) => Number(l.toFixed(2))),
    errors: [],
  };
  process.stderr.write(
    `jetactor bench (${info.mode}): node ${info.node}, nats-server ${info.natsServer}, ${info.cpus}, ${info.memoryGB} GB, ` +
      `${partitions} partitions, load average ${info.loadAvgStart.join(' ')}${args.nice !== null ? `, nice ${args.nice}` : ''}\n` +
      `nats-server, the worker, the gateway and the load generators share these ${cpus().length} cores; ` +
      `other processes on the machine skew the figures (see "others" CPU in the JSON).\n`,
  );

  const figures: Figure[] = [];
  const run = async (section: Section, fn: () => Promise<Figure[]>) => {
    if (!args.only.has(section)) return;
    try {
      figures.push(...(await fn()));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      info.errors.push({ section, message });
      progress(section, `FAILED: ${message}`);
    }
  };
  try {
    await run('raw', () => measureRawLimits(ctx));
    await run('apply', async () => (await measureApplyRates(ctx)).figures);
    await run('latency', () => measureLatency(ctx));
    await run('http', () => measureGatewayThroughput(ctx));
    await run('list', () => measureListPages(ctx));
    await run('timers', () => measureTimers(ctx));
  } finally {
    await nc.close();
    await server.stop();
  }

  info.loadAvgEnd = loadavg().map((l) => Number(l.toFixed(2)));
  info.durationS = Math.round((performance.now() - t0) / 1000);
  const evaluated = evaluate(figures);
  process.stdout.write(`\n${renderTable(evaluated)}\n\n`);
  const missed = evaluated.filter((f) => f.met === false);
  const met = evaluated.filter((f) => f.met === true);
  process.stdout.write(`targets met: ${met.length} of ${met.length + missed.length}${missed.length ? ` (not met: ${missed.map((f) => f.id).join(', ')})` : ''}\n`);
  for (const f of evaluated) {
    if (!f.detail) continue;
    const cpu = Object.entries(f.detail).filter(([k]) => k.endsWith('CpuCores'));
    if (cpu.length) process.stdout.write(`  ${f.id}: CPU cores ${cpu.map(([k, v]) => `${k.replace('CpuCores', '')} ${String(v)}`).join(', ')}\n`);
  }
  for (const e of info.errors) process.stdout.write(`section ${e.section} failed: ${e.message}\n`);
  process.stdout.write(`run took ${info.durationS} s; load average ${info.loadAvgStart.join(' ')} -> ${info.loadAvgEnd.join(' ')}\n`);
  await writeResults(args.out, info, evaluated);
  process.stdout.write(`results: ${args.out}\n`);
  if (args.markdown) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(args.markdown, `${renderMarkdown(evaluated)}\n`);
    process.stdout.write(`markdown: ${args.markdown}\n`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
