import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnProcess, type ManagedProcess } from './process.js';

/**
 * The built default worker, `packages/worker/dist/main.js` (`@jetactor/worker`; `npm test` and
 * the `test` targets build it first). The same path from this package's `src/` and `dist/`.
 */
export const WORKER_MAIN = fileURLToPath(new URL('../../worker/dist/main.js', import.meta.url));

/** Options of {@link spawnWorker}. */
export interface SpawnWorkerOptions {
  /** The worker's id (`WORKER_ID`), also the process's name in errors. */
  id: string;
  /** The NATS server(s) it connects to (`NATS_URL`). */
  natsUrl: string;
  /** Partitions of the operations stream (`ACTORS_PARTITIONS`); no default, every test says its own. */
  partitions: number;
  /** Lease time-to-live in ms (`LEASE_TTL_MS`). Default 2000, short so a crash is taken over quickly. */
  leaseTtlMs?: number;
  /** Heartbeat interval in ms (`HEARTBEAT_MS`). Default 250. */
  heartbeatMs?: number;
  /** Further variables, applied last (they override the above; `undefined` removes one). */
  env?: Record<string, string | undefined>;
  /** The entry point to run with this Node. Default {@link WORKER_MAIN}. */
  main?: string;
}

/**
 * Starts the default worker as a process of its own (`LOG_LEVEL=info`, JSON lines on stdout;
 * read them with {@link jsonLines}); stop it with `stop()`. Throws when the entry point is not
 * built.
 *
 * @example
 * const worker = spawnWorker({ id: 'w1', natsUrl: server.url, partitions: 8 });
 * await worker.waitForLine(/ownership changed/);
 * await worker.stop();
 */
export function spawnWorker(opts: SpawnWorkerOptions): ManagedProcess {
  const main = opts.main ?? WORKER_MAIN;
  if (!existsSync(main)) {
    throw new Error(`${main} is missing: build first (npm test does, or: npx nx run-many -t build)`);
  }
  return spawnProcess(process.execPath, [main], {
    name: opts.id,
    env: {
      NATS_URL: opts.natsUrl,
      WORKER_ID: opts.id,
      ACTORS_PARTITIONS: String(opts.partitions),
      LEASE_TTL_MS: String(opts.leaseTtlMs ?? 2000),
      HEARTBEAT_MS: String(opts.heartbeatMs ?? 250),
      LOG_LEVEL: 'info',
      ...opts.env,
    },
  });
}

/** A pino JSON line: `time` (epoch ms) and `msg`, and whatever else was logged. */
export type LogLine = Record<string, unknown> & { msg?: string; time: number };

/** The JSON lines (pino's) a process printed, skipping any other line; `since` is a `lineCount` taken earlier. */
export function jsonLines(proc: ManagedProcess, since = 0): LogLine[] {
  const dropped = proc.lineCount - proc.lines.length;
  return proc.lines.slice(Math.max(0, since - dropped)).flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}
