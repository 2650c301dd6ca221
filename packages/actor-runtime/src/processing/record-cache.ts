import { LRUCache } from 'lru-cache';

/** A state record as the owner holds it in memory, with its KV revision for CAS. */
export interface CachedRecord {
  state: unknown;
  seq: number;
  /** KV revision of the stored record; 0 when the key was never written. */
  revision: number;
  deleted: boolean;
  partition: number;
}

/**
 * Bounded cache of the records of owned partitions. Only the owner of a partition
 * writes its keys, so a cached revision stays valid while the lease is held; a lost
 * CAS drops the partition's entries.
 */
export class RecordCache {
  private readonly lru: LRUCache<string, CachedRecord>;

  constructor(maxEntries: number) {
    this.lru = new LRUCache({ max: Math.max(1, maxEntries) });
  }

  get(key: string): CachedRecord | undefined {
    return this.lru.get(key);
  }

  set(key: string, rec: CachedRecord): void {
    this.lru.set(key, rec);
  }

  /** Drops every entry of a partition (on release or after a conflict). */
  dropPartition(partition: number): void {
    for (const [k, v] of this.lru.entries()) if (v.partition === partition) this.lru.delete(k);
  }

  get size(): number {
    return this.lru.size;
  }
}
