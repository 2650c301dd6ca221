/**
 * What the default worker hosts, from its environment: the counter, the tally, the account, the
 * cart and its order, and the device, with the cart's and the device's settings read here (the
 * actor packages read no environment), or only the types `JETACTOR_ACTORS` lists.
 */
import { durationMsEnv, type AnyActorDefinition } from '@jetactor/actor-runtime';
import { account } from '@jetactor/account-actor';
import { DEFAULT_CART_IDLE_MS, MAX_CART_IDLE_MS, cart, order } from '@jetactor/cart-actor';
import { counter } from '@jetactor/counter-actor';
import { DEFAULT_DEVICE_OFFLINE_MS, MAX_DEVICE_OFFLINE_MS, device } from '@jetactor/device-actor';
import { tally } from '@jetactor/tally-actor';

/**
 * The cart's idle time from `env.CART_IDLE_MS` (ms; default {@link DEFAULT_CART_IDLE_MS}, 30
 * minutes); a value that is not an integer from 1 to {@link MAX_CART_IDLE_MS} is a `ConfigError`
 * naming the variable. Give every worker the same value, or a replay on another worker arms the
 * cart's timer differently.
 */
export function cartIdleMsFromEnv(env: NodeJS.ProcessEnv): number {
  return durationMsEnv(env, 'CART_IDLE_MS', DEFAULT_CART_IDLE_MS, MAX_CART_IDLE_MS);
}

/**
 * The device's offline time from `env.DEVICE_OFFLINE_MS` (ms; default
 * {@link DEFAULT_DEVICE_OFFLINE_MS}, 60 s); a value that is not an integer from 1 to
 * {@link MAX_DEVICE_OFFLINE_MS} is a `ConfigError` naming the variable.
 */
export function deviceOfflineMsFromEnv(env: NodeJS.ProcessEnv): number {
  return durationMsEnv(env, 'DEVICE_OFFLINE_MS', DEFAULT_DEVICE_OFFLINE_MS, MAX_DEVICE_OFFLINE_MS);
}

/** What {@link hostedFromEnv} answers: the `runWorker` options it sets. */
export interface Hosted {
  /** The definitions to host. */
  actors: AnyActorDefinition[];
  /** `'default'` for the whole set; undefined for a `JETACTOR_ACTORS` subset (the runtime derives a service from its types unless `JETACTOR_SERVICE` names one). */
  service: string | undefined;
}

/**
 * The actors the default worker hosts: all six types (service `default`), or, when
 * `JETACTOR_ACTORS=tally,counter` lists some, only those, as a service of their own that applies
 * only their operations. A listed name that is no type of this worker is an `Error` naming it;
 * a bad `CART_IDLE_MS` or `DEVICE_OFFLINE_MS` is a `ConfigError` whatever is listed.
 */
export function hostedFromEnv(env: NodeJS.ProcessEnv): Hosted {
  const all: AnyActorDefinition[] = [
    counter,
    tally,
    account,
    cart({ idleMs: cartIdleMsFromEnv(env) }),
    order,
    device({ offlineMs: deviceOfflineMsFromEnv(env) }),
  ];
  const only = (env.JETACTOR_ACTORS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = only.filter((t) => !all.some((a) => a.type === t));
  if (unknown.length > 0) throw new Error(`JETACTOR_ACTORS names no actor type of this worker: ${unknown.join(', ')} (it hosts ${all.map((a) => a.type).join(', ')})`);
  if (only.length === 0) return { actors: all, service: 'default' };
  return { actors: all.filter((a) => only.includes(a.type)), service: undefined };
}
