// What the default worker hosts for an environment (no server): the six types as service
// `default`, a JETACTOR_ACTORS subset as a service of its own, and the cart's and the device's
// settings read from CART_IDLE_MS and DEVICE_OFFLINE_MS (the actor packages read none).
import { ConfigError, type AnyActorDefinition, type OperationContext } from '@jetactor/actor-runtime';
import { MAX_CART_IDLE_MS } from '@jetactor/cart-actor';
import { MAX_DEVICE_OFFLINE_MS } from '@jetactor/device-actor';
import { describe, expect, it } from 'vitest';
import { cartIdleMsFromEnv, deviceOfflineMsFromEnv, hostedFromEnv } from '../src/actors.js';

const ctx = (type: string, op: string): OperationContext => ({ type, key: 'k1', op, seq: 1, time: new Date(Date.UTC(2026, 0, 1)) });
const byType = (actors: readonly AnyActorDefinition[], type: string): AnyActorDefinition => {
  const def = actors.find((a) => a.type === type);
  if (!def) throw new Error(`no ${type}`);
  return def;
};
/** The afterMs of the timer the hosted cart arms on an add and the hosted device on a reading. */
const timersOf = (actors: readonly AnyActorDefinition[]) => {
  const cart = byType(actors, 'cart');
  const device = byType(actors, 'device');
  return {
    cart: cart.apply(cart.initialState(), 'add', { sku: 'a', qty: 1 }, ctx('cart', 'add')).schedule,
    device: device.apply(device.initialState(), 'reading', { t: 1 }, ctx('device', 'reading')).schedule,
  };
};

describe('hostedFromEnv', () => {
  it('hosts the six types as service default, with a 30 min cart and a 60 s device', () => {
    const hosted = hostedFromEnv({});
    expect(hosted.service).toBe('default');
    expect(hosted.actors.map((a) => a.type)).toEqual(['counter', 'tally', 'account', 'cart', 'order', 'device']);
    expect(timersOf(hosted.actors)).toEqual({
      cart: [{ id: 'idle', afterMs: 1_800_000, op: 'expire' }],
      device: [{ id: 'offline', afterMs: 60_000, op: 'offline' }],
    });
  });

  it('gives CART_IDLE_MS and DEVICE_OFFLINE_MS to the cart and the device', () => {
    expect(timersOf(hostedFromEnv({ CART_IDLE_MS: '5000', DEVICE_OFFLINE_MS: '1500' }).actors)).toEqual({
      cart: [{ id: 'idle', afterMs: 5000, op: 'expire' }],
      device: [{ id: 'offline', afterMs: 1500, op: 'offline' }],
    });
  });

  it('hosts only the types JETACTOR_ACTORS lists, as a service of their own', () => {
    const hosted = hostedFromEnv({ JETACTOR_ACTORS: ' tally, counter ,' });
    expect(hosted).toEqual({ actors: [expect.objectContaining({ type: 'counter' }), expect.objectContaining({ type: 'tally' })], service: undefined });
  });

  it('refuses a listed name that is no type of this worker, naming it and what it hosts', () => {
    expect(() => hostedFromEnv({ JETACTOR_ACTORS: 'counter,nope' })).toThrow(
      'JETACTOR_ACTORS names no actor type of this worker: nope (it hosts counter, tally, account, cart, order, device)',
    );
  });

  it('refuses a bad CART_IDLE_MS or DEVICE_OFFLINE_MS whatever it hosts', () => {
    expect(() => hostedFromEnv({ JETACTOR_ACTORS: 'counter', CART_IDLE_MS: '0' })).toThrow(ConfigError);
    expect(() => hostedFromEnv({ JETACTOR_ACTORS: 'counter', DEVICE_OFFLINE_MS: 'x' })).toThrow('DEVICE_OFFLINE_MS');
  });
});

describe('CART_IDLE_MS', () => {
  it('defaults to 30 minutes', () => {
    expect(cartIdleMsFromEnv({})).toBe(1_800_000);
    expect(cartIdleMsFromEnv({ CART_IDLE_MS: '' })).toBe(1_800_000);
  });

  it('takes a positive integer of ms, and names the variable for anything else', () => {
    expect(cartIdleMsFromEnv({ CART_IDLE_MS: '5000' })).toBe(5000);
    expect(cartIdleMsFromEnv({ CART_IDLE_MS: String(MAX_CART_IDLE_MS) })).toBe(MAX_CART_IDLE_MS);
    for (const bad of ['0', '-1', 'abc', '1.5', String(MAX_CART_IDLE_MS + 1), '30m']) {
      expect(() => cartIdleMsFromEnv({ CART_IDLE_MS: bad })).toThrow(ConfigError);
      expect(() => cartIdleMsFromEnv({ CART_IDLE_MS: bad })).toThrow('CART_IDLE_MS');
    }
  });
});

describe('DEVICE_OFFLINE_MS', () => {
  it('defaults to 60 s', () => {
    expect(deviceOfflineMsFromEnv({})).toBe(60_000);
  });

  it('takes a positive integer of ms, and names the variable for anything else', () => {
    expect(deviceOfflineMsFromEnv({ DEVICE_OFFLINE_MS: '1500' })).toBe(1500);
    for (const bad of ['0', '-5', 'x', '2.5', String(MAX_DEVICE_OFFLINE_MS + 1)]) {
      expect(() => deviceOfflineMsFromEnv({ DEVICE_OFFLINE_MS: bad })).toThrow(ConfigError);
      expect(() => deviceOfflineMsFromEnv({ DEVICE_OFFLINE_MS: bad })).toThrow('DEVICE_OFFLINE_MS');
    }
  });
});
