/**
 * @packageDocumentation
 * jetactor's client: signal, call, read, list, watch and schedule timers on actors, over NATS.
 * Errors it throws are those of `@jetactor/actor-runtime`.
 */
export { connectFromEnv, connectionOptionsFromEnv } from './connection/connect.js';
export { createActorClient, INVALID_DEAD_LETTER } from './client/actor-client.js';
export type { ActorClient, ActorClientOptions, ActorSnapshot, CallResult, SignalResult } from './client/actor-client.js';
export type { ClusterStatus } from './client/cluster-status.js';
export type { DeadLetter } from './protocol/dead-letters.js';
export { MAX_PAGE_LIMIT, parseCursor } from './client/list-actors.js';
export type { ListOptions, ListPage } from './client/list-actors.js';
export { createTypedClient } from './client/typed-client.js';
export type { ActorHandle, CallOptions, InputArgs, ReadOptions, SignalOptions, TypedCallResult, TypedClient, TypedSnapshot } from './client/typed-client.js';
export { createQueryClient, runQuery } from './client/query-client.js';
export type { QueryClient, QueryClientOptions } from './client/query-client.js';
export type { QueryOptions, QueryResult, StateQueryResult } from './protocol/queries.js';
export { createActorWatcher } from './client/actor-watcher.js';
export type { ActorChange, ActorWatch, ActorWatcher, ActorWatcherOptions, WatchOptions } from './client/actor-watcher.js';
export { defaultTimerId, planTimer } from './client/timers.js';
export type { CancelTimerOptions, CancelTimerOutcome, CancelTimerSent, PlannedTimer, ScheduleOptions, ScheduleResult, TimerClient, TimerInfo, TimerList } from './client/timers.js';
