// Issue 11, "must show": 200 accounts funded by known deposits, 20,000 random transfers from
// concurrent clients while one worker process is SIGKILLed, one is frozen past its lease
// (SIGSTOP) and thawed, and one joins. Afterwards the balances sum to the deposits exactly, none
// is negative, a replay of the stored stream gives the same balances, and every successful
// transfer's deposit is stored exactly once.
import { jetstream } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { account } from '@jetactor/account-actor';
import { jsonLines, prng, waitFor, type ManagedProcess } from '@jetactor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { gate, inWindow, readStoredOps, waitForQuiescence, type StoredOp } from './support/streams.js';
import { owners, settledOn } from './support/workers.js';

const PARTITIONS = 16;
const LEASE_TTL_MS = 2000;
const ACCOUNTS = 200;
const FUNDING = 1000;
const TRANSFERS = 20_000;
const CLIENTS = 4;
/** Transfers per second over all clients: the faults happen while transfers flow. */
const RATE = 1000;
const WINDOW = 16;

let stack: Stack;
const extra: NatsConnection[] = [];

beforeAll(async () => {
  stack = await startStack({ actors: [account] });
});

afterAll(async () => {
  await Promise.all(extra.map((nc) => nc.close()));
  await stack?.stop();
});

const start = (id: string): ManagedProcess => stack.spawn(id, { partitions: PARTITIONS, leaseTtlMs: LEASE_TTL_MS });
const settled = (ids: string[], timeoutMs?: number): Promise<void> => settledOn(stack.client, PARTITIONS, ids, timeoutMs);

interface Transfer {
  from: string;
  to: string;
  amount: number;
}

/** Random transfers: mostly small, a fifth bigger than a typical balance (INSUFFICIENT_FUNDS), a few to the sender itself. */
function randomTransfers(n: number, rnd: () => number): Transfer[] {
  return Array.from({ length: n }, () => {
    const from = Math.floor(rnd() * ACCOUNTS);
    let to = Math.floor(rnd() * ACCOUNTS);
    if (rnd() >= 0.005) while (to === from) to = Math.floor(rnd() * ACCOUNTS);
    const amount = rnd() < 0.8 ? 1 + Math.floor(rnd() * 300) : 300 + Math.floor(rnd() * 3000);
    return { from: `acct-${from}`, to: `acct-${to}`, amount };
  });
}

/** What the account actor does with one stored operation, for the replay (invalid input changes nothing). */
function amountOf(v: unknown): number | null {
  if (typeof v !== 'object' || v === null) return null;
  const a = (v as { amount?: unknown }).amount;
  return typeof a === 'number' && Number.isSafeInteger(a) && a >= 1 ? a : null;
}

interface Replay {
  balances: Map<string, number>;
  /** Successful transfers: seq → the deposit they send. */
  sent: Map<number, { to: string; amount: number }>;
  failed: number;
}

/**
 * Folds the stored operations in stream order with the account's semantics. A transfer's
 * credit side is not applied here: it is the `deposit` the runtime stored for it, which is in
 * the stream like any other operation.
 */
function replayAccounts(ops: readonly StoredOp[]): Replay {
  const balances = new Map<string, number>();
  const sent = new Map<number, { to: string; amount: number }>();
  let failed = 0;
  for (const o of ops) {
    if (o.type !== 'account') continue;
    let input: unknown;
    try {
      input = o.data === '' ? undefined : (JSON.parse(o.data) as unknown);
    } catch {
      continue;
    }
    const bal = balances.get(o.key) ?? 0;
    const amount = amountOf(input);
    if (amount === null) continue;
    if (o.op === 'deposit') {
      if (Number.isSafeInteger(bal + amount)) balances.set(o.key, bal + amount);
    } else if (o.op === 'withdraw') {
      if (bal >= amount) balances.set(o.key, bal - amount);
    } else if (o.op === 'transfer') {
      const to = (input as { to?: unknown }).to;
      if (typeof to !== 'string' || to === o.key || bal < amount) {
        failed++;
        continue;
      }
      balances.set(o.key, bal - amount);
      sent.set(o.seq, { to, amount });
    }
  }
  return { balances, sent, failed };
}

describe('transfers under worker crashes (issue 11)', () => {
  it('keeps every balance exact through a SIGKILL, a SIGSTOP past the lease and a join', { timeout: 240_000 }, async () => {
    const { client, js, jsm } = stack;
    const w1 = start('t-1');
    const w2 = start('t-2');
    start('t-3');
    await settled(['t-1', 't-2', 't-3']);

    // Known deposits, each awaited (committed) before the transfers start.
    const accounts = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);
    await inWindow(accounts, 50, async (key) => {
      const r = await client.call('account', key, 'deposit', { amount: FUNDING }, { timeoutMs: 20_000 });
      expect(r.result).toEqual({ balance: FUNDING });
    });
    const deposited = ACCOUNTS * FUNDING;

    // Concurrent clients, each on its own connection, publishing acked with a bounded window.
    const transfers = randomTransfers(TRANSFERS, prng(1111));
    const perClient = Array.from({ length: CLIENTS }, (_, c) => transfers.filter((_, i) => i % CLIENTS === c));
    let sent = 0;
    const afterPause = gate();
    const afterJoin = gate();
    const t0 = Date.now();
    const publishers = perClient.map(async (list, c) => {
      const nc = await connect({ servers: stack.server.url });
      extra.push(nc);
      const cjs = jetstream(nc);
      const perMs = RATE / CLIENTS / 1000;
      await inWindow(list, WINDOW, async (t, i) => {
        // Paced, and held at two points until the fault script has done its part.
        const due = t0 + i / perMs;
        if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
        if (sent >= TRANSFERS * 0.6) await afterPause.opened;
        if (sent >= TRANSFERS * 0.9) await afterJoin.opened;
        const h = headers();
        // A retried publish carries the same id: the stream stores the transfer once.
        h.set('Nats-Msg-Id', `tx-${c}-${i}`);
        const data = JSON.stringify({ to: t.to, amount: t.amount });
        for (let attempt = 0; ; attempt++) {
          try {
            await cjs.publish(`actors.account.${t.from}.transfer`, data, { headers: h, timeout: 10_000 });
            break;
          } catch (err) {
            if (attempt >= 5) throw err;
          }
        }
        sent++;
      });
    });

    const timeline: Record<string, number> = {};
    const faults = (async () => {
      await waitFor(() => sent >= TRANSFERS * 0.15, { timeoutMs: 60_000, intervalMs: 20, message: 'transfers to be under way' });
      timeline.killAt = sent;
      w1.kill('SIGKILL');
      await w1.exited;
      await settled(['t-2', 't-3']);
      timeline.killTakenOverAt = sent;

      await waitFor(() => sent >= TRANSFERS * 0.35, { timeoutMs: 60_000, intervalMs: 20, message: 'transfers to go on after the kill' });
      timeline.pauseAt = sent;
      const pausedHeld = [...(await owners(client)).entries()].filter(([, o]) => o === 't-2').map(([p]) => p);
      expect(pausedHeld.length).toBeGreaterThan(0);
      await w2.pause();
      // Frozen past its lease: t-3 takes every partition of t-2.
      await settled(['t-3']);
      timeline.pauseTakenOverAt = sent;
      w2.resume();
      await settled(['t-2', 't-3']);
      afterPause.open();

      await waitFor(() => sent >= TRANSFERS * 0.7, { timeoutMs: 60_000, intervalMs: 20, message: 'transfers to go on after the pause' });
      timeline.joinAt = sent;
      start('t-4');
      await settled(['t-2', 't-3', 't-4']);
      timeline.joinSettledAt = sent;
      afterJoin.open();
    })();
    // A failure in the fault script must not leave the publishers waiting at a gate.
    await faults.catch((err: unknown) => {
      afterPause.open();
      afterJoin.open();
      throw err;
    });
    await Promise.all(publishers);
    const publishMs = Date.now() - t0;
    expect(sent).toBe(TRANSFERS);

    const lastSeq = await waitForQuiescence(jsm, client, { timeoutMs: 120_000 });
    const settleMs = Date.now() - t0 - publishMs;

    // The stored balances.
    const balances = new Map<string, number>();
    await inWindow(accounts, 50, async (key) => {
      const snap = await client.read('account', key);
      balances.set(key, (snap.state as { balance: number }).balance);
    });
    const values = [...balances.values()];
    expect(values.every((b) => Number.isSafeInteger(b) && b >= 0)).toBe(true);
    expect(values.reduce((a, b) => a + b, 0)).toBe(deposited);

    // The replay of the stored stream gives the same balances.
    const ops = await readStoredOps(js, jsm);
    expect(ops.at(-1)?.seq).toBe(lastSeq);
    const replay = replayAccounts(ops);
    expect(Object.fromEntries(balances)).toEqual(Object.fromEntries(accounts.map((k) => [k, replay.balances.get(k) ?? 0])));

    // Every transfer is stored once; nothing stored carries a msg id twice.
    const stored = ops.filter((o) => o.type === 'account');
    expect(stored.filter((o) => o.op === 'transfer')).toHaveLength(TRANSFERS);
    const ids = new Map<string, number>();
    for (const o of stored) if (o.msgId !== undefined) ids.set(o.msgId, (ids.get(o.msgId) ?? 0) + 1);
    expect([...ids].filter(([, n]) => n > 1)).toEqual([]);

    // Exactly once: each successful transfer's deposit is stored once, after it, to its receiver;
    // no runtime deposit is stored without a successful transfer.
    const sendDeposits = stored.filter((o) => o.op === 'deposit' && o.msgId?.startsWith('$s.'));
    const bySender = new Map<number, StoredOp[]>();
    for (const d of sendDeposits) {
      const originSeq = Number(d.msgId?.split('.').at(-2));
      bySender.set(originSeq, [...(bySender.get(originSeq) ?? []), d]);
    }
    const wrong: string[] = [];
    for (const [seq, want] of replay.sent) {
      const got = bySender.get(seq) ?? [];
      if (got.length !== 1) wrong.push(`transfer ${seq}: ${got.length} deposits`);
      else if (got[0]!.key !== want.to || got[0]!.data !== JSON.stringify({ amount: want.amount }) || got[0]!.seq <= seq) wrong.push(`transfer ${seq}: ${JSON.stringify(got[0])}`);
    }
    for (const seq of bySender.keys()) if (!replay.sent.has(seq)) wrong.push(`deposit without a successful transfer: origin ${seq}`);
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(sendDeposits).toHaveLength(replay.sent.size);
    // Both outcomes happened many times.
    expect(replay.failed).toBeGreaterThan(TRANSFERS * 0.05);
    expect(replay.sent.size).toBeGreaterThan(TRANSFERS * 0.3);

    // The frozen worker was fenced when it woke: it logged the loss instead of writing.
    expect(jsonLines(w2).some((l) => l.msg === 'partition lost (fenced)' || String(l.msg).includes('lease not held'))).toBe(true);

    console.log(
      `transfers: ${TRANSFERS} published in ${publishMs} ms (${Math.round(TRANSFERS / (publishMs / 1000))}/s), ` +
        `${replay.sent.size} succeeded, ${replay.failed} refused, all applied ${settleMs} ms after the last publish; ` +
        `faults at transfers ${JSON.stringify(timeline)}; stream ${lastSeq} messages`,
    );
  });
});
