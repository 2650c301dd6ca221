import { Agent, request } from 'node:http';
import { summarize, type LatencySummary } from './stats.js';
import { sleep } from './progress.js';

/** What a load run measured. */
export interface LoadResult {
  latency: LatencySummary;
  sent: number;
  ok: number;
  errors: number;
  /** Status codes other than 2xx, with counts. */
  statuses: Record<string, number>;
  /** Requests per second actually sent. */
  rate: number;
}

/** The same requests for every system measured: POST, an optional JSON body, keep-alive. */
interface Poster {
  /** Sends one POST; resolves once its answer is read (never rejects). */
  post(url: string, onDone: (ok: boolean) => void): Promise<void>;
  latencies: number[];
  statuses: Record<string, number>;
  ok: number;
  errors: number;
  destroy(): void;
}

function poster(maxSockets: number, body: string | undefined): Poster {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
  const p: Poster = {
    latencies: [],
    statuses: {},
    ok: 0,
    errors: 0,
    post: (url, onDone) =>
      new Promise<void>((resolve) => {
        const req = request(url, { method: 'POST', agent, headers }, (res) => {
          res.resume();
          res.on('end', () => {
            const code = res.statusCode ?? 0;
            const ok = code >= 200 && code < 300;
            if (ok) p.ok++;
            else {
              p.errors++;
              p.statuses[String(code)] = (p.statuses[String(code)] ?? 0) + 1;
            }
            onDone(ok);
            resolve();
          });
        });
        req.on('error', (err) => {
          p.errors++;
          p.statuses[err.message] = (p.statuses[err.message] ?? 0) + 1;
          onDone(false);
          resolve();
        });
        req.end(body ?? '');
      }),
    destroy: () => agent.destroy(),
  };
  return p;
}

/**
 * Sends POST requests at a fixed rate (open loop: the schedule does not wait for answers)
 * over keep-alive connections and measures each latency from its scheduled send time, so
 * a stall shows in the percentiles instead of silently lowering the rate.
 */
export async function openLoop(opts: {
  url: (i: number) => string;
  rate: number;
  durationMs: number;
  maxSockets?: number;
  body?: string;
}): Promise<LoadResult> {
  const p = poster(opts.maxSockets ?? 256, opts.body);
  let sent = 0;
  const inflight = new Set<Promise<void>>();
  const t0 = performance.now();
  const interval = 1000 / opts.rate;
  while (performance.now() - t0 < opts.durationMs) {
    const due = Math.floor((performance.now() - t0) / interval);
    while (sent <= due) {
      const scheduled = t0 + sent * interval;
      const req = p.post(opts.url(sent), (ok) => {
        if (ok) p.latencies.push(performance.now() - scheduled);
      });
      inflight.add(req);
      void req.finally(() => inflight.delete(req));
      sent++;
    }
    await sleep(1);
  }
  await Promise.all([...inflight]);
  p.destroy();
  return { latency: summarize(p.latencies), sent, ok: p.ok, errors: p.errors, statuses: p.statuses, rate: (sent * 1000) / opts.durationMs };
}

/**
 * Closed loop: `connections` lanes, each sending its next POST as soon as the previous one
 * is answered, for `durationMs`: the most requests per second the system answers at that
 * concurrency. `rate` is the answered (2xx) requests per second.
 */
export async function closedLoop(opts: { url: (i: number) => string; connections: number; durationMs: number; body?: string }): Promise<LoadResult> {
  const p = poster(opts.connections, opts.body);
  let sent = 0;
  const t0 = performance.now();
  const end = t0 + opts.durationMs;
  const lane = async (): Promise<void> => {
    while (performance.now() < end) {
      const started = performance.now();
      await p.post(opts.url(sent++), (ok) => {
        if (ok) p.latencies.push(performance.now() - started);
      });
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, lane));
  const ms = performance.now() - t0;
  p.destroy();
  return { latency: summarize(p.latencies), sent, ok: p.ok, errors: p.errors, statuses: p.statuses, rate: (p.ok * 1000) / ms };
}
