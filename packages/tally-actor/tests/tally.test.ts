import { describe, expect, it } from 'vitest';
import { ActorError, InvalidInputError, type OperationContext, type QueryContext } from '@jetactor/actor-runtime';
import { MAX_ENTRIES, NOT_ENOUGH, tally, type TallyState } from '../src/index.js';

const ctx = (op: string, seq = 1): OperationContext => ({ type: 'tally', key: 'k', op, seq, time: new Date(seq * 1000) });
const qctx = (query: string): QueryContext => ({ type: 'tally', key: 'k', query, seq: 1, exists: true });

/** Applies `ops` in order from the initial state, as a worker would. */
function run(ops: Array<[string, unknown]>): { state: TallyState; results: unknown[] } {
  let state = tally.initialState();
  const results: unknown[] = [];
  ops.forEach(([op, input], i) => {
    const out = tally.apply(state, op, input, ctx(op, i + 1));
    state = out.state;
    results.push(out.result);
  });
  return { state, results };
}

describe('tally', () => {
  it('adds, removes and clears labels, logging each change with the time it was stored', () => {
    const { state, results } = run([
      ['add', { label: 'apples', n: 3 }],
      ['add', { label: 'pears' }],
      ['remove', { label: 'apples', n: 2 }],
    ]);
    expect(results).toEqual([3, 1, 1]);
    expect(state).toEqual({
      counts: { apples: 1, pears: 1 },
      entries: [
        { label: 'apples', n: 3, at: new Date(1000).toISOString() },
        { label: 'pears', n: 1, at: new Date(2000).toISOString() },
        { label: 'apples', n: -2, at: new Date(3000).toISOString() },
      ],
    });
    expect(tally.apply(state, 'clear', undefined, ctx('clear'))).toEqual({ state: { counts: {}, entries: [] }, result: 2 });
  });

  it('drops a label that reaches 0 and refuses to remove more than it holds, state unchanged', () => {
    const { state } = run([
      ['add', { label: 'a', n: 2 }],
      ['remove', { label: 'a', n: 2 }],
    ]);
    expect(state.counts).toEqual({});
    const before = structuredClone(state);
    let err: unknown;
    try {
      tally.apply(state, 'remove', { label: 'a' }, ctx('remove'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ActorError);
    expect((err as ActorError).code).toBe(NOT_ENOUGH);
    expect((err as Error).message).toBe("tally has 0 of 'a', cannot remove 1");
    expect(state).toEqual(before);
  });

  it(`keeps the last ${MAX_ENTRIES} entries and every count`, () => {
    const { state } = run(Array.from({ length: MAX_ENTRIES + 5 }, (_, i) => ['add', { label: `l${i % 3}` }] as [string, unknown]));
    expect(state.entries).toHaveLength(MAX_ENTRIES);
    expect(state.entries[0]?.at).toBe(new Date(6000).toISOString());
    expect(Object.values(state.counts).reduce((a, b) => a + b, 0)).toBe(MAX_ENTRIES + 5);
  });

  it.each([
    [{}, 'input.label is required'],
    [{ label: '' }, 'input.label'],
    [{ label: 'a b' }, 'input.label'],
    [{ label: '__proto__' }, 'input.label'],
    [{ label: 'a', n: 0 }, 'input.n'],
    [{ label: 'a', n: 1.5 }, 'input.n'],
    [{ label: 'a', extra: 1 }, 'extra'],
    ['apples', 'input'],
    [undefined, 'input is required'],
  ])('rejects the input %j with a message naming the field', (raw, field) => {
    expect(() => tally.parseInput('add', raw)).toThrow(InvalidInputError);
    expect(() => tally.parseInput('remove', raw)).toThrow(field);
  });

  it('answers the queries count and labels from the state', () => {
    const { state } = run([
      ['add', { label: 'b', n: 2 }],
      ['add', { label: 'a' }],
    ]);
    expect(tally.query(state, 'count', { label: 'b' }, qctx('count'))).toBe(2);
    expect(tally.query(state, 'count', { label: 'zzz' }, qctx('count'))).toBe(0);
    expect(tally.query(state, 'labels', undefined, qctx('labels'))).toEqual(['a', 'b']);
  });

  it('describes its operations with their input JSON Schemas', () => {
    const d = tally.describe();
    expect(Object.keys(d.operations).sort()).toEqual(['add', 'clear', 'remove']);
    expect(d.operations.add?.input).toMatchObject({ type: 'object', required: ['label'], additionalProperties: false });
    expect(Object.keys(d.queries).sort()).toEqual(['count', 'labels']);
  });
});
