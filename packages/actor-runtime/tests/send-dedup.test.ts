import { describe, expect, it } from 'vitest';
import { partitionOf } from '../src/index.js';
import { sendMsgId } from '../src/processing/msg-ids.js';
import { comparePlaces, fitReceived, isDuplicateSend, MAX_PLACES, placeOf, sendHeader, trustedSend, withSend, type Place, type Received, type SendMark } from '../src/processing/send-dedup.js';
import { publishOutboxes, type Outbox } from '../src/processing/send-order.js';
import type { StoredSend } from '../src/store/records.js';

const salt = 'salt_1';
const stream = 1765000000000;
const PARTITIONS = 32;
const id = (seq: number, i: number) => `$s.${salt}.${stream}.${seq}.${i}`;
const mark = (partition: number, seq: number, i: number, floor: Place, from = 'acct.a1', unit = String(partition)): SendMark => ({ from, partition, unit, pos: placeOf(seq, i), floor });

function applyAll(marks: SendMark[], received?: Received): { applied: SendMark[]; received: Received | undefined } {
  const applied: SendMark[] = [];
  for (const m of marks) {
    if (isDuplicateSend(received, m)) continue;
    applied.push(m);
    received = withSend(received, m, PARTITIONS);
  }
  return { applied, received };
}

describe('send de-duplication at the receiver', () => {
  it('trusts only the runtime msg id of this salt and stream, with a well-formed header', () => {
    const header = sendHeader('acct.a1', placeOf(7, 0), '3');
    expect(header).toBe('acct.a1 7000 3');
    expect(trustedSend({ id: id(9, 2), header }, salt, stream, PARTITIONS)).toEqual({ from: 'acct.a1', partition: 3, unit: '3', pos: 9002, floor: 7000 });
    expect(trustedSend({ id: `$s.other.${stream}.9.2`, header }, salt, stream, PARTITIONS)).toBeUndefined();
    expect(trustedSend({ id: `$s.${salt}.1.9.2`, header }, salt, stream, PARTITIONS)).toBeUndefined();
    expect(trustedSend({ id: id(9, 2), header: 'acct.a1 99999 3' }, salt, stream, PARTITIONS)).toBeUndefined(); // floor above the send
    expect(trustedSend({ id: id(9, 2), header: 'acct.a1 7000 32' }, salt, stream, PARTITIONS)).toBeUndefined(); // no such partition
    expect(trustedSend({ id: id(9, 2), header: 'a.b.c 1 3' }, salt, stream, PARTITIONS)).toBeUndefined();
    expect(trustedSend({ id: `${id(9, 2)}.3`, header }, salt, stream, PARTITIONS)).toBeUndefined();
    // An older sender's header (no partition): its floor was its key's, so it counts for nothing here.
    expect(trustedSend({ id: id(9, 2), header: 'acct.a1 7000' }, salt, stream, PARTITIONS)).toEqual({ from: 'acct.a1', partition: partitionOf('acct', 'a1', PARTITIONS), unit: String(partitionOf('acct', 'a1', PARTITIONS)), pos: 9002, floor: undefined });
  });

  it('trusts an id made with the salt (an HMAC) and, across an upgrade, one that holds the salt itself', () => {
    const header = 'acct.a1 7000 3';
    const made = sendMsgId(salt, stream, 9, 2);
    const sent = { from: 'acct.a1', partition: 3, unit: '3', pos: 9002, floor: 7000 };
    expect(trustedSend({ id: made, header }, salt, stream, PARTITIONS)).toEqual(sent);
    // The older version's id of the same send (left in an outbox, or stored before the upgrade) is the same send.
    expect(trustedSend({ id: id(9, 2), header }, salt, stream, PARTITIONS)).toEqual(sent);
    // A mac made with another salt, or moved to another place, or of another stream: forged.
    expect(trustedSend({ id: sendMsgId('guess', stream, 9, 2), header }, salt, stream, PARTITIONS)).toBeUndefined();
    expect(trustedSend({ id: made.replace('.9.2', '.9.3'), header }, salt, stream, PARTITIONS)).toBeUndefined();
    expect(trustedSend({ id: made.replace('.9.2', '.09.2'), header }, salt, stream, PARTITIONS)).toBeUndefined();
    expect(trustedSend({ id: sendMsgId(salt, stream + 1, 9, 2), header }, salt, stream, PARTITIONS)).toBeUndefined();
  });

  it('applies each send once, however late its copies come, and fills a gap', () => {
    // s1, s3 stored, s2 refused; then s1..s3 published again (floor s1), then again much later.
    const first = applyAll([mark(3, 10, 0, 10_000), mark(3, 12, 0, 10_000)]);
    const again = applyAll([mark(3, 10, 0, 10_000), mark(3, 11, 0, 10_000), mark(3, 12, 0, 10_000)], first.received);
    expect(again.applied.map((m) => m.pos)).toEqual([11_000]);
    // The next burst's floor is past the first: what is below it is a duplicate and forgotten.
    const next = applyAll([mark(3, 20, 0, 20_000), mark(3, 20, 1, 20_000)], again.received);
    expect(next.applied).toHaveLength(2);
    expect(next.received?.['3']).toEqual([20_000, 20_000, 20_001]);
    expect(applyAll([mark(3, 12, 0, 10_000), mark(3, 20, 1, 20_000)], next.received).applied).toEqual([]);
    // Another partition's places are its own.
    expect(applyAll([mark(4, 12, 0, 12_000, 'acct.z9')], next.received).applied).toHaveLength(1);
  });

  it('never raises a floor above what the sender declared: a send refused while later ones were stored is applied when it comes (F2)', () => {
    // s0 refused by a full stream, the 70 after it stored; every one declares the floor s0.
    const later = Array.from({ length: 70 }, (_, n) => mark(3, 100 + n, 0, placeOf(99, 0)));
    const first = applyAll(later);
    expect(first.applied).toHaveLength(70);
    expect(first.received?.['3']?.[0]).toBe(placeOf(99, 0));
    expect(first.received?.['3']).toHaveLength(1 + MAX_PLACES);
    // Before: past 64 places the floor rose to the oldest kept (133000): s0 was skipped, lost.
    expect(applyAll([mark(3, 99, 0, placeOf(99, 0))], first.received).applied).toHaveLength(1);
  });

  it('keeps the floors of two committers of one partition apart', () => {
    // Unit 3@b (another service reading partition 3) has a send waiting at 100000; unit 3 declares 150000.
    const other = applyAll([mark(3, 150, 0, placeOf(150, 0), 'acct.x1')]);
    expect(applyAll([mark(3, 100, 0, placeOf(100, 0), 'cart.c1', '3@b')], other.received).applied).toHaveLength(1);
    expect(trustedSend({ id: id(9, 2), header: 'cart.c1 7000 3@b' }, salt, stream, PARTITIONS)).toEqual({ from: 'cart.c1', partition: 3, unit: '3@b', pos: 9002, floor: 7000 });
    expect(trustedSend({ id: id(9, 2), header: 'cart.c1 7000 3@b.c' }, salt, stream, PARTITIONS)).toBeUndefined();
  });

  it('keeps every sender partition, however many senders fan in (F3)', () => {
    // 300 senders in 2 partitions, one send each; then the first sender's send again, after the window.
    const senders = Array.from({ length: 300 }, (_, n) => `acct.s${n}`);
    const marks = senders.map((from, n) => mark(n % 2, 1000 + n, 0, placeOf(1000 + n, 0), from));
    const all = applyAll(marks);
    expect(all.applied).toHaveLength(300);
    expect(Object.keys(all.received ?? {}).sort()).toEqual(['0', '1']);
    // Before: 128 senders were kept (the least recently heard went): acct.s0's send was applied twice.
    expect(applyAll([marks[0] as SendMark, marks[1] as SendMark], all.received).applied).toEqual([]);
  });

  it('tells sends apart past seq 9e12, where seq * 1000 + i is no longer exact (F6)', () => {
    const seq = 9_007_199_254_741; // seq * 1000 > 2^53
    expect(placeOf(seq, 1)).toBe(`${seq}.1`);
    expect(comparePlaces(placeOf(seq, 0), placeOf(seq, 1))).toBeLessThan(0);
    expect(comparePlaces(placeOf(seq - 2, 999), placeOf(seq, 0))).toBeLessThan(0);
    const header = sendHeader('acct.a1', placeOf(seq, 0), '3');
    const s0 = trustedSend({ id: id(seq, 0), header }, salt, stream, PARTITIONS) as SendMark;
    const s1 = trustedSend({ id: id(seq, 1), header }, salt, stream, PARTITIONS) as SendMark;
    // Before: both were the number 9007199254741000 (9007199254741001 is not a double): s1 was skipped as s0's copy.
    const both = applyAll([s0, s1, s0]);
    expect(both.applied.map((m) => m.pos)).toEqual([`${seq}.0`, `${seq}.1`]);
    // The numbers of existing records still mean what they meant, and compare with the new form.
    expect(placeOf(9, 2)).toBe(9002);
    const mixed = applyAll([mark(3, seq, 5, 9002), mark(3, 9, 1, 9002), mark(3, 9, 3, 9002)], { '3': [9002, 9003] });
    expect(mixed.applied.map((m) => m.pos)).toEqual([`${seq}.5`]);
    expect(mixed.received?.['3']).toEqual([9002, 9003, `${seq}.5`]);
  });

  it('reads records of the per-sender form, and forgets such an entry once its partition floor passed it', () => {
    const p = partitionOf('acct', 'a1', PARTITIONS);
    const legacy: Received = { 'acct.a1': [10_000, 10_000, 12_000], 'acct.zz': [5000] };
    expect(applyAll([mark(p, 10, 0, 10_000), mark(p, 12, 0, 10_000)], legacy).applied).toEqual([]);
    expect(applyAll([mark(p, 9, 0, 9000)], legacy).applied).toEqual([]); // below its key's floor
    const on = applyAll([mark(p, 11, 0, 11_000)], legacy);
    expect(on.applied).toHaveLength(1);
    expect(on.received?.['acct.a1']).toEqual([10_000, 10_000, 12_000]);
    const past = applyAll([mark(p, 13, 0, 13_000)], on.received);
    expect(past.received?.['acct.a1']).toBeUndefined();
    expect(applyAll([mark(p, 12, 0, 10_000)], past.received).applied).toEqual([]); // below the partition's floor now
  });

  it('fits beside a state near the bound: old entries, then the oldest places, go first', () => {
    let received: Received | undefined = { 'acct.old': [1, 2, 3] };
    for (let p = 0; p < PARTITIONS; p++) for (let n = 0; n < 20; n++) received = withSend(received, mark(p, 1_000_000 + n, 0, placeOf(1_000_000, 0)), PARTITIONS);
    expect(fitReceived({ json: '"x"', received }, 64_512)).toBe(received);
    const big = fitReceived({ json: JSON.stringify('€'.repeat(21_000)), received }, 64_512);
    expect(JSON.stringify(big).length).toBeLessThanOrEqual(64_512 + 512 - 63_002);
    expect(big?.['acct.old']).toBeUndefined();
    // Every partition keeps its floor; places went.
    expect(Object.keys(big ?? {})).toHaveLength(PARTITIONS);
    for (const v of Object.values(big ?? {})) expect(v[0]).toBe(placeOf(1_000_000, 0));
  });
});

const send = (seq: number, i: number, to: string): StoredSend => ({ id: id(seq, i), subject: `actors.acct.${to}.deposit`, seq });
const full = Object.assign(new Error('full'), { full: true });
const isFull = (err: unknown) => (err as { full?: boolean }).full === true;

describe('the order a partition publishes its sends in', () => {
  it('publishes a waiting outbox one send at a time and stops at the first refusal (F2)', async () => {
    const waiting: Outbox = { key: 'acct.a1', sends: [send(5, 0, 'b1'), send(6, 0, 'b1'), send(7, 0, 'b1')], waiting: true };
    const calls: string[] = [];
    let room = 1;
    const publish = (s: StoredSend) => {
      calls.push(s.id);
      // The stream has room for one send: the second is refused, the third is never tried.
      return room-- > 0 ? Promise.resolve() : Promise.reject(full);
    };
    const fatal = await publishOutboxes([waiting], { unit: '3', cap: placeOf(20, 0), waitingUntil: Infinity }, publish, isFull);
    expect(fatal).toBeUndefined();
    expect(calls).toEqual([id(5, 0), id(6, 0)]);
    expect(waiting.sends.map((s) => s.seq)).toEqual([6, 7]);
    expect(waiting.full).toBe(true);
  });

  it('declares a floor at or below every unacknowledged send of the partition, and at most 64 sends to one receiver a round', async () => {
    const stuck: Outbox = { key: 'acct.a1', sends: [send(5, 0, 'b1')], waiting: true };
    const busy: Outbox = { key: 'acct.a2', sends: Array.from({ length: 150 }, (_, n) => send(10 + n, 0, 'b1')), waiting: false };
    const other: Outbox = { key: 'acct.a3', sends: [send(300, 0, 'c1')], waiting: false };
    const seen: Array<{ seq: number; header: string }> = [];
    const publish = (s: StoredSend, header: string) => {
      seen.push({ seq: s.seq, header });
      return s.seq === 5 ? Promise.reject(full) : Promise.resolve();
    };
    await publishOutboxes([busy, stuck, other], { unit: '3', cap: placeOf(301, 0), waitingUntil: Infinity }, publish, isFull);
    // The waiting send goes first; it is refused, so every later send declares its place (5000) at most.
    expect(seen[0]?.seq).toBe(5);
    expect(seen.filter((x) => x.seq !== 5).every((x) => x.header === 'acct.a2 5000 3' || x.header === 'acct.a3 5000 3')).toBe(true);
    expect(seen.filter((x) => x.seq >= 10 && x.seq < 300)).toHaveLength(150);
    expect(stuck.sends).toHaveLength(1);

    // Nothing refused: each round of 64 to b1 declares the first unacknowledged send, so b1's places above a floor stay within 64.
    const again: Outbox = { key: 'acct.a2', sends: Array.from({ length: 150 }, (_, n) => send(10 + n, 0, 'b1')), waiting: false };
    const headers: string[] = [];
    await publishOutboxes([again], { unit: '3', cap: placeOf(200, 0), waitingUntil: Infinity }, (_s, h) => (headers.push(h), Promise.resolve()), isFull);
    expect([...new Set(headers)]).toEqual(['acct.a2 10000 3', 'acct.a2 74000 3', 'acct.a2 138000 3']);
    let received: Received | undefined;
    for (const [n, h] of headers.entries()) {
      const m = trustedSend({ id: id(10 + n, 0), header: h }, salt, stream, PARTITIONS) as SendMark;
      expect(isDuplicateSend(received, m)).toBe(false);
      received = withSend(received, m, PARTITIONS);
      expect((received['3']?.length ?? 0) - 1).toBeLessThanOrEqual(MAX_PLACES);
    }
    expect(again.sends).toEqual([]);
  });

  it('never declares a floor above the cap: sends of operations not yet folded may wait below it', async () => {
    const o: Outbox = { key: 'acct.a1', sends: [send(50, 0, 'b1')], waiting: true };
    const headers: string[] = [];
    await publishOutboxes([o], { unit: '3', cap: placeOf(41, 0), waitingUntil: Infinity }, (_s, h) => (headers.push(h), Promise.resolve()), isFull);
    expect(headers).toEqual(['acct.a1 41000 3']);
  });

  it('stops at the first failure other than a full stream and reports it', async () => {
    const o: Outbox = { key: 'acct.a1', sends: [send(5, 0, 'b1'), send(6, 0, 'b1')], waiting: false };
    const boom = new Error('timeout');
    const fatal = await publishOutboxes([o], { unit: '3', cap: placeOf(7, 0), waitingUntil: Infinity }, (s) => (s.seq === 5 ? Promise.reject(boom) : Promise.resolve()), isFull);
    expect(fatal).toBe(boom);
    expect(o.sends.map((s) => s.seq)).toEqual([5]);
  });
});
