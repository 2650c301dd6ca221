import { readFileSync } from 'node:fs';
import semver from 'semver';
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { ConfigError, ErrorCode } from '../protocol/index.js';

/** The oldest nats-server we support: stream subject transforms arrived in 2.10. */
export const MIN_SERVER_VERSION = '2.10.0';

/**
 * NATS connection options from the environment:
 * `NATS_URL` (comma-separated list, default `nats://127.0.0.1:4222`), `NATS_CREDS` (creds file),
 * `NATS_NKEY_SEED` (nkey seed file), `NATS_USER`/`NATS_PASS`, `NATS_TOKEN`,
 * `NATS_TLS_CA`, `NATS_TLS_CERT`, `NATS_TLS_KEY` (PEM files).
 * Reconnects forever, so a process survives server restarts.
 */
export function connectionOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, name?: string): ConnectionOptions {
  const servers = (env.NATS_URL ?? 'nats://127.0.0.1:4222').split(',').map((s) => s.trim()).filter(Boolean);
  const opts: ConnectionOptions = {
    servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
  };
  if (env.NATS_CREDS) opts.authenticator = credsAuthenticator(readFileSync(env.NATS_CREDS));
  else if (env.NATS_NKEY_SEED) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(env.NATS_NKEY_SEED, 'utf8').trim()));
  if (env.NATS_USER) {
    opts.user = env.NATS_USER;
    opts.pass = env.NATS_PASS ?? '';
  }
  if (env.NATS_TOKEN) opts.token = env.NATS_TOKEN;
  if (env.NATS_TLS_CA || env.NATS_TLS_CERT || env.NATS_TLS_KEY) {
    opts.tls = {
      ...(env.NATS_TLS_CA ? { caFile: env.NATS_TLS_CA } : {}),
      ...(env.NATS_TLS_CERT ? { certFile: env.NATS_TLS_CERT } : {}),
      ...(env.NATS_TLS_KEY ? { keyFile: env.NATS_TLS_KEY } : {}),
    };
  }
  return opts;
}

/** Throws a {@link ConfigError} when the connected server is older than {@link MIN_SERVER_VERSION}. */
export function assertServerVersion(nc: NatsConnection): string {
  const version = nc.info?.version ?? '0.0.0';
  // Its X.Y.Z only: a pre-release or build of a supported release (2.10.0-beta) is that release.
  const release = semver.coerce(version);
  if (release === null || semver.lt(release, MIN_SERVER_VERSION)) {
    throw new ConfigError(
      `nats-server ${version} is too old: jetactor needs >= ${MIN_SERVER_VERSION} (stream subject transforms)`,
      ErrorCode.ServerVersion,
    );
  }
  return version;
}

/** Connects with {@link connectionOptionsFromEnv} (plus overrides). */
export async function connectFromEnv(name: string, overrides: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  return connect({ ...connectionOptionsFromEnv(process.env, name), ...overrides });
}
