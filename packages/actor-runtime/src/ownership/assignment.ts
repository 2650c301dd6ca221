/**
 * Deterministic, balanced assignment of partitions to live members: bounded-load
 * rendezvous hashing. Each partition goes to the member that ranks it highest among
 * those still below the cap ceil(P / W). Every member computes the same answer from
 * the same member set; a join or leave moves few partitions because each partition's
 * ranking of the other members does not change.
 */
export function assignPartitions(partitions: number, members: readonly string[]): Map<string, number[]> {
  const ids = [...new Set(members)].sort();
  const out = new Map<string, number[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const cap = Math.ceil(partitions / ids.length);
  for (let p = 0; p < partitions; p++) {
    let best: string | undefined;
    let bestScore = -1;
    for (const id of ids) {
      const list = out.get(id) as number[];
      if (list.length >= cap) continue;
      const s = score(p, id);
      if (s > bestScore || (s === bestScore && best !== undefined && id < best)) {
        best = id;
        bestScore = s;
      }
    }
    (out.get(best as string) as number[]).push(p);
  }
  return out;
}

/** Rendezvous score: FNV-1a of `id#p` with a murmur3 finalizer for a good spread. */
function score(p: number, id: string): number {
  let h = 0x811c9dc5;
  const s = `${id}#${p}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
