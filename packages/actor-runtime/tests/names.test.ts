import { describe, expect, it } from 'vitest';
import { InvalidNameError, parseStoredSubject, partitionOf, validateName } from '../src/internal.js';

describe('validateName', () => {
  it.each(['k1', 'a_b', 'A-Z=0', 'x'.repeat(128)])('accepts key %s', (k) => {
    expect(() => validateName('key', k)).not.toThrow();
  });
  it.each(['a.b', 'a*', 'a>', 'a b', '', 'x'.repeat(129), 'ä', 'a/b'])('rejects key %j', (k) => {
    expect(() => validateName('key', k)).toThrow(InvalidNameError);
  });
  it('reserves the call type', () => {
    expect(() => validateName('type', 'call')).toThrow(/and not 'call', 'query' \(got "call"\)/);
  });
  it('names the field in the error code', () => {
    try {
      validateName('type', 'a.b');
      expect.unreachable();
    } catch (err) {
      expect((err as InvalidNameError).code).toBe('INVALID_TYPE');
    }
  });
});

describe('subjects and partitions', () => {
  it('parses stored subjects', () => {
    expect(parseStoredSubject('7.actors.counter.k1.add')).toEqual({ partition: 7, type: 'counter', key: 'k1', op: 'add' });
    expect(parseStoredSubject('actors.counter.k1.add')).toBeNull();
  });
  it('spreads keys over partitions deterministically', () => {
    const counts = new Array<number>(32).fill(0);
    for (let i = 0; i < 3200; i++) counts[partitionOf('counter', `k${i}`, 32)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(partitionOf('counter', 'k1', 32)).toBe(partitionOf('counter', 'k1', 32));
  });
});
