/**
 * @packageDocumentation
 * The counter actor (add / reset / get). The default worker entry (`dist/main.js`) hosts it
 * with the runtime's `runWorker`.
 */
export { counter, parseAddInput } from './counter.js';
export type { Counter } from './counter.js';
