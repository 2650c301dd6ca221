import { createRequire } from 'node:module';
import { join } from 'node:path';
import { registerActorTypes } from '@jetactor/actor-runtime/internal';
import { counter } from '@jetactor/counter-actor';
import { freePort, spawnProcess, waitFor, type ManagedProcess } from '@jetactor/testing';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { openLoop } from './http-load.js';
import { SectionCpu, applyNice, profileArgs, tail } from './processes.js';
import { progress } from './progress.js';
import { formatInt, formatMs } from './stats.js';
import { freshTopology } from './topology.js';

const require = createRequire(import.meta.url);

/** A listening HTTP service started as its own process. */
export interface HttpService {
  proc: ManagedProcess;
  url: string;
}

/** Runs `ready`; if it fails, stops the process (a service that never became ready must not outlive its section) and rethrows. */
async function stopUnless(proc: ManagedProcess, ready: () => Promise<unknown>): Promise<void> {
  try {
    await ready();
  } catch (err) {
    await proc.stop(10_000);
    throw err;
  }
}

/** Starts the gateway (`packages/gateway/dist/main.js`), rate limit off, auth off on loopback. */
export async function startGateway(ctx: BenchContext): Promise<HttpService> {
  const port = await freePort();
  const proc = spawnProcess(process.execPath, [...profileArgs(ctx, 'gateway'), join(ctx.repoRoot, 'packages/gateway/dist/main.js')], {
    name: 'gateway',
    env: {
      NATS_URL: ctx.server.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      GATEWAY_AUTH: 'off',
      GATEWAY_RATE_LIMIT: '0',
      // e.g. GATEWAY_PROCESSES=2 npm run bench: the gateway serves with that many processes.
      ...(process.env.GATEWAY_PROCESSES ? { GATEWAY_PROCESSES: process.env.GATEWAY_PROCESSES } : {}),
    },
    echo: process.env.BENCH_ECHO === '1',
  });
  applyNice(ctx, proc.pid);
  const url = `http://127.0.0.1:${port}`;
  await stopUnless(proc, () =>
    waitFor(
      async () => {
        if (!proc.running) throw new Error(`gateway exited:\n${tail(proc)}`);
        const res = await fetch(`${url}/api/counter/bench-ready`);
        return res.ok;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the gateway to answer GET /api/counter/bench-ready (it answers 404 until a worker has registered the counter type)' },
    ),
  );
  return { proc, url };
}

/** Starts the minimal Fastify route that only publishes (see minimal-route.ts). */
export async function startMinimalRoute(ctx: BenchContext): Promise<HttpService> {
  const port = await freePort();
  const proc = spawnProcess(process.execPath, [...profileArgs(ctx, 'minimal-route'), join(ctx.repoRoot, 'packages/bench/dist/minimal-route.js')], {
    name: 'minimal-route',
    env: { NATS_URL: ctx.server.url, PORT: String(port) },
  });
  applyNice(ctx, proc.pid);
  const url = `http://127.0.0.1:${port}`;
  await stopUnless(proc, () =>
    waitFor(
      async () => {
        if (!proc.running) throw new Error(`minimal route exited:\n${tail(proc)}`);
        return (await fetch(`${url}/health`)).ok;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the minimal route to listen' },
    ),
  );
  return { proc, url };
}

/** The part of autocannon's JSON result the bench reads. */
export interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}

/** Runs autocannon (its own process) against one URL with POST (and `body` as JSON, if given) and returns its JSON result. */
export async function autocannon(ctx: Pick<BenchContext, 'nice'>, url: string, connections: number, durationMs: number, body?: string): Promise<AutocannonResult> {
  const bin = require.resolve('autocannon/autocannon.js');
  const bodyArgs = body === undefined ? [] : ['-H', 'content-type=application/json', '-b', body];
  const proc = spawnProcess(process.execPath, [bin, '-j', '-m', 'POST', ...bodyArgs, '-c', String(connections), '-d', String(Math.max(1, Math.round(durationMs / 1000))), url], {
    name: 'autocannon',
  });
  applyNice(ctx, proc.pid);
  const exit = await proc.exited;
  const json = proc.lines.find((l) => l.startsWith('{'));
  if (exit.code !== 0 || !json) throw new Error(`autocannon failed (${String(exit.code)}):\n${tail(proc)}`);
  return JSON.parse(json) as AutocannonResult;
}

/**
 * Signals per second over HTTP: the gateway's signal route beside the minimal route, the
 * same load generator, alternating twice, best of each (other processes on the machine
 * make single runs noisy). No worker runs meanwhile: both only publish.
 */
export async function measureGatewayThroughput(ctx: BenchContext): Promise<Figure[]> {
  const { httpConnections: c, httpMs } = ctx.sizes;
  await freshTopology(ctx);
  // No worker runs here: register the counter as a worker host would, so the gateway knows it.
  await registerActorTypes(ctx.nc, [counter], { workerId: 'bench' });
  const gateway = await startGateway(ctx);
  let minimal: HttpService | undefined;
  try {
    minimal = await startMinimalRoute(ctx);
    const targets = [
      { id: 'http.minimal', svc: minimal, url: `${minimal.url}/signal/hot` },
      { id: 'http.gateway', svc: gateway, url: `${gateway.url}/api/counter/hot/add` },
    ];
    const best = new Map<string, { rps: number; p50: number; p99: number; non2xx: number; cpu: Record<string, number> }>();
    for (let round = 1; round <= 2; round++) {
      for (const t of targets) {
        progress('http', `round ${round}: ${t.id === 'http.gateway' ? 'gateway' : 'minimal route'}, autocannon -c ${c} for ${httpMs / 1000} s`);
        const cpu = new SectionCpu({ service: t.svc.proc.pid, server: ctx.server.pid }, new Set(['service']));
        const r = await autocannon(ctx, t.url, c, httpMs);
        const rps = r['2xx'] / r.duration;
        const used = cpu.read();
        progress('http', `  ${formatInt(rps)} signals/s (p50 ${formatMs(r.latency.p50)}, p99 ${formatMs(r.latency.p99)}, non-2xx ${r.non2xx + r.errors})`);
        const prev = best.get(t.id);
        if (!prev || rps > prev.rps) best.set(t.id, { rps, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx + r.errors, cpu: used });
      }
    }
    const m = best.get('http.minimal');
    const g = best.get('http.gateway');
    const detail = (b: typeof m) => ({
      p50Ms: b?.p50 ?? Number.NaN,
      p99Ms: b?.p99 ?? Number.NaN,
      non2xx: b?.non2xx ?? Number.NaN,
      serviceCpuCores: Number((b?.cpu.service ?? Number.NaN).toFixed(2)),
      serverCpuCores: Number((b?.cpu.server ?? Number.NaN).toFixed(2)),
      otherCpuCores: Number((b?.cpu.others ?? Number.NaN).toFixed(2)),
    });
    return [
      {
        id: 'http.minimal',
        section: 'Gateway (HTTP, autocannon)',
        name: `minimal Fastify route + JetStream publish (${c} connections)`,
        value: m?.rps ?? Number.NaN,
        unit: Unit.PerSecond,
        detail: detail(m),
      },
      {
        id: 'http.gateway',
        section: 'Gateway (HTTP, autocannon)',
        name: `gateway POST /api/counter/:key/add (${c} connections)`,
        value: g?.rps ?? Number.NaN,
        unit: Unit.PerSecond,
        limitId: 'http.minimal',
        target: { minRatio: 0.85 },
        detail: detail(g),
      },
    ];
  } finally {
    await Promise.all([gateway.proc.stop(), minimal?.proc.stop()]);
  }
}

/** Open-loop POSTs at a fixed rate against a URL; the figures of its p50 and p99. */
export async function fixedRateLatency(
  ids: { p50: string; p99: string },
  section: string,
  name: string,
  url: (i: number) => string,
  rate: number,
  durationMs: number,
  targets: { p50?: { limitId: string }; p99?: { limitId?: string; max?: number } } = {},
): Promise<Figure[]> {
  // Warm up at the same rate first (JIT, connections, consumers); only the second run counts.
  await openLoop({ url, rate, durationMs: Math.min(3000, durationMs) });
  const r = await openLoop({ url, rate, durationMs });
  progress('latency', `  ${name}: p50 ${formatMs(r.latency.p50)}, p99 ${formatMs(r.latency.p99)}, max ${formatMs(r.latency.max)} (${formatInt(r.ok)} ok, ${r.errors} errors)`);
  const detail = { sent: r.sent, ok: r.ok, errors: r.errors, rate: Math.round(r.rate), p90Ms: r.latency.p90, maxMs: r.latency.max, statuses: JSON.stringify(r.statuses) };
  return [
    { id: ids.p50, section, name: `${name} p50`, value: r.latency.p50, unit: Unit.Ms, ...(targets.p50 ? { limitId: targets.p50.limitId } : {}), detail },
    {
      id: ids.p99,
      section,
      name: `${name} p99`,
      value: r.latency.p99,
      unit: Unit.Ms,
      ...(targets.p99?.limitId ? { limitId: targets.p99.limitId } : {}),
      ...(targets.p99?.max !== undefined ? { target: { max: targets.p99.max } } : {}),
      detail,
    },
  ];
}
