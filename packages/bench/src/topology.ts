/** The actors' topology of a bench section, made fresh. */
import { Kvm } from '@nats-io/kv';
import { defaultTopology, provisionTopology, type Topology } from '@jetactor/actor-runtime/worker';
import { defaultNames } from '@jetactor/actor-runtime/internal';
import type { ManagedProcess } from '@jetactor/testing';
import type { BenchContext } from './context.js';
import { startWorker, tail } from './processes.js';
import { sleep } from './progress.js';
import { deleteStreams } from './raw-limits.js';

const NAMES = defaultNames();

/**
 * Deletes everything a worker made on the server (the operations stream, its buckets and
 * the subject bindings' capture streams `ACTORS_BIND_…`) and provisions the topology anew,
 * so that each run starts from nothing: a capture stream left from an earlier worker would
 * be re-sourced by the next one into a recreated operations stream.
 */
export async function freshTopology(ctx: BenchContext): Promise<Topology> {
  const names: string[] = [];
  for await (const name of ctx.jsm.streams.names()) {
    if (name === NAMES.stream || name.startsWith(`${NAMES.stream}_`)) names.push(name);
  }
  await deleteStreams(ctx.jsm, [...names, ...[NAMES.stateBucket, NAMES.controlBucket, NAMES.timerBucket, NAMES.outcomeBucket].map((b) => `KV_${b}`)]);
  return provisionTopology(ctx.nc, defaultTopology(NAMES, { partitions: ctx.partitions }));
}


/** Resolves once the worker holds the last partition's lease (it takes them in order). */
export async function waitForLeases(ctx: BenchContext, worker: ManagedProcess): Promise<void> {
  const control = await new Kvm(ctx.js).open(NAMES.controlBucket);
  for (let i = 0; i < 200; i++) {
    if ((await control.get(`leases.${ctx.partitions - 1}`))?.operation === 'PUT') return;
    if (!worker.running) throw new Error(`worker exited:\n${tail(worker)}`);
    await sleep(50);
  }
  throw new Error(`the worker took no lease of partition ${ctx.partitions - 1} in 10 s:\n${tail(worker)}`);
}

/**
 * Starts a worker on the (empty) topology until it holds every partition, then stops it
 * gracefully: what a deployment's first worker does before operations arrive. It provisions
 * what the worker adds to the topology (the subject bindings' capture streams and the
 * operations stream's sources of them), so that a worker started later on a preloaded stream
 * finds them in place. Needed on nats-server 2.15.1: adding a source to a stream that holds
 * 100,000 operations over 1,000 keys took 8.4 s there (39 ms on 2.10.27), longer than the
 * worker's start-up request timeout (5 s), and the worker failed to start.
 */
export async function provisionWithWorker(ctx: BenchContext): Promise<void> {
  const worker = startWorker(ctx, 'worker-provision');
  try {
    await waitForLeases(ctx, worker);
  } finally {
    await worker.stop(15_000);
  }
}
