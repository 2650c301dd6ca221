import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';

/** The parts of a stored operation subject `<p>.<prefix>.<type>.<key>.<op>`, or null. */
function parseStored(subject: string): { type: string; key: string; op: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 5) return null;
  return { type: parts[2]!, key: parts[3]!, op: parts[4]! };
}

/** One operation to publish. */
export interface Op {
  key: string;
  op: 'add' | 'reset';
  value?: number;
}

/**
 * Random add (1..9) and reset operations over `keys` keys. Resets are rare by default
 * (`resetRatio` 0.02): a reset hides every earlier double apply of its key, so a test that
 * must catch one needs long runs of adds.
 */
export function randomOps(count: number, keys: number, rnd: () => number = Math.random, prefix = 'k', resetRatio = 0.02): Op[] {
  return Array.from({ length: count }, () => {
    const key = `${prefix}${Math.floor(rnd() * keys)}`;
    return rnd() < resetRatio ? { key, op: 'reset' as const } : { key, op: 'add' as const, value: 1 + Math.floor(rnd() * 9) };
  });
}

/** A small deterministic PRNG (mulberry32), so failures can be reproduced. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Publishes with JetStream acks, `window` in flight at a time; returns the highest seq per key. */
export async function publishOps(
  js: JetStreamClient,
  type: string,
  ops: readonly Op[],
  window = 500,
  prefix = 'actors',
  lastSeq: Map<string, number> = new Map(),
): Promise<Map<string, number>> {
  let i = 0;
  const enc = new TextEncoder();
  const workerLoop = async () => {
    while (i < ops.length) {
      const o = ops[i++]!;
      const data = o.value === undefined ? new Uint8Array(0) : enc.encode(String(o.value));
      const ack = await js.publish(`${prefix}.${type}.${o.key}.${o.op}`, data);
      lastSeq.set(o.key, Math.max(lastSeq.get(o.key) ?? 0, ack.seq));
    }
  };
  await Promise.all(Array.from({ length: window }, workerLoop));
  return lastSeq;
}

/** Reads the whole stream in order and folds each counter key's operations: the expected states. */
export async function replayCounters(js: JetStreamClient, jsm: JetStreamManager, stream: string, type = 'counter'): Promise<Map<string, number>> {
  const info = await jsm.streams.info(stream);
  const last = info.state.last_seq;
  const expected = new Map<string, number>();
  if (info.state.messages === 0) return expected;
  const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  for await (const m of messages) {
    const s = parseStored(m.subject);
    if (s && s.type === type) {
      const cur = expected.get(s.key) ?? 0;
      if (s.op === 'reset') expected.set(s.key, 0);
      else if (s.op === 'add') {
        const text = m.string().trim();
        let v: unknown;
        try {
          v = text === '' ? 1 : (JSON.parse(text) as unknown);
        } catch {
          v = undefined; // poison: the worker leaves the state unchanged
        }
        const n = typeof v === 'number' ? v : typeof v === 'object' && v && 'value' in v ? (v as { value: number }).value : NaN;
        if (Number.isSafeInteger(n) && Number.isSafeInteger(cur + n)) expected.set(s.key, cur + n);
        else expected.set(s.key, cur);
      }
    }
    if (m.seq >= last) break;
  }
  messages.stop();
  return expected;
}
