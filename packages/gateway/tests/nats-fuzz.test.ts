/**
 * Hostile publishers on the NATS side, beside the HTTP fuzz (fuzz.test.ts): thousands of
 * operations sent over plain NATS — core publishes, JetStream publishes, raw publishes to the
 * gateway's call service with forged reply subjects, and requests to it — with every
 * `Jetactor-*` and `Nats-*` header the code knows set to wrong, huge, wildcard, whitespace
 * and bucket / JetStream-API subject values, on hostile subjects and with hostile payloads.
 * Generated from a seeded PRNG (`NATS_FUZZ_SEED`, default 20261201; `NATS_FUZZ_CASES`, default
 * 5,000) so a failure can be replayed.
 *
 * The stack is real: a nats-server, a worker process and the gateway. Victim actors are
 * created first and never named by any hostile subject. Afterwards: no victim's record,
 * revision or dead letter changed; checkpoints and leases are the worker's own (well-formed,
 * same owner and epoch, checkpoints only moved forward); nothing that looks like an
 * operation's reply was ever written under `$KV.` or sent to the JetStream API; every
 * partition still applies a new operation; the worker and the gateway are still up.
 *
 * A second run (`NATS_FUZZ_TIMER_SEED`, default 20261206; `NATS_FUZZ_TIMER_CASES`, default
 * 3,000) sends timer headers and binding traffic. Measured on 2.10.27 with the defaults: 1,223
 * counter operations with `Jetactor-Timer-*` headers (valid, boundary and hostile values: huge,
 * negative, hex, exponent, past 8.64e15 ms, every 0 / 1 / 2^53, crons that never match, 7 and 8
 * fields, past 200 characters, multi-byte text up to the stream's 68 KiB, headers given twice;
 * 377 core publishes, 668 JetStream publishes, 178 calls) and 471 HTTP twins of them; 1,036
 * messages on the device's bound subject carrying every `Jetactor-*` header, `Nats-Msg-Id`s and
 * forged sends (778 JetStream publishes to six devices, 153 core publishes, 105 on near-bound
 * subjects); 741 direct publishes with a forged `Nats-Stream-Source` (454 device readings, 287
 * counter adds). Afterwards, besides the checks above: every acknowledged valid reading and
 * forged-source add is applied once (devices' counts and counters' sums equal them); a bound
 * device holds its own watchdog and no other timer; no stored timer is due after the largest
 * valid date; every touched key's timers list answers 200; no HTTP twin or call got a 5xx; a
 * refused timer's dead letter keeps its timer headers, a bound device's has none; unrelated
 * calls all along (NATS and HTTP) answer within 5 s; the worker logged no error. Bound messages
 * carry msg ids from the pool the direct publishes use, and forged source headers name the capture
 * stream in nats-server's format: the two defects of the bindings this fuzz found (issue 18, fixed
 * by the binding movers) are part of the run.
 */
import { partitionOf, TimerHeaders } from '@jetactor/actor-runtime';
import { freePort, jsonLines, prng, spawnWorker, startNatsServer, waitFor, type ManagedProcess, type NatsServer } from '@jetactor/testing';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { headers as natsHeaders, type Msg, type MsgHdrs, type Subscription } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGateway, type RunningGateway } from '../src/run-gateway.js';
import { startedPartitions } from './support/stack.js';
import { waitForTypes } from './support/registry.js';

const TOKEN = 'nats-fuzz-token-all-scopes-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const SEED = Number(process.env.NATS_FUZZ_SEED ?? 20_261_201);
const CASES = Number(process.env.NATS_FUZZ_CASES ?? 5_000);
const PARTITIONS = 8;
const WORKER_ID = 'w-nats-fuzz';
/** Actors no hostile subject names; they must come out exactly as they went in. */
const VICTIMS = ['victim', 'victim-a', 'victim-b', 'victim-c', 'victim-d'] as const;
/** Keys the hostile operations may legitimately change. */
const FUZZ_KEYS = Array.from({ length: 10 }, (_, i) => `nf${i}`);
const TIMER_SEED = Number(process.env.NATS_FUZZ_TIMER_SEED ?? 20_261_206);
const TIMER_CASES = Number(process.env.NATS_FUZZ_TIMER_CASES ?? 3_000);
const keys = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
/** Counters that get timer headers (direct publishes and calls), and those their HTTP twins schedule on. */
const TIMER_KEYS = keys('nt', 6);
const TWIN_KEYS = keys('nh', 4);
/** Counters that get only operations with a forged `Nats-Stream-Source`: plain adds, whose sum is known. */
const SOURCE_KEYS = keys('ns', 4);
/** Devices fed only on their bound subject (acknowledged publishes, and direct ones with a forged source), and by core publishes. */
const BOUND_DEVICES = keys('bd', 6);
const CORE_DEVICES = keys('bc', 2);
/** Counters only the unrelated calls of the latency probe name. */
const LATENCY_KEYS = keys('lat', 4);
/** The device's offline watchdog, long enough not to fire during the run. */
const DEVICE_OFFLINE_MS = 600_000;
/** Slowest answer allowed to an unrelated call during the run (a loaded 2-core machine). */
const LATENCY_BOUND_MS = 5_000;

let server: NatsServer;
let worker: ManagedProcess;
let metricsPort: number;
let gateway: RunningGateway;
let gatewayDropped = 0;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let stateKv: KV;
let controlKv: KV;

beforeAll(async () => {
  server = await startNatsServer();
  metricsPort = await freePort();
  worker = spawnWorker({
    id: WORKER_ID,
    natsUrl: server.url,
    partitions: PARTITIONS,
    env: { METRICS_PORT: String(metricsPort), DEVICE_OFFLINE_MS: String(DEVICE_OFFLINE_MS) },
  });
  await waitFor(() => startedPartitions(worker).length >= PARTITIONS, {
    timeoutMs: 30_000,
    message: 'the worker to own every partition',
  });
  // The gateway's log, to count the calls it dropped for their reply subject.
  const sink = {
    write(line: string): void {
      if (line.includes('NATS call dropped')) gatewayDropped++;
    },
  };
  gateway = await runGateway({
    env: { NATS_URL: server.url, PORT: '0', GATEWAY_AUTH_TOKENS: TOKEN, GATEWAY_RATE_LIMIT: '0' },
    logger: pino({ level: 'warn' }, sink),
  });
  await gateway.nats.firstConnect;
  await waitForTypes(gateway.app, ['counter']);
  nc = await connect({ servers: server.url, name: 'nats-fuzz' });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  const kvm = new Kvm(js);
  stateKv = await kvm.open('actors');
  controlKv = await kvm.open('actors_ctl');
  // Victims: some state, and one dead letter each.
  for (const [i, v] of VICTIMS.entries()) {
    const res = await gateway.app.inject({ method: 'POST', url: `/api/counter/${v}/add?value=${10 + i}&wait=true`, headers: AUTH });
    expect(res.statusCode).toBe(200);
    await js.publish(`actors.counter.${v}.add`, enc.encode('"poison"'));
  }
  await waitFor(async () => Object.keys(await victimDeadLetters()).length === VICTIMS.length, {
    timeoutMs: 15_000,
    message: 'one dead letter per victim',
  });
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await nc?.close();
  await server?.stop();
});

// ---------------------------------------------------------------------------------------
// Generators.

type Rnd = () => number;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const int = (rnd: Rnd, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

/** Every header the runtime and the gateway read or write, and the JetStream headers the server acts on. */
const HEADER_NAMES = [
  'Jetactor-Reply', 'Jetactor-Seq', 'Jetactor-Subject', 'Jetactor-Error-Code', 'Jetactor-Error-Message', 'Jetactor-Time',
  'Jetactor-Status', 'Idempotency-Key', 'Timeout-Ms',
  'Nats-Msg-Id', 'Nats-Expected-Stream', 'Nats-Expected-Last-Sequence', 'Nats-Expected-Last-Subject-Sequence',
  'Nats-Expected-Last-Msg-Id', 'Nats-Rollup', 'Nats-TTL', 'Nats-Schedule', 'Nats-Schedule-Target', 'Nats-Batch-Id',
  'Nats-Batch-Sequence', 'Nats-Batch-Commit', 'Nats-Marker-Reason', 'Nats-Counter-Incr', 'Nats-Required-Api-Level',
  // Case variants: the runtime matches exactly, so these must be ignored, not half-honoured.
  'jetactor-reply', 'JETACTOR-REPLY', 'nats-msg-id',
] as const;

/** Subjects a reply (or a resubmit, a schedule target…) must never go to. */
const TARGET_VALUES = [
  '$KV.actors.counter.victim', '$KV.actors.counter.victim-a', '$KV.actors_ctl.checkpoints.0', '$KV.actors_ctl.checkpoints.7',
  '$KV.actors_ctl.leases.0', '$KV.actors_ctl.leases.3', `$KV.actors_ctl.members.${WORKER_ID}`, '$KV.actors_ctl.retention',
  '$KV.actors_outcomes.1', '$KV.actors.>', '$KV.actors_ctl.*', '$JS.API.STREAM.PURGE.ACTORS', '$JS.API.STREAM.DELETE.ACTORS',
  '$JS.API.STREAM.PURGE.KV_actors', '$JS.API.STREAM.DELETE.KV_actors_ctl', '$JS.API.CONSUMER.CREATE.ACTORS',
  '$JS.API.STREAM.MSG.DELETE.KV_actors', '$JS.ACK.ACTORS.x.1.1.1.1.1', '$SYS.REQ.SERVER.PING', '$SRV.PING', '$O.x.y',
  'actors_dlq.counter.victim.add', 'actors.counter.victim.add', 'actors.counter.victim.reset', 'actors.counter.victim.$delete',
  'actors.call.counter.victim.reset', '3.actors.counter.victim.add', 'ACTORS', 'KV_actors', 'actors_ctl',
  '_INBOX', '_INBOX.', '_INBOX.*', '_INBOX.>', '_INBOX..x', '_INBOX.x.', '_inbox.x', '_INBOX.$KV.actors.counter.victim',
  `_INBOX.${'a'.repeat(300)}`, '>', '*', '*.*', 'actors.>', '$KV', '$JS.API.>',
] as const;
/** Forged reply subjects for raw publishes to the call service: no whitespace (it would break the protocol line), none legitimate. */
const FORGED_REPLIES = TARGET_VALUES.filter((v) => v.length < 1_000);
const WRONG_VALUES = [
  '', ' ', '\t', '  x  ', 'a b', '0', '-1', '1', '2', '1e400', '9'.repeat(30), 'NaN', 'abc', 'true', 'null', '{"result":1}',
  '{"error":{"code":"X"}}', 'all', 'sub', 'purge', 'never', '-1s', '1ms', '@at 2020-01-01T00:00:00Z', '@every 1s',
  '2020-01-01T00:00:00Z', 'x'.repeat(129), 'ACTORS_DLQ', 'é', '\u0000', 'ok', '1,2', 'k;k', 'HANDLER_ERROR',
] as const;

/** A hostile header value: a subject it must not be taken for, a wrong value, or a huge one. */
function headerValue(rnd: Rnd): string {
  const r = rnd();
  if (r < 0.45) return pick(rnd, TARGET_VALUES);
  if (r < 0.9) return pick(rnd, WRONG_VALUES);
  // Huge: up to near the stream's message bound (64 KiB of payload + 4 KiB).
  const size = pick(rnd, [300, 1_024, 4_096, 16_384, 60_000]);
  return rnd() < 0.5 ? '$KV.actors.counter.victim.'.padEnd(size, 'x') : 'h'.repeat(size);
}

/** Hostile headers; `msgId` is the genuine idempotency key some of them carry. */
function hostileHeaders(rnd: Rnd, msgId: string): MsgHdrs {
  const h = natsHeaders();
  const n = int(rnd, 1, 6);
  // Most messages carry a forged reply: it is the header a worker answers to.
  if (rnd() < 0.6) h.set('Jetactor-Reply', headerValue(rnd));
  for (let j = 0; j < n; j++) h.append(pick(rnd, HEADER_NAMES), headerValue(rnd));
  // Sometimes a genuine idempotency key too, so outcomes are kept (and must stay under their own bucket).
  if (rnd() < 0.15) h.set('Nats-Msg-Id', msgId);
  return h;
}

const enc = new TextEncoder();

/** A hostile payload (or an ordinary one, so that some operations apply and answer). */
function hostilePayload(rnd: Rnd): Uint8Array {
  const r = rnd();
  if (r < 0.25) return enc.encode(pick(rnd, ['1', '2', '{"value":3}', '', '-1']));
  if (r < 0.4) {
    return enc.encode(
      pick(rnd, ['{', '{"value":', 'NaN', "'1'", '{value:1}', '1 2', 'undefined', '[1,]', '0x10', '{"value":1}{"value":2}', '"\\ud800"', '\u0000']),
    );
  }
  if (r < 0.5) {
    const size = pick(rnd, [4_096, 32_768, 60_000, 65_536, 70_000]);
    return enc.encode(rnd() < 0.5 ? JSON.stringify({ value: 1, pad: 'p'.repeat(size) }) : `${'9'.repeat(size)}`);
  }
  if (r < 0.6) {
    const bytes = new Uint8Array(int(rnd, 1, 2_048));
    for (let i = 0; i < bytes.length; i++) bytes[i] = int(rnd, 0, 255);
    return bytes;
  }
  if (r < 0.7) {
    const depth = pick(rnd, [100, 1_000, 10_000, 30_000]);
    return enc.encode(rnd() < 0.5 ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"value":'.repeat(depth)}1${'}'.repeat(depth)}`);
  }
  return enc.encode(
    pick(rnd, [
      '{"__proto__":{"value":5}}', '{"__proto__":{"state":1,"seq":99}}', '{"constructor":{"prototype":{"x":1}}}', '{"value":"3"}',
      '{"value":9007199254740993}', '{"value":1e400}', '"abc"', 'true', 'null', '[]', '{"result":1,"seq":6}', '{"state":1,"seq":1,"epoch":1}',
      '{"value":1,"extra":1}', '{"value":-9007199254740991}',
    ]),
  );
}

/** Tokens that are no valid type or key (the stream stores them; the worker must dead-letter them). */
const BAD_TOKENS = ['a%b', 'é', 'a~b', '$KV', '$JS', '$x', 'call', 'Counter', '_INBOX', 'a\u0001b', 'k'.repeat(129), 'k'.repeat(900)] as const;

/** A hostile operation subject. Never names a victim, so nothing it does may touch one. */
function hostileSubject(rnd: Rnd): string {
  const key = pick(rnd, FUZZ_KEYS);
  const r = rnd();
  if (r < 0.55) return `actors.counter.${key}.${pick(rnd, ['add', 'add', 'reset', 'get', '$delete'])}`;
  if (r < 0.62) return `actors.counter.${key}.${pick(rnd, ['inc', 'ADD', '$nope', 'x'.repeat(65), '$KV', '__proto__', 'constructor'])}`;
  if (r < 0.7) return `actors.counter.${pick(rnd, BAD_TOKENS)}.add`;
  if (r < 0.76) return `actors.${pick(rnd, BAD_TOKENS)}.${key}.add`;
  if (r < 0.82) {
    // Wildcards in a published subject.
    return pick(rnd, [`actors.counter.*.add`, `actors.counter.${key}.*`, `actors.*.${key}.add`, 'actors.>', `actors.counter.>`, `actors.counter.${key}.>`]);
  }
  if (r < 0.9) {
    // Extra or missing tokens, empty tokens, other roots.
    return pick(rnd, [
      'actors', 'actors.counter', `actors.counter.${key}`, `actors.counter.${key}.add.extra`, `actors.counter.${key}.add.extra.more`,
      `actors..${key}.add`, `actors.counter..add`, `actors.counter.${key}.`, `.actors.counter.${key}.add`, `actors.call.${key}.add`,
      `actors.call.counter.${key}`, `actors.call.counter.${key}.add.x`, `ACTORS.counter.${key}.add`, `actors_dlq_x.counter.${key}.add`,
      `_INBOX.${key}`, `actors.counter.${key}.${'x'.repeat(2_000)}`,
    ]);
  }
  return `actors.call.counter.${key}.${pick(rnd, ['add', 'reset', 'get', 'nope'])}`;
}

// ---------------------------------------------------------------------------------------
// Generators of timer headers and of binding traffic.

/** JavaScript's largest valid date, ms: no timer may be due after it. */
const MAX_DATE_MS = 8.64e15;
/** The longest period of a recurring timer (10 years of 365.25 days), ms. */
const TEN_YEARS_MS = 315_576_000_000;
const NOW = Date.now();
const iso = (ms: number): string => new Date(ms).toISOString();
const MINUTES = Array.from({ length: 60 }, (_, i) => i).join(',');

type TimerField = keyof typeof TimerHeaders;
const TIMER_FIELDS = Object.keys(TimerHeaders) as TimerField[];
/**
 * Values of each timer header: valid ones (boundaries included: the largest date, 100 ms, 10
 * years, a 177-character cron, a 64-character id) and hostile ones (huge, negative, hex, exponent,
 * past the largest date, 2^53, crons that never match, 7 and 8 fields, past 200 characters…);
 * generic {@link headerValue}s and {@link multiByte} text come on top.
 */
const TIMER_VALUES: Record<TimerField, { valid: readonly string[]; hostile: readonly string[] }> = {
  At: {
    valid: [String(NOW + 3_600_000), iso(NOW + 86_400_000), String(NOW - 60_000), iso(NOW - 60_000), '0', '9999-12-31T23:59:59Z', String(MAX_DATE_MS)],
    hostile: [
      String(MAX_DATE_MS + 1), '9'.repeat(16), '9'.repeat(17), '1'.repeat(400), '-1', '-0', '0x10', '1e3', '1e16', '8.64e15', '1.5', ' 1000', '+1000',
      'Infinity', 'NaN', '+275760-09-13T00:00:00.000Z', '+275760-09-13T00:00:00.001Z', '275760-09-13T00:00:00Z', '2026-02-30T00:00:00Z',
      '2026-13-01T00:00:00Z', '2026-12-24T18:00:00+01:00', '2026-12-24T18:00:00', `${iso(NOW + 3_600_000)}${'0'.repeat(60)}`,
    ],
  },
  DelayMs: {
    valid: ['0', '1', '60000', '3600000'],
    hostile: ['-1', '1.5', '1e3', '0x10', ' 5', String(MAX_DATE_MS), String(2 ** 53), '9'.repeat(17), 'Infinity'],
  },
  EveryMs: {
    valid: ['100', '1000', '3600000', String(TEN_YEARS_MS)],
    hostile: ['0', '1', '99', String(TEN_YEARS_MS + 1), String(2 ** 53), String(2 ** 53 + 2), '-100', '1e5', '0x64', '100.5', '9'.repeat(17)],
  },
  Cron: {
    valid: ['0 0 * * *', '* * * * *', '*/5 * * * * *', '0 0 1 1 *', '0 0 29 2 *', '@daily', '@yearly', '0 0 L * *', '0 0 * * 1#2', `${MINUTES} * * * *`, `0 0 * * *${' '.repeat(191)}`],
    hostile: [
      // Days no month has, and one that matches rarely (29 February on a Monday).
      '0 0 31 2,4,6,9,11 *', '0 0 30 2 *', '0 0 31 4 *', '59 59 23 31 2 *', '0 0 30 2 1', '0 0 29 2 +MON',
      // 7 and 8 fields, too few, out of range, not cron; past 200 characters.
      '0 0 0 1 1 * 2030', '0 0 0 1 1 * 2030 x', '* * * *', '60 * * * *', '* * 32 * *', '* * * 13 *', '@never', 'L', ' ', '*/0 * * * *',
      `0 0 * * *${' '.repeat(192)}`, `${MINUTES} ${MINUTES} * * * *`,
    ],
  },
  Id: { valid: ['tick', 'idle', 'offline', 'a'.repeat(64), 't1'], hostile: ['a'.repeat(65), '', 'é', '$x', 'a.b', '*', '>', 'a b', '€'.repeat(64)] },
};

/** Multi-byte text near a bound: the 64-character id, the 200-character cron, the stream's 68 KiB message. */
function multiByte(rnd: Rnd): string {
  const ch = pick(rnd, ['é', '€', '中', '😀']);
  return ch.repeat(Math.ceil(pick(rnd, [64, 65, 200, 201, 20_000, 23_000, 23_200]) / ch.length));
}

function timerValue(rnd: Rnd, field: TimerField): string {
  const r = rnd();
  if (r < 0.55) return pick(rnd, TIMER_VALUES[field].valid);
  if (r < 0.85) return pick(rnd, TIMER_VALUES[field].hostile);
  return r < 0.93 ? headerValue(rnd) : multiByte(rnd);
}

const WHEN_FIELDS = ['At', 'DelayMs', 'EveryMs', 'Cron'] as const;

/** Adds timer headers: one to three of time, delay, period and cron; mostly an id; sometimes one header twice. */
function addTimerHeaders(rnd: Rnd, h: MsgHdrs): void {
  const n = rnd() < 0.7 ? 1 : int(rnd, 2, 3);
  for (let j = 0; j < n; j++) {
    const f = pick(rnd, WHEN_FIELDS);
    h.append(TimerHeaders[f], timerValue(rnd, f));
  }
  if (rnd() < 0.7) h.append(TimerHeaders.Id, timerValue(rnd, 'Id'));
  if (rnd() < 0.1) {
    const f = pick(rnd, TIMER_FIELDS);
    h.append(TimerHeaders[f], timerValue(rnd, f));
  }
}

/** The signal route's query parameter of each timer header. */
const TIMER_PARAMS: Record<TimerField, string> = { At: 'at', DelayMs: 'delayMs', EveryMs: 'every', Cron: 'cron', Id: 'id' };

/** The HTTP twin of a message's timer headers: the same values as query parameters, a repeated header repeated. */
function timerQuery(h: MsgHdrs): string {
  const q = new URLSearchParams();
  for (const f of TIMER_FIELDS) for (const v of h.values(TimerHeaders[f])) q.append(TIMER_PARAMS[f], v);
  return q.toString();
}

/** Operations a timer message names (reserved ones included), and the payloads of the reserved ones. */
const TIMER_OPS = ['add', 'add', 'add', 'add', 'add', 'reset', 'get', 'nope', '$cancel', '$cancel', '$fire', '$delete'] as const;
const CANCEL_PAYLOADS = [
  '{"id":"tick"}', '{"id":"offline"}', `{"id":"${'a'.repeat(64)}"}`, `{"id":"${'a'.repeat(65)}"}`, '{"id":1}', '{}', '"tick"', '{"id":"tick","x":1}',
  '{"id":"$x"}', '{"id":"a.b"}', '', 'null', '{"id":"é"}',
] as const;
const FIRE_PAYLOADS = ['{"id":"tick","n":1,"at":0}', `{"id":"tick","n":1,"at":${MAX_DATE_MS}}`, '{"id":"t1","n":-1,"at":1e400}', '{}', ''] as const;

/** A counter `add` input whose effect is known: its amount, or null for one the counter refuses. */
function addPayload(rnd: Rnd): { data: Uint8Array; amount: number | null } {
  if (rnd() < 0.75) {
    const [input, amount] = pick(rnd, [['1', 1], ['2', 2], ['{"value":3}', 3], ['-1', -1], ['null', 1], ['{}', 1]] as const);
    return { data: enc.encode(input), amount };
  }
  return { data: enc.encode(pick(rnd, ['"abc"', '{', '{"value":"3"}', '[]', 'true', '1.5'])), amount: null };
}

/** A device reading: a valid `{"t": <number>}` mostly, else a payload the device refuses. */
function readingPayload(rnd: Rnd): { data: Uint8Array; valid: boolean } {
  if (rnd() < 0.7) return { data: enc.encode(JSON.stringify({ t: pick(rnd, [21.5, -3, 0, 1e300, -5e-324, 123_456_789]) })), valid: true };
  const invalid = ['{"t":"1"}', '{"t":1e400}', '{"t":1,"x":2}', '{}', '{"__proto__":{"t":1}}'];
  return { data: rnd() < 0.5 ? hostilePayload(rnd) : enc.encode(pick(rnd, invalid)), valid: false };
}

/** Inboxes the test watches: replies to bound or forged-source messages must never come; replies to timer messages may. */
const BIND_INBOX = '_INBOX.nfbind';
const TIMER_INBOX = '_INBOX.nftimer';

/**
 * Every header of the runtime's, as a hostile publisher of a bound subject (or a forged source)
 * sets them: timer headers (the id often the device's watchdog's), a reply to an inbox the test
 * watches, the other `Jetactor-*` headers, a forged send (a runtime-shaped msg id with a guessed
 * salt and `Jetactor-Send`) or a msg id from a small pool shared by every device.
 */
function runtimeHeaders(rnd: Rnd, i: number): MsgHdrs {
  const h = rnd() < 0.3 ? hostileHeaders(rnd, `nb-${TIMER_SEED}-${i}`) : natsHeaders();
  addTimerHeaders(rnd, h);
  if (rnd() < 0.5) h.set(TimerHeaders.Id, 'offline');
  if (rnd() < 0.6) h.set('Jetactor-Reply', `${BIND_INBOX}.${i}`);
  for (const name of HEADER_NAMES) if (name.startsWith('Jetactor-') && name !== 'Jetactor-Reply' && rnd() < 0.3) h.set(name, headerValue(rnd));
  const msgId = rnd();
  if (msgId < 0.3) {
    h.set('Nats-Msg-Id', `$s.${pick(rnd, ['AAAAAAAAAAAA', 'x', '0123456789ab'])}.${int(rnd, 0, 3)}.${int(rnd, 1, 5_000)}.${int(rnd, 0, 99)}`);
    h.set('Jetactor-Send', pick(rnd, ['counter.nf0 0', `device.${pick(rnd, BOUND_DEVICES)} 0`, 'counter.victim 999999999', 'x', '$KV.actors.counter.victim']));
  } else if (msgId < 0.5) {
    h.set('Nats-Msg-Id', pick(rnd, ['1', '2', 'r1', `nb-${i % 50}`]));
  }
  return h;
}

/**
 * A forged `Nats-Stream-Source` on a direct publish (never empty: an empty one would be no source
 * at all), among them nats-server's own format naming the capture stream (`<capture> <seq> > >`),
 * which made 2.10 resume sourcing there when the operations stream sourced the captures (issue 18;
 * 2.15 refuses the header on a publish). The binding movers read nothing of it.
 */
function forgedSource(rnd: Rnd, captures: readonly string[]): string {
  return pick(rnd, [`${pick(rnd, captures)}:x`, 'ACTORS 1 > >', 'x', '$KV.actors.counter.victim', 'h'.repeat(4_096), `${pick(rnd, captures)} ${pick(rnd, ['1', '2', '1000000'])} > >`]);
}

/** Subjects near the binding's: bad key tokens, wildcards, extra or missing tokens. */
function hostileBoundSubject(rnd: Rnd): string {
  return pick(rnd, [
    `devices.${pick(rnd, BAD_TOKENS)}.telemetry`, 'devices.*.telemetry', 'devices.>', 'devices.bd0.telemetry.x', 'devices..telemetry', 'devices.telemetry',
    'devices.bd0.*', `devices.${'k'.repeat(129)}.telemetry`,
  ]);
}

// ---------------------------------------------------------------------------------------
// What must not change.

interface VictimRecord {
  revision: number;
  value: string;
}

async function victimRecords(): Promise<Record<string, VictimRecord | null>> {
  const out: Record<string, VictimRecord | null> = {};
  for (const v of VICTIMS) {
    const e = await stateKv.get(`counter.${v}`);
    out[v] = e ? { revision: e.revision, value: e.string() } : null;
  }
  return out;
}

/** Every dead letter of a victim: subject → [dlqSeq, payload] of each, in order. */
async function victimDeadLetters(): Promise<Record<string, Array<[number, string]>>> {
  const out: Record<string, Array<[number, string]>> = {};
  for (const v of VICTIMS) {
    const info = await jsm.streams.info('ACTORS_DLQ', { subjects_filter: `actors_dlq.counter.${v}.>` });
    const subjects = Object.keys(info.state.subjects ?? {}).sort();
    for (const subject of subjects) {
      const list: Array<[number, string]> = [];
      let seq = 0;
      for (;;) {
        const m = await jsm.streams.getMessage('ACTORS_DLQ', { seq: seq + 1, next_by_subj: subject } as unknown as { seq: number });
        if (!m) break;
        list.push([m.seq, new TextDecoder().decode(m.data)]);
        seq = m.seq;
      }
      out[subject] = list;
    }
  }
  return out;
}

interface ControlShape {
  checkpoints: Map<number, { seq: number; epoch: number }>;
  leases: Map<number, { owner: string; epoch: number }>;
  other: string[];
}

/** The control bucket, checked for shape: every value the worker's own JSON. */
async function controlShape(): Promise<ControlShape> {
  const shape: ControlShape = { checkpoints: new Map(), leases: new Map(), other: [] };
  const keys: string[] = [];
  for await (const k of await controlKv.keys()) keys.push(k);
  for (const k of keys) {
    const e = await controlKv.get(k);
    if (!e || e.operation !== 'PUT') continue;
    const text = e.string();
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(text) as Record<string, unknown>;
    } catch {
      shape.other.push(`${k}: not JSON: ${text.slice(0, 80)}`);
      continue;
    }
    const m = /^(checkpoints|leases)\.(\d+)$/.exec(k);
    if (m?.[1] === 'checkpoints' && Number.isSafeInteger(value.seq) && Number.isSafeInteger(value.epoch) && typeof value.updatedAt === 'string') {
      shape.checkpoints.set(Number(m[2]), { seq: value.seq as number, epoch: value.epoch as number });
    } else if (m?.[1] === 'leases' && typeof value.owner === 'string' && Number.isSafeInteger(value.epoch)) {
      shape.leases.set(Number(m[2]), { owner: value.owner, epoch: value.epoch as number });
    } else if (k === `members.${WORKER_ID}` && value.id === WORKER_ID && Array.isArray(value.partitions)) {
      // The worker's heartbeat.
    } else if (/^types\.[A-Za-z0-9_=-]+$/.test(k) && value.worker === WORKER_ID && typeof value.descriptor === 'object') {
      // The actor type the worker registered.
    } else if (k === 'lanes.default' && value.id === 'default' && typeof value.types === 'object' && value.types !== null) {
      // The default worker's service (lane) registration.
    } else if (k === 'retention' && Number.isSafeInteger(value.purgedBelow)) {
      // The retention loop's record.
    } else if (k === 'salt' && typeof value.salt === 'string' && /^[A-Za-z0-9_-]{12}$/.test(value.salt)) {
      // The workers' shared salt of the msg ids of sends and timer firings.
    } else if (k === 'bindings.lock' && typeof value.owner === 'string') {
      // The bindings provisioning lock (held only while a worker provisions).
    } else if (/^bindings\.pos\.[A-Za-z0-9_]+$/.test(k) && value.stream === k.slice('bindings.pos.'.length) && Number.isSafeInteger(value.seq) && Number.isSafeInteger(value.created)) {
      // A binding mover's position in its capture stream.
    } else {
      shape.other.push(`${k}: ${text.slice(0, 80)}`);
    }
  }
  return shape;
}

/** Sum of a worker metric's series, by the value of one label. */
async function workerMetric(name: string, label: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelValue = new RegExp(`${label}="([^"]*)"`).exec(line)?.[1] ?? '';
    out[labelValue] = (out[labelValue] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}
/** A JetStream publish's refusal as a short label: the API error code, or what else happened. */
function refusal(err: unknown): string {
  const e = err as { code?: unknown; name?: string };
  if (typeof e.code === 'number') return `refused ${e.code}`;
  // nats.js reports "no responders" on a publish as JetStream not enabled: no stream captures the subject.
  if (e.name === 'JetStreamNotEnabled') return 'no stream';
  // A reply that is no publish ack: the subject is the gateway's call service, which answered the request.
  if (e.name === 'JetStreamApiError') return 'answered by the call service';
  return e.name ?? 'error';
}

/** A JetStream publish's outcome: `stored`, `duplicate`, or its {@link refusal}. */
async function jsPublish(subject: string, payload: Uint8Array, h: MsgHdrs): Promise<string> {
  try {
    return (await js.publish(subject, payload, { headers: h, timeout: 5_000 })).duplicate ? 'duplicate' : 'stored';
  } catch (err) {
    return refusal(err);
  }
}

/** A call's outcome: the error reply's `Jetactor-Status`, `result`, or why no reply came. */
async function callOutcome(subject: string, payload: Uint8Array, h: MsgHdrs): Promise<string> {
  try {
    const m = await nc.request(subject, payload, { headers: h, timeout: 10_000 });
    return m.headers?.get('Jetactor-Status') || (REPLY_SHAPED.test(text(m)) ? 'result' : 'other');
  } catch (err) {
    return `no reply: ${(err as Error).name}`;
  }
}

/** Promises in flight, at most `limit`: adding one to a full window first waits for all of them. */
function inFlightWindow(limit = 64): { add(p: Promise<unknown>): Promise<void>; settle(): Promise<void> } {
  const pending: Array<Promise<unknown>> = [];
  const settle = async (): Promise<void> => {
    await Promise.all(pending.splice(0));
  };
  return {
    add: async (p) => {
      pending.push(p);
      if (pending.length >= limit) await settle();
    },
    settle,
  };
}

const note = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

const total = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);

/** Looks like what a worker or the gateway sends a caller: `{"result"…` or `{"error"…`. */
const REPLY_SHAPED = /^\s*\{\s*"(result|error)"/;

/** Collects, in the background, every message on `subject` that `bad` flags. */
function watchFor(subject: string, bad: (m: Msg) => string | undefined): { sub: Subscription; seen: string[]; count: () => number } {
  const seen: string[] = [];
  let count = 0;
  const sub = nc.subscribe(subject, {
    callback: (_err, m) => {
      count++;
      const why = bad(m);
      if (why !== undefined && seen.length < 20) seen.push(why);
    },
  });
  return { sub, seen, count: () => count };
}

const dec = new TextDecoder();
const text = (m: Msg): string => dec.decode(m.data.subarray(0, 200));

// ---------------------------------------------------------------------------------------
// Invariants every run checks.

/** What no hostile input may change: the victims' records and dead letters, and the control bucket. */
interface Untouchable {
  records: Record<string, VictimRecord | null>;
  deadLetters: Record<string, Array<[number, string]>>;
  control: ControlShape;
}

async function untouchable(): Promise<Untouchable> {
  const control = await controlShape();
  expect(control.other).toEqual([]);
  expect(control.leases.size).toBe(PARTITIONS);
  return { records: await victimRecords(), deadLetters: await victimDeadLetters(), control };
}

/** No victim changed; checkpoints and leases are the worker's own (same owner and epoch, checkpoints only forward). */
async function expectUntouched(before: Untouchable): Promise<void> {
  expect(await victimRecords()).toEqual(before.records);
  expect(await victimDeadLetters()).toEqual(before.deadLetters);
  for (const v of VICTIMS) {
    const res = await gateway.app.inject({ method: 'GET', url: `/api/counter/${v}`, headers: AUTH });
    expect({ v, body: res.json<unknown>() }).toEqual({ v, body: { value: 10 + VICTIMS.indexOf(v) } });
  }
  const after = await controlShape();
  expect(after.other).toEqual([]);
  const lastSeq = (await jsm.streams.info('ACTORS')).state.last_seq;
  for (let p = 0; p < PARTITIONS; p++) {
    const lease = after.leases.get(p);
    expect({ p, lease }).toEqual({ p, lease: before.control.leases.get(p) });
    expect(lease?.owner).toBe(WORKER_ID);
    const ck = after.checkpoints.get(p);
    expect(ck).toBeDefined();
    expect({ p, epoch: ck?.epoch }).toEqual({ p, epoch: lease?.epoch });
    expect(ck!.seq).toBeGreaterThanOrEqual(before.control.checkpoints.get(p)?.seq ?? 0);
    expect(ck!.seq).toBeLessThanOrEqual(lastSeq);
  }
}

/** Background watches: nothing reply-shaped into a bucket or the JetStream API, nothing at all on a victim's subjects. */
function watchIntegrity(): { kv: ReturnType<typeof watchFor>; stop(): void; expectClean(): void } {
  const kv = watchFor('$KV.>', (m) => {
    if (m.subject.startsWith('$KV.actors_outcomes.')) {
      return /^\$KV\.actors_outcomes\.\d+$/.test(m.subject) ? undefined : `outcome under a key that is no seq: ${m.subject.slice(0, 120)}`;
    }
    return REPLY_SHAPED.test(text(m)) ? `${m.subject.slice(0, 120)} ← ${text(m)}` : undefined;
  });
  const api = watchFor('$JS.API.>', (m) => (REPLY_SHAPED.test(text(m)) ? `${m.subject.slice(0, 120)} ← ${text(m)}` : undefined));
  // (Victims' operation subjects only: a subscription on all of `actors.>` would answer JetStream publishes
  // the stream does not capture with silence instead of "no responders".)
  const victims = VICTIMS.map((v) => watchFor(`actors.counter.${v}.*`, (m) => `${m.subject.slice(0, 120)} ← ${text(m)}`));
  return {
    kv,
    stop: () => {
      for (const w of [kv, api, ...victims]) w.sub.unsubscribe();
    },
    expectClean: () => {
      expect(kv.seen).toEqual([]);
      expect(api.seen).toEqual([]);
      expect(victims.flatMap((w) => w.seen)).toEqual([]);
    },
  };
}

/** One fresh counter key in every partition: the first of `<prefix>0`, `<prefix>1`… that falls in it. */
function keyPerPartition(prefix: string): string[] {
  const keys = new Map<number, string>();
  for (let k = 0; keys.size < PARTITIONS; k++) {
    const p = partitionOf('counter', `${prefix}${k}`, PARTITIONS);
    if (!keys.has(p)) keys.set(p, `${prefix}${k}`);
  }
  return [...keys.values()];
}

/** No partition is stuck: a call (`add 1`) on a fresh key in every partition answers `{"result":1}` within `deadlineMs`. Their latencies, ms. */
async function everyPartitionAnswers(prefix: string, deadlineMs = 10_000): Promise<number[]> {
  return Promise.all(
    keyPerPartition(prefix).map(async (key) => {
      const started = performance.now();
      const m = await nc.request(`actors.call.counter.${key}.add`, enc.encode('1'), { timeout: deadlineMs });
      expect({ key, reply: JSON.parse(dec.decode(m.data)) as unknown }).toMatchObject({ key, reply: { result: 1 } });
      return performance.now() - started;
    }),
  );
}

/** The worker process and the gateway (over HTTP and over NATS: a call on `key` answers) are still up. */
async function expectStillUp(key: string): Promise<void> {
  expect(worker.running).toBe(true);
  expect((await gateway.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  const call = await nc.request(`actors.call.counter.${key}.add`, enc.encode('2'), { timeout: 10_000 });
  expect(JSON.parse(dec.decode(call.data))).toMatchObject({ result: 2 });
}

/** A stored record: its state and timers (null when the actor has none). */
async function record<S = unknown>(stateKey: string): Promise<{ state: S; timers?: Array<{ id: string; op: string; at: number; every?: number }> } | null> {
  const e = await stateKv.get(stateKey);
  return e && e.operation === 'PUT' ? (JSON.parse(e.string()) as { state: S }) : null;
}

const deviceRecord = (d: string) => record<{ count: number; lastAt: string | null }>(`device.${d}`);

/**
 * Calls unrelated to the hostile traffic, one after another until stopped: NATS calls and HTTP
 * `?wait=true` adds of 1 in turn, on keys nothing else names. Every one must be answered; the
 * adds each key acknowledged, and each call's latency.
 */
function startUnrelatedCalls(keys: readonly string[]): { stop(): Promise<{ latencies: number[]; failures: string[]; acked: Record<string, number> }> } {
  let stopping = false;
  const latencies: number[] = [];
  const failures: string[] = [];
  const acked = Object.fromEntries(keys.map((k) => [k, 0]));
  const loop = (async () => {
    for (let n = 0; !stopping; n++) {
      const key = keys[n % keys.length]!;
      const started = performance.now();
      try {
        if (n % 2 === 0) {
          const m = await nc.request(`actors.call.counter.${key}.add`, enc.encode('1'), { timeout: 10_000 });
          if (REPLY_SHAPED.test(text(m)) && typeof (JSON.parse(dec.decode(m.data)) as { result?: unknown }).result === 'number') acked[key]!++;
          else failures.push(`call ${key}: ${text(m)}`);
        } else {
          const res = await gateway.app.inject({ method: 'POST', url: `/api/counter/${key}/add?value=1&wait=true`, headers: AUTH });
          if (res.statusCode === 200) acked[key]!++;
          else failures.push(`HTTP ${key}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        }
      } catch (err) {
        failures.push(`${key}: ${(err as Error).name} ${(err as Error).message}`);
      }
      latencies.push(performance.now() - started);
      // Paced: a client's traffic, not a load of its own.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await loop;
      return { latencies, failures, acked };
    },
  };
}

describe('hostile NATS publishers', () => {
  it(`${CASES} hostile operations over plain NATS change no other actor's record, checkpoint, lease or dead letter, and every partition moves`, async () => {
    const before = await untouchable();
    const stored0 = (await jsm.streams.info('ACTORS')).state.last_seq;
    const dlq0 = (await jsm.streams.info('ACTORS_DLQ')).state.last_seq;
    const applied0 = total(await workerMetric('jetactor_worker_operations_applied_total', 'op'));
    const errors0 = await workerMetric('jetactor_worker_operation_errors_total', 'code');
    const refused0 = total(await workerMetric('jetactor_worker_operations_refused_total', 'code'));
    const workerLines0 = worker.lineCount;
    const dropped0 = gatewayDropped;

    const watches = watchIntegrity();
    const rnd = prng(SEED);
    const sent: Record<string, number> = { 'core publish': 0, 'JetStream publish': 0, 'call with a forged reply': 0, 'call request': 0 };
    const jsAcks: Record<string, number> = {};
    const callReplies: Record<string, number> = {};
    let forgedQueries = 0;
    const inFlight = inFlightWindow();
    for (let i = 0; i < CASES; i++) {
      const r = rnd();
      const payload = hostilePayload(rnd);
      const h = hostileHeaders(rnd, `nf-${SEED}-${i}`);
      if (r < 0.45) {
        sent['core publish']!++;
        nc.publish(hostileSubject(rnd), payload, { headers: h });
      } else if (r < 0.8) {
        sent['JetStream publish']!++;
        const subject = hostileSubject(rnd);
        await inFlight.add(jsPublish(subject, payload, h).then((outcome) => note(jsAcks, outcome)));
      } else if (r < 0.92) {
        // Straight to the call service (or the workers' query service) with a forged reply (or none):
        // it must be dropped unapplied and unanswered, so it may even name a victim.
        sent['call with a forged reply']!++;
        const target = rnd() < 0.5 ? pick(rnd, VICTIMS) : pick(rnd, FUZZ_KEYS);
        const query = rnd() < 0.2;
        const subject = query ? `actors.query.counter.${target}.get` : `actors.call.counter.${target}.${pick(rnd, ['add', 'reset', '$delete'])}`;
        const reply = rnd() < 0.1 ? undefined : pick(rnd, FORGED_REPLIES);
        // nats-server itself refuses a client's reply subject under $JS.ACK. (reserved): that one never arrives.
        if (query && !reply?.startsWith('$JS.ACK.')) forgedQueries++;
        nc.publish(subject, enc.encode('1'), { headers: h, ...(reply !== undefined ? { reply } : {}) });
      } else {
        sent['call request']!++;
        const subject = `actors.call.counter.${pick(rnd, FUZZ_KEYS)}.${pick(rnd, ['add', 'reset', 'get', 'nope'])}`;
        await inFlight.add(callOutcome(subject, payload, h).then((outcome) => note(callReplies, outcome)));
      }
      if (i % 200 === 199) await nc.flush();
    }
    await inFlight.settle();
    await nc.flush();

    // Every partition still moves: one add per partition, called after the flood, is applied in time.
    await everyPartitionAnswers('probe');
    watches.stop();
    watches.expectClean();
    await expectUntouched(before);
    // Every record in the state bucket is a counter's record under a valid key.
    const badRecords: string[] = [];
    for await (const k of await stateKv.keys()) {
      const e = await stateKv.get(k);
      if (!e || e.operation !== 'PUT') continue;
      const rec = JSON.parse(e.string()) as { state?: unknown; seq?: unknown; epoch?: unknown };
      const ok = /^counter\.[A-Za-z0-9_=-]{1,128}$/.test(k) && Number.isSafeInteger(rec.seq) && Number.isSafeInteger(rec.epoch) && (rec.state === null || Number.isSafeInteger(rec.state));
      if (!ok) badRecords.push(`${k}: ${e.string().slice(0, 100)}`);
    }
    expect(badRecords).toEqual([]);

    await expectStillUp('nf-after');

    const stored = (await jsm.streams.info('ACTORS')).state.last_seq - stored0 - PARTITIONS - 1;
    const deadLettered = (await jsm.streams.info('ACTORS_DLQ')).state.last_seq - dlq0;
    const applied = total(await workerMetric('jetactor_worker_operations_applied_total', 'op')) - applied0 - PARTITIONS - 1;
    const errorsNow = await workerMetric('jetactor_worker_operation_errors_total', 'code');
    const errors: Record<string, number> = {};
    for (const [code, n] of Object.entries(errorsNow)) if (n > (errors0[code] ?? 0)) errors[code] = n - (errors0[code] ?? 0);
    // Refused by the counter's handler on purpose (RESULT_OUT_OF_RANGE): outcomes, not dead letters.
    const refusedOps = total(await workerMetric('jetactor_worker_operations_refused_total', 'code')) - refused0;
    const refusedReplies = jsonLines(worker, workerLines0).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('reply header is not a literal inbox subject')).length;
    const droppedCalls = gatewayDropped - dropped0;
    // A published subject with a wildcard token matches the stream's `actors.*.*.*` but not its
    // partition transform (nats-server 2.10 stores it as published): no partition reads it.
    const unpartitioned = Object.values((await jsm.streams.info('ACTORS', { subjects_filter: 'actors.>' })).state.subjects ?? {}).reduce((a, b) => a + b, 0);
    expect(refusedReplies).toBeGreaterThan(0);
    // The query service answers beside the partitions, so its last refusals may still be on their way.
    const queryDrops = () => jsonLines(worker, workerLines0).filter((l) => l.msg === 'query with an invalid reply subject dropped').length;
    await waitFor(() => queryDrops() >= forgedQueries, { timeoutMs: 10_000, message: `the worker to drop ${forgedQueries} forged queries` });
    const droppedQueries = queryDrops();
    expect(droppedCalls).toBeGreaterThanOrEqual(sent['call with a forged reply']! - forgedQueries);
    expect(droppedQueries).toBe(forgedQueries);
    expect(deadLettered).toBe(total(errors));
    // Every stored operation in a partition was applied, refused or dead-lettered: none lost, none stuck.
    expect(applied + refusedOps + deadLettered + unpartitioned).toBe(stored);
    console.log(
      `[nats-fuzz] seed ${SEED}: sent ${CASES} (${Object.entries(sent).map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
        `stream stored ${stored} (${unpartitioned} of them with wildcard subjects, in no partition); JetStream acks ${JSON.stringify(jsAcks)}; applied ${applied}; refused ${refusedOps}; dead letters ${deadLettered} ${JSON.stringify(errors)}; ` +
        `refused reply headers ${refusedReplies}; calls dropped for their reply subject ${droppedCalls} (by the gateway), queries ${droppedQueries} (by the worker); call replies ${JSON.stringify(callReplies)}; ` +
        `$KV messages watched ${watches.kv.count()}, reply-shaped 0; victims changed 0`,
    );
  }, 120_000);

  it(`${TIMER_CASES} timer, cron and binding messages set no timer past the largest date, none on a bound device, stop no partition and slow no call`, async () => {
    const captures: string[] = [];
    for await (const name of jsm.streams.names()) if (name.startsWith('ACTORS_BIND_device_')) captures.push(name);
    expect(captures).toHaveLength(1);
    const before = await untouchable();
    const dlq0 = (await jsm.streams.info('ACTORS_DLQ')).state.last_seq;
    const workerLines0 = worker.lineCount;
    const watches = watchIntegrity();
    // No reply may come for a bound message or one with a forged source; timer messages get theirs.
    const bindReplies = watchFor(`${BIND_INBOX}.>`, (m) => `${m.subject} ← ${text(m)}`);
    const timerReplies: Record<string, number> = {};
    const timerInbox = nc.subscribe(`${TIMER_INBOX}.>`, {
      callback: (_err, m) => {
        if (!REPLY_SHAPED.test(text(m))) return note(timerReplies, 'not a reply');
        const body = JSON.parse(dec.decode(m.data)) as { result?: { scheduled?: string; cancelled?: boolean }; error?: { code?: string } };
        note(timerReplies, body.error?.code ?? (body.result?.scheduled !== undefined ? 'scheduled' : body.result?.cancelled !== undefined ? 'cancel' : 'result'));
      },
    });
    const unrelated = startUnrelatedCalls(LATENCY_KEYS);

    const rnd = prng(TIMER_SEED);
    const sent: Record<string, number> = {};
    const jsAcks: Record<string, number> = {};
    const callReplies: Record<string, number> = {};
    const twins: Record<string, number> = {};
    /** Acknowledged valid readings per device, and valid readings sent by core publishes. */
    const readings = Object.fromEntries(BOUND_DEVICES.map((d) => [d, 0]));
    const coreReadings = Object.fromEntries(CORE_DEVICES.map((d) => [d, 0]));
    /** The sum of the acknowledged valid adds with a forged source, per counter. */
    const sums = Object.fromEntries(SOURCE_KEYS.map((k) => [k, 0]));
    const inFlight = inFlightWindow();
    /** A JetStream publish; `acked` runs when the stream stored it (not a duplicate). */
    const publish = async (what: string, subject: string, payload: Uint8Array, h: MsgHdrs, acked?: () => void): Promise<void> => {
      note(sent, `${what}: JetStream publish`);
      await inFlight.add(
        jsPublish(subject, payload, h).then((outcome) => {
          note(jsAcks, `${what} ${outcome}`);
          if (outcome === 'stored') acked?.();
        }),
      );
    };
    for (let i = 0; i < TIMER_CASES; i++) {
      const r = rnd();
      if (r < 0.4) {
        // Timer headers on a counter's operation: published (core or JetStream, the reply to an inbox
        // the test reads), or called through the gateway; and often the same over HTTP.
        const key = pick(rnd, TIMER_KEYS);
        const op = pick(rnd, TIMER_OPS);
        const h = rnd() < 0.3 ? hostileHeaders(rnd, `nt-${TIMER_SEED}-${i}`) : natsHeaders();
        if (op !== '$cancel' || rnd() < 0.2) addTimerHeaders(rnd, h);
        if (rnd() < 0.5) h.set('Jetactor-Reply', `${TIMER_INBOX}.${i}`);
        const input = op === '$cancel' ? pick(rnd, CANCEL_PAYLOADS) : op === '$fire' ? pick(rnd, FIRE_PAYLOADS) : undefined;
        const ordinary = rnd() < 0.85;
        const payload = input !== undefined ? enc.encode(input) : !ordinary ? hostilePayload(rnd) : op === 'add' ? addPayload(rnd).data : new Uint8Array(0);
        const how = rnd();
        if (how < 0.3) {
          note(sent, 'timer: core publish');
          nc.publish(`actors.counter.${key}.${op}`, payload, { headers: h });
        } else if (how < 0.85) {
          await publish('timer', `actors.counter.${key}.${op}`, payload, h);
        } else {
          note(sent, 'timer: call');
          await inFlight.add(callOutcome(`actors.call.counter.${key}.${op}`, payload, h).then((outcome) => note(callReplies, outcome)));
        }
        if (rnd() < 0.4) {
          const twin = pick(rnd, TWIN_KEYS);
          const idOf = /"id":"([^"]*)"/.exec(input ?? '')?.[1] ?? 'tick';
          const request =
            op === '$cancel'
              ? { method: 'DELETE' as const, url: `/api/actors/counter/${twin}/timers/${encodeURIComponent(idOf)}` }
              : { method: 'POST' as const, url: `/api/actors/counter/${twin}/${encodeURIComponent(op)}?${timerQuery(h)}`, payload: Buffer.from(payload) };
          await inFlight.add(
            gateway.app
              .inject({ ...request, headers: { ...AUTH, 'content-type': 'application/json' } })
              .then((res) => note(twins, String(res.statusCode))),
          );
        }
      } else if (r < 0.75) {
        // The bound subject, with every header of the runtime's.
        const h = runtimeHeaders(rnd, i);
        if (rnd() < 0.2) h.set('Nats-Stream-Source', forgedSource(rnd, captures));
        const reading = readingPayload(rnd);
        const target = rnd();
        if (target < 0.1) {
          const subject = hostileBoundSubject(rnd);
          await publish('bound subject (hostile)', subject, reading.data, h);
        } else if (target < 0.25) {
          const device = pick(rnd, CORE_DEVICES);
          note(sent, 'bound subject: core publish');
          nc.publish(`devices.${device}.telemetry`, reading.data, { headers: h });
          if (reading.valid) coreReadings[device]!++;
        } else {
          const device = pick(rnd, BOUND_DEVICES);
          await publish('bound subject', `devices.${device}.telemetry`, reading.data, h, () => {
            if (reading.valid) readings[device]!++;
          });
        }
      } else if (r < 0.9) {
        // Straight to a bound device's operation with a forged source: a plain reading.
        const h = runtimeHeaders(rnd, i);
        h.set('Nats-Stream-Source', forgedSource(rnd, captures));
        const device = pick(rnd, BOUND_DEVICES);
        const reading = readingPayload(rnd);
        await publish('forged source, device', `actors.device.${device}.reading`, reading.data, h, () => {
          if (reading.valid) readings[device]!++;
        });
      } else {
        // Straight to a counter's add with a forged source: a plain add.
        const h = runtimeHeaders(rnd, i);
        h.set('Nats-Stream-Source', forgedSource(rnd, captures));
        const key = pick(rnd, SOURCE_KEYS);
        const add = addPayload(rnd);
        await publish('forged source, counter', `actors.counter.${key}.add`, add.data, h, () => {
          if (add.amount !== null) sums[key]! += add.amount;
        });
      }
      if (i % 200 === 199) await nc.flush();
    }
    await inFlight.settle();
    await nc.flush();

    // Every acknowledged bound reading is applied (sourcing is asynchronous: wait for it), and no more.
    const deviceCounts = async (devices: readonly string[]) => Object.fromEntries(await Promise.all(devices.map(async (d) => [d, (await deviceRecord(d))?.state.count ?? 0] as const)));
    await waitFor(async () => JSON.stringify(await deviceCounts(BOUND_DEVICES)) === JSON.stringify(readings), { timeoutMs: 20_000 }).catch(() => undefined);
    // No partition stuck; the unrelated calls answered in time all along.
    const probeMs = await everyPartitionAnswers('probe-t');
    const calls = await unrelated.stop();
    expect(calls.failures).toEqual([]);
    expect(calls.latencies.length).toBeGreaterThan(0);
    expect(Math.max(...calls.latencies)).toBeLessThan(LATENCY_BOUND_MS);
    timerInbox.unsubscribe();
    bindReplies.sub.unsubscribe();
    watches.stop();
    watches.expectClean();
    expect(bindReplies.seen).toEqual([]);
    await expectUntouched(before);

    // Counters and devices equal what their acknowledged plain operations imply.
    expect(await deviceCounts(BOUND_DEVICES)).toEqual(readings);
    const coreCounts = await deviceCounts(CORE_DEVICES);
    for (const d of CORE_DEVICES) expect(coreCounts[d]).toBeLessThanOrEqual(coreReadings[d]!);
    const counters = async (ks: readonly string[]) => Object.fromEntries(await Promise.all(ks.map(async (k) => [k, (await gateway.app.inject({ method: 'GET', url: `/api/counter/${k}`, headers: AUTH })).json<{ value: number }>().value] as const)));
    expect(await counters(SOURCE_KEYS)).toEqual(sums);
    expect(await counters(LATENCY_KEYS)).toEqual(calls.acked);

    // Timers: a bound device holds its watchdog and nothing else, a forged-source counter none; every
    // touched key's timers list (200), and no stored time is past the largest valid date.
    for (const d of [...BOUND_DEVICES, ...CORE_DEVICES]) {
      const rec = await deviceRecord(d);
      const watchdog = rec && rec.state.count > 0 ? [{ id: 'offline', op: 'offline', at: Date.parse(rec.state.lastAt!) + DEVICE_OFFLINE_MS }] : [];
      expect({ d, timers: (rec?.timers ?? []).map(({ id, op, at }) => ({ id, op, at })) }).toEqual({ d, timers: watchdog });
    }
    const touched = [
      ...[...TIMER_KEYS, ...TWIN_KEYS, ...SOURCE_KEYS, ...LATENCY_KEYS, ...FUZZ_KEYS].map((k) => ['counter', k] as const),
      ...[...BOUND_DEVICES, ...CORE_DEVICES].map((d) => ['device', d] as const),
    ];
    let timersHeld = 0;
    for (const [type, key] of touched) {
      const res = await gateway.app.inject({ method: 'GET', url: `/api/actors/${type}/${key}/timers`, headers: AUTH });
      expect({ key, status: res.statusCode }).toEqual({ key, status: 200 });
      const listed = res.json<{ timers: Array<{ at: string }> }>().timers;
      for (const t of listed) expect({ key, at: Date.parse(t.at) <= MAX_DATE_MS }).toEqual({ key, at: true });
      const stored = (await record(`${type}.${key}`))?.timers ?? [];
      for (const t of stored) {
        const bounded = Number.isSafeInteger(t.at) && t.at >= 0 && t.at <= MAX_DATE_MS && (t.every === undefined || (t.every >= 100 && t.every <= TEN_YEARS_MS));
        expect({ key, t, bounded }).toEqual({ key, t, bounded: true });
      }
      timersHeld += stored.length;
      if (SOURCE_KEYS.includes(key)) expect({ key, stored }).toEqual({ key, stored: [] });
    }
    // The gateway answered no 5xx to the HTTP twins, nor to the calls.
    expect(Object.keys(twins).filter((status) => Number(status) >= 500)).toEqual([]);
    expect(Object.keys(callReplies).filter((status) => Number(status) >= 500)).toEqual([]);
    // Dead letters: a refused timer keeps its timer headers (a resubmit asks for it again); a bound
    // device's keeps none (a resubmit must not set the timer its publisher asked for).
    const deadLetters: Record<string, number> = {};
    let timerHeadersKept = 0;
    for (let seq = dlq0 + 1; seq <= (await jsm.streams.info('ACTORS_DLQ')).state.last_seq; seq++) {
      const m = await jsm.streams.getMessage('ACTORS_DLQ', { seq });
      if (!m) continue;
      const code = m.header?.get('Jetactor-Error-Code') ?? '';
      note(deadLetters, code);
      const hasTimer = TIMER_FIELDS.some((f) => m.header?.has(TimerHeaders[f]));
      // (A cancel of a bad id is INVALID_TIMER too, with no timer header to keep.)
      if (code === 'INVALID_TIMER' && !m.subject.endsWith('.$cancel')) {
        const why = m.header?.get('Jetactor-Error-Message');
        expect({ seq, subject: m.subject, why, hasTimer }).toEqual({ seq, subject: m.subject, why, hasTimer: true });
        timerHeadersKept++;
      }
      if (BOUND_DEVICES.some((d) => m.subject.startsWith(`actors_dlq.device.${d}.`))) expect({ seq, subject: m.subject, hasTimer }).toEqual({ seq, subject: m.subject, hasTimer: false });
      // No handler of the counter or the device throws. (A timer message whose input is nested
      // thousands deep was a HANDLER_ERROR from a stack overflow in the fold: INVALID_INPUT now.)
      expect({ seq, subject: m.subject, code, why: m.header?.get('Jetactor-Error-Message') }).not.toMatchObject({ code: 'HANDLER_ERROR' });
    }
    expect(deadLetters.INVALID_TIMER ?? 0).toBeGreaterThan(0);
    // Nothing failed in the worker (no error logged), and both processes still answer.
    const errorLines = jsonLines(worker, workerLines0).filter((l) => typeof l.level === 'number' && l.level >= 50);
    expect(errorLines.map((l) => `${String(l.msg)} ${JSON.stringify(l.err ?? '')}`.slice(0, 200))).toEqual([]);
    await expectStillUp('nt-after');
    console.log(
      `[nats-fuzz] timer seed ${TIMER_SEED}: sent ${TIMER_CASES} ${JSON.stringify(sent)}; JetStream acks ${JSON.stringify(jsAcks)}; ` +
        `timer replies ${JSON.stringify(timerReplies)}; call replies ${JSON.stringify(callReplies)}; HTTP twins ${JSON.stringify(twins)}; ` +
        `dead letters ${JSON.stringify(deadLetters)} (${timerHeadersKept} INVALID_TIMER with their headers); timers held ${timersHeld}; ` +
        `readings applied ${JSON.stringify(readings)}, core ${JSON.stringify(coreCounts)} of ${JSON.stringify(coreReadings)}; forged-source sums ${JSON.stringify(sums)}; ` +
        `unrelated calls ${calls.latencies.length}, slowest ${Math.round(Math.max(...calls.latencies))} ms; partition probes slowest ${Math.round(Math.max(...probeMs))} ms`,
    );
  }, 120_000);
});
