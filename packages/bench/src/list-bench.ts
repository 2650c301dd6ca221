/**
 * The `list` section: what one page of `GET /api/actors/:type` costs when a type has many
 * actors. Writes `sizes.listActors` state records (100,000 in a full run) into a bucket of
 * their own, then times `ActorClient.list` pages of 100: the first page, a page from a cursor
 * in the middle and the last page. A page reads the bucket's stream from its cursor, so the
 * three should cost about the same; beside them, reading every key once (`kv.keys()`), which
 * is what each page cost before the listing read from a cursor. (The server still counts the
 * records after the cursor when a page's consumer is created, its `num_pending`: tens of ns
 * per record, the one part of a page that grows with the number of actors.)
 */
import { createActorClient } from '@jetactor/actor-runtime/client';
import { defaultNames } from '@jetactor/actor-runtime/internal';
import { Kvm } from '@nats-io/kv';
import type { BenchContext } from './context.js';
import { Unit, type Figure } from './figures.js';
import { progress } from './progress.js';
import { deleteStreams, leanAckedPublish } from './raw-limits.js';
import { formatInt, formatMs, summarize } from './stats.js';

const NAMES = defaultNames({ stateBucket: 'bench_list' });
/** Items per page, as the route's default. */
const PAGE = 100;
/** Timed pages per position. */
const REPEATS = 30;
/** The key scan is slow by design: fewer repeats. */
const SCAN_REPEATS = 3;

/** Times `fn` `n` times, one after another; the latencies in ms. */
async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Writes the records, then times pages at three positions and the full key scan. */
export async function measureListPages(ctx: BenchContext): Promise<Figure[]> {
  const n = ctx.sizes.listActors;
  const s = `Listing (${formatInt(n)} actors, pages of ${PAGE})`;
  const stream = `KV_${NAMES.stateBucket}`;
  await deleteStreams(ctx.jsm, [stream]);
  const kv = await new Kvm(ctx.js).create(NAMES.stateBucket, { history: 1 });
  progress('list', `writing ${formatInt(n)} actor records`);
  const record = new TextEncoder().encode(JSON.stringify({ state: 12345, seq: 1, epoch: 1, updatedAt: new Date().toISOString() }));
  await leanAckedPublish(ctx.nc, n, 2000, (i) => `$KV.${NAMES.stateBucket}.counter.k${i}`, record);
  const { state } = await ctx.jsm.streams.info(stream);
  if (state.messages !== n) throw new Error(`expected ${n} records in ${stream}, found ${state.messages}`);

  const client = createActorClient(ctx.nc, { names: NAMES });
  try {
    // Cursors are stream positions: the middle and the last page start from there.
    const positions = [
      { id: 'first', name: 'first page', cursor: undefined },
      { id: 'middle', name: `a page from the middle (cursor ${formatInt(state.first_seq + n / 2)})`, cursor: String(state.first_seq + n / 2) },
      { id: 'last', name: 'last page', cursor: String(state.last_seq - PAGE) },
    ] as const;
    const figures: Figure[] = [];
    for (const p of positions) {
      // One untimed page first: the connection and the server's caches are warm for each.
      const check = await client.list('counter', { limit: PAGE, cursor: p.cursor });
      if (check.items.length !== PAGE) throw new Error(`${p.name}: ${check.items.length} items, expected ${PAGE}`);
      const lat = summarize(await timed(REPEATS, () => client.list('counter', { limit: PAGE, cursor: p.cursor })));
      progress('list', `  ${p.name}: p50 ${formatMs(lat.p50)}, p99 ${formatMs(lat.p99)}`);
      figures.push({
        id: `list.${p.id}P50`,
        section: s,
        name: `${p.name} p50`,
        value: lat.p50,
        unit: Unit.Ms,
        ...(p.id === 'first' ? {} : { limitId: 'list.firstP50' }),
        detail: { p99Ms: lat.p99, maxMs: lat.max, pages: lat.count, actors: n, lastPageNextCursor: String(check.nextCursor) },
      });
    }
    progress('list', `  reading every key once (kv.keys), as each page did before`);
    const scan = summarize(
      await timed(SCAN_REPEATS, async () => {
        let keys = 0;
        for await (const _k of await kv.keys('counter.>')) keys++;
        if (keys !== n) throw new Error(`kv.keys saw ${keys} keys, expected ${n}`);
      }),
    );
    figures.push({
      id: 'list.keyScanP50',
      section: s,
      name: 'reference: every key read once (kv.keys), what one page cost before',
      value: scan.p50,
      unit: Unit.Ms,
      limitId: 'list.firstP50',
      detail: { runs: scan.count, maxMs: scan.max },
    });
    return figures;
  } finally {
    client.close();
    await deleteStreams(ctx.jsm, [stream]);
  }
}
