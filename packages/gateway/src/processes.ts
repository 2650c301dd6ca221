/**
 * Several gateway processes on one port (`GATEWAY_PROCESSES=N`): one Node process accepts
 * about as many HTTP requests as one core allows, so the entry forks N copies with
 * `node:cluster`, which share the listening socket. Each copy is a whole gateway with its own
 * NATS connection; none keeps state another needs (idempotency, awaited calls and reads all
 * go through NATS), so any copy may answer any request. The primary only supervises: a copy
 * that dies is started again, and SIGINT/SIGTERM stop every copy gracefully.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { gatewayEnv } from './env.js';
import { GATEWAY_DEFAULTS } from './options.js';

/** A copy that ends within this long of its start counts as failing to start (ms). */
const EARLY_EXIT_MS = 5000;

/** `GATEWAY_PROCESSES`: a whole number from 1, or `auto` (one per core); default 1. */
export function gatewayProcesses(env: NodeJS.ProcessEnv): number {
  const n = gatewayEnv(env).GATEWAY_PROCESSES ?? 1;
  return n === 'auto' ? Math.max(1, availableParallelism()) : n;
}

/**
 * Each copy's share of `GATEWAY_MAX_CONNECTIONS` (default 10000), a cap on all `n` copies
 * together: as even as whole numbers allow, summing to it; empty for 0 (no cap). A total
 * under `n` is refused (a copy's share of 0 would mean no cap).
 */
export function connectionShares(env: NodeJS.ProcessEnv, n: number): number[] {
  const total = gatewayEnv(env).GATEWAY_MAX_CONNECTIONS ?? GATEWAY_DEFAULTS.maxConnections;
  if (total === 0) return [];
  if (total < n) {
    throw new Error(`GATEWAY_MAX_CONNECTIONS (${total}) is split across the ${n} GATEWAY_PROCESSES: give at least ${n}, or 0 for no cap`);
  }
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

/** True in the primary of a multi-process gateway (it must not run a gateway itself). */
export function isSupervisor(n: number): boolean {
  return n > 1 && cluster.isPrimary;
}

/**
 * Forks `n` gateway copies and supervises them until a signal stops them all; resolves with the
 * exit code. Copy `i` gets `GATEWAY_MAX_CONNECTIONS=shares[i]` (see {@link connectionShares}),
 * and a copy started again in place of a dead one gets the dead one's share.
 */
export function superviseGateways(n: number, shares: readonly number[] = [], say: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    let failedEarly = 0;
    const started = new Map<number, { at: number; slot: number }>();
    const fork = (slot: number) => {
      const share = shares[slot];
      const w = cluster.fork(share === undefined ? {} : { GATEWAY_MAX_CONNECTIONS: String(share) });
      started.set(w.id, { at: Date.now(), slot });
    };
    cluster.on('exit', (w, code, signal) => {
      const copy = started.get(w.id);
      const early = Date.now() - (copy?.at ?? 0) < EARLY_EXIT_MS;
      started.delete(w.id);
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
        return;
      }
      say(`gateway process ${w.process.pid} ended (${signal ?? `code ${code}`})${early ? ' right after it started' : ''}; starting another`);
      if (early && ++failedEarly >= n) {
        say('every gateway process failed to start; stopping');
        stopping = true;
        for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(1);
        else cluster.on('exit', () => Object.keys(cluster.workers ?? {}).length === 0 && resolve(1));
        return;
      }
      fork(copy?.slot ?? 0);
    });
    const stop = () => {
      if (stopping) return;
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    for (let i = 0; i < n; i++) fork(i);
  });
}
