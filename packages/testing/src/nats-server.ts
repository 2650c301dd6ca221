import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { natsServerBin } from './binary.js';
import { spawnProcess } from './process.js';
import type { ManagedProcess, ProcessExit } from './process.js';
import { trackTempPath, untrackTempPath } from './registry.js';
import { waitFor } from './wait-for.js';

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Client port. Default: one the server picks (`-p -1`), learned from its ports file. */
  port?: number;
  /**
   * JetStream store directory to use, e.g. the `storeDir` of a stopped server to restart
   * on its data. It is never removed by the harness. Default: a fresh temp dir.
   */
  storeDir?: string;
  /** Extra nats-server configuration text (auth, TLS, limits…), written to a config file. */
  config?: string;
  /** Extra command-line arguments, after the harness's own. */
  args?: readonly string[];
  /** Enable JetStream (`-js`). Default `true`. */
  jetstream?: boolean;
  /** Open the HTTP monitoring port (`-m`) on 127.0.0.1; see `monitorPort`. Default `false`. */
  monitor?: boolean;
  /** Server name (`-n`), also used to label its log lines. Default: chosen by the server. */
  serverName?: string;
  /** Keep the temp dir (store, config, ports file) after `stop()`. Default `false`. */
  keep?: boolean;
  /** How long to wait for the server to accept connections, in ms. Default 30 000. */
  startTimeoutMs?: number;
  /** Print the server's log lines as they arrive. Default: `true` if env `NATS_SERVER_ECHO=1`. */
  echo?: boolean;
  /** The nats-server binary. Default {@link natsServerBin}(). */
  bin?: string;
}

/** A running (or stopped) nats-server started by {@link startNatsServer}. */
export interface NatsServer {
  /** Server name (`n1`… in a cluster, `serverName` if given), else `"nats-server"`. */
  readonly name: string;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** Client port; the same across restarts. */
  readonly port: number;
  /** HTTP monitoring port, if the server has one (`monitor: true`, or a cluster node). */
  readonly monitorPort: number | undefined;
  /** JetStream store directory (`-sd`). */
  readonly storeDir: string;
  /** The harness's directory for this server (config file, ports file, default store). */
  readonly dir: string;
  /** OS process id of the current process (it changes on restart). */
  readonly pid: number | undefined;
  /** `true` while the process runs. */
  readonly running: boolean;
  /** Log lines of every run of this server, oldest first (bounded). */
  readonly logs: readonly string[];
  /** GETs `http://127.0.0.1:<monitorPort><path>` (e.g. `/jsz`) and parses the JSON. */
  monitor<T = unknown>(path: string): Promise<T>;
  /**
   * SIGTERM, waits for exit (SIGKILL after 10 s), then removes the temp dir unless `keep`.
   * Safe to call twice and after `kill()`.
   */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the process to exit; no cleanup. */
  kill(signal?: NodeJS.Signals): Promise<ProcessExit>;
  /**
   * Freezes the server (SIGSTOP): its sockets stay open but nothing is answered. Resolves
   * once the process is stopped.
   */
  pause(): Promise<void>;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
  /**
   * Stops the server if it runs (SIGTERM) and starts it again on the same ports, store and
   * config; resolves once it accepts connections.
   */
  restart(): Promise<void>;
}

/** Everything needed to (re)start one server process; internal. */
export interface ServerSpec {
  bin: string;
  label: string;
  dir: string;
  ownsDir: boolean;
  keep: boolean;
  storeDir: string;
  port: number;
  monitorPort: number | undefined;
  jetstream: boolean;
  serverName: string | undefined;
  configText: string;
  args: readonly string[];
  startTimeoutMs: number;
  echo: boolean;
}

const MAX_LOG_LINES = 20_000;

/**
 * Starts a nats-server on 127.0.0.1 with JetStream, on a port it picks, with a fresh temp
 * store; resolves once it accepts connections. On failure the error carries its log.
 *
 * @example
 * const server = await startNatsServer();
 * const nc = await connect({ servers: server.url });
 * // …
 * await nc.close();
 * await server.stop();
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'jetactor-nats-'));
  // A kept dir survives the test process too; otherwise it goes at exit if not before.
  if (!opts.keep) trackTempPath(dir);
  const storeDir = opts.storeDir ?? join(dir, 'store');
  const spec: ServerSpec = {
    bin: opts.bin ?? natsServerBin(),
    label: opts.serverName ?? 'nats-server',
    dir,
    ownsDir: true,
    keep: opts.keep ?? false,
    storeDir,
    port: opts.port ?? -1,
    monitorPort: opts.monitor ? -1 : undefined,
    jetstream: opts.jetstream ?? true,
    serverName: opts.serverName,
    configText: opts.config ?? '',
    args: opts.args ?? [],
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
    echo: opts.echo ?? process.env['NATS_SERVER_ECHO'] === '1',
  };
  const server = new ServerProcess(spec);
  try {
    await server.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** One nats-server across its restarts; exposed only as {@link NatsServer}. */
export class ServerProcess implements NatsServer {
  readonly #spec: ServerSpec;
  readonly #logs: string[] = [];
  #proc: ManagedProcess | undefined;
  #removed = false;

  constructor(spec: ServerSpec) {
    this.#spec = { ...spec };
  }

  get name(): string {
    return this.#spec.label;
  }
  get url(): string {
    return `nats://127.0.0.1:${this.#spec.port}`;
  }
  get port(): number {
    return this.#spec.port;
  }
  get monitorPort(): number | undefined {
    return this.#spec.monitorPort;
  }
  get storeDir(): string {
    return this.#spec.storeDir;
  }
  get dir(): string {
    return this.#spec.dir;
  }
  get pid(): number | undefined {
    return this.#proc?.pid;
  }
  get running(): boolean {
    return this.#proc?.running ?? false;
  }
  get logs(): readonly string[] {
    return this.#logs;
  }

  async monitor<T = unknown>(path: string): Promise<T> {
    if (this.#spec.monitorPort === undefined || this.#spec.monitorPort < 0) {
      throw new Error(`${this.#spec.label} has no monitoring port (start it with monitor: true)`);
    }
    const res = await fetch(`http://127.0.0.1:${this.#spec.monitorPort}${path}`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`GET ${path} on ${this.#spec.label}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** Spawns the process and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.#removed) throw new Error(`${this.#spec.label} was stopped and its directory removed; start a new server instead`);
    if (this.running) throw new Error(`${this.#spec.label} is already running`);
    const spec = this.#spec;
    const portsDir = join(spec.dir, 'ports');
    await mkdir(portsDir, { recursive: true });
    const args = ['-a', '127.0.0.1', '-p', String(spec.port), '--ports_file_dir', portsDir];
    if (spec.monitorPort !== undefined) args.push('-m', String(spec.monitorPort));
    if (spec.jetstream) args.push('-js', '-sd', spec.storeDir);
    if (spec.serverName) args.push('-n', spec.serverName);
    if (spec.configText) {
      const configFile = join(spec.dir, 'server.conf');
      await writeFile(configFile, `${spec.configText}\n`);
      args.push('-c', configFile);
    }
    args.push(...spec.args);

    const proc = spawnProcess(spec.bin, args, {
      name: spec.label,
      echo: spec.echo,
      onLine: (line) => {
        this.#logs.push(line);
        if (this.#logs.length > MAX_LOG_LINES * 1.25) this.#logs.splice(0, this.#logs.length - MAX_LOG_LINES);
      },
    });
    this.#proc = proc;

    // Stop polling as soon as the process dies: its log says why.
    const died = new AbortController();
    void proc.exited.then((exit) => {
      const how = exit.error ? `could not be started: ${exit.error.message}` : `exited during start-up (code ${exit.code}, signal ${exit.signal})`;
      died.abort(new Error(`${spec.label} (${spec.bin}) ${how}${this.#logTail()}`));
    });
    try {
      const ports = await waitFor(() => readPortsFile(portsDir, proc.pid), {
        timeoutMs: spec.startTimeoutMs,
        intervalMs: 20,
        message: `${spec.label}'s ports file in ${portsDir}`,
        signal: died.signal,
      });
      spec.port = ports.port;
      if (ports.monitorPort !== undefined) spec.monitorPort = ports.monitorPort;
      await waitFor(() => acceptsConnections(spec.port), {
        timeoutMs: spec.startTimeoutMs,
        intervalMs: 20,
        message: `${spec.label} to accept connections on 127.0.0.1:${spec.port}`,
        signal: died.signal,
      });
    } catch (err) {
      if (proc.running) {
        proc.kill('SIGKILL');
        await proc.exited;
        throw new Error(`${err instanceof Error ? err.message : String(err)}${this.#logTail()}`, { cause: err });
      }
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.#proc?.running) await this.#proc.stop(10_000);
    if (this.#spec.ownsDir && !this.#spec.keep && !this.#removed) {
      this.#removed = true;
      await rm(this.#spec.dir, { recursive: true, force: true });
      untrackTempPath(this.#spec.dir);
    } else if (this.#spec.keep) {
      untrackTempPath(this.#spec.dir);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessExit> {
    const proc = this.#proc;
    if (!proc) throw new Error(`${this.#spec.label} was never started`);
    proc.resume(); // a stopped process would not act on SIGTERM
    proc.kill(signal);
    return proc.exited;
  }

  async pause(): Promise<void> {
    await this.#proc?.pause();
  }

  resume(): void {
    this.#proc?.resume();
  }

  async restart(): Promise<void> {
    if (this.#proc?.running) await this.#proc.stop(10_000);
    await this.start();
  }

  #logTail(n = 40): string {
    return this.#logs.length ? `\n--- last log lines of ${this.#spec.label} ---\n${this.#logs.slice(-n).join('\n')}` : '';
  }
}

interface PortsFile {
  port: number;
  monitorPort: number | undefined;
}

/** Reads `<exe>_<pid>.ports`, which the server writes once it listens. */
async function readPortsFile(dir: string, pid: number | undefined): Promise<PortsFile | undefined> {
  if (pid === undefined) return undefined;
  const name = (await readdir(dir)).find((f) => f.endsWith(`_${pid}.ports`));
  if (!name) return undefined;
  const parsed = JSON.parse(await readFile(join(dir, name), 'utf8')) as { nats?: string[]; monitoring?: string[] };
  const port = portOf(parsed.nats?.[0]);
  if (port === undefined) return undefined;
  return { port, monitorPort: portOf(parsed.monitoring?.[0]) };
}

function portOf(url: string | undefined): number | undefined {
  if (!url) return undefined;
  const port = Number(new URL(url).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/** `true` once a TCP connection to the port gets the server's `INFO` greeting. */
export function acceptsConnections(port: number, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    let buffered = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      if (buffered.length >= 5) finish(buffered.startsWith('INFO '));
    });
    socket.on('end', () => finish(false));
  });
}
