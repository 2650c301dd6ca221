export {
  controlKeys,
  createActorClient,
  createWorker,
  defaultNames,
  defaultTopology,
  partitionOf,
  provisionTopology,
} from '../../src/index.js';
export type { ActorClient, ActorNames, Worker } from '../../src/index.js';

const enc = new TextEncoder();
/** JSON bytes of a value, for writing control records by hand in tests. */
export function encodeJsonForTests(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}
