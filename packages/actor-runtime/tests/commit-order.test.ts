/**
 * The commit's step order against the in-memory commit store, no server: what is written
 * before what, and that a batch retried after a failure at any step (before the write takes
 * effect, or after it, as with a lost ack) applies each operation once and loses none.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ActorError, defineActor, FencedError, type AnyActorDefinition } from '../src/internal.js';
import { BatchCommitter } from '../src/processing/commit.js';
import { MemoryCommitStore, type MemoryCommitStoreOptions, type MemoryStoreStep } from '../src/processing/commit-store/memory.js';
import type { CommitterOptions } from '../src/processing/commit-types.js';
import type { DecodedOp } from '../src/processing/decode.js';
import { RecordCache } from '../src/processing/record-cache.js';
import { TimerIndex, type TimerIndexOptions } from '../src/processing/timer-index.js';
import { controlKeys } from '../src/protocol/index.js';
import type { Checkpoint, StateRecord } from '../src/store/records.js';

const ledger = defineActor({
  type: 'ledger',
  initialState: () => ({ total: 0 }),
  operations: {
    add: (s: { total: number }, n: unknown) => ({ state: { total: s.total + (n as number) }, result: s.total + (n as number) }),
    pay: (s: { total: number }, n: unknown) => ({ state: { total: s.total - (n as number) }, result: null, send: [{ key: 'payee', op: 'add', input: n }] }),
    remind: (s: { total: number }) => ({ state: s, result: null, schedule: [{ id: 'r', op: 'add', input: 1, afterMs: 60_000 }] }),
    crash: () => {
      throw new Error('handler bug');
    },
    refuse: () => {
      throw new ActorError('NOT_ALLOWED', 'no');
    },
  },
});
const actors = new Map<string, AnyActorDefinition>([[ledger.type, ledger]]);
const topology = { salt: 'salt', streamCreated: 1_000, controlCreated: 1, partitions: 4 };
const names = { stream: 'ACTORS', subjectPrefix: 'actors' };
const log = pino({ level: 'silent' });
const text = (b: Uint8Array) => new TextDecoder().decode(b);

let nextSeq = 1;
/** An operation as the reader decodes it (partition 0). */
function op(key: string, name: string, input?: unknown, extra: Partial<DecodedOp> = {}): DecodedOp {
  const seq = nextSeq++;
  return { valid: true, seq, type: 'ledger', key, op: name, subject: `0.actors.ledger.${key}.${name}`, data: new TextEncoder().encode(input === undefined ? '' : JSON.stringify(input)), time: 1_000_000, reply: undefined, hasMsgId: false, ...extra };
}

/** A committer of partition 0 over `store`, as a (re)started partition makes it: fresh cache, its checkpoint loaded. */
async function committer(store: MemoryCommitStore, replies: string[], o: Partial<CommitterOptions> = {}): Promise<BatchCommitter> {
  const leaseValid = o.leaseValid ?? (() => true);
  const timers = new TimerIndex({ partition: 0, store, leaseValid, log } as unknown as TimerIndexOptions);
  await timers.load();
  const c = new BatchCommitter({
    partition: 0,
    epoch: 7,
    nc: { publish: (inbox: string, body?: string | Uint8Array) => void replies.push(`${inbox} ${String(body)}`) },
    topology,
    names,
    store,
    actors,
    cache: new RecordCache(1000),
    log,
    maxStateBytes: 65_536,
    leaseValid,
    aborted: () => false,
    deadLetterSubject: (t, k, n) => `dlq.${t}.${k}.${n}`,
    timers,
    ...o,
  });
  await c.loadCheckpoint();
  return c;
}

const checkpointOf = (store: MemoryCommitStore): Checkpoint | null => {
  const e = store.control.get(controlKeys.checkpoint(0));
  return e ? (JSON.parse(text(e.value)) as Checkpoint) : null;
};
const recordOf = (store: MemoryCommitStore, key: string): StateRecord | null => {
  const e = store.state.get(`ledger.${key}`);
  return e ? (JSON.parse(text(e.value)) as StateRecord) : null;
};

/** One batch that touches every step: a state change with a reply and idempotency key, a send, a timer, a dead letter, a refusal. */
function everyStepBatch(): DecodedOp[] {
  return [
    op('a', 'add', 5, { reply: '_INBOX.x.1', hasMsgId: true }),
    op('a', 'pay', 2),
    op('b', 'remind'),
    op('c', 'crash', undefined, { reply: '_INBOX.x.2' }),
    op('d', 'refuse', undefined, { hasMsgId: true }),
  ];
}

describe('commit step order (in-memory store)', () => {
  it('stores outcomes and dead letters, then records, then sends, then the timer index, then the checkpoint; replies come last', async () => {
    const steps: string[] = [];
    const replies: string[] = [];
    const store = new MemoryCommitStore({
      inject: (step, key, when) => {
        if (when === 'after') steps.push(`${step}:${key}:${replies.length}`);
      },
    });
    const c = await committer(store, replies);
    const batch = everyStepBatch();
    await c.commit(batch);
    const kinds = steps.map((s) => s.split(':')[0] as MemoryStoreStep);
    const last = (k: MemoryStoreStep) => kinds.lastIndexOf(k);
    const first = (k: MemoryStoreStep) => kinds.indexOf(k);
    expect(new Set(kinds)).toEqual(new Set(['outcome', 'dead-letter', 'record', 'send', 'timer-index', 'checkpoint']));
    expect(Math.max(last('outcome'), last('dead-letter'))).toBeLessThan(first('record'));
    expect(last('record')).toBeLessThan(first('send'));
    expect(last('send')).toBeLessThan(first('timer-index'));
    expect(last('timer-index')).toBeLessThan(first('checkpoint'));
    // No reply went out before the checkpoint was stored.
    expect(steps.every((s) => s.endsWith(':0'))).toBe(true);
    expect(replies.sort()).toEqual(['_INBOX.x.1 {"result":5,"seq":' + batch[0]?.seq + '}', expect.stringMatching(/^_INBOX\.x\.2 \{"error":\{"code":"HANDLER_ERROR"/) as string]);
    expect(checkpointOf(store)?.seq).toBe(batch[4]?.seq);
  });

  const failures: Array<[MemoryStoreStep, 'before' | 'after']> = (['outcome', 'dead-letter', 'record', 'send', 'timer-index', 'checkpoint'] as const).flatMap((s) => [
    [s, 'before'] as [MemoryStoreStep, 'before'],
    [s, 'after'] as [MemoryStoreStep, 'after'],
  ]);
  it.each(failures)('a failure at %s (%s it takes effect) fails the commit unanswered; the retried batch applies each operation once', async (step, when) => {
    let armed = true;
    const store = new MemoryCommitStore({
      inject: (s, _key, w) => {
        if (armed && s === step && w === when) {
          armed = false;
          throw new Error(`injected failure at ${s} (${w})`);
        }
      },
    });
    const replies: string[] = [];
    const batch = everyStepBatch();
    await expect((await committer(store, replies)).commit(batch)).rejects.toThrow(/injected failure/);
    expect(armed).toBe(false);
    expect(replies).toEqual([]);
    // The partition restarts: a new committer reads its checkpoint, the reader delivers what follows it.
    const again = await committer(store, replies);
    const from = checkpointOf(store)?.seq ?? 0;
    await again.commit(batch.filter((x) => x.seq > from));
    const ck = checkpointOf(store);
    expect(ck?.seq).toBe(batch[4]?.seq);
    expect(recordOf(store, 'a')?.state).toEqual({ total: 3 });
    expect(recordOf(store, 'b')?.timers?.map((t) => t.id)).toEqual(['r']);
    expect(store.timers.get('0.ledger.b') && JSON.parse(text(store.timers.get('0.ledger.b')?.value ?? new Uint8Array()))).toEqual([['r', batch[2]?.seq, 1_000_000 + 60_000]]);
    expect(store.sends.map((s) => [s.subject, text(s.data)])).toEqual([['actors.ledger.payee.add', '2']]);
    expect(store.deadLetters.map((d) => d.subject)).toEqual(['dlq.ledger.c.crash']);
    expect([...store.outcomes.entries.keys()].sort()).toEqual([String(batch[0]?.seq), String(batch[4]?.seq)].sort());
    // The record keeps its sends until its next write, but the checkpoint passed them (no next owner publishes them again), and no marker waits.
    expect(recordOf(store, 'a')?.outbox?.every((x) => x.seq <= (ck?.seq ?? 0))).toBe(true);
    expect(await store.listMarkers(0)).toEqual([]);
    // The kept outcome answers a caller that retries with its idempotency key.
    expect(text(store.outcomes.get(String(batch[0]?.seq))?.value ?? new Uint8Array())).toBe(`{"result":5,"seq":${batch[0]?.seq}}`);
    // Replies go out only after a stored checkpoint, at most once: an operation a stored record
    // already holds is skipped by the retry (its caller retries with its key and gets the
    // outcome); the crash, which no record holds, fails again and is answered then. Past a
    // stored checkpoint the reader delivers nothing of the batch again.
    const recordsStored = (step === 'record' && when === 'after') || step === 'send' || step === 'timer-index' || (step === 'checkpoint' && when === 'before');
    const answered = step === 'checkpoint' && when === 'after' ? [] : recordsStored ? ['_INBOX.x.2'] : ['_INBOX.x.1', '_INBOX.x.2'];
    expect(replies.map((r) => r.split(' ')[0]).sort()).toEqual(answered);
  });

  it('writes nothing once the lease is not held', async () => {
    const store = new MemoryCommitStore();
    const replies: string[] = [];
    let held = true;
    const c = await committer(store, replies, { leaseValid: () => held });
    held = false;
    await expect(c.commit([op('a', 'add', 1, { reply: '_INBOX.x.1' })])).rejects.toBeInstanceOf(FencedError);
    expect({ records: store.state.entries.size, control: store.control.entries.size, replies }).toEqual({ records: 0, control: 0, replies: [] });
  });

  it('a checkpoint another owner wrote fences this committer: its batch is not answered', async () => {
    const store = new MemoryCommitStore();
    const replies: string[] = [];
    const c = await committer(store, replies);
    await c.commit([op('a', 'add', 1)]);
    // A new owner commits in between.
    await (await committer(store, [])).commit([op('a', 'add', 10)]);
    await expect(c.commit([op('a', 'add', 100, { reply: '_INBOX.x.9' })])).rejects.toBeInstanceOf(FencedError);
    expect(replies).toEqual([]);
    expect(recordOf(store, 'a')?.state).toEqual({ total: 11 });
  });

  it('a full stream: the sender gets a marker before the checkpoint passes its send, which is published once there is room, then the marker goes', async () => {
    const steps: string[] = [];
    const options: MemoryCommitStoreOptions = { maxSends: 0, inject: (s, k, w) => void (w === 'after' && steps.push(`${s}:${k}`)) };
    const store = new MemoryCommitStore(options);
    const replies: string[] = [];
    const c = await committer(store, replies);
    const pay = op('a', 'pay', 4);
    await c.commit([pay]);
    expect(steps.filter((s) => !s.startsWith('record'))).toEqual(['marker:ledger.a', `checkpoint:${controlKeys.checkpoint(0)}`]);
    expect({ sends: store.sends.length, markers: await store.listMarkers(0), unsent: checkpointOf(store)?.unsent, outbox: recordOf(store, 'a')?.outbox?.length }).toEqual({ sends: 0, markers: ['ledger.a'], unsent: true, outbox: 1 });
    expect(checkpointOf(store)?.seq).toBe(pay.seq);
    // A new owner takes the marker up; the stream has room again.
    options.maxSends = undefined;
    steps.length = 0;
    const next = await committer(store, replies);
    expect(next.hasUnsent).toBe(true);
    await next.commit([]);
    expect(steps).toEqual([expect.stringMatching(/^send:\$s\./) as string, 'unmark:ledger.a', `checkpoint:${controlKeys.checkpoint(0)}`]);
    expect({ sends: store.sends.map((s) => text(s.data)), markers: await store.listMarkers(0), unsent: checkpointOf(store)?.unsent }).toEqual({ sends: ['4'], markers: [], unsent: undefined });
  });
});
