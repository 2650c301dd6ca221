import { DeliverPolicy } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import { defaultNames, type StateRecord } from '@jetactor/actor-runtime/internal';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { fixedRateLatency, startMinimalRoute } from './gateway-bench.js';
import { startJetactorStack } from './jetactor-stack.js';
import { SectionCpu } from './processes.js';
import { progress, sleep } from './progress.js';
import { formatInt, formatMs, summarize } from './stats.js';

const SECTION = 'Latency (fixed rate, worker running)';
const NAMES = defaultNames();
const dec = new TextDecoder();
const one = new TextEncoder().encode('1');

/**
 * Latency with a worker and the gateway running on a fresh stream: `?wait=true` calls at a
 * fixed rate over HTTP (floor: the minimal publish-only route at the same rate), and
 * signal-to-visible (publish to the state record showing that seq, seen by a KV watch;
 * floor: publish to delivery on an ordered consumer, the same messages).
 */
export async function measureLatency(ctx: BenchContext): Promise<Figure[]> {
  const stack = await startJetactorStack(ctx, 'latency');
  const { worker, gateway } = stack;
  const figures: Figure[] = [];
  try {
    const minimal = await startMinimalRoute(ctx);
    try {
      const { callRate, callMs } = ctx.sizes;
      progress('latency', `minimal route (publish + ack) at ${formatInt(callRate)}/s for ${callMs / 1000} s`);
      figures.push(
        ...(await fixedRateLatency({ p50: 'latency.floorP50', p99: 'latency.floorP99' }, SECTION, 'minimal route: HTTP + JetStream publish', (i) => `${minimal.url}/signal/lat${i % 1000}`, callRate, callMs)),
      );
      progress('latency', `gateway ?wait=true calls at ${formatInt(callRate)}/s for ${callMs / 1000} s (1,000 keys)`);
      const cpu = new SectionCpu({ worker: worker.pid, gateway: gateway.proc.pid, server: ctx.server.pid, bench: process.pid }, new Set(['gateway']));
      const calls = await fixedRateLatency(
        { p50: 'latency.callP50', p99: 'latency.callP99' },
        SECTION,
        `gateway call ?wait=true at ${formatInt(callRate)}/s`,
        (i) => `${gateway.url}/api/actors/counter/lat${i % 1000}/add?wait=true`,
        callRate,
        callMs,
        { p50: { limitId: 'latency.floorP50' }, p99: { limitId: 'latency.floorP99', max: 10 } },
      );
      const used = cpu.read();
      for (const f of calls) f.detail = { ...f.detail, ...Object.fromEntries(Object.entries(used).map(([k, v]) => [`${k}CpuCores`, Number(v.toFixed(2))])) };
      figures.push(...calls);

      figures.push(...(await signalToVisible(ctx)));
    } finally {
      await minimal.proc.stop();
    }
  } finally {
    await stack.stop();
  }
  return figures;
}

/** Publishes at a fixed rate and times each operation until a KV watch shows its seq. */
async function signalToVisible(ctx: BenchContext): Promise<Figure[]> {
  const { visibleRate: rate, visibleMs: durationMs } = ctx.sizes;
  progress('latency', `signal-to-visible: publish at ${formatInt(rate)}/s for ${durationMs / 1000} s, KV watch on the state bucket`);
  const sentAt = new Map<number, number>();
  const visibleAt = new Map<number, number>();
  const deliveredAt = new Map<number, number>();
  const state = await new Kvm(ctx.js).open(NAMES.stateBucket);
  const watch = await state.watch({ key: 'counter.>', include: KvWatchInclude.UpdatesOnly });
  const watching = (async () => {
    for await (const e of watch) {
      if (e.operation !== 'PUT') continue;
      const rec = JSON.parse(dec.decode(e.value)) as StateRecord;
      if (!visibleAt.has(rec.seq)) visibleAt.set(rec.seq, performance.now());
    }
  })();
  const consumer = await ctx.js.consumers.get(NAMES.stream, { deliver_policy: DeliverPolicy.New });
  const messages = await consumer.consume({ max_messages: 1000 });
  const reading = (async () => {
    for await (const m of messages) deliveredAt.set(m.seq, performance.now());
  })();
  await sleep(200);

  const interval = 1000 / rate;
  const t0 = performance.now();
  let i = 0;
  const acks: Promise<void>[] = [];
  while (performance.now() - t0 < durationMs) {
    const due = Math.floor((performance.now() - t0) / interval);
    for (; i <= due; i++) {
      const sent = performance.now();
      // 1,000 keys in turn: each operation gets its own record update (no folding).
      acks.push(ctx.js.publish(`${NAMES.subjectPrefix}.counter.vis${i % 1000}.add`, one).then((ack) => void sentAt.set(ack.seq, sent)));
    }
    await sleep(1);
  }
  await Promise.all(acks);
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline && [...sentAt.keys()].some((s) => !visibleAt.has(s))) await sleep(20);
  watch.stop();
  messages.stop();
  await Promise.all([watching, reading]);

  const visible: number[] = [];
  const delivered: number[] = [];
  let missing = 0;
  for (const [seq, t] of sentAt) {
    const v = visibleAt.get(seq);
    if (v === undefined) missing++;
    else visible.push(v - t);
    const d = deliveredAt.get(seq);
    if (d !== undefined) delivered.push(d - t);
  }
  const vs = summarize(visible);
  const ds = summarize(delivered);
  progress('latency', `  signal-to-visible p50 ${formatMs(vs.p50)}, p99 ${formatMs(vs.p99)} (${missing} not seen); publish-to-delivery p50 ${formatMs(ds.p50)}, p99 ${formatMs(ds.p99)}`);
  const s = 'Latency (fixed rate, worker running)';
  return [
    { id: 'latency.deliverP99', section: s, name: `raw: publish to ordered-consumer delivery at ${rate}/s p99`, value: ds.p99, unit: Unit.Ms, detail: { p50Ms: ds.p50, count: ds.count } },
    {
      id: 'latency.visibleP50',
      section: s,
      name: `signal-to-visible (publish to KV watch shows the seq) p50`,
      value: vs.p50,
      unit: Unit.Ms,
      detail: { count: vs.count, missing },
    },
    {
      id: 'latency.visibleP99',
      section: s,
      name: `signal-to-visible p99`,
      value: vs.p99,
      unit: Unit.Ms,
      limitId: 'latency.deliverP99',
      target: { max: 50 },
      detail: { count: vs.count, missing, maxMs: vs.max },
    },
  ];
}
