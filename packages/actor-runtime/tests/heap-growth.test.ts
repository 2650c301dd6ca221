import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/protocol/index.js';
import { applyHeapGrowth } from '../src/host/run-worker.js';

describe('WORKER_HEAP_GROWTH_PERCENT', () => {
  it.each(['-1', '1001', 'lots', '2.5'])('refuses %s with a ConfigError that names the variable', (value) => {
    expect(() => applyHeapGrowth({ WORKER_HEAP_GROWTH_PERCENT: value })).toThrow(ConfigError);
    expect(() => applyHeapGrowth({ WORKER_HEAP_GROWTH_PERCENT: value })).toThrow(/WORKER_HEAP_GROWTH_PERCENT/);
  });

  it.each([{}, { WORKER_HEAP_GROWTH_PERCENT: '0' }, { WORKER_HEAP_GROWTH_PERCENT: '50' }, { WORKER_HEAP_GROWTH_PERCENT: '1000' }])('accepts %j', (env) => {
    expect(() => applyHeapGrowth(env)).not.toThrow();
  });
});
