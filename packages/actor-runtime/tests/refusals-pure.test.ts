/**
 * Which failed operations are dead letters, decided in the fold (pure): a handler's
 * deliberate ActorError is a refusal (an outcome: answered and kept, no dead letter); bad
 * input, a throw that is no ActorError, an unstorable state and a refused send are not.
 */
import { describe, expect, it } from 'vitest';
import { ActorError, defineActor, InvalidInputError, Type, type AnyActorDefinition } from '../src/index.js';
import type { DecodedOp } from '../src/processing/decode.js';
import { foldKey } from '../src/processing/fold.js';
import type { FoldEnv } from '../src/processing/key-fold.js';
import type { CachedRecord } from '../src/processing/record-cache.js';

const wallet = defineActor({
  type: 'wallet',
  initialState: () => ({ balance: 0 }),
  operations: {
    add: { input: Type.Integer(), handler: (s, n) => ({ state: { balance: s.balance + n }, result: s.balance + n }) },
    take: {
      input: Type.Integer(),
      handler: (s, n) => {
        if (s.balance < n) throw new ActorError('INSUFFICIENT_FUNDS', `balance ${s.balance} is less than ${n}`);
        return { state: { balance: s.balance - n }, result: s.balance - n };
      },
    },
    crash: () => {
      throw new Error('boom');
    },
    checkOwn: () => {
      throw new InvalidInputError('the handler found the input wrong');
    },
    huge: (s) => ({ state: { ...s, pad: 'x'.repeat(2000) }, result: null }),
  },
});

const env: FoldEnv = { actors: new Map<string, AnyActorDefinition>([[wallet.type, wallet]]), maxStateBytes: 1000, salt: 's', stream: 1, partitions: 32, subjectPrefix: 'actors' };
const enc = new TextEncoder();
const base = (): CachedRecord => ({ json: null, seq: 0, revision: 0, partition: 0 });

function op(seq: number, name: string, input?: unknown, extra: Partial<DecodedOp> = {}): DecodedOp {
  return {
    valid: true,
    seq,
    type: 'wallet',
    key: 'w1',
    op: name,
    subject: `0.actors.wallet.w1.${name}`,
    data: input === undefined ? new Uint8Array(0) : enc.encode(JSON.stringify(input)),
    time: 0,
    reply: undefined,
    hasMsgId: false,
    ...extra,
  };
}

describe('refusals and dead letters in the fold', () => {
  it("marks only a handler's own ActorError as a refusal", () => {
    const f = foldKey(base(), [op(1, 'take', 5), op(2, 'take', 'x'), op(3, 'crash'), op(4, 'checkOwn'), op(5, 'huge'), op(6, 'nope')], env);
    expect(f.failures?.map((x) => ({ seq: x.op.seq, code: x.error.code, refusal: x.refusal === true }))).toEqual([
      { seq: 1, code: 'INSUFFICIENT_FUNDS', refusal: true },
      { seq: 2, code: 'INVALID_INPUT', refusal: false },
      { seq: 3, code: 'HANDLER_ERROR', refusal: false },
      { seq: 4, code: 'INVALID_INPUT', refusal: false },
      { seq: 5, code: 'STATE_TOO_LARGE', refusal: false },
      { seq: 6, code: 'UNKNOWN_OPERATION', refusal: false },
    ]);
    expect(f.dirty).toBe(false);
  });

  it('keeps a send its receiver refuses a dead letter (its sender committed; no caller hears of it)', () => {
    const send = { id: '$s.s.1.9.0', header: 'wallet.w0 0' };
    const f = foldKey(base(), [op(1, 'take', 5, { send })], env);
    expect(f.failures?.map((x) => ({ code: x.error.code, refusal: x.refusal === true }))).toEqual([{ code: 'INSUFFICIENT_FUNDS', refusal: false }]);
  });
});
