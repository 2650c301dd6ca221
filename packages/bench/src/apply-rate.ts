import { Kvm, type KvWatchEntry } from '@nats-io/kv';
import { defaultNames, partitionOf, stateKey, type Checkpoint, type StateRecord } from '@jetactor/actor-runtime/internal';
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

/** An actor type loaded in an apply run, and the service (lane) that applies it. */
export interface ApplyLoad {
  /** `counter` (`add` 1) or `tally` (`add` of one label). */
  type: 'counter' | 'tally';
  /**
   * The lane whose leases and checkpoints show its progress: `default` (the default worker's,
   * keys `leases.<p>`, `checkpoints.<p>`) or a service's name (`leases.<lane>.<p>`).
   */
  lane: string;
}

/** A worker process of an apply run: its name (CPU and logs) and environment (e.g. `JETACTOR_ACTORS`). */
export interface ApplyWorker {
  name: string;
  env: Record<string, string>;
}

/**
 * How an apply run is set up: `ops` operations of each load (interleaved in the stream: one
 * of each in turn, over the same keys) and the worker processes that apply them.
 */
export interface ApplySetup {
  loads: ApplyLoad[];
  workers: ApplyWorker[];
}

/** The apply section's setup: counter adds, the default worker. */
export const DEFAULT_APPLY: ApplySetup = { loads: [{ type: 'counter', lane: 'default' }], workers: [{ name: 'worker', env: {} }] };

/** What one load of an apply run measured. */
export interface LoadResult extends ApplyLoad {
  /** Its operations per second, from its lane's first lease taken to its last operation checkpointed. */
  rate: number;
  ms: number;
}

/** What an apply-rate run measured. */
export interface ApplyResult {
  scenario: ApplyScenario;
  /** Operations per second (of every load) from the first lease taken to the last checkpoint reaching the end. */
  rate: number;
  ms: number;
  /** Each load's own rate. */
  loads: LoadResult[];
  startupMs: number;
  /** From SIGTERM to the workers' exit (graceful hand-over of every partition). */
  stopMs: number;
  /** Of the first worker. */
  rss: number;
  peakRss: number;
  /** Cores used by each worker (by name), the server, the bench and the rest of the machine. */
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
/** Tally adds count this label. */
const LABEL = 'n';
const PAYLOAD = { counter: ONE, tally: new TextEncoder().encode(JSON.stringify({ label: LABEL })) };
/** The count an operation of each type adds, read from its record's state. */
const countOf = {
  counter: (state: unknown) => state as number,
  tally: (state: unknown) => (state as { counts: Record<string, number> }).counts[LABEL],
};

/** KV watch filters of a lane's leases and checkpoints (the default lane's keys have no lane token). */
export function laneKeys(lane: string): string[] {
  return lane === 'default' ? ['leases.*', 'checkpoints.*'] : [`leases.${lane}.*`, `checkpoints.${lane}.*`];
}

/** The lane of a lease or checkpoint key that one of {@link laneKeys}' filters matched. */
export function laneOfKey(key: string): string {
  const tokens = key.split('.');
  return tokens.length === 2 ? 'default' : tokens.slice(1, -1).join('.');
}

/** Progress of one load: where its operations landed, and when its lane finished them. */
interface LoadTrack {
  load: ApplyLoad;
  /** Its operations' stream sequences, by partition, ascending. */
  seqs: Uint32Array[];
  lastSeq: number[];
  remaining: Set<number>;
  /** Each key's count after the run. */
  expected: Uint32Array;
  doneAt: number;
}

/**
 * Preloads the stream with a scenario's operations (`s.ops` of each load), starts the worker
 * processes and measures the operations applied per second until every partition's
 * checkpoint of each load's lane reaches that load's last operation. The stream and buckets
 * are recreated first.
 */
export async function runApplyScenario(ctx: BenchContext, s: ApplyScenario, setup: ApplySetup = DEFAULT_APPLY): Promise<ApplyResult> {
  const kind = setup === DEFAULT_APPLY ? '' : ` ${setup.loads.map((l) => `${l.type}@${l.lane}`).join('+')}`;
  const label = `apply ${formatInt(s.keys)} key${s.keys === 1 ? '' : 's'}${kind}`;
  const topo = await freshTopology(ctx);
  await provisionWithWorker(ctx);

  // Preload with acknowledged publishes, a window in flight: servers from 2.11 on drop
  // un-acknowledged (core) publishes under overload, and every operation must be stored.
  // Each ack gives the operation's stream sequence, which the checkpoints are compared with.
  // Message i is operation floor(i / L) of load i % L (L loads, one of each in turn).
  const plan = keyPlan(s);
  const L = setup.loads.length;
  const total = s.ops * L;
  progress(label, `preloading ${formatInt(total)} operations (acknowledged publishes, ${ctx.sizes.jsWindow} in flight)`);
  const subjects = setup.loads.map((l) => Array.from({ length: s.keys }, (_, k) => `${NAMES.subjectPrefix}.${l.type}.${keyName(k)}.add`));
  const seqOf = new Uint32Array(total);
  const ingestMs = await leanAckedPublish(
    ctx.nc,
    total,
    ctx.sizes.jsWindow,
    (i) => (subjects[i % L] as string[])[plan[Math.floor(i / L)] as number] as string,
    (i) => PAYLOAD[(setup.loads[i % L] as ApplyLoad).type],
    { seqs: seqOf },
  );
  await expectMessages(ctx, NAMES.stream, total);

  // Where each operation landed: its partition and stream sequence.
  const tracks: LoadTrack[] = setup.loads.map((load, j) => {
    const partitionOfKey = Uint16Array.from({ length: s.keys }, (_, k) => partitionOf(load.type, keyName(k), ctx.partitions));
    const perPartition: number[][] = Array.from({ length: ctx.partitions }, () => []);
    const expected = new Uint32Array(s.keys);
    for (let i = 0; i < s.ops; i++) {
      const k = plan[i] as number;
      (perPartition[partitionOfKey[k] as number] as number[]).push(seqOf[i * L + j] as number);
      expected[k] = (expected[k] as number) + 1;
    }
    const seqs = perPartition.map((a) => Uint32Array.from(a).sort());
    const lastSeq = seqs.map((a) => (a.length ? (a[a.length - 1] as number) : 0));
    return { load, seqs, lastSeq, remaining: new Set(lastSeq.flatMap((seq, p) => (seq > 0 ? [p] : []))), expected, doneAt: 0 };
  });
  progress(label, `  stored in ${(ingestMs / 1000).toFixed(1)} s (${formatInt(perSecond(total, ingestMs))}/s); starting ${setup.workers.length === 1 ? 'the worker' : `${setup.workers.length} workers`}`);

  // Watch each lane's leases and checkpoints as they change.
  const lanes = [...new Set(setup.loads.map((l) => l.lane))];
  const checkpoints = new Map(lanes.map((l) => [l, new Int32Array(ctx.partitions)]));
  const firstLeaseAt = new Map<string, number>();
  // The watch first replays the keys' last values: a lease the provisioning worker left is
  // older than the workers started below (by the server's time of the write) and is not theirs.
  let spawnedAtWall = Number.POSITIVE_INFINITY;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const control = await new Kvm(ctx.js).open(NAMES.controlBucket);
  const watch = await control.watch({ key: lanes.flatMap(laneKeys) });
  const watching = (async () => {
    for await (const e of watch as AsyncIterable<KvWatchEntry>) {
      if (e.operation !== 'PUT') continue;
      const lane = laneOfKey(e.key);
      if (e.key.startsWith('leases.')) {
        if (!firstLeaseAt.has(lane) && e.created.getTime() >= spawnedAtWall) firstLeaseAt.set(lane, performance.now());
        continue;
      }
      const p = Number(e.key.slice(e.key.lastIndexOf('.') + 1));
      const ck = JSON.parse(dec.decode(e.value)) as Checkpoint;
      (checkpoints.get(lane) as Int32Array)[p] = ck.seq;
      for (const t of tracks) {
        if (t.load.lane === lane && ck.seq >= (t.lastSeq[p] ?? 0) && t.remaining.delete(p) && t.remaining.size === 0) t.doneAt = performance.now();
      }
      if (tracks.every((t) => t.doneAt > 0)) resolveDone();
    }
  })();

  spawnedAtWall = Date.now();
  const spawnedAt = performance.now();
  const workers = setup.workers.map((w) => startWorker(ctx, `${w.name}-${s.keys}`, w.env));
  const cpu = new SectionCpu({ ...Object.fromEntries(setup.workers.map((w, i) => [w.name, workers[i]?.pid])), server: ctx.server.pid, bench: process.pid });
  const applied = () => {
    let n = 0;
    for (const t of tracks) {
      const cks = checkpoints.get(t.load.lane) as Int32Array;
      for (let p = 0; p < ctx.partitions; p++) n += upperBound(t.seqs[p] as Uint32Array, cks[p] as number);
    }
    return n;
  };
  let midSnapshotAt = Number(process.env.BENCH_HEAP_SNAPSHOT_AT ?? 0);
  let lastReport = performance.now();
  let lastApplied = 0;
  const timeoutMs = Math.max(120_000, total / 10);
  for (;;) {
    const finished = await Promise.race([done.then(() => true), sleep(1000).then(() => false)]);
    if (finished) break;
    const exited = workers.find((w) => !w.running);
    if (exited) throw new Error(`worker exited during the run:\n${tail(exited)}`);
    const now = performance.now();
    const n = applied();
    progress(label, `  ${formatInt(n)} / ${formatInt(total)} applied (${formatInt(perSecond(n - lastApplied, now - lastReport))}/s)`);
    lastReport = now;
    lastApplied = n;
    // Diagnostics: a heap snapshot of the worker part-way (needs BENCH_WORKER_NODE_OPTIONS='--heapsnapshot-signal=SIGUSR2').
    if (midSnapshotAt > 0 && n >= total * midSnapshotAt && workers[0]?.pid) {
      process.kill(workers[0].pid, 'SIGUSR2');
      midSnapshotAt = 0;
    }
    if (now - spawnedAt > timeoutMs) throw new Error(`apply run did not finish in ${timeoutMs} ms:\n${workers.map((w) => tail(w)).join('\n')}`);
  }
  const cpuUse = cpu.read();
  const mem = memoryOf(workers[0]?.pid);
  watch.stop();
  await watching;
  const started = Math.min(...firstLeaseAt.values());
  const ms = Math.max(...tracks.map((t) => t.doneAt)) - started;
  const rate = perSecond(total, ms);
  const loads = tracks.map((t) => {
    const loadMs = t.doneAt - (firstLeaseAt.get(t.load.lane) as number);
    return { ...t.load, rate: perSecond(s.ops, loadMs), ms: loadMs };
  });
  const each = L > 1 ? ` (${loads.map((l) => `${l.type} ${formatInt(l.rate)}/s`).join(', ')})` : '';
  progress(label, `  ${formatInt(rate)} ops/s over ${(ms / 1000).toFixed(2)} s${each} (worker start-up ${Math.round(started - spawnedAt)} ms), RSS ${Math.round(mem.rss / 1e6)} MB`);

  // Check the results: every key (up to 1,000 sampled) of each load holds its count.
  const sample = s.keys <= 1000 ? Array.from({ length: s.keys }, (_, k) => k) : Array.from({ length: 1000 }, (_, j) => Math.floor((j * s.keys) / 1000));
  let verified = 0;
  for (const t of tracks) {
    for (const k of sample) {
      const entry = await topo.state.get(stateKey(t.load.type, keyName(k)));
      const rec = entry ? (JSON.parse(dec.decode(entry.value)) as StateRecord<unknown>) : null;
      const count = rec ? countOf[t.load.type](rec.state) : undefined;
      if (count !== t.expected[k]) throw new Error(`${t.load.type} ${keyName(k)}: count ${count} after the run, expected ${t.expected[k]}`);
      verified++;
    }
  }
  progress(label, `  verified ${formatInt(verified)} keys`);

  if (process.env.BENCH_HEAP_SNAPSHOT && workers[0]?.pid) {
    process.kill(workers[0].pid, 'SIGUSR2');
    await sleep(Number(process.env.BENCH_HEAP_SNAPSHOT));
  }
  if (process.env.BENCH_WORKER_LOG) {
    const { writeFile } = await import('node:fs/promises');
    for (const w of workers) await writeFile(`${process.env.BENCH_WORKER_LOG}-${w.name}-${s.keys}.log`, `${w.lines.join('\n')}\n`);
  }
  // Graceful stop: every partition committed, checkpointed and released (hand-over cost).
  const stopStarted = performance.now();
  await Promise.all(workers.map((w) => w.stop(15_000)));
  const stopMs = performance.now() - stopStarted;
  return { scenario: s, rate, ms, loads, startupMs: started - spawnedAt, stopMs, rss: mem.rss, peakRss: mem.peak, cpu: cpuUse, verified };
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
