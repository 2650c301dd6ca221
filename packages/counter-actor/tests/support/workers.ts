import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnProcess, waitFor, type ManagedProcess } from '@jetactor/testing';
import { type ActorClient } from '@jetactor/actor-runtime/client';
import { assignPartitions } from '@jetactor/actor-runtime/internal';

/** The built worker entry point (`npm test` builds before testing). */
export const WORKER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/main.js');

/** A worker process and its parsed JSON log lines. */
export interface WorkerProcess {
  id: string;
  proc: ManagedProcess;
  /** Parsed pino lines so far. */
  logs(): Array<Record<string, unknown> & { msg?: string; time: number }>;
}

/** Starts `node dist/main.js` as worker `id` against `natsUrl`. */
export function spawnWorker(id: string, natsUrl: string, env: Record<string, string> = {}): WorkerProcess {
  if (!existsSync(WORKER_MAIN)) {
    throw new Error(`${WORKER_MAIN} is missing: build first (npm test does, or: npx nx run-many -t build)`);
  }
  const proc = spawnProcess(process.execPath, [WORKER_MAIN], {
    name: id,
    env: {
      NATS_URL: natsUrl,
      WORKER_ID: id,
      ACTORS_PARTITIONS: '16',
      LEASE_TTL_MS: '2000',
      HEARTBEAT_MS: '250',
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  return {
    id,
    proc,
    logs: () =>
      proc.lines.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown> & { time: number }];
        } catch {
          return [];
        }
      }),
  };
}

/** Partition → owner, from the leases in the control bucket. */
export async function owners(client: ActorClient): Promise<Map<number, string | null>> {
  const status = await client.status();
  return new Map(status.partitions.map((p) => [p.partition, p.owner]));
}

/** Counts partitions per owner. */
export function countByOwner(o: Map<number, string | null>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of o.values()) if (owner) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

/** Waits until the leases match the assignment of `partitions` over exactly the members `ids`. */
export async function settledOn(client: ActorClient, partitions: number, ids: readonly string[], timeoutMs = 30_000): Promise<void> {
  const want = assignPartitions(partitions, [...ids]);
  await waitFor(
    async () => {
      const o = await owners(client);
      for (const [id, ps] of want) for (const p of ps) if (o.get(p) !== id) return false;
      return true;
    },
    { timeoutMs, intervalMs: 50, message: `partitions to settle on ${ids.join(', ')}` },
  );
}
