/** The sends an operation returns, checked before its outcome is taken. */
import type { StoredSend } from '../store/records.js';
import { invalidSend, MAX_SENDS_PER_OPERATION } from '../effects/effect-limits.js';
import { inputJson, target, type EffectOrigin } from '../effects/effects.js';
import { sendMsgId } from './msg-ids.js';

/** The sends of an outcome, each with its deterministic {@link sendMsgId}. */
export function sendsOf(raw: unknown, origin: EffectOrigin, env: { salt: string; stream: number; subjectPrefix: string; maxStateBytes: number; maxSendBytes?: number }): StoredSend[] {
  // A send is an operation like any other: the stream takes no larger input (nor may the record hold one).
  const maxBytes = Math.min(env.maxStateBytes, env.maxSendBytes ?? Infinity);
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw invalidSend('send must be an array of { type, key, op, input }');
  if (raw.length > MAX_SENDS_PER_OPERATION) throw invalidSend(`an operation may send at most ${MAX_SENDS_PER_OPERATION} operations, got ${raw.length}`);
  return (raw as unknown[]).map((s, i) => {
    if (typeof s !== 'object' || s === null) throw invalidSend(`send[${i}] must be an object { type, key, op, input }`);
    const t = target(s, origin, invalidSend, `send[${i}]`);
    const input = inputJson((s as { input?: unknown }).input, invalidSend, `send[${i}]`, maxBytes);
    return {
      id: sendMsgId(env.salt, env.stream, origin.seq, i),
      subject: `${env.subjectPrefix}.${t.type}.${t.key}.${t.op}`,
      ...(input !== undefined ? { input } : {}),
      seq: origin.seq,
    };
  });
}
