/**
 * The worker's small HTTP server: `/metrics` (Prometheus), `/healthz` and `/readyz` (what
 * `runWorker` starts on `METRICS_PORT`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/** Default port of the worker's metrics server (`METRICS_PORT`; 0 turns it off). */
export const DEFAULT_METRICS_PORT = 9464;

/** The result of a readiness check: ready, or what is wrong. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** Port; 0 picks a free one (`METRICS_PORT=0` turns the server off before it gets here). */
  port: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** The metrics to serve at `/metrics`. */
  registry: Registry;
  /** `/readyz`: NATS connected, the stream and buckets present, the worker started. */
  readiness: () => Promise<Readiness>;
  /** Where to log failures. */
  log?: Logger;
}

/** A listening metrics server. */
export interface MetricsServer {
  /** `http://<host>:<port>`. */
  readonly url: string;
  /** Stops listening. */
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Serves `GET /metrics` (Prometheus text format), `GET /healthz` (200 while the process is
 * up) and `GET /readyz` (200 once ready, else 503 with the reason).
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, JSON_TYPE, JSON.stringify({ error: { code: 'METHOD_NOT_ALLOWED', message: 'only GET' } }));
      return;
    }
    if (path === '/metrics') {
      send(res, 200, opts.registry.contentType, await opts.registry.metrics());
    } else if (path === '/healthz') {
      send(res, 200, JSON_TYPE, JSON.stringify({ status: 'ok' }));
    } else if (path === '/readyz') {
      const r = await opts.readiness();
      if (r.ready) send(res, 200, JSON_TYPE, JSON.stringify({ status: 'ok' }));
      else send(res, 503, JSON_TYPE, JSON.stringify({ error: { code: 'NOT_READY', message: r.reason } }));
    } else {
      send(res, 404, JSON_TYPE, JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${path}` } }));
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log?.error({ err }, 'metrics request failed');
      if (!res.headersSent) send(res, 500, JSON_TYPE, JSON.stringify({ error: { code: 'INTERNAL_ERROR', message: 'internal error' } }));
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
