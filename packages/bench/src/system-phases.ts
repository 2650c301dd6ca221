/**
 * The call and signal phases that the durability and peers sections run against a whole
 * system (jetactor on a given nats-server, or Restate), through the same HTTP client, with
 * the same keys:
 *
 * - calls at a fixed rate (`sizes.callRate`, open loop, 1,000 keys `c0`..`c999`), each
 *   awaiting the operation's result: p50 / p99 from the scheduled send time;
 * - calls as fast as they are answered (closed loop, `sizes.httpConnections` connections,
 *   the same keys): calls/s and the CPU all of the system's processes used per call;
 * - one-way signals to one hot key (autocannon, `sizes.httpConnections` connections):
 *   signals accepted per second, then signals applied per second (until the hot key's value
 *   holds every accepted signal, or at most max(10 s, the load's duration) after the load).
 */
import type { BenchContext, PhaseResults } from './context.js';
import { autocannon } from './gateway-bench.js';
import { closedLoop, openLoop } from './http-load.js';
import { SectionCpu } from './processes.js';
import { progress, sleep } from './progress.js';
import { formatInt, formatMs } from './stats.js';

/** A system under test, as the phases see it: where to send, what to read, which processes are it. */
export interface SystemUnderTest {
  /** As printed, e.g. `jetactor (nats-server 2.10.27)` or `Restate 1.7.12`. */
  label: string;
  /** A call to `add` on a key that answers with the result. */
  callUrl: (key: string) => string;
  /** A one-way `add` to the hot key. */
  signalUrl: string;
  /** The hot key's current value. */
  hotValue: () => Promise<number>;
  /** The system's processes, whose CPU is counted (server, workers, gateway, service). */
  pids: Record<string, number | undefined>;
}


const KEYS = 1000;
const key = (i: number) => `c${i % KEYS}`;

/**
 * Sum of the cores the system's processes used: not the load generators (`client`, this
 * process; autocannon is in `others`) nor the rest of the machine (`others`).
 */
function systemCores(cpu: Record<string, number>, pids: Record<string, number | undefined>): number {
  let sum = 0;
  for (const k of Object.keys(pids)) if (Number.isFinite(cpu[k])) sum += cpu[k] as number;
  return sum;
}

const round2 = (cpu: Record<string, number>) => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Number(v.toFixed(2))]));

/** Runs the three phases against `sut`; `tag` labels the progress lines. */
export async function measureCallsAndSignals(ctx: BenchContext, sut: SystemUnderTest, tag: string): Promise<PhaseResults> {
  const { callRate, callMs, httpMs, httpConnections: c } = ctx.sizes;
  const callUrl = (i: number) => sut.callUrl(key(i));

  // Warm up every key and path at the fixed rate; only the second run counts.
  progress(tag, `${sut.label}: calls at ${formatInt(callRate)}/s for ${callMs / 1000} s over ${formatInt(KEYS)} keys (after a warm-up)`);
  await openLoop({ url: callUrl, rate: callRate, durationMs: Math.min(3000, callMs) });
  const fixed = await openLoop({ url: callUrl, rate: callRate, durationMs: callMs });
  progress(tag, `  p50 ${formatMs(fixed.latency.p50)}, p99 ${formatMs(fixed.latency.p99)}, max ${formatMs(fixed.latency.max)} (${formatInt(fixed.ok)} ok, ${fixed.errors} errors)`);

  progress(tag, `${sut.label}: calls as fast as answered, ${c} connections for ${callMs / 1000} s`);
  let cpu = new SectionCpu({ ...sut.pids, client: process.pid }, new Set(Object.keys(sut.pids)));
  const closed = await closedLoop({ url: callUrl, connections: c, durationMs: callMs });
  const callCpu = cpu.read();
  const cpuMsPerCall = closed.ok > 0 ? (systemCores(callCpu, sut.pids) * 1000) / closed.rate : Number.NaN;
  progress(tag, `  ${formatInt(closed.rate)} calls/s (p99 ${formatMs(closed.latency.p99)}, ${closed.errors} errors), ${formatMs(cpuMsPerCall)} CPU per call`);

  progress(tag, `${sut.label}: one-way signals to one hot key, autocannon -c ${c} for ${httpMs / 1000} s`);
  const before = await sut.hotValue();
  cpu = new SectionCpu({ ...sut.pids, client: process.pid }, new Set(Object.keys(sut.pids)));
  const started = performance.now();
  const load = await autocannon(ctx, sut.signalUrl, c, httpMs);
  const loadEnded = performance.now();
  const signalCpu = cpu.read();
  const accepted = load['2xx'];
  const signalsPerSecond = accepted / load.duration;
  // Applied: poll the hot key until it holds every accepted signal (autocannon may leave a
  // few accepted but uncounted at its end, hence >=), or for at most `backlogWindowMs` after
  // the load: a system that applies one hot key's signals one by one (Restate runs each
  // invocation of a virtual object in turn, a round trip to the service each) can take
  // many minutes for the backlog; the rate is then what was applied until the window closed.
  const backlogWindowMs = Math.max(10_000, httpMs);
  const windowEnds = loadEnded + backlogWindowMs;
  let value = before;
  while ((value = await sut.hotValue()) - before < accepted && performance.now() < windowEnds) await sleep(20);
  const appliedAt = performance.now();
  const applied = Math.min(accepted, value - before);
  const signalsAppliedPerSecond = (applied * 1000) / (appliedAt - started);
  const cpuMsPerSignal = accepted > 0 ? (systemCores(signalCpu, sut.pids) * 1000) / signalsPerSecond : Number.NaN;
  const backlog = accepted - applied;
  progress(
    tag,
    `  ${formatInt(signalsPerSecond)} signals/s accepted (${load.non2xx + load.errors} refused); ` +
      (backlog > 0 ? `${formatInt(backlog)} of ${formatInt(accepted)} still unapplied ${formatMs(appliedAt - loadEnded)} after the load` : `all applied ${formatMs(appliedAt - loadEnded)} after the load`) +
      `: ${formatInt(signalsAppliedPerSecond)} applied/s`,
  );

  return {
    label: sut.label,
    callP50: fixed.latency.p50,
    callP99: fixed.latency.p99,
    callMax: fixed.latency.max,
    callErrors: fixed.errors,
    callsPerSecond: closed.rate,
    callClosedP99: closed.latency.p99,
    callClosedErrors: closed.errors,
    cpuMsPerCall,
    callCpu: round2(callCpu),
    signalsPerSecond,
    signalErrors: load.non2xx + load.errors,
    signalsAppliedPerSecond,
    signalBacklogMs: appliedAt - loadEnded,
    signalsUnapplied: backlog,
    cpuMsPerSignal,
    signalCpu: round2(signalCpu),
  };
}
