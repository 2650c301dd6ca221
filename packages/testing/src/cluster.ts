import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { natsServerBin } from './binary.js';
import { ServerProcess } from './nats-server.js';
import type { NatsServer } from './nats-server.js';
import { freePorts } from './ports.js';
import { trackTempPath, untrackTempPath } from './registry.js';
import { waitFor } from './wait-for.js';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/** How long the leader may see a peer not current before the meta group is given work. */
const NUDGE_AFTER_MS = 2000;

/**
 * Makes the meta group append an entry (an R1 stream created and deleted through `url`):
 * nats-server 2.10 counts a follower current once it has acknowledged the leader's applied
 * index, and a follower that missed its acknowledgment of the last entry stays "not current"
 * in an idle group until the next one.
 */
async function nudgeMetaGroup(url: string): Promise<void> {
  const nc = await connect({ servers: url, timeout: 2000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 2000 });
    const name = `_nudge_${randomBytes(4).toString('hex')}`;
    await jsm.streams.add({ name, subjects: [`_nudge.${name}`], storage: StorageType.Memory, num_replicas: 1 });
    await jsm.streams.delete(name);
  } finally {
    await nc.close();
  }
}

/** Options of {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** Number of servers, named `n1`…`n<size>`. Default 3. */
  size?: number;
  /** Cluster name. Default `C_<random>`. */
  clusterName?: string;
  /** Extra configuration text added to every server's config file. */
  config?: string;
  /** Keep the servers' temp dirs after `stop()`. Default `false`. */
  keep?: boolean;
  /** How long one attempt waits for the cluster to elect a JetStream meta leader, in ms. Default 25 000. */
  startTimeoutMs?: number;
  /**
   * How many fresh clusters (new ports, new stores) to try before giving up. Default 3: on a
   * loaded 2-core machine nats-server 2.10 now and then leaves a new cluster unsettled (no leader,
   * or a peer never current) for over a minute, while a fresh one settles in seconds.
   */
  attempts?: number;
  /** Print the servers' log lines as they arrive. Default: `true` if env `NATS_SERVER_ECHO=1`. */
  echo?: boolean;
  /** The nats-server binary. Default {@link natsServerBin}(). */
  bin?: string;
}

/** A JetStream cluster started by {@link startNatsCluster}. */
export interface NatsCluster {
  /** The cluster's name. */
  readonly name: string;
  /** The servers, `servers[0]` is `n1`; each can be stopped, killed and restarted alone. */
  readonly servers: readonly NatsServer[];
  /** Every server's client URL, comma-joined (the form `NATS_URL` takes). */
  readonly urls: string;
  /** Every server's client URL, as a list (the form `connect({ servers })` takes). */
  readonly serverUrls: readonly string[];
  /**
   * Waits until every running server agrees on one JetStream meta leader whose view has
   * all the running servers as current peers; resolves with the leader's server name.
   *
   * @param timeoutMs default 30 000.
   */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  /** Stops every server (in parallel) and removes their temp dirs unless `keep`. */
  stop(): Promise<void>;
}

/** The part of `/jsz` this harness reads. */
interface Jsz {
  meta_cluster?: {
    leader?: string;
    cluster_size?: number;
    replicas?: { name: string; current: boolean; offline?: boolean }[];
  };
}

/**
 * Starts a JetStream cluster of `size` servers on free 127.0.0.1 ports (client, route and
 * monitoring ports), each with its own temp store, routed to each other; resolves once a
 * JetStream meta leader is elected.
 *
 * @example
 * const cluster = await startNatsCluster();
 * const nc = await connect({ servers: [...cluster.serverUrls] });
 * await cluster.servers[0]!.kill();
 */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  const attempts = opts.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) throw new Error(`startNatsCluster: attempts must be a positive integer, got ${attempts}`);
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await startClusterOnce(opts);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function startClusterOnce(opts: NatsClusterOptions): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  if (!Number.isInteger(size) || size < 1) throw new Error(`startNatsCluster: size must be a positive integer, got ${size}`);
  const name = opts.clusterName ?? `C_${randomBytes(4).toString('hex')}`;
  const bin = opts.bin ?? natsServerBin();
  const ports = await freePorts(size * 3);
  const nodes = Array.from({ length: size }, (_, i) => ({
    serverName: `n${i + 1}`,
    port: ports[i * 3] as number,
    routePort: ports[i * 3 + 1] as number,
    monitorPort: ports[i * 3 + 2] as number,
  }));

  const servers: ServerProcess[] = [];
  const dirs: string[] = [];
  try {
    for (const node of nodes) {
      const dir = await mkdtemp(join(tmpdir(), `jetactor-nats-${node.serverName}-`));
      if (!opts.keep) trackTempPath(dir);
      dirs.push(dir);
      const routes = nodes.filter((n) => n !== node).map((n) => `nats-route://127.0.0.1:${n.routePort}`);
      const configText = [
        `cluster {`,
        `  name: ${JSON.stringify(name)}`,
        `  listen: "127.0.0.1:${node.routePort}"`,
        `  routes: [${routes.map((r) => JSON.stringify(r)).join(', ')}]`,
        `}`,
        opts.config ?? '',
      ].join('\n');
      servers.push(
        new ServerProcess({
          bin,
          label: node.serverName,
          dir,
          ownsDir: true,
          keep: opts.keep ?? false,
          storeDir: join(dir, 'store'),
          port: node.port,
          monitorPort: node.monitorPort,
          jetstream: true,
          serverName: node.serverName,
          configText,
          args: [],
          startTimeoutMs: opts.startTimeoutMs ?? 25_000,
          echo: opts.echo ?? process.env['NATS_SERVER_ECHO'] === '1',
        }),
      );
    }
    const cluster = new Cluster(name, servers);
    await Promise.all(servers.map((s) => s.start()));
    await cluster.waitForMetaLeader(opts.startTimeoutMs ?? 25_000);
    return cluster;
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(
      dirs.map(async (d) => {
        await rm(d, { recursive: true, force: true });
        untrackTempPath(d);
      }),
    );
    throw err;
  }
}

class Cluster implements NatsCluster {
  readonly name: string;
  readonly servers: readonly ServerProcess[];

  constructor(name: string, servers: readonly ServerProcess[]) {
    this.name = name;
    this.servers = servers;
  }

  get serverUrls(): readonly string[] {
    return this.servers.map((s) => s.url);
  }

  get urls(): string {
    return this.serverUrls.join(',');
  }

  async waitForMetaLeader(timeoutMs = 30_000): Promise<string> {
    let lastSeen: Record<string, string> = {};
    let behindSince = 0;
    try {
      return await waitFor(
        async () => {
          const running = this.servers.filter((s) => s.running);
          const views = await Promise.all(running.map((s) => s.monitor<Jsz>('/jsz')));
          lastSeen = Object.fromEntries(running.map((s, i) => [s.name, views[i]?.meta_cluster?.leader ?? '']));
          const leaders = new Set(views.map((v) => v.meta_cluster?.leader ?? ''));
          const [leader] = leaders;
          if (leaders.size !== 1 || !leader) return undefined;
          // The leader must see every other running server as a current peer, or a
          // replicated stream created right now could fail to find its peers.
          // /jsz has no server name (2.10): match views to servers by position.
          const leaderView = views[running.findIndex((s) => s.name === leader)];
          if (!leaderView) return undefined;
          const current = new Set((leaderView.meta_cluster?.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name));
          const othersCurrent = running.every((s) => s.name === leader || current.has(s.name));
          if (othersCurrent) return leader;
          // A leader every node follows, with a peer not current: give the group an entry to
          // acknowledge (at most every NUDGE_AFTER_MS), then look again.
          const now = performance.now();
          if (behindSince === 0) behindSince = now;
          else if (now - behindSince > NUDGE_AFTER_MS) {
            behindSince = now;
            const at = running.find((s) => s.name === leader);
            if (at) await nudgeMetaGroup(at.url).catch(() => undefined);
          }
          return undefined;
        },
        { timeoutMs, intervalMs: 100, message: `a JetStream meta leader in cluster ${this.name}` },
      );
    } catch (err) {
      const tails = this.servers.map((s) => `--- ${s.name} ---\n${s.logs.slice(-15).join('\n')}`).join('\n');
      throw new Error(`${err instanceof Error ? err.message : String(err)}; leaders seen: ${JSON.stringify(lastSeen)}\n${tails}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}
