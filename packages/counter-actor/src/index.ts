/**
 * @packageDocumentation
 * The counter actor (add / reset / get) and the worker entry point that hosts it.
 */
export { counter, parseAddInput } from './counter.js';
export type { Counter } from './counter.js';
export { runWorker } from './run-worker.js';
export type { RunWorkerOptions } from './run-worker.js';
