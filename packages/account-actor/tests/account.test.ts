import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ActorError, InvalidInputError, type OperationContext, type OperationOutcome, type QueryContext } from '@jetactor/actor-runtime';
import { BALANCE_OVERFLOW, INSUFFICIENT_FUNDS, SELF_TRANSFER, account, type AccountState } from '../src/index.js';

const MAX = Number.MAX_SAFE_INTEGER;
const ctx = (op: string, key = 'a1', seq = 1): OperationContext => ({ type: 'account', key, op, seq, time: new Date(seq * 1000) });
const qctx: QueryContext = { type: 'account', key: 'a1', query: 'balance', seq: 1, exists: true };

const apply = (state: AccountState, op: string, input: unknown, key = 'a1'): OperationOutcome<AccountState> =>
  account.apply(structuredClone(state), op, input, ctx(op, key));

/** Matches a thrown ActorError of `code` (and `message`, when given). */
const failsWith = (code: string, message?: string): unknown => expect.objectContaining({ name: 'ActorError', code, ...(message === undefined ? {} : { message }) });

describe('account', () => {
  it('starts at balance 0', () => {
    expect(account.initialState()).toEqual({ balance: 0 });
  });

  it('deposits and withdraws, answering the new balance, with nothing to send or schedule', () => {
    const one = apply({ balance: 0 }, 'deposit', { amount: 10 });
    expect(one).toEqual({ state: { balance: 10 }, result: { balance: 10 } });
    const two = apply(one.state, 'withdraw', { amount: 4 });
    expect(two).toEqual({ state: { balance: 6 }, result: { balance: 6 } });
    expect(apply(two.state, 'withdraw', { amount: 6 })).toEqual({ state: { balance: 0 }, result: { balance: 0 } });
  });

  it('transfers: debits this account and sends exactly one deposit to the other', () => {
    expect(apply({ balance: 10 }, 'transfer', { to: 'a2', amount: 7 })).toEqual({
      state: { balance: 3 },
      result: { balance: 3 },
      send: [{ type: 'account', key: 'a2', op: 'deposit', input: { amount: 7 } }],
    });
    expect(apply({ balance: 7 }, 'transfer', { to: 'A_b=c-9', amount: 7 }).send).toEqual([
      { type: 'account', key: 'A_b=c-9', op: 'deposit', input: { amount: 7 } },
    ]);
  });

  it('refuses to withdraw or transfer more than the balance (INSUFFICIENT_FUNDS), the state unchanged', () => {
    const state = { balance: 5 };
    expect(() => account.apply(state, 'withdraw', { amount: 6 }, ctx('withdraw'))).toThrow(failsWith(INSUFFICIENT_FUNDS, 'balance 5 is less than the 6 to withdraw'));
    expect(() => account.apply(state, 'transfer', { to: 'a2', amount: 6 }, ctx('transfer'))).toThrow(failsWith(INSUFFICIENT_FUNDS, "balance 5 is less than the 6 to transfer to 'a2'"));
    expect(() => account.apply({ balance: 0 }, 'withdraw', { amount: 1 }, ctx('withdraw'))).toThrow(failsWith(INSUFFICIENT_FUNDS));
    expect(state).toEqual({ balance: 5 });
  });

  it('refuses a deposit past Number.MAX_SAFE_INTEGER (BALANCE_OVERFLOW), and allows one that reaches it', () => {
    expect(apply({ balance: MAX - 1 }, 'deposit', { amount: 1 }).state).toEqual({ balance: MAX });
    expect(apply({ balance: 0 }, 'deposit', { amount: MAX }).state).toEqual({ balance: MAX });
    const state = { balance: MAX };
    expect(() => account.apply(state, 'deposit', { amount: 1 }, ctx('deposit'))).toThrow(failsWith(BALANCE_OVERFLOW));
    expect(() => account.apply({ balance: 2 ** 52 }, 'deposit', { amount: 2 ** 52 }, ctx('deposit'))).toThrow(failsWith(BALANCE_OVERFLOW));
    expect(state).toEqual({ balance: MAX });
  });

  it('refuses a transfer to itself (SELF_TRANSFER), even with the funds, the state unchanged', () => {
    const state = { balance: 50 };
    expect(() => account.apply(state, 'transfer', { to: 'a1', amount: 5 }, ctx('transfer', 'a1'))).toThrow(failsWith(SELF_TRANSFER, "account 'a1' cannot transfer to itself"));
    expect(state).toEqual({ balance: 50 });
    // the same input from another account is fine
    expect(apply(state, 'transfer', { to: 'a1', amount: 5 }, 'a2').send?.[0]?.key).toBe('a1');
  });

  it.each([
    [undefined, 'input is required'],
    [null, 'input'],
    [5, 'input'],
    ['5', 'input'],
    [{}, 'input.amount is required'],
    [{ amount: '5' }, 'input.amount'],
    [{ amount: 0 }, 'input.amount'],
    [{ amount: -1 }, 'input.amount'],
    [{ amount: 1.5 }, 'input.amount'],
    [{ amount: MAX + 1 }, 'input.amount'],
    [{ amount: 2 ** 60 }, 'input.amount'],
    [{ amount: null }, 'input.amount'],
    [{ amount: true }, 'input.amount'],
    [{ amount: [5] }, 'input.amount'],
    [{ amount: 5, extra: 1 }, 'extra'],
  ])('deposit and withdraw reject the input %j, naming the field', (raw, field) => {
    for (const op of ['deposit', 'withdraw']) {
      expect(() => account.parseInput(op, raw)).toThrow(InvalidInputError);
      expect(() => account.apply({ balance: 100 }, op, raw, ctx(op))).toThrow(field);
    }
  });

  it.each([
    [{ amount: 5 }, 'input.to is required'],
    [{ to: 'a2' }, 'input.amount is required'],
    [{ to: '', amount: 5 }, 'input.to'],
    [{ to: 'a.b', amount: 5 }, 'input.to'],
    [{ to: 'a*', amount: 5 }, 'input.to'],
    [{ to: 'a>', amount: 5 }, 'input.to'],
    [{ to: 'a b', amount: 5 }, 'input.to'],
    [{ to: 'ä', amount: 5 }, 'input.to'],
    [{ to: 'x'.repeat(129), amount: 5 }, 'input.to'],
    [{ to: 7, amount: 5 }, 'input.to'],
    [{ to: 'a2', amount: 0 }, 'input.amount'],
    [{ to: 'a2', amount: -3 }, 'input.amount'],
    [{ to: 'a2', amount: 0.5 }, 'input.amount'],
    [{ to: 'a2', amount: '5' }, 'input.amount'],
    [{ to: 'a2', amount: MAX + 2 }, 'input.amount'],
    [{ to: 'a2', amount: 5, memo: 'hi' }, 'memo'],
  ])('transfer rejects the input %j, naming the field', (raw, field) => {
    expect(() => account.parseInput('transfer', raw)).toThrow(InvalidInputError);
    expect(() => account.apply({ balance: 100 }, 'transfer', raw, ctx('transfer'))).toThrow(field);
  });

  it('accepts a key of 128 characters as the target', () => {
    const to = 'k'.repeat(128);
    expect(apply({ balance: 1 }, 'transfer', { to, amount: 1 }).send?.[0]?.key).toBe(to);
  });

  it('answers the query balance from the state', () => {
    expect(account.query({ balance: 42 }, 'balance', undefined, qctx)).toEqual({ balance: 42 });
    expect(account.query(account.initialState(), 'balance', {}, qctx)).toEqual({ balance: 0 });
  });

  it('depends only on state, input and ctx: the same call twice gives the same outcome, whatever the clock', () => {
    const c = ctx('transfer', 'a1', 9);
    const first = account.apply({ balance: 10 }, 'transfer', { to: 'a2', amount: 3 }, c);
    const second = account.apply({ balance: 10 }, 'transfer', { to: 'a2', amount: 3 }, { ...c, time: new Date(0) });
    expect(second).toEqual(first);
  });

  it('describes its operations and query with their input JSON Schemas', () => {
    const d = account.describe();
    expect(Object.keys(d.operations).sort()).toEqual(['deposit', 'transfer', 'withdraw']);
    expect(d.operations.deposit?.input).toMatchObject({
      type: 'object',
      required: ['amount'],
      additionalProperties: false,
      properties: { amount: { type: 'integer', minimum: 1, maximum: MAX } },
    });
    expect(d.operations.transfer?.input).toMatchObject({ required: ['to', 'amount'], properties: { to: { pattern: '^[A-Za-z0-9_=-]{1,128}$', maxLength: 128 } } });
    expect(Object.keys(d.queries)).toEqual(['balance']);
    expect(d.subscribe).toBeUndefined();
  });
});

describe('account, as a model of several accounts with sends delivered', () => {
  const keys = ['a1', 'a2', 'a3', 'a4'];
  type Step = { op: 'deposit' | 'withdraw'; key: string; amount: number } | { op: 'transfer'; key: string; to: string; amount: number };
  const amount = fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: MAX }));
  const key = fc.constantFrom(...keys);
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ op: fc.constantFrom('deposit' as const, 'withdraw' as const), key, amount }),
    fc.record({ op: fc.constant('transfer' as const), key, to: key, amount }),
  );

  it('never makes a balance negative or unsafe, and conserves the total across transfers', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.boolean(), (steps, deliverLate) => {
        const states = new Map(keys.map((k) => [k, account.initialState()]));
        const outbox: Array<{ key: string; op: string; input: unknown }> = [];
        let seq = 0;
        let expected = 0n; // deposits made by clients minus withdrawals
        let lost = 0n; // deposits of transfers that failed at the receiver (overflow): dead letters
        const run = (k: string, op: string, input: unknown): boolean => {
          seq += 1;
          const before = structuredClone(states.get(k));
          try {
            const out = account.apply(structuredClone(states.get(k)!), op, input, ctx(op, k, seq));
            states.set(k, out.state);
            for (const s of out.send ?? []) {
              expect(s.type).toBe('account');
              outbox.push({ key: s.key!, op: s.op, input: s.input });
            }
            return true;
          } catch (err) {
            expect(err).toBeInstanceOf(ActorError);
            expect([INSUFFICIENT_FUNDS, BALANCE_OVERFLOW, SELF_TRANSFER]).toContain((err as ActorError).code);
            expect(states.get(k)).toEqual(before);
            return false;
          }
        };
        const deliver = () => {
          while (outbox.length > 0) {
            const m = outbox.shift()!;
            if (!run(m.key, m.op, m.input)) lost += BigInt((m.input as { amount: number }).amount);
          }
        };
        for (const s of steps) {
          const input = s.op === 'transfer' ? { to: s.to, amount: s.amount } : { amount: s.amount };
          if (run(s.key, s.op, input)) {
            if (s.op === 'deposit') expected += BigInt(s.amount);
            if (s.op === 'withdraw') expected -= BigInt(s.amount);
          }
          if (!deliverLate) deliver();
          for (const st of states.values()) {
            expect(Number.isSafeInteger(st.balance)).toBe(true);
            expect(st.balance).toBeGreaterThanOrEqual(0);
          }
        }
        deliver();
        const total = [...states.values()].reduce((a, st) => a + BigInt(st.balance), 0n);
        expect(total + lost).toBe(expected);
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('with small amounts (no overflow possible), loses nothing', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, key, fc.integer({ min: 1, max: 20 })), { maxLength: 80 }), (transfers) => {
        const states = new Map(keys.map((k) => [k, { balance: 100 }]));
        let seq = 0;
        for (const [from, to, n] of transfers) {
          seq += 1;
          try {
            const out = account.apply(states.get(from)!, 'transfer', { to, amount: n }, ctx('transfer', from, seq));
            states.set(from, out.state);
            for (const s of out.send ?? []) {
              seq += 1;
              states.set(s.key!, account.apply(states.get(s.key!)!, s.op, s.input, ctx(s.op, s.key, seq)).state);
            }
          } catch (err) {
            expect([INSUFFICIENT_FUNDS, SELF_TRANSFER]).toContain((err as ActorError).code);
          }
        }
        expect([...states.values()].reduce((a, st) => a + st.balance, 0)).toBe(400);
      }),
      { numRuns: 300 },
    );
  });
});
