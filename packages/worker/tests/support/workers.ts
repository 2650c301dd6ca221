/** Partition ownership as the worker tests see it, from the control bucket. */
import { waitFor } from '@jetactor/testing';
import { assignPartitions, type ActorClient } from '@jetactor/actor-runtime';

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
