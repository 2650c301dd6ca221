import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/protocol/index.js';
import { decimalEnv, intEnv, parseEnv, workerOptionsFromEnv } from '../src/host/env.js';

describe('environment parsing (env-schema)', () => {
  it('maps the worker variables to worker options; unset or blank ones keep the defaults', () => {
    expect(workerOptionsFromEnv({})).toEqual({ topology: {} });
    expect(
      workerOptionsFromEnv({ WORKER_ID: 'w1', ACTORS_PARTITIONS: '8', ACTORS_READ: 'partition', ACTORS_INBOX_PREFIX: '_I.x', LEASE_TTL_MS: ' ', ACTORS_DLQ_MAX_MSGS: '-1' }),
    ).toEqual({ id: 'w1', partitions: 8, readMode: 'partition', names: { inboxPrefix: '_I.x' }, topology: { dlqMaxMsgs: -1 } });
  });

  it('reads an integer variable as Number() does (the worker checks the range) and names a bad one', () => {
    expect(intEnv({ N: ' 12 ' }, 'N')).toBe(12);
    expect(intEnv({ N: '0x10' }, 'N')).toBe(16);
    expect(intEnv({ N: '1e3' }, 'N')).toBe(1000);
    expect(intEnv({ N: '' }, 'N')).toBeUndefined();
    expect(() => intEnv({ N: '1.5' }, 'N')).toThrow(new ConfigError("N must be an integer, got '1.5'"));
    expect(() => workerOptionsFromEnv({ MAX_BATCH: 'lots' })).toThrow(new ConfigError("MAX_BATCH must be an integer, got 'lots'"));
  });

  it('takes decimal digits only for a decimalEnv variable, words ranges and falls back to defaults', () => {
    const schema = Type.Object({
      T: Type.Optional(decimalEnv(1, 'ms to wait')),
      P: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
      S: Type.Optional(Type.String({ pattern: '^[a-z]+$', description: 'lower-case letters' })),
    });
    expect(parseEnv(schema, {})).toEqual({ P: 3000 });
    expect(parseEnv(schema, { T: ' 250 ', P: '0', S: 'abc' })).toEqual({ T: 250, P: 0, S: 'abc' });
    for (const bad of ['1e3', '0x10', '+5', '-1', '1.5', '0', '99999999999999999']) {
      expect(() => parseEnv(schema, { T: bad })).toThrow(new ConfigError(`T must be an integer >= 1 (ms to wait), got '${bad}'`));
    }
    expect(() => parseEnv(schema, { P: '70000' })).toThrow(new ConfigError("P must be an integer from 0 to 65535, got '70000'"));
    expect(() => parseEnv(schema, { S: 'A.B' })).toThrow(new ConfigError("S must be lower-case letters, got 'A.B'"));
  });
});
