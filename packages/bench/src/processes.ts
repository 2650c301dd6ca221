import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { WORKER_MAIN, spawnProcess, type ManagedProcess } from '@jetactor/testing';
import type { BenchContext } from './context.js';

/** Resident memory of a process, from /proc (Linux); NaN elsewhere. */
export function memoryOf(pid: number | undefined): { rss: number; peak: number } {
  if (!pid) return { rss: Number.NaN, peak: Number.NaN };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux); NaN elsewhere. */
export function cpuMsOf(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

/** The ids of a process's descendants (children, their children...), from /proc (Linux); empty elsewhere. */
export function descendantsOf(pid: number): number[] {
  const parentOf = new Map<number, number>();
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  const wanted = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [child, parent] of parentOf) {
      if (wanted.has(parent) && !wanted.has(child)) {
        wanted.add(child);
        out.push(child);
        grew = true;
      }
    }
  }
  return out;
}

/** CPU time of a process and all of its descendants (e.g. a gateway serving with several processes), in ms. */
export function treeCpuMsOf(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  let ms = cpuMsOf(pid);
  for (const child of descendantsOf(pid)) {
    const c = cpuMsOf(child);
    if (Number.isFinite(c)) ms += c;
  }
  return ms;
}

/**
 * CPU used by a set of processes over an interval, as a fraction of one core. A process
 * named in `trees` counts with its descendants (a gateway with `GATEWAY_PROCESSES` forks its
 * copies); the others alone (the bench's own process has every process of the run below it).
 */
export class CpuMeter {
  private readonly start: Map<string, number>;
  private readonly t0 = performance.now();

  constructor(
    private readonly pids: Record<string, number | undefined>,
    private readonly trees: ReadonlySet<string> = new Set(),
  ) {
    this.start = new Map(Object.keys(pids).map((k) => [k, this.cpuMs(k)]));
  }

  private cpuMs(key: string): number {
    return this.trees.has(key) ? treeCpuMsOf(this.pids[key]) : cpuMsOf(this.pids[key]);
  }

  /** Cores used by each process since construction (1.0 = one core busy all the time). */
  read(): Record<string, number> {
    const wall = performance.now() - this.t0;
    const out: Record<string, number> = {};
    for (const k of Object.keys(this.pids)) out[k] = (this.cpuMs(k) - (this.start.get(k) ?? 0)) / wall;
    return out;
  }
}

/**
 * Gives a process of the run the `--nice` priority (needs privileges for values below 0);
 * returns false when it was not allowed.
 */
export function applyNice(ctx: Pick<BenchContext, 'nice'>, pid: number | undefined): boolean {
  if (ctx.nice === null || !pid) return true;
  try {
    setPriority(pid, ctx.nice);
    return true;
  } catch {
    return false;
  }
}

/** `node` flags that write a CPU profile of a process of the run when `--cpu-prof` is given. */
export function profileArgs(ctx: Pick<BenchContext, 'cpuProfDir'>, name: string): string[] {
  return ctx.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.cpuProfDir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
}

/** Starts the default worker as its own process (`node packages/worker/dist/main.js`). */
export function startWorker(ctx: BenchContext, name = 'worker', extraEnv: Record<string, string> = {}): ManagedProcess {
  const args = profileArgs(ctx, name);
  // Extra node flags for the worker, e.g. BENCH_WORKER_NODE_OPTIONS='--heapsnapshot-signal=SIGUSR2'.
  if (process.env.BENCH_WORKER_NODE_OPTIONS) args.push(...process.env.BENCH_WORKER_NODE_OPTIONS.split(' ').filter(Boolean));
  args.push(WORKER_MAIN);
  const passThrough = Object.fromEntries(
    ['MAX_BATCH', 'MAX_CACHED_RECORDS', 'LEASE_TTL_MS', 'HEARTBEAT_MS'].flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
  );
  const proc = spawnProcess(process.execPath, args, {
    name,
    env: {
      NATS_URL: ctx.server.url,
      ACTORS_PARTITIONS: String(ctx.partitions),
      LOG_LEVEL: process.env.BENCH_WORKER_LOG_LEVEL ?? 'warn',
      ...passThrough,
      ...extraEnv,
    },
    echo: process.env.BENCH_ECHO === '1',
  });
  applyNice(ctx, proc.pid);
  return proc;
}

/** The last lines of a process's output, for error messages. */
export function tail(proc: ManagedProcess, n = 20): string {
  return proc.lines.slice(-n).join('\n');
}

/** Busy CPU time of the whole machine so far (all cores), in ms, from /proc/stat; NaN elsewhere. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy * 10;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU of a section: cores used by each named process, and by everything else on the machine
 * (other people's builds and tests share these cores and skew the figures).
 */
export class SectionCpu {
  private readonly meter: CpuMeter;
  private readonly busy0 = machineBusyMs();
  private readonly t0 = performance.now();

  /** `trees`: the names of processes to count with their descendants (see {@link CpuMeter}). */
  constructor(pids: Record<string, number | undefined>, trees: ReadonlySet<string> = new Set()) {
    this.meter = new CpuMeter(pids, trees);
  }

  /** Cores per process plus `others` (the rest of the machine), since construction. */
  read(): Record<string, number> {
    const ours = this.meter.read();
    const wall = performance.now() - this.t0;
    const all = (machineBusyMs() - this.busy0) / wall;
    let sum = 0;
    for (const v of Object.values(ours)) if (Number.isFinite(v)) sum += v;
    return { ...ours, others: Math.max(0, all - sum) };
  }
}
