/**
 * jetactor as a whole system on the run's nats-server: a fresh stream and buckets, the
 * counter worker and the gateway, each its own process; what the latency, durability and
 * peers sections measure through HTTP.
 */
import type { ManagedProcess } from '@jetactor/testing';
import type { BenchContext } from './context.js';
import { startGateway, type HttpService } from './gateway-bench.js';
import { startWorker } from './processes.js';
import type { SystemUnderTest } from './system-phases.js';
import { freshTopology, waitForLeases } from './topology.js';

/** A running worker and gateway on a fresh topology. */
export interface JetactorStack {
  worker: ManagedProcess;
  gateway: HttpService;
  /** The stack as the call and signal phases see it (nats-server, worker and gateway count as its CPU). */
  sut(label: string): SystemUnderTest;
  stop(): Promise<void>;
}

/** Recreates the stream and buckets, starts a worker (with `workerEnv` added to its environment) and the gateway, and warms both up. */
export async function startJetactorStack(ctx: BenchContext, name: string, workerEnv: Record<string, string> = {}): Promise<JetactorStack> {
  await freshTopology(ctx);
  const worker = startWorker(ctx, `worker-${name}`, workerEnv);
  let gateway: HttpService | undefined;
  try {
    gateway = await startGateway(ctx);
    await waitForLeases(ctx, worker);
    // A first commit on each path.
    for (let i = 0; i < 50; i++) await fetch(`${gateway.url}/api/actors/counter/warm${i}/add?wait=true`, { method: 'POST' });
  } catch (err) {
    await Promise.all([gateway?.proc.stop(), worker.stop(15_000)]);
    throw err;
  }
  const gw = gateway;
  return {
    worker,
    gateway: gw,
    sut: (label) => ({
      label,
      callUrl: (key) => `${gw.url}/api/actors/counter/${key}/add?wait=true`,
      signalUrl: `${gw.url}/api/counter/hot/add`,
      hotValue: async () => {
        const res = await fetch(`${gw.url}/api/counter/hot`);
        if (!res.ok) throw new Error(`GET /api/counter/hot: HTTP ${res.status}`);
        return ((await res.json()) as { value: number }).value;
      },
      pids: { server: ctx.server.pid, worker: worker.pid, gateway: gw.proc.pid },
    }),
    stop: async () => {
      await Promise.all([gw.proc.stop(), worker.stop(15_000)]);
    },
  };
}
