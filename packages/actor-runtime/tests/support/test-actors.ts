import { defineActor } from '../../src/internal.js';

/** An account's state in the runtime's own tests. */
export type Acct = { balance: number };

/** A small account whose `transfer` sends a `deposit`, for the tests of sends. */
export const testAccount = defineActor({
  type: 'acct',
  initialState: (): Acct => ({ balance: 0 }),
  operations: {
    deposit: (s: Acct, i: unknown) => ({ state: { balance: s.balance + (i as { amount: number }).amount }, result: s.balance + (i as { amount: number }).amount }),
    transfer: (s: Acct, i: unknown) => {
      const { to, amount } = i as { to: string; amount: number };
      return { state: { balance: s.balance - amount }, result: s.balance - amount, send: [{ key: to, op: 'deposit', input: { amount } }] };
    },
  },
});

/** The spec of a greeter, the second service's type in the services tests (version 2 reuses it). */
export const greeterSpec = {
  type: 'greeter',
  initialState: (): string[] => [],
  operations: {
    greet: (s: string[], name: unknown) => ({ state: [...s, String(name)], result: `hello ${String(name)}` }),
  },
};

export const greeter = defineActor(greeterSpec);
