import type { ActorChange, CancelTimerOutcome, CancelTimerSent, ClusterStatus, DeadLetter, ScheduleOptions, ScheduleResult, TimerList } from '@jetactor/actor-runtime/client';

/** An actor's state as the CLI shows it. */
export interface Snapshot {
  type: string;
  key: string;
  state: unknown;
  seq: number;
  revision: number;
}

/** A running watch: iterate it for changes; `stop()` ends it. */
export interface ChangeStream extends AsyncIterable<ActorChange> {
  stop(): void;
}

/**
 * What every command needs, over NATS (the runtime's client) or over HTTP (a gateway).
 * Errors are {@link CliError}s with the same codes either way.
 */
export interface Backend {
  signal(type: string, key: string, op: string, input: unknown, opts: { idempotencyKey?: string }): Promise<{ seq: number; duplicate: boolean }>;
  call(type: string, key: string, op: string, input: unknown, opts: { idempotencyKey?: string; timeoutMs: number }): Promise<{ result: unknown; seq: number; duplicate: boolean }>;
  get(type: string, key: string, opts: { minSeq?: number; timeoutMs: number }): Promise<Snapshot>;
  list(type: string, opts: { prefix?: string; limit?: number; cursor?: string }): Promise<{ items: Snapshot[]; nextCursor: string | null }>;
  watch(type: string, key: string | undefined, opts: { updatesOnly: boolean }): Promise<ChangeStream>;
  status(): Promise<ClusterStatus>;
  deadLetters(opts: { limit?: number; cursor?: number }): Promise<{ items: DeadLetter[]; nextCursor: number | null }>;
  resubmit(dlqSeq: number): Promise<{ seq: number; duplicate: boolean }>;
  removeService(id: string): Promise<{ removed: string; types: string[] }>;
  schedule(type: string, key: string, op: string, input: unknown, opts: ScheduleOptions): Promise<ScheduleResult>;
  timers(type: string, key: string): Promise<TimerList>;
  cancelTimer(type: string, key: string, id: string, opts: { wait: boolean; timeoutMs: number; idempotencyKey?: string }): Promise<CancelTimerSent | CancelTimerOutcome>;
  close(): Promise<void>;
}
