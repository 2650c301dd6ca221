import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { NatsServer } from '@jetactor/testing';

/** Sizes of one run; `--quick` uses smaller ones. */
export interface BenchSizes {
  /** Acked JetStream publishes in the raw publish test. */
  jsPublish: number;
  /** In-flight window of acked publishes. */
  jsWindow: number;
  /** Messages core-published into the stream (ingest), then read back (ordered read). */
  ingest: number;
  /** Pipelined KV puts (distinct keys). */
  kvPuts: number;
  /** In-flight window of KV puts. */
  kvWindow: number;
  /** How long the naive actor (get + CAS per op) runs, in ms. */
  naiveMs: number;
  /** Worker apply-rate scenarios: keys and operations. */
  apply: Array<{ keys: number; ops: number }>;
  /** Calls per second and duration of the call-latency test. */
  callRate: number;
  callMs: number;
  /** Signals per second and duration of the signal-to-visible test. */
  visibleRate: number;
  visibleMs: number;
  /** Duration and connections of each HTTP throughput test. */
  httpMs: number;
  httpConnections: number;
  /** Actor records written for the listing test (pages of 100 are timed). */
  listActors: number;
  /** Timers set and fired in the timers test (ten per counter). */
  timers: number;
  /**
   * The services section: apply scenarios (operations per type), the partition counts of the
   * control-cost runs, the length of each of their windows (idle, load) and the load's rate
   * (counter adds per second, and as many tally adds).
   */
  services: { apply: Array<{ keys: number; ops: number }>; partitions: number[]; windowMs: number; loadRate: number };
}

/** Full-run sizes (several minutes). */
export const FULL_SIZES: BenchSizes = {
  jsPublish: 300_000,
  jsWindow: 2000,
  ingest: 1_000_000,
  kvPuts: 150_000,
  kvWindow: 2000,
  naiveMs: 5000,
  apply: [
    { keys: 1, ops: 1_000_000 },
    { keys: 1000, ops: 500_000 },
    { keys: 100_000, ops: 300_000 },
  ],
  callRate: 1000,
  callMs: 15_000,
  visibleRate: 200,
  visibleMs: 10_000,
  httpMs: 15_000,
  httpConnections: 100,
  listActors: 100_000,
  timers: 100_000,
  services: {
    apply: [
      { keys: 1, ops: 200_000 },
      { keys: 1000, ops: 100_000 },
    ],
    partitions: [32, 512],
    windowMs: 6000,
    loadRate: 1000,
  },
};

/** `--quick` sizes: a smoke run of about a minute. */
export const QUICK_SIZES: BenchSizes = {
  jsPublish: 30_000,
  jsWindow: 2000,
  ingest: 100_000,
  kvPuts: 20_000,
  kvWindow: 2000,
  naiveMs: 1000,
  apply: [
    { keys: 1, ops: 100_000 },
    { keys: 1000, ops: 100_000 },
    { keys: 100_000, ops: 100_000 },
  ],
  callRate: 1000,
  callMs: 3000,
  visibleRate: 200,
  visibleMs: 2000,
  httpMs: 3000,
  httpConnections: 100,
  listActors: 20_000,
  timers: 10_000,
  services: {
    apply: [
      { keys: 1, ops: 50_000 },
      { keys: 1000, ops: 50_000 },
    ],
    partitions: [32, 512],
    windowMs: 3000,
    loadRate: 1000,
  },
};

/** What every section gets: the server, a connection and the run's settings. */
export interface BenchContext {
  server: NatsServer;
  /** The nats-server binary of this run (a durability run starts a second server from it). */
  natsServerBin: string;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Partitions of the operations stream (`ACTORS_PARTITIONS`). */
  partitions: number;
  sizes: BenchSizes;
  quick: boolean;
  /** Repository root (to find the built worker and gateway). */
  repoRoot: string;
  /** Where CPU profiles go when `--cpu-prof` is given; null otherwise. */
  cpuProfDir: string | null;
  /** Scheduling priority (nice) given to every process of the run, or null to leave it. */
  nice: number | null;
  /**
   * Call and signal phases already measured in this run on this server, by system
   * (`jetactor.default`, `jetactor.always`): the peers section reuses the durability
   * section's instead of measuring them twice.
   */
  phases: Map<string, PhaseResults>;
  /** The soak section's length and sampling (`--minutes`, `--sample-seconds`). */
  soak: { minutes: number; sampleSeconds: number };
}

/** What the phases measured on one system. */
export interface PhaseResults {
  label: string;
  /** Calls at the fixed rate: latency from the scheduled send time, in ms. */
  callP50: number;
  callP99: number;
  callMax: number;
  callErrors: number;
  /** Calls answered per second in the closed loop. */
  callsPerSecond: number;
  callClosedP99: number;
  callClosedErrors: number;
  /** CPU time of all of the system's processes per call answered (closed loop), in ms. */
  cpuMsPerCall: number;
  /** Cores each of the system's processes used in the closed loop, the HTTP client's (`client`) and the rest of the machine's (`others`). */
  callCpu: Record<string, number>;
  /** One-way signals to the hot key accepted (2xx) per second. */
  signalsPerSecond: number;
  signalErrors: number;
  /** Accepted signals / (first signal sent → the hot key holds all of them). */
  signalsAppliedPerSecond: number;
  /** From the end of the signal load until the last accepted signal was applied (or the window closed), ms. */
  signalBacklogMs: number;
  /** Accepted signals not yet applied when the window after the load closed (0: all applied). */
  signalsUnapplied: number;
  /** CPU time of the system's processes per signal accepted, in ms. */
  cpuMsPerSignal: number;
  signalCpu: Record<string, number>;
}
