import { describe, expect, it } from 'vitest';
import { RecordCache, type CachedRecord } from '../src/processing/record-cache.js';

const rec = (partition: number, seq = 1): CachedRecord => ({ json: String(seq), seq, revision: seq, partition });

describe('RecordCache', () => {
  it('drops exactly the entries of one partition', () => {
    const cache = new RecordCache(100);
    for (let i = 0; i < 30; i++) cache.set(`counter.k${i}`, rec(i % 3));
    cache.dropPartition(1);
    expect(cache.size).toBe(20);
    for (let i = 0; i < 30; i++) expect(cache.get(`counter.k${i}`) !== undefined).toBe(i % 3 !== 1);
    cache.dropPartition(1);
    expect(cache.size).toBe(20);
  });

  it('stays bounded, and evicted entries are no longer counted in their partition', () => {
    const cache = new RecordCache(10);
    for (let i = 0; i < 25; i++) cache.set(`counter.k${i}`, rec(i % 2));
    expect(cache.size).toBe(10);
    expect(cache.get('counter.k0')).toBeUndefined();
    cache.dropPartition(0);
    expect(cache.size).toBe(5);
    cache.set('counter.k0', rec(0));
    expect(cache.get('counter.k0')?.seq).toBe(1);
  });

  it('keeps an overwritten key in its partition', () => {
    const cache = new RecordCache(10);
    cache.set('counter.a', rec(4, 1));
    cache.set('counter.a', rec(4, 2));
    expect(cache.get('counter.a')?.seq).toBe(2);
    cache.dropPartition(4);
    expect(cache.get('counter.a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
