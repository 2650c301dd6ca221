/**
 * Helpers for tests that run the whole stack (a worker process from `spawnWorker` of
 * @jetactor/testing): the partitions it took from its log, and add-only HTTP load through the
 * gateway with per-key acknowledgement counts.
 */
import { jsonLines, type ManagedProcess } from '@jetactor/testing';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';

/**
 * The partitions a worker process logged starting — taken, or restarted after a failure — from
 * its `ownership changed` lines (one per change; `since` is a `lineCount` taken earlier), in order.
 */
export function startedPartitions(proc: ManagedProcess, since = 0): number[] {
  return jsonLines(proc, since)
    .filter((l) => l.msg === 'ownership changed')
    .flatMap((l) => [...((l.acquired as number[] | undefined) ?? []), ...((l.restarted as number[] | undefined) ?? [])]);
}

/** What an add-only load saw. */
export interface LoadReport {
  /** Logical adds of value 1 acknowledged with 202, per key (a retried add counts once). */
  readonly acked: Map<string, number>;
  /** HTTP requests sent, retries included. */
  requests: number;
  /** Requests per status code. */
  readonly statuses: Map<number, number>;
  /** Requests per error code (non-202 answers). */
  readonly codes: Map<string, number>;
  /** Slowest request, in ms. */
  maxLatencyMs: number;
  /** Logical adds that were never acknowledged before the retry deadline. */
  unresolved: number;
  /** Longest time without any acknowledged add while the load ran, in ms (the outage as clients saw it). */
  maxAckGapMs: number;
  /** How long the load ran, in ms (set by `stop()`). */
  durationMs: number;
  /** Total acked logical adds. */
  total(): number;
}

/** Options of {@link startAddLoad}. */
export interface AddLoadOptions {
  /** Sends one request (`app.inject`). */
  inject: (opts: InjectOptions) => Promise<LightMyRequestResponse>;
  /** Counter keys to spread the adds over. */
  keys: readonly string[];
  /** Concurrent request loops. Default 8. */
  concurrency?: number;
  /** Extra headers (authorization). */
  headers?: Record<string, string>;
  /** Pause before retrying an add that got a 5xx, in ms. Default 50. */
  retryPauseMs?: number;
  /** How long `stop()` lets loops retry their last unacknowledged add, in ms. Default 30000. */
  drainTimeoutMs?: number;
}

/** A running load. */
export interface AddLoad {
  readonly report: LoadReport;
  /** Stops starting new adds, lets the ones in flight finish (retrying until acked or the drain deadline). */
  stop(): Promise<LoadReport>;
}

/**
 * Sends `POST /api/counter/<key>/add?value=1` in `concurrency` loops until stopped. Each
 * logical add has its own `Idempotency-Key` and is retried with it after a 5xx until it
 * gets a 202, so every logical add is acknowledged exactly once and counted once: a
 * key's final state must equal its acked count, and a double apply or a lost add shows.
 * Any 4xx is a test failure (the load is well-formed).
 */
export function startAddLoad(opts: AddLoadOptions): AddLoad {
  const concurrency = opts.concurrency ?? 8;
  const pause = opts.retryPauseMs ?? 50;
  const report: LoadReport = {
    acked: new Map(opts.keys.map((k) => [k, 0])),
    requests: 0,
    statuses: new Map(),
    codes: new Map(),
    maxLatencyMs: 0,
    unresolved: 0,
    maxAckGapMs: 0,
    durationMs: 0,
    total() {
      let n = 0;
      for (const v of this.acked.values()) n += v;
      return n;
    },
  };
  let stopping = false;
  let drainDeadline = Infinity;
  const startedAt = performance.now();
  let lastAckAt = startedAt;
  let failure: Error | undefined;

  const loop = async (id: number): Promise<void> => {
    let n = 0;
    let rnd = id * 7919 + 1;
    while (!stopping && failure === undefined) {
      rnd = (rnd * 1103515245 + 12345) % 2147483648;
      const key = opts.keys[rnd % opts.keys.length] as string;
      const idempotencyKey = `load-${id}-${n++}`;
      for (;;) {
        const started = performance.now();
        const res = await opts.inject({
          method: 'POST',
          url: `/api/counter/${key}/add?value=1`,
          headers: { ...opts.headers, 'idempotency-key': idempotencyKey },
        });
        report.maxLatencyMs = Math.max(report.maxLatencyMs, performance.now() - started);
        report.requests++;
        report.statuses.set(res.statusCode, (report.statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode === 202) {
          const now = performance.now();
          if (!stopping) report.maxAckGapMs = Math.max(report.maxAckGapMs, now - lastAckAt);
          lastAckAt = now;
          report.acked.set(key, (report.acked.get(key) ?? 0) + 1);
          break;
        }
        const code = (res.json<{ error?: { code?: string } }>().error?.code ?? 'NONE');
        report.codes.set(code, (report.codes.get(code) ?? 0) + 1);
        if (res.statusCode < 500) {
          failure = new Error(`unexpected ${res.statusCode} for an add: ${res.body}`);
          return;
        }
        if (performance.now() > drainDeadline) {
          report.unresolved++;
          break;
        }
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  };
  const loops = Array.from({ length: concurrency }, (_, i) => loop(i));
  return {
    report,
    async stop() {
      stopping = true;
      report.durationMs = performance.now() - startedAt;
      drainDeadline = performance.now() + (opts.drainTimeoutMs ?? 30_000);
      await Promise.all(loops);
      if (failure) throw failure;
      return report;
    },
  };
}

/** Counts as a compact object, for messages and reports. */
export function counts(m: Map<string | number, number>): Record<string, number> {
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => String(a).localeCompare(String(b))));
}
