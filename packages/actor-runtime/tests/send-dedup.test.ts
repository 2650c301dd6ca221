import { describe, expect, it } from 'vitest';
import { sendMsgId } from '../src/processing/effects.js';
import { fitReceived, isDuplicateSend, MAX_SENDERS, sendHeader, trustedSend, withSend, type Received, type SendMark } from '../src/processing/send-dedup.js';

const salt = 'salt_1';
const stream = 1765000000000;
const id = (seq: number, i: number) => `$s.${salt}.${stream}.${seq}.${i}`;
const mark = (from: string, seq: number, i: number, floor: number): SendMark => ({ from, pos: seq * 1000 + i, floor });

function applyAll(marks: SendMark[], received?: Received): { applied: SendMark[]; received: Received | undefined } {
  const applied: SendMark[] = [];
  for (const m of marks) {
    if (isDuplicateSend(received, m)) continue;
    applied.push(m);
    received = withSend(received, m);
  }
  return { applied, received };
}

describe('send de-duplication at the receiver', () => {
  it('trusts only the runtime msg id of this salt and stream, with a well-formed header', () => {
    const header = sendHeader('acct.a1', [{ id: id(7, 0), subject: 'actors.acct.b1.deposit', seq: 7 }]);
    expect(header).toBe('acct.a1 7000');
    expect(trustedSend({ id: id(9, 2), header }, salt, stream)).toEqual({ from: 'acct.a1', pos: 9002, floor: 7000 });
    expect(trustedSend({ id: `$s.other.${stream}.9.2`, header }, salt, stream)).toBeUndefined();
    expect(trustedSend({ id: `$s.${salt}.1.9.2`, header }, salt, stream)).toBeUndefined();
    expect(trustedSend({ id: id(9, 2), header: 'acct.a1 99999' }, salt, stream)).toBeUndefined(); // floor above the send
    expect(trustedSend({ id: id(9, 2), header: 'a.b.c 1' }, salt, stream)).toBeUndefined();
    expect(trustedSend({ id: `${id(9, 2)}.3`, header }, salt, stream)).toBeUndefined();
  });

  it('trusts an id made with the salt (an HMAC) and, across an upgrade, one that holds the salt itself', () => {
    const header = 'acct.a1 7000';
    const made = sendMsgId(salt, stream, 9, 2);
    expect(trustedSend({ id: made, header }, salt, stream)).toEqual({ from: 'acct.a1', pos: 9002, floor: 7000 });
    // The older version's id of the same send (left in an outbox, or stored before the upgrade) is the same send.
    expect(trustedSend({ id: id(9, 2), header }, salt, stream)).toEqual({ from: 'acct.a1', pos: 9002, floor: 7000 });
    // A mac made with another salt, or moved to another place, or of another stream: forged.
    expect(trustedSend({ id: sendMsgId('guess', stream, 9, 2), header }, salt, stream)).toBeUndefined();
    expect(trustedSend({ id: made.replace('.9.2', '.9.3'), header }, salt, stream)).toBeUndefined();
    expect(trustedSend({ id: made.replace('.9.2', '.09.2'), header }, salt, stream)).toBeUndefined();
    expect(trustedSend({ id: sendMsgId(salt, stream + 1, 9, 2), header }, salt, stream)).toBeUndefined();
  });

  it('applies each send once, however late its copies come, and fills a gap', () => {
    // s1, s3 stored, s2 refused; then the outbox s1..s3 is published again (floor s1), then again much later.
    const first = applyAll([mark('acct.a1', 10, 0, 10_000), mark('acct.a1', 12, 0, 10_000)]);
    const again = applyAll([mark('acct.a1', 10, 0, 10_000), mark('acct.a1', 11, 0, 10_000), mark('acct.a1', 12, 0, 10_000)], first.received);
    expect(again.applied.map((m) => m.pos)).toEqual([11_000]);
    // The next burst's floor is past the first: what is below it is a duplicate and forgotten.
    const next = applyAll([mark('acct.a1', 20, 0, 20_000), mark('acct.a1', 20, 1, 20_000)], again.received);
    expect(next.applied).toHaveLength(2);
    expect(next.received?.['acct.a1']).toEqual([20_000, 20_000, 20_001]);
    expect(applyAll([mark('acct.a1', 12, 0, 10_000), mark('acct.a1', 20, 1, 20_000)], next.received).applied).toEqual([]);
    // Another sender's places are its own.
    expect(applyAll([mark('acct.z9', 12, 0, 12_000)], next.received).applied).toHaveLength(1);
  });

  it('keeps the most recently heard senders, and fits beside a state near the bound', () => {
    let received: Received | undefined;
    for (let i = 0; i < MAX_SENDERS + 10; i++) received = withSend(received, mark(`acct.s${i}`, 100 + i, 0, (100 + i) * 1000));
    const senders = Object.keys(received ?? {});
    expect(senders).toHaveLength(MAX_SENDERS);
    expect(senders[0]).toBe('acct.s10');
    const small = fitReceived({ json: '"x"', received }, 64_512);
    expect(small).toBe(received);
    const big = fitReceived({ json: JSON.stringify('€'.repeat(21_000)), received }, 64_512);
    expect(JSON.stringify(big).length).toBeLessThanOrEqual(64_512 + 512 - 63_002);
    expect(Object.keys(big ?? {}).at(-1)).toBe(`acct.s${MAX_SENDERS + 9}`);
  });
});
