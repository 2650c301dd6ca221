import { ConfigError, NoInput, Type, defineActor, type OperationOutcome, type Static } from '@jetactor/actor-runtime';

/** The id of the device's offline timer, re-armed by every reading. */
export const OFFLINE_TIMER = 'offline';
/** The offline time of `device()` without one: 60 s (the default worker's when `DEVICE_OFFLINE_MS` is not set). */
export const DEFAULT_DEVICE_OFFLINE_MS = 60_000;
/** The longest offline time a device may have: 365 days. */
export const MAX_DEVICE_OFFLINE_MS = 365 * 24 * 3_600_000;
/** Weight of the newest reading in the exponential moving average `avg`. */
export const EMA_ALPHA = 0.1;
/** The subject the device type is bound to; its `*` is the device key. */
export const TELEMETRY_SUBJECT = 'devices.*.telemetry';

/** Options of {@link device}. */
export interface DeviceOptions {
  /**
   * How long a device may send nothing before it is offline, in ms: a whole number from 1 to
   * {@link MAX_DEVICE_OFFLINE_MS}. Default {@link DEFAULT_DEVICE_OFFLINE_MS} (60 s). Give every
   * worker that hosts the device the same value.
   */
  offlineMs?: number;
}

/** A telemetry message, the input of `reading`: `{"t": 21.5}`, a finite number (JSON has no NaN or Infinity; TypeBox refuses them too). */
export const ReadingInput = Type.Object({ t: Type.Number({ description: 'the reading' }) }, { additionalProperties: false });

/** Whether readings are coming in. */
export type DeviceStatus = 'online' | 'offline';

/** What `offline` answers: the status after it. */
export interface DeviceStatusResult {
  status: DeviceStatus;
}

/** A device's state. */
export interface DeviceState {
  /** `online` from a reading until the offline time passes without one; a device never heard from is `offline`. */
  status: DeviceStatus;
  /** How many readings it got. */
  count: number;
  /** The last reading; null before the first. */
  last: number | null;
  /** Exponential moving average of the readings, alpha {@link EMA_ALPHA} (the first reading starts it); null before the first. */
  avg: number | null;
  /** Stream time (ISO 8601) of the last reading; null before the first. */
  lastAt: string | null;
}

/** The next moving average: `(1 - alpha) * avg + alpha * t`, a convex mix, so it stays between the readings (and finite). */
function nextAverage(avg: number | null, t: number): number {
  if (avg === null) return t;
  const mixed = (1 - EMA_ALPHA) * avg + EMA_ALPHA * t;
  // Rounding at the very ends of the double range could step past them.
  return Math.min(Number.MAX_VALUE, Math.max(-Number.MAX_VALUE, mixed));
}

/** The state with the status `offline`, all else kept. */
const offlineState = (state: DeviceState): DeviceState => ({ ...state, status: 'offline' });

/**
 * The device actor, offline after {@link DEFAULT_DEVICE_OFFLINE_MS} without a reading
 * (`device({ offlineMs })`: after `offlineMs`; a value out of range is a `ConfigError` naming
 * `offlineMs`), bound to `devices.<id>.telemetry`: every message published there
 * is the operation `reading` of device `<id>`, its payload `{"t": <number>}` the input.
 *
 * - `reading {"t"}` keeps the reading as `last`, moves `avg` (exponential, alpha
 *   {@link EMA_ALPHA}), counts it, sets `lastAt` to the operation's stream time, makes the
 *   device `online` and (re-)arms the timer `offline` (`afterMs: offlineMs`, op `offline`).
 * - `offline` makes the device `offline`. Fired by the timer, it does so only when the last
 *   reading is `offlineMs` old (a firing that comes early, after the offline time grew, re-arms
 *   the timer for the rest); called by anyone else, it does so at once and cancels the timer.
 *
 * The query `status` answers the whole state.
 */
export function device(options: DeviceOptions = {}) {
  const offlineMs = options.offlineMs ?? DEFAULT_DEVICE_OFFLINE_MS;
  if (!Number.isInteger(offlineMs) || offlineMs < 1 || offlineMs > MAX_DEVICE_OFFLINE_MS) {
    throw new ConfigError(`offlineMs must be a whole number of milliseconds from 1 to ${MAX_DEVICE_OFFLINE_MS}, got ${offlineMs}`);
  }
  return defineActor({
    type: 'device',
    initialState: (): DeviceState => ({ status: 'offline', count: 0, last: null, avg: null, lastAt: null }),
    operations: {
      reading: {
        input: ReadingInput,
        handler: (state, { t }, ctx) => {
          const next: DeviceState = { status: 'online', count: state.count + 1, last: t, avg: nextAverage(state.avg, t), lastAt: ctx.time.toISOString() };
          return {
            state: next,
            result: { count: next.count, avg: next.avg },
            schedule: [{ id: OFFLINE_TIMER, afterMs: offlineMs, op: 'offline' }],
          };
        },
      },
      offline: {
        input: NoInput,
        handler: (state, _input, ctx): OperationOutcome<DeviceState, DeviceStatusResult> => {
          if (ctx.timer !== OFFLINE_TIMER) {
            return { state: offlineState(state), result: { status: 'offline' }, cancel: [OFFLINE_TIMER] };
          }
          const lastAt = state.lastAt === null ? Number.NaN : Date.parse(state.lastAt);
          const silent = Number.isFinite(lastAt) ? ctx.time.getTime() - lastAt : Number.POSITIVE_INFINITY;
          if (silent < offlineMs) {
            return { state, result: { status: state.status }, schedule: [{ id: OFFLINE_TIMER, afterMs: offlineMs - silent, op: 'offline' }] };
          }
          return { state: offlineState(state), result: { status: 'offline' } };
        },
      },
    },
    queries: {
      status: { input: NoInput, handler: (state): DeviceState => state },
    },
    subscribe: [{ subject: TELEMETRY_SUBJECT, key: 1, op: 'reading' }],
  });
}

/** The input of `reading`, as a type. */
export type ReadingInput = Static<typeof ReadingInput>;
/** The device's definition type, derived from the definition. */
export type Device = ReturnType<typeof device>;
