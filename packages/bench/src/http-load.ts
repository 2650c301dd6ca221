import { Agent, request } from 'node:http';
import { summarize, type LatencySummary } from './stats.js';
import { sleep } from './progress.js';

/** What an open-loop run measured. */
export interface OpenLoopResult {
  latency: LatencySummary;
  sent: number;
  ok: number;
  errors: number;
  /** Status codes other than 2xx, with counts. */
  statuses: Record<string, number>;
  /** Requests per second actually sent. */
  rate: number;
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
}): Promise<OpenLoopResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 256 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  let sent = 0;
  const inflight = new Set<Promise<void>>();
  const t0 = performance.now();
  const one = (i: number, scheduled: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const headers: Record<string, string> = opts.body ? { 'content-type': 'application/json' } : {};
      const req = request(opts.url(i), { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) {
            ok++;
            latencies.push(performance.now() - scheduled);
          } else {
            errors++;
            statuses[String(code)] = (statuses[String(code)] ?? 0) + 1;
          }
          resolve();
        });
      });
      req.on('error', (err) => {
        errors++;
        statuses[err.message] = (statuses[err.message] ?? 0) + 1;
        resolve();
      });
      req.end(opts.body ?? '');
    });
  const interval = 1000 / opts.rate;
  while (performance.now() - t0 < opts.durationMs) {
    const due = Math.floor((performance.now() - t0) / interval);
    while (sent <= due) {
      const scheduled = t0 + sent * interval;
      const p = one(sent, scheduled);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      sent++;
    }
    await sleep(1);
  }
  await Promise.all([...inflight]);
  agent.destroy();
  return { latency: summarize(latencies), sent, ok, errors, statuses, rate: (sent * 1000) / opts.durationMs };
}
