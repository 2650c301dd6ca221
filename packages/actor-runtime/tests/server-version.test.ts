// The oldest nats-server the runtime accepts (2.10: stream subject transforms), compared by its
// X.Y.Z with the semver package: numerically per part, a pre-release of a supported release
// counts as that release, anything unreadable is too old.
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { ConfigError, ErrorCode, MIN_SERVER_VERSION, assertServerVersion } from '../src/index.js';

const serverOf = (version: string | undefined): NatsConnection => ({ info: version === undefined ? undefined : { version } }) as unknown as NatsConnection;

describe('assertServerVersion', () => {
  it('accepts 2.10.0 and later, comparing each part as a number', () => {
    expect(MIN_SERVER_VERSION).toBe('2.10.0');
    for (const v of ['2.10.0', '2.10.27', '2.11.0', '2.15.1', '3.0.0', '2.10']) expect(assertServerVersion(serverOf(v))).toBe(v);
  });

  it('takes a pre-release or build of a supported release as that release', () => {
    for (const v of ['2.10.0-beta.1', '2.11.0-RC.2', '2.12.0-dev', '2.10.27+build.5']) expect(assertServerVersion(serverOf(v))).toBe(v);
  });

  it('refuses older servers and unreadable versions with SERVER_VERSION', () => {
    for (const v of ['2.9.25', '2.9.99', '1.4.1', '0.0.0', 'nonsense', '']) {
      expect(() => assertServerVersion(serverOf(v)), v).toThrow(ConfigError);
      expect(() => assertServerVersion(serverOf(v)), v).toThrow(expect.objectContaining({ code: ErrorCode.ServerVersion }));
    }
    expect(() => assertServerVersion(serverOf(undefined))).toThrow('nats-server 0.0.0 is too old: jetactor needs >= 2.10.0');
  });
});
