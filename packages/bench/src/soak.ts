/**
 * The `soak` section (`--only=soak --minutes=N`, not part of the default run): jetactor under
 * mixed traffic at a moderate steady rate for N minutes, a leak and stall test rather than a
 * speed test. nats-server (the run's), the default worker and the gateway run as processes.
 *
 * Traffic (see RATES): account transfers (each a debit and a send to the other account),
 * counter adds signalled and called with `?wait=true` (latency from the scheduled send time),
 * a recurring timer on every counter (`add 0` every 100 ms-1 s, re-set now and then) beside
 * long-dated timers (days ahead) on the same keys that are cancelled and set again, device
 * telemetry published on the bound subject `devices.<id>.telemetry`, a withdrawal that fails
 * now and then (dead letters), SSE watches opened and closed, dead-letter pages read.
 *
 * The stream fills and drains: the worker runs with a small `ACTORS_MAX_BYTES`; a few times in
 * the first third of the run it is stopped (SIGTERM) while counter adds are published until
 * the stream answers that it is full, then started again, and the bench waits until the
 * stream accepts operations again and drains (at most DRAIN_DEADLINE_MS: past it the run
 * fails, and ends).
 *
 * Every sample (a minute by default): the processes' RSS, the server's consumers, the
 * worker's timer heap entries (its metrics), call latency, operations applied, the stream's
 * bytes. At the end: each series' last third against its middle third (soak-series.ts), and
 * the checks: the sum of the account balances is what was deposited, every counter holds the
 * adds acknowledged for it, every device the readings acknowledged, every counter the timers
 * it was last given.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { JetStreamApiError } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { controlKeys, defaultNames, stateKey, type Checkpoint, type StateRecord } from '@jetactor/actor-runtime/internal';
import { freePort, prng, type ManagedProcess } from '@jetactor/testing';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { startJetactorStack } from './jetactor-stack.js';
import { memoryOf, startWorker, tail } from './processes.js';
import { progress, sleep } from './progress.js';
import { leanAckedPublish } from './raw-limits.js';
import { SOAK_SECTION, fillTimes, promValue, seriesFigures, type SoakSample } from './soak-series.js';
import { formatInt, formatMs, summarize } from './stats.js';
import { waitForLeases } from './topology.js';

const NAMES = defaultNames();
const ACCOUNTS = 40;
const START_BALANCE = 5000;
const COUNTERS = 40;
const DEVICES = 20;
/** Long-dated timers per counter (`far0`...), beside its recurring `tick`. */
const FAR_TIMERS = 3;
/** The worker's stream bound: about three times what two minutes of this traffic keep. */
const MAX_BYTES = 16 * 1024 * 1024;
/** Applied operations are purged after this (the least the worker allows: the duplicate window). */
const RETAIN_MS = 120_000;
/** A filled stream must accept operations and be below half its bound this long after the worker restarted. */
const DRAIN_DEADLINE_MS = 6 * 60_000;
/** `?timeoutMs=` of a call; a call that times out is retried with its idempotency key for RETRY_WINDOW_MS. */
const CALL_TIMEOUT_MS = 15_000;
const RETRY_WINDOW_MS = 60_000;
/** After the traffic, how long every transfer, add and reading may take to be applied. */
const SETTLE_MS = 180_000;
/** Operations per second of each lane (about 140 HTTP requests and 300 stream messages per second in all). */
const RATES = { transfer: 60, add: 40, call: 20, telemetry: 20, far: 2, retime: 0.5, poison: 0.5, sse: 0.25, dlq: 0.1 };
const DAY_MS = 86_400_000;
const ONE = new TextEncoder().encode('1');
const enc = new TextEncoder();
const dec = new TextDecoder();

const accountKey = (i: number) => `a${i}`;
const counterKey = (i: number) => `c${i}`;
const PROBE = 'probe';

/** What an HTTP request answered: status 0 when it got no answer (connection error, client timeout). */
interface Answer {
  status: number;
  code?: string;
  body?: unknown;
}

async function http(url: string, method: string, opts: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Answer> {
  try {
    const res = await fetch(url, {
      method,
      headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, code: (body as { error?: { code?: string } } | undefined)?.error?.code, body };
  } catch (err) {
    return { status: 0, code: err instanceof Error ? err.name : 'ERROR' };
  }
}

/**
 * What a write's answer means for the checks: `accepted` (2xx: stored), `refused` (503
 * STREAM_FULL: not stored), `failed` (4xx: nothing changes), `ambiguous` (any other 5xx or
 * no answer: it may or may not have been stored).
 */
type Outcome = 'accepted' | 'refused' | 'failed' | 'ambiguous';
function outcomeOf(a: Answer): Outcome {
  if (a.status >= 200 && a.status < 300) return 'accepted';
  if (a.status === 503 && a.code === 'STREAM_FULL') return 'refused';
  if (a.status >= 400 && a.status < 500) return 'failed';
  return 'ambiguous';
}

/** Counts of outcomes, per sample and for the run. */
class Tally {
  readonly run: Record<Outcome, number> = { accepted: 0, refused: 0, failed: 0, ambiguous: 0 };
  interval: Record<Outcome, number> = { accepted: 0, refused: 0, failed: 0, ambiguous: 0 };
  readonly statuses: Record<string, number> = {};
  add(o: Outcome, a?: Answer): Outcome {
    this.run[o]++;
    this.interval[o]++;
    if (a && o !== 'accepted') {
      const k = `${a.status}${a.code ? ` ${a.code}` : ''}`;
      this.statuses[k] = (this.statuses[k] ?? 0) + 1;
    }
    return o;
  }
  take(): Record<Outcome, number> {
    const out = this.interval;
    this.interval = { accepted: 0, refused: 0, failed: 0, ambiguous: 0 };
    return out;
  }
}

/**
 * A stream of operations at a fixed rate, open loop (scheduled by the clock, not by answers),
 * with at most `maxInFlight` waiting: past that a scheduled operation is skipped and counted,
 * so a stall shows instead of piling up requests.
 */
class Lane {
  private t0 = 0;
  private sent = 0;
  private next = 0;
  private inFlight = 0;
  paused = false;
  skipped = 0;

  constructor(
    readonly name: string,
    private readonly rate: number,
    private readonly maxInFlight: number,
    private readonly fn: (i: number, scheduledAt: number) => Promise<void>,
  ) {}

  start(now: number): void {
    this.paused = false;
    this.t0 = now;
    this.sent = 0;
  }

  pause(): void {
    this.paused = true;
  }

  poll(now: number, track: (p: Promise<void>) => void): void {
    if (this.paused) return;
    // Operation i is due at t0 + i / rate: sent as soon as that time has come.
    const due = Math.floor(((now - this.t0) * this.rate) / 1000);
    while (this.sent <= due) {
      const scheduledAt = this.t0 + (this.sent * 1000) / this.rate;
      this.sent++;
      if (this.inFlight >= this.maxInFlight) {
        this.skipped++;
        continue;
      }
      this.inFlight++;
      track(
        this.fn(this.next++, scheduledAt)
          .catch((err: unknown) => progress('soak', `  ${this.name} lane: ${err instanceof Error ? err.message : String(err)}`))
          .finally(() => this.inFlight--),
      );
    }
  }
}

/** `NAME n`: the stream with the most consumers, leaving out `known`; '-' when none has any. */
function mostConsumers(byStream: ReadonlyMap<string, number>, known: readonly string[]): string {
  let best = '-';
  let most = 0;
  for (const [name, n] of byStream) {
    if (n > most && !known.includes(name)) {
      best = `${name} ${n}`;
      most = n;
    }
  }
  return best;
}

/**
 * Where the stream stands, for a failure message: its first and last sequence, the lowest
 * partition checkpoints (a partition that does not move keeps retention from purging) and the
 * last purge the workers recorded.
 */
async function streamReport(ctx: BenchContext): Promise<string> {
  try {
    const { state } = await ctx.jsm.streams.info(NAMES.stream);
    const control = await new Kvm(ctx.js).open(NAMES.controlBucket);
    const cks: Array<[number, number]> = [];
    for (let p = 0; p < ctx.partitions; p++) {
      const e = await control.get(controlKeys.checkpoint(p));
      if (e?.operation === 'PUT') cks.push([p, (JSON.parse(dec.decode(e.value)) as Checkpoint).seq]);
    }
    cks.sort((a, b) => a[1] - b[1]);
    const behind = cks.filter(([, seq]) => seq < state.last_seq);
    const retention = await control.get(controlKeys.retention);
    return (
      `stream seqs ${state.first_seq}-${state.last_seq}; ${behind.length} of ${ctx.partitions} partitions' checkpoints below the last seq, the lowest: ` +
      `${behind.slice(0, 6).map(([p, seq]) => `${p} at ${seq}`).join(', ') || 'none'}; retention record: ${retention?.operation === 'PUT' ? dec.decode(retention.value) : 'none'}`
    );
  } catch (err) {
    return `(stream report failed: ${err instanceof Error ? err.message : String(err)})`;
  }
}

/** One fill of the stream and how it drained. */
type Cycle = Record<string, number | string>;

/** The section. */
export async function measureSoak(ctx: BenchContext): Promise<Figure[]> {
  const { minutes, sampleSeconds } = ctx.soak;
  const runMs = minutes * 60_000;
  const sampleMs = sampleSeconds * 1000;
  const metricsPort = await freePort();
  const workerEnv = { METRICS_PORT: String(metricsPort), ACTORS_MAX_BYTES: String(MAX_BYTES), ACTORS_RETAIN_MS: String(RETAIN_MS) };
  const stack = await startJetactorStack(ctx, 'soak', workerEnv);
  const gw = stack.gateway.url;
  let worker: ManagedProcess = stack.worker;
  let workers = 1;
  const failures: string[] = [];
  const rand = prng(minutes * 7919 + sampleSeconds);
  const runId = Date.now().toString(36);
  try {
    progress('soak', `${minutes} min, a sample every ${sampleSeconds} s; worker with ACTORS_MAX_BYTES=${MAX_BYTES} and ACTORS_RETAIN_MS=${RETAIN_MS}, metrics on port ${metricsPort}`);

    // Accounts with their starting balance, every counter with its recurring and long-dated timers.
    for (let a = 0; a < ACCOUNTS; a++) {
      const r = await http(`${gw}/api/actors/account/${accountKey(a)}/deposit?wait=true`, 'POST', { body: { amount: START_BALANCE } });
      if (r.status !== 200) throw new Error(`deposit to ${accountKey(a)}: HTTP ${r.status} ${r.code ?? ''}`);
    }
    const deposited = ACCOUNTS * START_BALANCE;
    /** Per counter and long-dated timer: the time it was last set to (ms), null once cancelled, undefined when an answer was ambiguous. */
    const far: Array<Array<number | null | undefined>> = Array.from({ length: COUNTERS }, () => Array.from({ length: FAR_TIMERS }, () => null));
    const farBusy: boolean[][] = Array.from({ length: COUNTERS }, () => Array.from({ length: FAR_TIMERS }, () => false));
    const setFar = async (k: number, j: number): Promise<Answer> => {
      const at = Date.now() + (1 + Math.floor(rand() * 30)) * DAY_MS + Math.floor(rand() * DAY_MS);
      return http(`${gw}/api/actors/counter/${counterKey(k)}/add?at=${at}&id=far${j}`, 'POST', { body: 1 });
    };
    for (let k = 0; k < COUNTERS; k++) {
      const period = 100 + ((k * 97) % 901);
      const tick = await http(`${gw}/api/actors/counter/${counterKey(k)}/add?every=${period}&id=tick`, 'POST', { body: 0 });
      if (tick.status !== 202) throw new Error(`recurring timer of ${counterKey(k)}: HTTP ${tick.status} ${tick.code ?? ''}`);
      for (let j = 0; j < FAR_TIMERS; j++) {
        const r = await setFar(k, j);
        if (r.status !== 202) throw new Error(`timer far${j} of ${counterKey(k)}: HTTP ${r.status} ${r.code ?? ''}`);
        far[k]![j] = Date.parse((r.body as { at: string }).at);
      }
    }

    // What the checks compare with.
    const acked = new Map<string, number>();
    const ambiguous = new Map<string, number>();
    const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);
    const devAcked = new Array<number>(DEVICES).fill(0);
    const devAmbiguous = new Array<number>(DEVICES).fill(0);
    const tally = new Tally();
    let latencies: number[] = [];
    let calls = 0;
    let sseEvents = 0;
    let dlqItems = 0;

    const lanes = {
      transfer: new Lane('transfer', RATES.transfer, 200, async () => {
        const from = Math.floor(rand() * ACCOUNTS);
        const to = (from + 1 + Math.floor(rand() * (ACCOUNTS - 1))) % ACCOUNTS;
        const amount = 1 + Math.floor(rand() * 400);
        const r = await http(`${gw}/api/actors/account/${accountKey(from)}/transfer`, 'POST', { body: { to: accountKey(to), amount } });
        tally.add(outcomeOf(r), r);
      }),
      poison: new Lane('poison', RATES.poison, 10, async (i) => {
        // INSUFFICIENT_FUNDS when applied: a dead letter, the balance unchanged.
        const r = await http(`${gw}/api/actors/account/${accountKey(i % ACCOUNTS)}/withdraw`, 'POST', { body: { amount: 1e15 } });
        tally.add(outcomeOf(r), r);
      }),
      add: new Lane('add', RATES.add, 200, async (i) => {
        const key = counterKey(i % COUNTERS);
        const r = await http(`${gw}/api/counter/${key}/add?value=1`, 'POST');
        const o = tally.add(outcomeOf(r), r);
        if (o === 'accepted') bump(acked, key);
        else if (o === 'ambiguous') bump(ambiguous, key);
      }),
      call: new Lane('call', RATES.call, 200, async (i, scheduledAt) => {
        const key = counterKey((i * 7) % COUNTERS);
        const first = performance.now();
        for (;;) {
          const r = await http(`${gw}/api/actors/counter/${key}/add?wait=true&timeoutMs=${CALL_TIMEOUT_MS}`, 'POST', {
            body: 1,
            headers: { 'idempotency-key': `soak-${runId}-${i}` },
            timeoutMs: CALL_TIMEOUT_MS + 10_000,
          });
          const o = outcomeOf(r);
          // No answer in time: the same idempotency key again (inside the stream's duplicate window) gets the original's.
          if (o === 'ambiguous' && performance.now() - first < RETRY_WINDOW_MS) {
            await sleep(1000);
            continue;
          }
          tally.add(o, r);
          if (o === 'accepted') {
            bump(acked, key);
            latencies.push(performance.now() - scheduledAt);
            calls++;
          } else if (o === 'ambiguous') bump(ambiguous, key);
          return;
        }
      }),
      retime: new Lane('retime', RATES.retime, 5, async (i) => {
        const period = 100 + Math.floor(rand() * 901);
        const r = await http(`${gw}/api/actors/counter/${counterKey(i % COUNTERS)}/add?every=${period}&id=tick`, 'POST', { body: 0 });
        tally.add(outcomeOf(r), r);
      }),
      far: new Lane('far', RATES.far, 20, async () => {
        const k = Math.floor(rand() * COUNTERS);
        const j = Math.floor(rand() * FAR_TIMERS);
        if (farBusy[k]![j]) return;
        farBusy[k]![j] = true;
        try {
          const c = await http(`${gw}/api/actors/counter/${counterKey(k)}/timers/far${j}`, 'DELETE');
          const co = tally.add(outcomeOf(c), c);
          if (co === 'accepted') far[k]![j] = null;
          else if (co === 'ambiguous') far[k]![j] = undefined;
          if (co !== 'accepted') return;
          const s = await setFar(k, j);
          const so = tally.add(outcomeOf(s), s);
          if (so === 'accepted') far[k]![j] = Date.parse((s.body as { at: string }).at);
          else if (so === 'ambiguous') far[k]![j] = undefined;
        } finally {
          farBusy[k]![j] = false;
        }
      }),
      telemetry: new Lane('telemetry', RATES.telemetry, 200, async (i) => {
        const d = i % DEVICES;
        try {
          await ctx.js.publish(`devices.d${d}.telemetry`, enc.encode(JSON.stringify({ t: Math.round(rand() * 4000) / 100 })));
          devAcked[d]!++;
          tally.add('accepted');
        } catch (err) {
          if (err instanceof JetStreamApiError) tally.add('refused');
          else {
            devAmbiguous[d]!++;
            tally.add('ambiguous');
          }
        }
      }),
      sse: new Lane('sse', RATES.sse, 4, async (i) => {
        // A watch of one counter (a type watch every fifth time), read for 3 s, then closed.
        const path = i % 5 === 4 ? '/api/watch/counter' : `/api/actors/counter/${counterKey(i % COUNTERS)}/watch`;
        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(), 3000);
        try {
          const res = await fetch(`${gw}${path}`, { signal: abort.signal });
          const reader = res.body?.getReader();
          for (;;) {
            const chunk = await reader?.read();
            if (!chunk || chunk.done) break;
            sseEvents += dec.decode(chunk.value as Uint8Array).split('event: change').length - 1;
          }
        } catch {
          // aborted after 3 s: the client went away, as a browser tab does
        } finally {
          clearTimeout(timer);
        }
      }),
      dlq: new Lane('dlq', RATES.dlq, 2, async () => {
        let cursor: number | null = null;
        for (let page = 0; page < 3; page++) {
          const r = await http(`${gw}/api/dlq?limit=20${cursor !== null ? `&cursor=${cursor}` : ''}`, 'GET');
          if (r.status !== 200) {
            tally.add('failed', r);
            return;
          }
          const body = r.body as { items: unknown[]; nextCursor: number | null };
          dlqItems += body.items.length;
          cursor = body.nextCursor;
          if (cursor === null) return;
        }
      }),
    };
    const allLanes = Object.values(lanes);
    const inFlight = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    };

    // Samples.
    const kv = await new Kvm(ctx.js).open(NAMES.stateBucket);
    let phase = 'steady';
    const samples: SoakSample[] = [];
    let lastApplied = Number.NaN;
    let lastSampleAt = performance.now();
    let sampledWorker: ManagedProcess | undefined;
    let sampledLines = 0;
    // The bench's own event-loop delay: call latencies are measured in this process.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const scrape = async (url: string): Promise<string> => {
      const r = await http(url, 'GET', { timeoutMs: 10_000 });
      return r.status === 200 && typeof r.body === 'string' ? r.body : '';
    };
    const takeSample = async (start: number): Promise<SoakSample> => {
      const now = performance.now();
      const counts = tally.take();
      const lat = summarize(latencies);
      const interval = latencies.length;
      latencies = [];
      let consumers = 0;
      const byStream = new Map<string, number>();
      for await (const si of ctx.jsm.streams.list()) {
        consumers += si.state.consumer_count;
        byStream.set(si.config.name, si.state.consumer_count);
      }
      const stream = await ctx.jsm.streams.info(NAMES.stream);
      const [wm, gm] = await Promise.all([scrape(`http://127.0.0.1:${metricsPort}/metrics`), scrape(`${gw}/metrics`)]);
      const applied = promValue(wm, 'jetactor_worker_operations_applied_total');
      // The counter starts again with each worker process.
      const appliedDelta = Number.isFinite(applied) ? (Number.isFinite(lastApplied) && applied >= lastApplied ? applied - lastApplied : applied) : Number.NaN;
      lastApplied = applied;
      const lines = worker.lineCount - (sampledWorker === worker ? sampledLines : 0);
      sampledWorker = worker;
      sampledLines = worker.lineCount;
      const s: SoakSample = {
        minute: Number(((now - start) / 60_000).toFixed(2)),
        phase,
        workers,
        workerRss: memoryOf(worker.pid).rss,
        gatewayRss: memoryOf(stack.gateway.proc.pid).rss,
        serverRss: memoryOf(ctx.server.pid).rss,
        consumers,
        consumersActors: byStream.get(NAMES.stream) ?? 0,
        consumersState: byStream.get(`KV_${NAMES.stateBucket}`) ?? 0,
        consumersDlq: byStream.get(NAMES.dlqStream) ?? 0,
        // Where the rest are: the stream with the most consumers besides those three.
        consumersMost: mostConsumers(byStream, [NAMES.stream, `KV_${NAMES.stateBucket}`, NAMES.dlqStream]),
        sseStreams: promValue(gm, 'jetactor_gateway_sse_streams'),
        timerHeap: promValue(wm, 'jetactor_worker_timer_heap_entries'),
        callP50: lat.p50,
        callP99: lat.p99,
        calls: interval,
        appliedPerSecond: (appliedDelta * 1000) / (now - lastSampleAt),
        accepted: counts.accepted,
        refused: counts.refused,
        failed: counts.failed + counts.ambiguous,
        streamBytes: stream.state.bytes,
        streamMessages: stream.state.messages,
        workerLines: lines,
        benchLoopP99: loopDelay.percentile(99) / 1e6,
        skipped: allLanes.reduce((n, l) => n + l.skipped, 0),
      };
      lastSampleAt = now;
      loopDelay.reset();
      return s;
    };

    // One fill of the stream: the worker stopped, adds published until refused, the worker started again, the drain awaited.
    const cycles: Cycle[] = [];
    const fill = async (n: number, start: number): Promise<Cycle> => {
      const c: Cycle = { cycle: n, atMinute: (performance.now() - start) / 60_000 };
      lanes.call.pause();
      lanes.telemetry.pause();
      try {
        phase = 'stopped';
        let t = performance.now();
        await worker.stop(30_000);
        const stopMs = performance.now() - t;
        c.stopMs = stopMs;
        phase = 'filling';
        const max = Math.ceil(MAX_BYTES / 40);
        const seqs = new Uint32Array(max);
        let refusal = '';
        const subjects = Array.from({ length: COUNTERS }, (_, k) => `${NAMES.subjectPrefix}.counter.${counterKey(k)}.add`);
        const fillMs = await leanAckedPublish(ctx.nc, max, 500, (i) => subjects[i % COUNTERS] as string, ONE, {
          seqs,
          onRefused: (e) => (refusal = `${e.description ?? 'refused'} (${e.code ?? '?'})`),
        });
        c.fillMs = fillMs;
        let filled = 0;
        for (let i = 0; i < max; i++) {
          if (seqs[i] === 0) continue;
          filled++;
          bump(acked, counterKey(i % COUNTERS));
        }
        c.filled = filled;
        c.refusal = refusal || 'none: the stream never refused';
        const streamMB = (await ctx.jsm.streams.info(NAMES.stream)).state.bytes / 1e6;
        c.streamMB = streamMB;
        progress('soak', `  fill ${n}: worker stopped in ${formatMs(stopMs)}, ${formatInt(filled)} adds stored in ${formatMs(fillMs)}, then refused: ${c.refusal}; stream ${streamMB.toFixed(1)} MB`);

        phase = 'restarting';
        t = performance.now();
        worker = startWorker(ctx, `worker-soak-${++workers}`, workerEnv);
        await waitForLeases(ctx, worker);
        const restartedAt = performance.now();
        const restartMs = restartedAt - t;
        c.restartMs = restartMs;
        lanes.call.start(performance.now());
        phase = 'full';
        let acceptedAfterMs: number | undefined;
        let drainedAfterMs = 0;
        let reported = 0;
        for (;;) {
          const since = performance.now() - restartedAt;
          if (acceptedAfterMs === undefined) {
            try {
              await ctx.js.publish(`${NAMES.subjectPrefix}.counter.${PROBE}.add`, ONE);
              bump(acked, PROBE);
              acceptedAfterMs = performance.now() - restartedAt;
              c.acceptedAfterMs = acceptedAfterMs;
              lanes.telemetry.start(performance.now());
              phase = 'draining';
            } catch (err) {
              if (!(err instanceof JetStreamApiError)) bump(ambiguous, PROBE);
            }
          }
          const bytes = (await ctx.jsm.streams.info(NAMES.stream)).state.bytes;
          if (acceptedAfterMs !== undefined && bytes <= MAX_BYTES / 2) {
            drainedAfterMs = performance.now() - restartedAt;
            c.drainedAfterMs = drainedAfterMs;
            c.result = 'drained';
            break;
          }
          if (!worker.running) throw new Error(`the worker exited while the stream drained:\n${tail(worker)}`);
          if (Math.floor(since / 15_000) > reported) {
            reported = Math.floor(since / 15_000);
            progress('soak', `  fill ${n}: ${formatMs(since)} after the restart: stream ${(bytes / 1e6).toFixed(1)} MB, operations ${acceptedAfterMs === undefined ? 'refused' : 'accepted'}`);
          }
          if (since > DRAIN_DEADLINE_MS) {
            c.result = 'NOT DRAINED';
            throw new Error(
              `fill ${n}: the stream did not drain within ${DRAIN_DEADLINE_MS / 1000} s of the worker's restart: ${(bytes / 1e6).toFixed(1)} MB of ${(MAX_BYTES / 1e6).toFixed(1)} MB, ` +
                `${acceptedAfterMs === undefined ? 'operations still refused' : `operations accepted again after ${formatMs(acceptedAfterMs)}`}; ${await streamReport(ctx)}; worker's last lines:\n${tail(worker, 5)}`,
            );
          }
          await sleep(1000);
        }
        progress('soak', `  fill ${n}: worker back in ${formatMs(restartMs)}, operations accepted again after ${formatMs(acceptedAfterMs ?? Number.NaN)}, stream below half its bound after ${formatMs(drainedAfterMs)}`);
        return c;
      } finally {
        phase = 'steady';
        if (lanes.call.paused) lanes.call.start(performance.now());
        if (lanes.telemetry.paused) lanes.telemetry.start(performance.now());
      }
    };

    // The run: lanes driven every 10 ms, fills in the first third, a sample every sampleMs.
    const start = performance.now();
    for (const l of allLanes) l.start(start);
    const driver = setInterval(() => {
      const now = performance.now();
      for (const l of allLanes) l.poll(now, track);
    }, 10);
    let ended = false;
    const fills = (async () => {
      let n = 0;
      for (const at of fillTimes(runMs)) {
        while (!ended && performance.now() - start < at) await sleep(200);
        if (ended) return;
        const c = await fill(++n, start).catch((err: unknown) => {
          failures.push(err instanceof Error ? err.message : String(err));
          return null;
        });
        if (!c) {
          ended = true;
          return;
        }
        cycles.push(c);
      }
    })();
    try {
      for (let k = 1; k * sampleMs <= runMs && !ended; k++) {
        while (!ended && performance.now() - start < k * sampleMs) await sleep(200);
        if (ended) break;
        if (!worker.running && phase === 'steady') {
          failures.push(`the worker exited by itself at minute ${((performance.now() - start) / 60_000).toFixed(1)}:\n${tail(worker, 10)}`);
          ended = true;
          break;
        }
        const s = await takeSample(start);
        samples.push(s);
        progress(
          'soak',
          `min ${String(s.minute)} (${String(s.phase)}): worker ${(Number(s.workerRss) / 1e6).toFixed(0)} MB, gateway ${(Number(s.gatewayRss) / 1e6).toFixed(0)} MB, ` +
            `consumers ${String(s.consumers)} (ACTORS ${String(s.consumersActors)}, KV_actors ${String(s.consumersState)}, DLQ ${String(s.consumersDlq)}, most: ${String(s.consumersMost)}), heap ${String(s.timerHeap)}, ` +
            `calls p50 ${formatMs(Number(s.callP50))} p99 ${formatMs(Number(s.callP99))}, applied ${formatInt(Number(s.appliedPerSecond))}/s, ` +
            `accepted ${String(s.accepted)}, refused ${String(s.refused)}, other ${String(s.failed)}, stream ${(Number(s.streamBytes) / 1e6).toFixed(1)} MB`,
        );
      }
    } finally {
      ended = true;
      loopDelay.disable();
      clearInterval(driver);
      await fills;
      await Promise.all([...inFlight]);
    }

    // Settle: every acknowledged transfer, add and reading applied (at most SETTLE_MS).
    progress('soak', `traffic over; waiting for what was acknowledged to be applied (at most ${SETTLE_MS / 1000} s)`);
    const read = async <T>(type: string, key: string): Promise<T | undefined> => {
      const e = await kv.get(stateKey(type, key));
      return e && e.operation === 'PUT' ? (JSON.parse(dec.decode(e.value)) as StateRecord<T>).state : undefined;
    };
    const counterKeys = [...Array.from({ length: COUNTERS }, (_, k) => counterKey(k)), ...(acked.has(PROBE) || ambiguous.has(PROBE) ? [PROBE] : [])];
    const look = async () => {
      let balances = 0;
      for (let a = 0; a < ACCOUNTS; a++) balances += (await read<{ balance: number }>('account', accountKey(a)))?.balance ?? 0;
      const counters = new Map<string, number>();
      for (const k of counterKeys) counters.set(k, (await read<number>('counter', k)) ?? 0);
      const devices = await Promise.all(Array.from({ length: DEVICES }, async (_, d) => (await read<{ count: number }>('device', `d${d}`))?.count ?? 0));
      const settled = balances === deposited && counterKeys.every((k) => (counters.get(k) ?? 0) >= (acked.get(k) ?? 0)) && devices.every((n, d) => n >= devAcked[d]!);
      return { balances, counters, devices, settled };
    };
    const settleStart = performance.now();
    let state = await look();
    while (!state.settled && performance.now() - settleStart < SETTLE_MS) {
      await sleep(2000);
      state = await look();
    }
    const settleMs = performance.now() - settleStart;

    // The checks.
    const counterOff: string[] = [];
    for (const k of counterKeys) {
      const v = state.counters.get(k) ?? 0;
      const lo = acked.get(k) ?? 0;
      const hi = lo + (ambiguous.get(k) ?? 0);
      if (v < lo || v > hi) counterOff.push(`${k}: ${v}, acknowledged ${lo}${hi > lo ? ` (+${hi - lo} unanswered)` : ''}`);
    }
    const deviceOff: string[] = [];
    state.devices.forEach((n, d) => {
      if (n < devAcked[d]! || n > devAcked[d]! + devAmbiguous[d]!) deviceOff.push(`d${d}: ${n} readings, acknowledged ${devAcked[d]!}`);
    });
    const timerOff: string[] = [];
    for (let k = 0; k < COUNTERS; k++) {
      const r = await http(`${gw}/api/actors/counter/${counterKey(k)}/timers`, 'GET');
      const held = new Map(((r.body as { timers?: Array<{ id: string; at: string }> } | undefined)?.timers ?? []).map((t) => [t.id, Date.parse(t.at)]));
      const wrong: string[] = [];
      if (!held.has('tick')) wrong.push('tick missing');
      for (let j = 0; j < FAR_TIMERS; j++) {
        const want = far[k]![j];
        if (want === undefined) continue;
        const got = held.get(`far${j}`);
        if (want === null ? got !== undefined : got !== want) wrong.push(`far${j} ${got === undefined ? 'missing' : new Date(got).toISOString()}, expected ${want === null ? 'none' : new Date(want).toISOString()}`);
      }
      if (held.size > 1 + FAR_TIMERS) wrong.push(`${held.size} timers`);
      if (wrong.length) timerOff.push(`${counterKey(k)}: ${wrong.join(', ')}`);
    }
    const addsAcked = [...acked.values()].reduce((a, b) => a + b, 0);
    const unanswered = [...ambiguous.values()].reduce((a, b) => a + b, 0);
    progress(
      'soak',
      `checks after ${formatMs(settleMs)}: balances ${formatInt(state.balances)} of ${formatInt(deposited)} deposited; ` +
        `${counterOff.length} of ${counterKeys.length} counters off their ${formatInt(addsAcked)} acknowledged adds (${unanswered} unanswered); ` +
        `${deviceOff.length} devices off; ${timerOff.length} counters with other timers than set`,
    );
    for (const line of [...counterOff, ...deviceOff, ...timerOff].slice(0, 10)) progress('soak', `  ${line}`);

    const appliedRates = samples.map((s) => Number(s.appliedPerSecond)).filter(Number.isFinite);
    const drained = cycles.map((c) => c.drainedAfterMs).filter((v): v is number => typeof v === 'number');
    const notDrained = failures.filter((f) => f.includes('did not drain')).length;
    const checkDetail = (lines: string[]): Record<string, string> => (lines.length ? { first: lines.slice(0, 5).join('; ') } : {});
    return [
      {
        id: 'soak.applied',
        section: SOAK_SECTION,
        name: `operations applied per second, mean of ${samples.length} samples of ${sampleSeconds} s over ${minutes} min (tables below)`,
        value: appliedRates.length ? appliedRates.reduce((a, b) => a + b, 0) / appliedRates.length : Number.NaN,
        unit: Unit.PerSecond,
        detail: {
          minutes,
          sampleSeconds,
          workers,
          maxBytes: MAX_BYTES,
          retainMs: RETAIN_MS,
          ...Object.fromEntries(Object.entries(tally.run).map(([k, v]) => [`requests_${k}`, v])),
          statuses: JSON.stringify(tally.statuses),
          skipped: allLanes.reduce((n, l) => n + l.skipped, 0),
          calls,
          sseEvents,
          dlqItemsRead: dlqItems,
          failures: failures.join('\n---\n'),
          workerLastLines: worker.lines.slice(-5).join('\n'),
        },
        samples,
      },
      ...seriesFigures(samples),
      {
        id: 'soak.drainMs',
        section: SOAK_SECTION,
        name: `stream filled (bound ${(MAX_BYTES / 1e6).toFixed(1)} MB) ${cycles.length + notDrained} times: longest from the worker's restart until below half the bound`,
        value: drained.length ? Math.max(...drained) : Number.NaN,
        unit: Unit.Ms,
        target: { max: DRAIN_DEADLINE_MS },
        samples: cycles,
      },
      { id: 'soak.notDrained', section: SOAK_SECTION, name: `fills not drained within ${DRAIN_DEADLINE_MS / 60_000} min, and other failures of the run`, value: failures.length, unit: Unit.Count, target: { max: 0 }, detail: { failures: failures.join('\n---\n') } },
      {
        id: 'soak.balances',
        section: SOAK_SECTION,
        name: `account balances: sum minus what was deposited (${ACCOUNTS} accounts; transfers are sends)`,
        value: Math.abs(state.balances - deposited),
        unit: Unit.Count,
        target: { max: 0 },
        detail: { sum: state.balances, deposited, settleMs: Math.round(settleMs) },
      },
      {
        id: 'soak.counters',
        section: SOAK_SECTION,
        name: `counters off the adds acknowledged for them (of ${counterKeys.length}; ${formatInt(addsAcked)} adds)`,
        value: counterOff.length,
        unit: Unit.Count,
        target: { max: 0 },
        detail: { addsAcknowledged: addsAcked, addsUnanswered: unanswered, ...checkDetail(counterOff) },
      },
      {
        id: 'soak.devices',
        section: SOAK_SECTION,
        name: `devices off the readings acknowledged for them (of ${DEVICES}; bindings)`,
        value: deviceOff.length,
        unit: Unit.Count,
        target: { max: 0 },
        detail: { readingsAcknowledged: devAcked.reduce((a, b) => a + b, 0), ...checkDetail(deviceOff) },
      },
      {
        id: 'soak.timers',
        section: SOAK_SECTION,
        name: `counters whose timers differ from those last set (of ${COUNTERS}: a recurring one and ${FAR_TIMERS} days ahead)`,
        value: timerOff.length,
        unit: Unit.Count,
        target: { max: 0 },
        detail: checkDetail(timerOff),
      },
    ];
  } finally {
    await Promise.all([stack.gateway.proc.stop(), worker.stop(30_000), stack.worker.stop(30_000)]);
  }
}
