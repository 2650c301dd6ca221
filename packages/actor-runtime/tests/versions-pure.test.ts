/**
 * Versions and state migrations, pure: what `defineActor` accepts, the order and failures of
 * `upgrade`, and what the fold does with records older and newer than its definition (no I/O).
 */
import { describe, expect, it } from 'vitest';
import { ActorError, defineActor, PartitionBlockedError, Type, type AnyActorDefinition } from '../src/index.js';
import type { DecodedOp } from '../src/processing/decode.js';
import { foldKey } from '../src/processing/fold.js';
import { unknownOperationAction } from '../src/processing/fold-versions.js';
import type { FoldEnv } from '../src/processing/key-fold.js';
import type { CachedRecord } from '../src/processing/record-cache.js';

type V3 = { first: string; last: string; visits: number };
const calls: string[] = [];
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each migration takes its own version's shape
const profile = (migrate: Record<number, (s: any) => unknown>, version = 3) =>
  defineActor({
    type: 'profile',
    version,
    initialState: (): V3 => ({ first: '', last: '', visits: 0 }),
    operations: {
      visit: { input: Type.Optional(Type.Null()), handler: (s) => ({ state: { ...s, visits: s.visits + 1 }, result: s }) },
    },
    migrate,
  });
// v1: "Ada Lovelace"; v2: { name: "Ada Lovelace", visits }; v3: { first, last, visits }.
const v3 = profile({
  1: (s: string) => {
    calls.push('1->2');
    return { name: s, visits: 0 };
  },
  2: (s: { name: string; visits: number }) => {
    calls.push('2->3');
    const [first = '', last = ''] = s.name.split(' ');
    return { first, last, visits: s.visits };
  },
});

const envOf = (def: AnyActorDefinition, extra: Partial<FoldEnv> = {}): FoldEnv => ({ actors: new Map([[def.type, def]]), maxStateBytes: 10_000, salt: 's', stream: 1, partitions: 1, subjectPrefix: 'actors', ...extra });
const op = (seq: number, name = 'visit'): DecodedOp => ({ valid: true, seq, type: 'profile', key: 'p1', op: name, subject: `0.actors.profile.p1.${name}`, data: new Uint8Array(0), time: 0, reply: undefined, hasMsgId: false });
const record = (state: unknown, version?: number, seq = 5): CachedRecord => ({ json: JSON.stringify(state), seq, revision: 9, partition: 0, ...(version !== undefined ? { version } : {}) });

describe('defineActor({ version, migrate })', () => {
  it('defaults to version 1 without migrations, and describes its version', () => {
    const plain = defineActor({ type: 'plain', initialState: () => 0, operations: {} });
    expect({ version: plain.version, oldest: plain.oldestVersion, described: plain.describe().version }).toEqual({ version: 1, oldest: 1, described: 1 });
    expect({ version: v3.version, oldest: v3.oldestVersion, described: v3.describe().version }).toEqual({ version: 3, oldest: 1, described: 3 });
  });

  it.each([
    [{ version: 0 }, /version must be an integer >= 1/],
    [{ version: 1.5 }, /version must be an integer >= 1/],
    [{ version: 3, migrate: { 1: (s: unknown) => s } }, /migration 2 -> 3 is missing/],
    [{ version: 2, migrate: { 2: (s: unknown) => s } }, /migrate key "2" must be a version from 1 to 1/],
    [{ version: 2, migrate: { 0: (s: unknown) => s } }, /migrate key "0"/],
    [{ version: 2, migrate: { 1: 'up' } }, /migrate\[1\] must be a function/],
    [{ version: 2, migrate: [(s: unknown) => s] }, /migrate must be an object/],
  ])('refuses %o', (opts, message) => {
    expect(() => defineActor({ type: 'bad', initialState: () => 0, operations: {}, ...(opts as object) })).toThrow(message);
  });

  it('upgrades in order, each migration once, from any version it migrates', () => {
    calls.length = 0;
    expect(v3.upgrade('Ada Lovelace', 1)).toEqual({ first: 'Ada', last: 'Lovelace', visits: 0 });
    expect(calls).toEqual(['1->2', '2->3']);
    calls.length = 0;
    expect(v3.upgrade({ name: 'Grace Hopper', visits: 4 }, 2)).toEqual({ first: 'Grace', last: 'Hopper', visits: 4 });
    expect(calls).toEqual(['2->3']);
    expect(v3.upgrade({ first: 'a', last: 'b', visits: 1 }, 3)).toEqual({ first: 'a', last: 'b', visits: 1 });
  });

  it('refuses a record older than its oldest migration, one newer than itself, and reports a migration that throws', () => {
    const from2 = profile({ 2: (s: V3) => s });
    expect(from2.oldestVersion).toBe(2);
    expect(() => from2.upgrade('x', 1)).toThrow(expect.objectContaining({ code: 'RECORD_TOO_OLD' }) as Error);
    expect(() => v3.upgrade({}, 4)).toThrow(expect.objectContaining({ code: 'RECORD_TOO_NEW' }) as Error);
    const broken = profile({ 1: () => ({ name: 'x y', visits: 0 }), 2: () => { throw new Error('no last name'); } });
    let err: unknown;
    try {
      broken.upgrade('x', 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ActorError);
    expect(err).toMatchObject({ code: 'MIGRATION_FAILED', message: "actor 'profile': migrate[2] (version 2 -> 3) failed: no last name" });
  });
});

describe('the fold and record versions', () => {
  it('migrates an older record before the handler sees it and writes it at the new version with that operation', () => {
    calls.length = 0;
    const f = foldKey(record('Ada Lovelace'), [op(6), op(7)], envOf(v3));
    expect(calls).toEqual(['1->2', '2->3']); // once for the record, not once per operation
    expect(f.failures).toBeUndefined();
    expect({ dirty: f.dirty, seq: f.rec.seq, version: f.rec.version, state: JSON.parse(f.rec.json as string) as unknown }).toEqual({
      dirty: true,
      seq: 7,
      version: 3,
      state: { first: 'Ada', last: 'Lovelace', visits: 2 },
    });
  });

  it('writes a new record at its version; version 1 records stay without a version field', () => {
    expect(foldKey({ json: null, seq: 0, revision: 0, partition: 0 }, [op(1)], envOf(v3)).rec.version).toBe(3);
    const v1 = profile({}, 1);
    const f = foldKey(record({ first: 'a', last: 'b', visits: 0 }), [op(6)], envOf(v1));
    expect(f.dirty).toBe(true);
    expect(f.rec).not.toHaveProperty('version');
  });

  it('a migration that throws, or a record too old, fails the operation (a dead letter) and leaves the record as it was', () => {
    const broken = profile({ 1: () => ({ name: 'x', visits: 0 }), 2: () => { throw new Error('boom'); } });
    const base = record('Ada Lovelace');
    const f = foldKey(base, [op(6), op(7)], envOf(broken));
    expect(f.failures?.map((x) => ({ seq: x.op.seq, code: x.error.code, refusal: x.refusal === true }))).toEqual([
      { seq: 6, code: 'MIGRATION_FAILED', refusal: false },
      { seq: 7, code: 'MIGRATION_FAILED', refusal: false },
    ]);
    expect({ dirty: f.dirty, json: f.rec.json, version: f.rec.version }).toEqual({ dirty: false, json: base.json, version: undefined });
    const tooOld = foldKey(base, [op(6)], envOf(profile({ 2: (s: V3) => s })));
    expect(tooOld.failures?.map((x) => x.error.code)).toEqual(['RECORD_TOO_OLD']);
    expect(tooOld.dirty).toBe(false);
  });

  it('stops at a record a newer version wrote: no result, no failure, nothing written (the partition waits)', () => {
    const newer = record({ first: 'a', last: 'b', visits: 1, email: 'a@b' }, 4);
    let err: unknown;
    try {
      foldKey(newer, [op(6)], envOf(v3));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PartitionBlockedError);
    expect((err as PartitionBlockedError).at).toEqual({ reason: 'newer-record', seq: 6, type: 'profile', key: 'p1', op: 'visit', version: 3, recordVersion: 4 });
    // What the record already holds is skipped, as always: no wait for a replay of applied operations.
    expect(foldKey(newer, [op(5)], envOf(v3)).dirty).toBe(false);
  });

  it('an unknown operation is a dead letter unless the injected action says wait', () => {
    const plain = foldKey(record({ first: 'a', last: 'b', visits: 0 }, 3), [op(6, 'rename')], envOf(v3));
    expect(plain.failures?.map((x) => x.error.code)).toEqual(['UNKNOWN_OPERATION']);
    expect(unknownOperationAction({}, 'profile', 'rename')).toBe('dead-letter');
    const waiting = envOf(v3, { unknownOperation: (type, name) => (type === 'profile' && name === 'rename' ? 'wait' : 'dead-letter') });
    expect(() => foldKey(record({ first: 'a', last: 'b', visits: 0 }, 3), [op(6, 'rename')], waiting)).toThrow(PartitionBlockedError);
  });
});
