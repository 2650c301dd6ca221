/** Reading the last value of every key under a prefix of a KV bucket, leaving no consumer behind. */
import { DeliverPolicy, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';

/** The server removes the consumer of a scan abandoned mid-read (its process died) after this, in ms. */
const SCAN_INACTIVE_MS = 30_000;

/**
 * Calls `each` with the last message of every key of `bucket` under `prefix` (`<prefix>.>`),
 * with the key's part after the prefix and whether it is a delete or purge marker. The ordered
 * consumer is deleted once read: nats.js's ordered consumers (and `kv.keys()`) are otherwise
 * kept by the server for 5 minutes after their last pull.
 */
export async function scanLastValues(js: JetStreamClient, bucket: string, prefix: string, each: (rest: string, deleted: boolean, m: JsMsg) => void): Promise<void> {
  const subjectPrefix = `$KV.${bucket}.${prefix}.`;
  const consumer = await js.consumers.get(`KV_${bucket}`, { filter_subjects: `${subjectPrefix}>`, deliver_policy: DeliverPolicy.LastPerSubject, inactive_threshold: SCAN_INACTIVE_MS });
  try {
    let pending = (await consumer.info(true)).num_pending;
    while (pending > 0) {
      const it = await consumer.fetch({ max_messages: Math.min(pending, 4096), expires: 5000 });
      let got = 0;
      for await (const m of it) {
        got++;
        pending = m.info.pending;
        const op = m.headers?.get('KV-Operation');
        each(m.subject.slice(subjectPrefix.length), op === 'DEL' || op === 'PURGE', m);
        if (pending === 0) break;
      }
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
