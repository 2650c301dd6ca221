import type { ActorChange, CancelTimerOutcome, CancelTimerSent, ClusterStatus, DeadLetter, ScheduleResult, TimerList } from '@jetactor/actor-runtime/client';
import type { Backend, ChangeStream, Snapshot } from '../backend.js';
import { CliError } from '../errors.js';

/** Options of {@link createGatewayBackend}. */
export interface GatewayBackendOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:3000`. */
  url: string;
  /** Bearer token, when the gateway requires one. */
  token?: string;
  /** Deadline of each request (a call or `minSeq` read gets its own timeout on top), in ms. */
  timeoutMs: number;
}

/** Extra time a request gets past the timeout it asks the gateway for, so the gateway's answer wins. */
const GRACE_MS = 2_000;

interface ErrorBody {
  error?: { code?: string; message?: string };
}

const seg = encodeURIComponent;

/** A backend on a gateway's HTTP API. */
export function createGatewayBackend(opts: GatewayBackendOptions): Backend {
  let base: URL;
  try {
    base = new URL(opts.url);
  } catch {
    throw new CliError('USAGE', `--gateway must be a URL like http://127.0.0.1:3000, got '${opts.url}'`);
  }
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    accept: 'application/json',
    ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    ...extra,
  });
  const streams = new Set<AbortController>();

  async function request<T>(method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<T> {
    const url = new URL(path, base);
    const timeoutMs = init.timeoutMs ?? opts.timeoutMs;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: headers({ ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers }),
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError') throw new CliError('TIMEOUT', `${method} ${url.pathname} took over ${timeoutMs} ms`);
      throw new CliError('UNAVAILABLE', `cannot reach the gateway at ${base.origin}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`, { cause: err });
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const e = (body as ErrorBody | undefined)?.error;
      throw new CliError(e?.code ?? `HTTP_${res.status}`, e?.message ?? `${method} ${url.pathname} answered ${res.status}`);
    }
    return body as T;
  }

  const query = (params: Record<string, string | number | boolean | undefined>): string => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return s === '' ? '' : `?${s}`;
  };

  const idempotency = (key: string | undefined): Record<string, string> => (key ? { 'idempotency-key': key } : {});

  return {
    async signal(type, key, op, input, o) {
      const r = await request<{ seq: number; duplicate?: boolean }>('POST', `/api/actors/${seg(type)}/${seg(key)}/${seg(op)}`, {
        body: input,
        headers: idempotency(o.idempotencyKey),
      });
      return { seq: r.seq, duplicate: r.duplicate === true };
    },
    async call(type, key, op, input, o) {
      const r = await request<{ result: unknown; seq: number; duplicate?: boolean }>(
        'POST',
        `/api/actors/${seg(type)}/${seg(key)}/${seg(op)}${query({ wait: true, timeoutMs: o.timeoutMs })}`,
        { body: input, headers: idempotency(o.idempotencyKey), timeoutMs: o.timeoutMs + GRACE_MS },
      );
      return { result: r.result ?? null, seq: r.seq, duplicate: r.duplicate === true };
    },
    get(type, key, o) {
      const q = o.minSeq === undefined ? '' : query({ minSeq: o.minSeq, timeoutMs: o.timeoutMs });
      return request<Snapshot>('GET', `/api/actors/${seg(type)}/${seg(key)}${q}`, { timeoutMs: o.timeoutMs + GRACE_MS });
    },
    list(type, o) {
      return request<{ items: Snapshot[]; nextCursor: string | null }>('GET', `/api/actors/${seg(type)}${query(o)}`);
    },
    async watch(type, key, o) {
      const path = key === undefined ? `/api/watch/${seg(type)}` : `/api/actors/${seg(type)}/${seg(key)}/watch`;
      const url = new URL(`${path}${query({ updatesOnly: o.updatesOnly })}`, base);
      const controller = new AbortController();
      let res: Response;
      try {
        res = await fetch(url, { headers: headers({ accept: 'text/event-stream' }), signal: controller.signal });
      } catch (err) {
        throw new CliError('UNAVAILABLE', `cannot reach the gateway at ${base.origin}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      if (!res.ok || res.body === null) {
        const e = ((await res.json().catch(() => undefined)) as ErrorBody | undefined)?.error;
        throw new CliError(e?.code ?? `HTTP_${res.status}`, e?.message ?? `watch answered ${res.status}`);
      }
      streams.add(controller);
      const body = res.body;
      const stream: ChangeStream = {
        stop: () => {
          controller.abort();
          streams.delete(controller);
        },
        async *[Symbol.asyncIterator]() {
          try {
            yield* parseEvents(body);
          } catch (err) {
            if (!controller.signal.aborted) throw new CliError('UNAVAILABLE', `the watch stream broke: ${err instanceof Error ? err.message : String(err)}`);
          }
        },
      };
      return stream;
    },
    status: () => request<ClusterStatus>('GET', '/api/status'),
    deadLetters: (o) => request<{ items: DeadLetter[]; nextCursor: number | null }>('GET', `/api/dlq${query(o)}`),
    async resubmit(dlqSeq) {
      const r = await request<{ seq: number; duplicate?: boolean }>('POST', `/api/dlq/${dlqSeq}/resubmit`);
      return { seq: r.seq, duplicate: r.duplicate === true };
    },
    removeService: (id) => request<{ removed: string; types: string[] }>('DELETE', `/api/services/${seg(id)}`),
    schedule(type, key, op, input, o) {
      const at = o.at instanceof Date ? o.at.toISOString() : o.at;
      const q = query({ delayMs: o.delayMs, at, id: o.id, every: o.every, cron: o.cron });
      return request<ScheduleResult>('POST', `/api/actors/${seg(type)}/${seg(key)}/${seg(op)}${q}`, { body: input, headers: idempotency(o.idempotencyKey) });
    },
    timers: (type, key) => request<TimerList>('GET', `/api/actors/${seg(type)}/${seg(key)}/timers`),
    cancelTimer(type, key, id, o) {
      const path = `/api/actors/${seg(type)}/${seg(key)}/timers/${seg(id)}`;
      const init = { headers: idempotency(o.idempotencyKey) };
      return o.wait
        ? request<CancelTimerOutcome>('DELETE', `${path}${query({ wait: true, timeoutMs: o.timeoutMs })}`, { ...init, timeoutMs: o.timeoutMs + GRACE_MS })
        : request<CancelTimerSent>('DELETE', path, init);
    },
    close() {
      for (const c of streams) c.abort();
      streams.clear();
      return Promise.resolve();
    },
  };
}

/** Parses a `text/event-stream` body into its `change` events. */
export async function* parseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ActorChange> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (event === 'change' && data.length > 0) yield JSON.parse(data.join('\n')) as ActorChange;
    }
  }
}
