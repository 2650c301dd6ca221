/**
 * @packageDocumentation
 * The counter actor (add / reset / get). The default worker (`@jetactor/worker`) hosts it;
 * host it yourself with the runtime's `runWorker({ actors: [counter] })`.
 */
export { counter, parseAddInput } from './counter.js';
export type { Counter } from './counter.js';
