/**
 * Test helpers for jetactor: real `nats-server` processes (single servers and JetStream
 * clusters) on free ports with temp stores, child processes with captured output (the default
 * worker among them), and polling with deadlines.
 *
 * @packageDocumentation
 */
export { natsServerBin } from './binary.js';
export { startNatsServer } from './nats-server.js';
export type { NatsServer, NatsServerOptions } from './nats-server.js';
export { startNatsCluster } from './cluster.js';
export type { NatsCluster, NatsClusterOptions } from './cluster.js';
export { spawnProcess } from './process.js';
export type { ManagedProcess, OutputStream, ProcessExit, SpawnProcessOptions, WaitForLineOptions } from './process.js';
export { WORKER_MAIN, jsonLines, spawnWorker } from './worker.js';
export type { LogLine, SpawnWorkerOptions } from './worker.js';
export { waitFor } from './wait-for.js';
export { childPids, processRuns } from './proc.js';
export type { Truthy, WaitForOptions } from './wait-for.js';
export { freePort, freePorts } from './ports.js';
export { tempDir } from './temp-dir.js';
export type { TempDir } from './temp-dir.js';
export { prng, publishOps, randomOps, replayCounters } from './operations.js';
export type { Op } from './operations.js';
