/**
 * @packageDocumentation
 * The account actor: deposit, withdraw and transfer (a debit here and a `deposit` sent to the
 * other account), hosted by the default worker. Host it yourself with
 * `runWorker({ actors: [account] })` from `@jetactor/actor-runtime`.
 */
export { AccountKey, Amount, AmountInput, BALANCE_OVERFLOW, INSUFFICIENT_FUNDS, SELF_TRANSFER, TransferInput, account } from './account.js';
export type { Account, AccountState, BalanceResult } from './account.js';
