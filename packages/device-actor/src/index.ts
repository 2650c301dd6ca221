/**
 * @packageDocumentation
 * The device actor, fed by the NATS subject `devices.<id>.telemetry` (`{"t": <number>}`): last
 * reading, exponential moving average, count, and online/offline by a timer. Hosted by the
 * default worker; host it yourself with `runWorker({ actors: [device({ offlineMs: 30_000 })] })`.
 */
export {
  DEFAULT_DEVICE_OFFLINE_MS,
  EMA_ALPHA,
  MAX_DEVICE_OFFLINE_MS,
  OFFLINE_TIMER,
  ReadingInput,
  TELEMETRY_SUBJECT,
  device,
} from './device.js';
export type { Device, DeviceOptions, DeviceState, DeviceStatus, DeviceStatusResult } from './device.js';
