import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { createInbox, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { defaultTopology, provisionTopology, type Topology } from '@jetactor/actor-runtime/worker';
import { defaultNames, partitionOf } from '@jetactor/actor-runtime/internal';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { SectionCpu } from './processes.js';
import { pipelined, progress, sleep } from './progress.js';
import { perSecond } from './stats.js';

const SECTION = 'Raw limits (NATS alone)';
/** Names of the raw-limits topology: the same stream and bucket settings as the actors', under other names. */
export const RAW_NAMES = defaultNames({ stream: 'RAW', subjectPrefix: 'raw', stateBucket: 'raw_state', controlBucket: 'raw_ctl' });
const ONE = new TextEncoder().encode('1');
const dec = new TextDecoder();

/** Deletes streams if they exist (KV buckets are streams named `KV_<bucket>`). */
export async function deleteStreams(jsm: JetStreamManager, names: readonly string[]): Promise<void> {
  for (const name of names) {
    try {
      await jsm.streams.delete(name);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    }
  }
}

/** How a core-published batch ended: the ms until the stream stopped growing, and what it stored. */
export interface StoredResult {
  /** From the first publish until the stream held `stored` messages (its last growth). */
  ms: number;
  /** Messages of the batch the stream stored. */
  stored: number;
}

/**
 * Polls the stream until it holds `before + count` messages, or until it has not grown for
 * `stallMs` (newer servers drop un-acknowledged publishes under overload: what was dropped
 * never arrives); resolves with how many of the batch it stored and when.
 */
export async function waitForStored(jsm: JetStreamManager, stream: string, before: number, count: number, since: number, stallMs = 3000, timeoutMs = 120_000): Promise<StoredResult> {
  let last = -1;
  let grewAt = since;
  for (;;) {
    const info = await jsm.streams.info(stream);
    const now = performance.now();
    const stored = info.state.messages - before;
    if (stored >= count) return { ms: now - since, stored: count };
    if (stored !== last) {
      last = stored;
      grewAt = now;
    } else if (now - grewAt > stallMs) {
      return { ms: grewAt - since, stored };
    }
    if (now - since > timeoutMs) throw new Error(`stream ${stream} holds ${stored} of ${count} messages after ${timeoutMs} ms`);
    await sleep(5);
  }
}

/**
 * Core-publishes `count` messages (no acks) on one connection, flushing every `chunk`, and
 * resolves once the stream has stored them all, or has stopped growing short of that: newer
 * servers drop un-acknowledged publishes when a stream's ingest queue is full (2.15.1 stored
 * 580,000 of 1,000,000 here). For the server's ingest rate only; a stream that must hold
 * every message is preloaded with {@link leanAckedPublish}.
 */
export async function corePublish(
  ctx: BenchContext,
  stream: string,
  count: number,
  subjectOf: (i: number) => string,
  payload: Uint8Array = ONE,
  chunk = 10_000,
): Promise<StoredResult> {
  const before = (await ctx.jsm.streams.info(stream)).state.messages;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    ctx.nc.publish(subjectOf(i), payload);
    if ((i + 1) % chunk === 0) await ctx.nc.flush();
  }
  await ctx.nc.flush();
  return waitForStored(ctx.jsm, stream, before, count, t0);
}

/**
 * Reads `count` messages of `filter` from the start with an ordered consumer, touching
 * nothing but the sequence; resolves with the elapsed ms.
 */
export async function orderedRead(ctx: BenchContext, stream: string, filter: string, count: number, maxMessages = 10_000): Promise<number> {
  // A string gives the consumer a single `filter_subject`; an array would use the
  // multi-filter path, which nats-server 2.10 serves at a few hundred msg/s once the
  // stream spans more than one message block.
  const consumer = await ctx.js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
  const t0 = performance.now();
  const messages = await consumer.consume({ max_messages: maxMessages });
  let n = 0;
  let last = 0;
  for await (const m of messages) {
    last = m.seq;
    if (++n >= count) break;
  }
  const ms = performance.now() - t0;
  if (last === 0) throw new Error('ordered read saw no message');
  return ms;
}

/** Options of {@link leanAckedPublish}. */
export interface LeanPublishOptions {
  /**
   * Filled with each message's stream sequence from its ack (index i = message i); every
   * ack is then parsed, and one that carries an error fails the publish. Without it, acks
   * are only counted (what the raw publish figure measures).
   */
  seqs?: Uint32Array;
  /** Fail when no ack has arrived for this long, in ms (a publish the server dropped). Default 30 000. */
  stallMs?: number;
  /** Headers of message i (e.g. a timer's), none when left out. */
  headersOf?: (i: number) => MsgHdrs;
  /**
   * With `seqs`: a refused publish (e.g. the stream at its byte bound) ends the run instead of
   * failing it: called once with the first refusal, nothing more is sent, what is in flight is
   * awaited, and `seqs` tells what was stored (0: refused or never sent).
   */
  onRefused?: (error: { description?: string; code?: number }) => void;
}

/**
 * `count` JetStream publishes with acks, `window` in flight, as plain publishes with a
 * reply subject and acks matched on one subscription: what a lean client gets from the
 * server, without nats.js's per-request overhead. Resolves with the elapsed ms. This is
 * also how streams are preloaded: every message acknowledged, so a server that drops
 * un-acknowledged publishes under overload (2.11+) still stores all of them.
 */
export async function leanAckedPublish(
  nc: NatsConnection,
  count: number,
  window: number,
  subjectOf: (i: number) => string,
  payload: Uint8Array | ((i: number) => Uint8Array),
  opts: LeanPublishOptions = {},
): Promise<number> {
  const payloadOf = typeof payload === 'function' ? payload : () => payload;
  const prefix = createInbox();
  const waiters = new Map<string, (data: Uint8Array) => void>();
  let lastAckAt = performance.now();
  let failure: Error | undefined;
  let refused = false;
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<never>((_resolve, reject) => {
    fail = (err) => {
      failure ??= err;
      reject(err);
    };
  });
  failed.catch(() => undefined);
  const sub = nc.subscribe(`${prefix}.*`, {
    callback: (_err, m) => {
      const w = waiters.get(m.subject);
      if (w) {
        lastAckAt = performance.now();
        waiters.delete(m.subject);
        w(m.data);
      }
    },
  });
  const stallMs = opts.stallMs ?? 30_000;
  const watchdog = setInterval(() => {
    if (waiters.size > 0 && performance.now() - lastAckAt > stallMs) fail(new Error(`no publish ack for ${stallMs} ms (${waiters.size} unanswered); the server dropped publishes`));
  }, 1000);
  const seqs = opts.seqs;
  let id = 0;
  const t0 = performance.now();
  try {
    await Promise.race([
      failed,
      pipelined(count, window, (i) =>
        new Promise<void>((resolve) => {
          if (failure || refused) return resolve();
          const reply = `${prefix}.${++id}`;
          waiters.set(reply, (data) => {
            if (seqs) {
              const ack = (data.length ? JSON.parse(dec.decode(data)) : {}) as { seq?: number; error?: { description?: string; code?: number } };
              // A refusal carries a `seq` too (nats-server 2.10: the stream's last), so the error decides.
              if (!ack.error && typeof ack.seq === 'number') seqs[i] = ack.seq;
              else if (opts.onRefused) {
                if (!refused) opts.onRefused(ack.error ?? {});
                refused = true;
              } else fail(new Error(`publish ${i + 1} of ${count} to ${subjectOf(i)} refused: ${ack.error?.description ?? 'no ack'} (${ack.error?.code ?? '?'})`));
            }
            resolve();
          });
          nc.publish(subjectOf(i), payloadOf(i), opts.headersOf ? { reply, headers: opts.headersOf(i) } : { reply });
        }),
      ),
    ]);
  } finally {
    clearInterval(watchdog);
    sub.unsubscribe();
  }
  if (failure) throw failure;
  return performance.now() - t0;
}

/** Fails unless the stream holds exactly `count` messages (a preload must store every one). */
export async function expectMessages(ctx: BenchContext, stream: string, count: number): Promise<void> {
  const { state } = await ctx.jsm.streams.info(stream);
  if (state.messages !== count) throw new Error(`stream ${stream} holds ${state.messages} messages, expected ${count}`);
}

/** The naive actor: every operation is a KV get then a CAS update (or create) of one hot key. */
export async function naiveActor(kv: KV, key: string, durationMs: number): Promise<{ ops: number; ms: number }> {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const t0 = performance.now();
  let ops = 0;
  while (performance.now() - t0 < durationMs) {
    const e = await kv.get(key);
    if (e && e.operation === 'PUT') {
      const rec = JSON.parse(dec.decode(e.value)) as { state: number; seq: number };
      await kv.update(key, enc.encode(JSON.stringify({ state: rec.state + 1, seq: rec.seq + 1 })), e.revision);
    } else {
      await kv.create(key, enc.encode(JSON.stringify({ state: 1, seq: 1 })));
    }
    ops++;
  }
  return { ops, ms: performance.now() - t0 };
}

/** Measures the raw limits of NATS on this machine, with the actors' stream and bucket settings. */
export async function measureRawLimits(ctx: BenchContext): Promise<Figure[]> {
  const { sizes, jsm, js } = ctx;
  const figures: Figure[] = [];
  // CPU of nats-server, this process and the rest of the machine since the previous figure.
  let cpu = new SectionCpu({ server: ctx.server.pid, bench: process.pid });
  const record = (f: Figure) => {
    const used = cpu.read();
    f.detail = { ...f.detail, ...Object.fromEntries(Object.entries(used).map(([k, v]) => [`${k}CpuCores`, Number(v.toFixed(2))])) };
    figures.push(f);
    cpu = new SectionCpu({ server: ctx.server.pid, bench: process.pid });
  };
  await deleteStreams(jsm, [RAW_NAMES.stream, `KV_${RAW_NAMES.stateBucket}`, `KV_${RAW_NAMES.controlBucket}`]);
  const topo: Topology = await provisionTopology(ctx.nc, defaultTopology(RAW_NAMES, { partitions: ctx.partitions }));

  // 1. Acked publishes with a bounded window, spread over 1,000 keys: through nats.js
  // (js.publish) and lean (publish with a reply subject); the better one is the limit.
  progress('raw', `JetStream publish with acks: ${sizes.jsPublish.toLocaleString('en-US')} messages, ${sizes.jsWindow} in flight`);
  let t0 = performance.now();
  await pipelined(sizes.jsPublish, sizes.jsWindow, (i) => js.publish(`raw.counter.k${i % 1000}.add`, ONE));
  const viaJs = performance.now() - t0;
  const viaLean = await leanAckedPublish(ctx.nc, sizes.jsPublish, sizes.jsWindow, (i) => `raw.counter.k${i % 1000}.add`, ONE);
  const publishMs = Math.min(viaJs, viaLean);
  record({
    id: 'raw.jsPublish',
    section: SECTION,
    name: `JetStream publish, acked (${sizes.jsWindow} in flight, 1 connection)`,
    value: perSecond(sizes.jsPublish, publishMs),
    unit: Unit.PerSecond,
    detail: { messages: sizes.jsPublish, window: sizes.jsWindow, natsJsPerSecond: Math.round(perSecond(sizes.jsPublish, viaJs)), leanPerSecond: Math.round(perSecond(sizes.jsPublish, viaLean)) },
  });
  progress('raw', `  ${Math.round(perSecond(sizes.jsPublish, viaLean)).toLocaleString('en-US')} msg/s lean, ${Math.round(perSecond(sizes.jsPublish, viaJs)).toLocaleString('en-US')} msg/s with js.publish`);

  // 2. Core publishes into the stream (server ingest), all on one hot key = one partition.
  // Servers that drop un-acknowledged publishes under overload store only part of them:
  // the figure is then what was stored, over the time until the stream stopped growing.
  await jsm.streams.purge(RAW_NAMES.stream);
  progress('raw', `core publish into the stream: ${sizes.ingest.toLocaleString('en-US')} messages on one key`);
  const ingest = await corePublish(ctx, RAW_NAMES.stream, sizes.ingest, () => 'raw.counter.hot.add');
  const dropped = sizes.ingest - ingest.stored;
  record({
    id: 'raw.ingest',
    section: SECTION,
    name: dropped > 0
      ? `core publish into the stream (server ingest, no acks; stored ${ingest.stored.toLocaleString('en-US')} of ${sizes.ingest.toLocaleString('en-US')}, the server dropped the rest)`
      : 'core publish into the stream (server ingest, no acks)',
    value: perSecond(ingest.stored, ingest.ms),
    unit: Unit.PerSecond,
    detail: { messages: sizes.ingest, stored: ingest.stored, dropped, ms: Math.round(ingest.ms) },
  });
  progress('raw', `  ${Math.round(perSecond(ingest.stored, ingest.ms)).toLocaleString('en-US')} msg/s stored${dropped > 0 ? ` (${dropped.toLocaleString('en-US')} of ${sizes.ingest.toLocaleString('en-US')} dropped by the server)` : ''}`);

  // 3. One ordered consumer reading that partition from the start: every message, so a
  // stream the core publishes left short is topped up with acknowledged publishes first.
  if (dropped > 0) {
    progress('raw', `  topping the stream up to ${sizes.ingest.toLocaleString('en-US')} messages with acknowledged publishes`);
    await leanAckedPublish(ctx.nc, dropped, sizes.jsWindow, () => 'raw.counter.hot.add', ONE, { seqs: new Uint32Array(dropped) });
  }
  await expectMessages(ctx, RAW_NAMES.stream, sizes.ingest);
  const p = partitionOf('counter', 'hot', ctx.partitions);
  progress('raw', `ordered consumer reading partition ${p} (${sizes.ingest.toLocaleString('en-US')} messages)`);
  cpu = new SectionCpu({ server: ctx.server.pid, bench: process.pid });
  let ms = await orderedRead(ctx, RAW_NAMES.stream, `${p}.>`, sizes.ingest);
  record({
    id: 'raw.orderedRead',
    section: SECTION,
    name: 'ordered consumer read (one partition filter, no processing)',
    value: perSecond(sizes.ingest, ms),
    unit: Unit.PerSecond,
    detail: { messages: sizes.ingest, ms: Math.round(ms) },
  });
  progress('raw', `  ${Math.round(perSecond(sizes.ingest, ms)).toLocaleString('en-US')} msg/s read`);

  // 3b. One ordered consumer per partition, all at once, on operations spread over 1,000
  // keys: the read pattern of the worker (the server filters each partition out of the
  // interleaved stream, which costs it more than reading one partition's run).
  await jsm.streams.purge(RAW_NAMES.stream);
  const spread = Math.round(sizes.ingest / 2);
  progress('raw', `${ctx.partitions} ordered consumers (one per partition) reading ${spread.toLocaleString('en-US')} messages over 1,000 keys`);
  await leanAckedPublish(ctx.nc, spread, sizes.jsWindow, (i) => `raw.counter.k${i % 1000}.add`, ONE, { seqs: new Uint32Array(spread) });
  await expectMessages(ctx, RAW_NAMES.stream, spread);
  const perPartition = new Array<number>(ctx.partitions).fill(0);
  for (let i = 0; i < spread; i++) perPartition[partitionOf('counter', `k${i % 1000}`, ctx.partitions)]! += 1;
  cpu = new SectionCpu({ server: ctx.server.pid, bench: process.pid });
  t0 = performance.now();
  await Promise.all(perPartition.map((n, part) => (n > 0 ? orderedRead(ctx, RAW_NAMES.stream, `${part}.>`, n, 1000) : Promise.resolve(0))));
  ms = performance.now() - t0;
  record({
    id: 'raw.orderedRead32',
    section: SECTION,
    name: `ordered read, ${ctx.partitions} partition consumers at once (1,000 keys)`,
    value: perSecond(spread, ms),
    unit: Unit.PerSecond,
    detail: { messages: spread, ms: Math.round(ms) },
  });
  progress('raw', `  ${Math.round(perSecond(spread, ms)).toLocaleString('en-US')} msg/s read`);
  // The same interleaved messages through one unfiltered consumer: what a worker reading the
  // whole stream for all its partitions would get from the server.
  progress('raw', `one unfiltered ordered consumer reading the same ${spread.toLocaleString('en-US')} messages`);
  ms = await orderedRead(ctx, RAW_NAMES.stream, '>', spread);
  record({
    id: 'raw.orderedReadAll',
    section: SECTION,
    name: 'ordered read, one unfiltered consumer (same 1,000-key messages)',
    value: perSecond(spread, ms),
    unit: Unit.PerSecond,
    detail: { messages: spread, ms: Math.round(ms) },
  });
  progress('raw', `  ${Math.round(perSecond(spread, ms)).toLocaleString('en-US')} msg/s read`);

  // 4. Pipelined KV puts of distinct keys (the write pattern of 100,000 cold actors):
  // kv.put and lean publishes to the bucket's subjects; the better one is the limit.
  progress('raw', `KV put, pipelined: ${sizes.kvPuts.toLocaleString('en-US')} distinct keys, ${sizes.kvWindow} in flight`);
  const kvRecord = new TextEncoder().encode(JSON.stringify({ state: 1, seq: 1, epoch: 1, updatedAt: new Date().toISOString() }));
  t0 = performance.now();
  await pipelined(sizes.kvPuts, sizes.kvWindow, (i) => topo.state.put(`counter.k${i}`, kvRecord));
  const kvJs = performance.now() - t0;
  const kvLean = await leanAckedPublish(ctx.nc, sizes.kvPuts, sizes.kvWindow, (i) => `$KV.${RAW_NAMES.stateBucket}.counter.l${i}`, kvRecord);
  ms = Math.min(kvJs, kvLean);
  record({
    id: 'raw.kvPut',
    section: SECTION,
    name: `KV put, pipelined (${sizes.kvWindow} in flight, distinct keys)`,
    value: perSecond(sizes.kvPuts, ms),
    unit: Unit.PerSecond,
    detail: { puts: sizes.kvPuts, window: sizes.kvWindow, natsJsPerSecond: Math.round(perSecond(sizes.kvPuts, kvJs)), leanPerSecond: Math.round(perSecond(sizes.kvPuts, kvLean)) },
  });
  progress('raw', `  ${Math.round(perSecond(sizes.kvPuts, kvLean)).toLocaleString('en-US')} puts/s lean, ${Math.round(perSecond(sizes.kvPuts, kvJs)).toLocaleString('en-US')} puts/s with kv.put`);

  // Derived: one operation on a cold key costs a read of the stream and a KV write on the
  // same cores; with both at their raw rates, 1 / (1/read + 1/write) per second at most.
  const readAll = figures.find((f) => f.id === 'raw.orderedReadAll')?.value ?? Number.NaN;
  const kvPut = figures.find((f) => f.id === 'raw.kvPut')?.value ?? Number.NaN;
  record({
    id: 'raw.readPlusWrite',
    section: SECTION,
    name: 'read + KV write per operation (derived: 1 / (1/unfiltered read + 1/KV put))',
    value: 1 / (1 / readAll + 1 / kvPut),
    unit: Unit.PerSecond,
  });

  // 5. The naive actor.
  progress('raw', `naive actor (KV get + CAS update per operation, one key) for ${sizes.naiveMs / 1000} s`);
  const naive = await naiveActor(topo.state, 'counter.naive', sizes.naiveMs);
  record({
    id: 'raw.naive',
    section: SECTION,
    name: 'naive actor: KV get + CAS update per operation (one key)',
    value: perSecond(naive.ops, naive.ms),
    unit: Unit.PerSecond,
    detail: { ops: naive.ops, ms: Math.round(naive.ms) },
  });
  progress('raw', `  ${Math.round(perSecond(naive.ops, naive.ms)).toLocaleString('en-US')} ops/s`);

  await deleteStreams(jsm, [RAW_NAMES.stream, `KV_${RAW_NAMES.stateBucket}`, `KV_${RAW_NAMES.controlBucket}`]);
  return figures;
}
