import { ActorError, ActorKeySchema, NoInput, Type, defineActor, type Static } from '@jetactor/actor-runtime';

/** Code of the error result of withdrawing or transferring more than the balance. */
export const INSUFFICIENT_FUNDS = 'INSUFFICIENT_FUNDS';
/** Code of the error result of a deposit that would take the balance past `Number.MAX_SAFE_INTEGER`. */
export const BALANCE_OVERFLOW = 'BALANCE_OVERFLOW';
/** Code of the error result of a transfer whose `to` is the account itself. */
export const SELF_TRANSFER = 'SELF_TRANSFER';

/** An amount of money: a whole number from 1 to `Number.MAX_SAFE_INTEGER` (no fractions, no strings). */
export const Amount = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'a positive safe integer' });

/** An account key: one subject token, like every actor key (`[A-Za-z0-9_=-]`, 1 to 128 characters). */
export const AccountKey = ActorKeySchema({ description: 'an account key' });

/** The input of `deposit` and `withdraw`: `{"amount": 5}`. */
export const AmountInput = Type.Object({ amount: Amount }, { additionalProperties: false });

/** The input of `transfer`: `{"to": "a2", "amount": 5}`. */
export const TransferInput = Type.Object({ to: AccountKey, amount: Amount }, { additionalProperties: false });

/** An account's state: its balance, a safe integer that never goes below 0. */
export interface AccountState {
  balance: number;
}

/** What `deposit`, `withdraw`, `transfer` and the query `balance` answer. */
export interface BalanceResult {
  balance: number;
}

/** The balance after taking `amount` out; throws `INSUFFICIENT_FUNDS` when it would go below 0. */
function debit(state: AccountState, amount: number, what: string): number {
  if (state.balance < amount) {
    throw new ActorError(INSUFFICIENT_FUNDS, `balance ${state.balance} is less than the ${amount} to ${what}`);
  }
  return state.balance - amount;
}

/**
 * A bank account: `deposit`, `withdraw` and `transfer` of positive safe integer amounts; the
 * balance never goes below 0 (`INSUFFICIENT_FUNDS`) nor past `Number.MAX_SAFE_INTEGER`
 * (`BALANCE_OVERFLOW`). A transfer debits this account and sends `deposit {"amount": n}` to
 * account `to`, which the runtime publishes exactly once after the debit is committed. Every
 * error leaves the state unchanged. The query `balance` reads the stored state.
 */
export const account = defineActor({
  type: 'account',
  initialState: (): AccountState => ({ balance: 0 }),
  operations: {
    deposit: {
      input: AmountInput,
      handler: (state, { amount }) => {
        const balance = state.balance + amount;
        if (!Number.isSafeInteger(balance)) {
          throw new ActorError(BALANCE_OVERFLOW, `a deposit of ${amount} would take the balance ${state.balance} past ${Number.MAX_SAFE_INTEGER}`);
        }
        return { state: { balance }, result: { balance } };
      },
    },
    withdraw: {
      input: AmountInput,
      handler: (state, { amount }) => {
        const balance = debit(state, amount, 'withdraw');
        return { state: { balance }, result: { balance } };
      },
    },
    transfer: {
      input: TransferInput,
      handler: (state, { to, amount }, ctx) => {
        if (to === ctx.key) throw new ActorError(SELF_TRANSFER, `account '${to}' cannot transfer to itself`);
        const balance = debit(state, amount, `transfer to '${to}'`);
        return {
          state: { balance },
          result: { balance },
          send: [{ type: 'account', key: to, op: 'deposit', input: { amount } }],
        };
      },
    },
  },
  queries: {
    balance: { input: NoInput, handler: (state): BalanceResult => ({ balance: state.balance }) },
  },
});

/** The input of `deposit` and `withdraw`, as a type. */
export type AmountInput = Static<typeof AmountInput>;
/** The input of `transfer`, as a type. */
export type TransferInput = Static<typeof TransferInput>;

/** The account's definition type, derived from the definition. */
export type Account = typeof account;
