import { Kvm, type KvWatchEntry } from '@nats-io/kv';
import { defaultNames, partitionOf, stateKey, type Checkpoint, type StateRecord } from '@jetactor/actor-runtime';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { SectionCpu, memoryOf, startWorker, tail } from './processes.js';
import { progress, sleep } from './progress.js';
import { freshTopology, provisionWithWorker } from './topology.js';
import { expectMessages, leanAckedPublish } from './raw-limits.js';
import { formatInt, perSecond } from './stats.js';
// Deterministic PRNG (mulberry32), so every run publishes the same keys.
import { prng } from '@jetactor/testing';

const SECTION = 'Worker apply rate (separate process, stream preloaded)';
const NAMES = defaultNames();
const dec = new TextDecoder();
const ONE = new TextEncoder().encode('1');

/** One apply-rate scenario: `ops` counter adds spread over `keys` keys. */
export interface ApplyScenario {
  keys: number;
  ops: number;
}

/** What an apply-rate run measured. */
export interface ApplyResult {
  scenario: ApplyScenario;
  /** Operations per second from the first lease taken to the last checkpoint reaching the end. */
  rate: number;
  ms: number;
  startupMs: number;
  /** From SIGTERM to the worker's exit (graceful hand-over of every partition). */
  stopMs: number;
  rss: number;
  peakRss: number;
  cpu: Record<string, number>;
  verified: number;
}

/**
 * The key of every operation: one hot key, or every key once (so all exist) and then
 * uniformly random keys.
 */
export function keyPlan(s: ApplyScenario): Uint32Array {
  const plan = new Uint32Array(s.ops);
  const rand = prng(s.keys * 7919 + s.ops);
  for (let i = 0; i < s.ops; i++) plan[i] = s.keys === 1 ? 0 : i < s.keys ? i : Math.floor(rand() * s.keys);
  return plan;
}

const keyName = (k: number) => `k${k}`;

/**
 * Preloads the stream with a scenario's operations, starts a worker process and measures
 * the operations applied per second until every partition's checkpoint reaches its last
 * operation. The stream and buckets are recreated first.
 */
export async function runApplyScenario(ctx: BenchContext, s: ApplyScenario): Promise<ApplyResult> {
  const label = `apply ${formatInt(s.keys)} key${s.keys === 1 ? '' : 's'}`;
  const topo = await freshTopology(ctx);
  await provisionWithWorker(ctx);

  // Preload with acknowledged publishes, a window in flight: servers from 2.11 on drop
  // un-acknowledged (core) publishes under overload, and every operation must be stored.
  // Each ack gives the operation's stream sequence, which the checkpoints are compared with.
  const plan = keyPlan(s);
  progress(label, `preloading ${formatInt(s.ops)} operations (acknowledged publishes, ${ctx.sizes.jsWindow} in flight)`);
  const subjects = Array.from({ length: s.keys }, (_, k) => `${NAMES.subjectPrefix}.counter.${keyName(k)}.add`);
  const seqOf = new Uint32Array(s.ops);
  const ingestMs = await leanAckedPublish(ctx.nc, s.ops, ctx.sizes.jsWindow, (i) => subjects[plan[i] as number] as string, ONE, { seqs: seqOf });
  await expectMessages(ctx, NAMES.stream, s.ops);

  // Where each operation landed: its partition and stream sequence.
  const partitionOfKey = new Uint16Array(s.keys);
  for (let k = 0; k < s.keys; k++) partitionOfKey[k] = partitionOf('counter', keyName(k), ctx.partitions);
  const perPartition: number[][] = Array.from({ length: ctx.partitions }, () => []);
  const expected = new Uint32Array(s.keys);
  for (let i = 0; i < s.ops; i++) {
    const k = plan[i] as number;
    (perPartition[partitionOfKey[k] as number] as number[]).push(seqOf[i] as number);
    expected[k] = (expected[k] as number) + 1;
  }
  const seqs = perPartition.map((a) => Uint32Array.from(a).sort());
  const lastSeq = seqs.map((a) => (a.length ? (a[a.length - 1] as number) : 0));
  progress(label, `  stored in ${(ingestMs / 1000).toFixed(1)} s (${formatInt(perSecond(s.ops, ingestMs))}/s); starting the worker`);

  // Watch leases and checkpoints as they change.
  const checkpoints = new Int32Array(ctx.partitions);
  let firstLeaseAt = 0;
  let doneAt = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const remaining = new Set(lastSeq.flatMap((seq, p) => (seq > 0 ? [p] : [])));
  const control = await new Kvm(ctx.js).open(NAMES.controlBucket);
  const watch = await control.watch({ key: ['leases.>', 'checkpoints.>'] });
  const watching = (async () => {
    for await (const e of watch as AsyncIterable<KvWatchEntry>) {
      if (e.operation !== 'PUT') continue;
      if (e.key.startsWith('leases.')) {
        if (!firstLeaseAt) firstLeaseAt = performance.now();
      } else {
        const p = Number(e.key.slice('checkpoints.'.length));
        const ck = JSON.parse(dec.decode(e.value)) as Checkpoint;
        checkpoints[p] = ck.seq;
        if (ck.seq >= (lastSeq[p] ?? 0) && remaining.delete(p) && remaining.size === 0) {
          doneAt = performance.now();
          resolveDone();
        }
      }
    }
  })();

  const spawnedAt = performance.now();
  const worker = startWorker(ctx, `worker-${s.keys}`);
  const cpu = new SectionCpu({ worker: worker.pid, server: ctx.server.pid, bench: process.pid });
  const applied = () => {
    let n = 0;
    for (let p = 0; p < ctx.partitions; p++) n += upperBound(seqs[p] as Uint32Array, checkpoints[p] as number);
    return n;
  };
  let midSnapshotAt = Number(process.env.BENCH_HEAP_SNAPSHOT_AT ?? 0);
  let lastReport = performance.now();
  let lastApplied = 0;
  const timeoutMs = Math.max(120_000, s.ops / 10);
  for (;;) {
    const finished = await Promise.race([done.then(() => true), sleep(1000).then(() => false)]);
    if (finished) break;
    if (!worker.running) throw new Error(`worker exited during the run:\n${tail(worker)}`);
    const now = performance.now();
    const n = applied();
    progress(label, `  ${formatInt(n)} / ${formatInt(s.ops)} applied (${formatInt(perSecond(n - lastApplied, now - lastReport))}/s)`);
    lastReport = now;
    lastApplied = n;
    // Diagnostics: a heap snapshot of the worker part-way (needs BENCH_WORKER_NODE_OPTIONS='--heapsnapshot-signal=SIGUSR2').
    if (midSnapshotAt > 0 && n >= s.ops * midSnapshotAt && worker.pid) {
      process.kill(worker.pid, 'SIGUSR2');
      midSnapshotAt = 0;
    }
    if (now - spawnedAt > timeoutMs) throw new Error(`apply run did not finish in ${timeoutMs} ms:\n${tail(worker)}`);
  }
  const cpuUse = cpu.read();
  const mem = memoryOf(worker.pid);
  watch.stop();
  await watching;
  const ms = doneAt - firstLeaseAt;
  const rate = perSecond(s.ops, ms);
  progress(label, `  ${formatInt(rate)} ops/s over ${(ms / 1000).toFixed(2)} s (worker start-up ${Math.round(firstLeaseAt - spawnedAt)} ms), RSS ${Math.round(mem.rss / 1e6)} MB`);

  // Check the results: every key (up to 1,000 sampled) holds its count and the last seq.
  const sample = s.keys <= 1000 ? Array.from({ length: s.keys }, (_, k) => k) : Array.from({ length: 1000 }, (_, j) => Math.floor((j * s.keys) / 1000));
  let verified = 0;
  for (const k of sample) {
    const entry = await topo.state.get(stateKey('counter', keyName(k)));
    const rec = entry ? (JSON.parse(dec.decode(entry.value)) as StateRecord<number>) : null;
    if (!rec || rec.state !== expected[k]) {
      throw new Error(`key ${keyName(k)}: state ${rec?.state} after the run, expected ${expected[k]}`);
    }
    verified++;
  }
  progress(label, `  verified ${formatInt(verified)} keys`);

  if (process.env.BENCH_HEAP_SNAPSHOT && worker.pid) {
    process.kill(worker.pid, 'SIGUSR2');
    await sleep(Number(process.env.BENCH_HEAP_SNAPSHOT));
  }
  if (process.env.BENCH_WORKER_LOG) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${process.env.BENCH_WORKER_LOG}-${s.keys}.log`, `${worker.lines.join('\n')}\n`);
  }
  // Graceful stop: every partition committed, checkpointed and released (hand-over cost).
  const stopStarted = performance.now();
  await worker.stop(15_000);
  const stopMs = performance.now() - stopStarted;
  return { scenario: s, rate, ms, startupMs: firstLeaseAt - spawnedAt, stopMs, rss: mem.rss, peakRss: mem.peak, cpu: cpuUse, verified };
}

/** Number of values <= x in ascending `a`. */
function upperBound(a: Uint32Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Runs every apply-rate scenario of the run's sizes and returns their figures. */
export async function measureApplyRates(ctx: BenchContext): Promise<{ figures: Figure[]; results: ApplyResult[] }> {
  const figures: Figure[] = [];
  const results: ApplyResult[] = [];
  for (const s of ctx.sizes.apply) {
    const r = await runApplyScenario(ctx, s);
    results.push(r);
    const big = s.keys >= 100_000;
    figures.push({
      id: `apply.keys${s.keys}`,
      section: SECTION,
      name: `apply rate, ${formatInt(s.keys)} key${s.keys === 1 ? '' : 's'} (${formatInt(s.ops)} ops)`,
      value: r.rate,
      unit: Unit.PerSecond,
      // One key: the ordered read of its one partition. Many keys: the worker reads the whole
      // stream once (shared reader), so the unfiltered read is the limit (issue 12's targets).
      limitId: big ? 'raw.kvPut' : s.keys === 1 ? 'raw.orderedRead' : 'raw.orderedReadAll',
      ...(s.keys === 1000 ? { alsoId: 'raw.orderedRead32' } : big ? { alsoId: 'raw.readPlusWrite' } : {}),
      target: { minRatio: 0.5, minNaiveRatio: 10 },
      detail: {
        ops: s.ops,
        keys: s.keys,
        ms: Math.round(r.ms),
        startupMs: Math.round(r.startupMs),
        stopMs: Math.round(r.stopMs),
        workerCpuCores: Number((r.cpu.worker ?? Number.NaN).toFixed(2)),
        serverCpuCores: Number((r.cpu.server ?? Number.NaN).toFixed(2)),
        otherCpuCores: Number((r.cpu.others ?? Number.NaN).toFixed(2)),
        rssBytes: r.rss,
        peakRssBytes: r.peakRss,
      },
    });
  }
  const big = results.find((r) => r.scenario.keys >= 100_000);
  if (big) {
    figures.push({
      id: 'memory.rss',
      section: 'Memory',
      name: `worker RSS after ${formatInt(big.scenario.keys)} keys (peak ${Math.round(big.peakRss / 1e6)} MB)`,
      value: big.rss,
      unit: Unit.Bytes,
      target: { max: 300e6 },
      detail: { peakRssBytes: big.peakRss },
    });
  }
  return { figures, results };
}
