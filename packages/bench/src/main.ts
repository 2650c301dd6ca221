#!/usr/bin/env node
/**
 * jetactor's benchmark suite. Run it with `npm run bench` (builds first, finds a
 * nats-server) or, after a build, `node packages/bench/dist/main.js [options]`:
 *
 *   --quick            a smoke run of about a minute (smaller sizes, shorter runs)
 *   --only=a,b         sections: raw, apply, services, latency, http, list, timers, durability, peers, soak
 *                      (default: all but services, peers and soak)
 *   --minutes=N        length of the soak section (default 60), which runs only with --only=soak
 *   --peers            also the peers section: the call and signal phases against Restate 1.7,
 *                      installed on demand into .cache/peers/restate
 *   --nats-server PATH the nats-server binary (default: NATS_SERVER_BIN, PATH or the repo
 *                      cache); given twice or more, the whole suite runs once per server and a
 *                      side-by-side table of both follows (`npm run bench -- --servers=2.10,testing`
 *                      finds or fetches them: scripts/bench.mjs)
 *   --out=PATH         JSON results (default bench-results/latest.json)
 *   --markdown=PATH    also write the tables as Markdown
 *   --cpu-prof         CPU profiles (node --cpu-prof) of the worker, gateway and minimal route
 *                      into bench-results/profiles/
 *   --apply-keys=1,1000 only the apply scenarios of these key counts (of the run's sizes)
 *   --nice=N           run every process of the bench at priority N (e.g. -10, needs root),
 *                      to keep other work on a shared machine from skewing the figures
 *
 * For each server it starts that nats-server on a free port with a temp store, measures
 * NATS's raw limits and jetactor side by side in the same run, prints a table with every
 * figure's ratio to its limit, and writes the results as JSON. Workers, the gateway, the
 * peers and the load generators run as separate processes; all of them share this
 * machine's cores with nats-server (and with whatever else runs on it).
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { natsServerBin } from '@jetactor/testing';
import { parseArgs } from './args.js';
import { comparisonRows, runSuite, type SuiteRun } from './suite.js';
import { peerComparison } from './peers.js';
import { renderComparison, renderMarkdown, renderTable, writeResults } from './report.js';
import { renderSoak } from './soak-series.js';

/** Prints one run's table and notes on stdout. */
function printRun(run: SuiteRun, multi: boolean): void {
  const { info, figures } = run;
  if (multi) process.stdout.write(`\n=== nats-server ${info.natsServer} (${info.natsServerBin}) ===\n`);
  process.stdout.write(`\n${renderTable(figures)}\n\n`);
  const missed = figures.filter((f) => f.met === false);
  const met = figures.filter((f) => f.met === true);
  process.stdout.write(`targets met: ${met.length} of ${met.length + missed.length}${missed.length ? ` (not met: ${missed.map((f) => f.id).join(', ')})` : ''}\n`);
  for (const f of figures) {
    if (!f.detail) continue;
    const cpu = Object.entries(f.detail).filter(([k]) => k.endsWith('CpuCores'));
    if (cpu.length) process.stdout.write(`  ${f.id}: CPU cores ${cpu.map(([k, v]) => `${k.replace('CpuCores', '')} ${String(v)}`).join(', ')}\n`);
  }
  const peers = peerComparison(figures);
  if (peers) process.stdout.write(`\nPeers side by side (nats-server ${info.natsServer}):\n${renderComparison(peers.columns, peers.rows)}\n`);
  const soak = renderSoak(figures);
  if (soak) process.stdout.write(`\n${soak}\n`);
  for (const e of info.errors) process.stdout.write(`section ${e.section} failed: ${e.message}\n`);
  process.stdout.write(`run took ${info.durationS ?? '?'} s; load average ${info.loadAvgStart.join(' ')} -> ${(info.loadAvgEnd ?? []).join(' ')}\n`);
}

async function main(): Promise<void> {
  const root = resolve(process.env.JETACTOR_ROOT ?? process.cwd());
  const args = parseArgs(process.argv.slice(2), root);
  const bins = args.servers.length > 0 ? args.servers : [natsServerBin()];
  const runs: SuiteRun[] = [];
  for (const bin of bins) {
    const run = await runSuite(args, root, bin);
    runs.push(run);
    printRun(run, bins.length > 1);
  }
  const multi = runs.length > 1;
  const columns = runs.map((r) => `nats-server ${r.info.natsServer}`);
  const rows = multi ? comparisonRows(runs) : [];
  if (multi) process.stdout.write(`\nServers side by side (ratio: each server / the first):\n${renderComparison(columns, rows)}\n`);

  if (multi) {
    await writeResults(args.out, runs.map((r) => ({ info: r.info, figures: r.figures })));
  } else {
    const [only] = runs as [SuiteRun];
    await writeResults(args.out, { info: only.info, figures: only.figures });
  }
  process.stdout.write(`results: ${args.out}\n`);
  if (args.markdown) {
    const parts: string[] = [];
    for (const r of runs) {
      if (multi) parts.push(`### nats-server ${r.info.natsServer}\n`);
      parts.push(renderMarkdown(r.figures));
      const peers = peerComparison(r.figures);
      if (peers) parts.push(`\nPeers side by side (nats-server ${r.info.natsServer}):\n\n${renderComparison(peers.columns, peers.rows, true)}`);
      parts.push('');
    }
    if (multi) parts.push(`### Servers side by side\n\n${renderComparison(columns, rows, true)}\n`);
    await writeFile(args.markdown, `${parts.join('\n')}\n`);
    process.stdout.write(`markdown: ${args.markdown}\n`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
