/**
 * Deterministic, balanced assignment of partitions to live members: bounded-load
 * rendezvous hashing. Every (partition, member) pair gets a hash score; pairs are taken
 * from the highest score down, and a partition goes to the first member that still has
 * room. Room is floor(P / W) for everyone plus one extra for the first P mod W members
 * that ask, so every member ends with floor or ceil of P / W. Every member computes the
 * same answer from the same member set, and a join or leave moves few partitions since
 * the scores of the other pairs do not change.
 */
export function assignPartitions(partitions: number, members: readonly string[]): Map<string, number[]> {
  const ids = [...new Set(members)].sort();
  const out = new Map<string, number[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const floor = Math.floor(partitions / ids.length);
  let extra = partitions % ids.length;
  const pairs: Array<{ s: number; p: number; id: string }> = [];
  for (let p = 0; p < partitions; p++) for (const id of ids) pairs.push({ s: score(p, id), p, id });
  pairs.sort((a, b) => b.s - a.s || a.p - b.p || (a.id < b.id ? -1 : 1));
  const taken = new Array<boolean>(partitions).fill(false);
  for (const { p, id } of pairs) {
    if (taken[p]) continue;
    const list = out.get(id) as number[];
    if (list.length < floor || (list.length === floor && extra > 0)) {
      if (list.length === floor) extra--;
      list.push(p);
      taken[p] = true;
    }
  }
  for (const list of out.values()) list.sort((a, b) => a - b);
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
