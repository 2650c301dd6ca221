/** The operations stream from the client's side: publishing to it (a full stream said as such) and its partition count. */
import { JetStreamApiError, type JetStreamClient, type JetStreamManager, type JetStreamPublishOptions, type PubAck } from '@nats-io/jetstream';
import { ActorError, ConfigError, ErrorCode } from '../protocol/index.js';
import { partitionsOfStream } from '../store/provision.js';

/** JetStream's "storing the message failed" (`JSStreamStoreFailedF`): with `discard: new`, the byte or message bound is reached. */
const JS_STREAM_STORE_FAILED = 10077;

/** Publishes to the operations stream; a full stream is {@link ErrorCode.StreamFull} (retry later). */
export async function publishToStream(js: JetStreamClient, subject: string, data: Uint8Array, opts: Partial<JetStreamPublishOptions>): Promise<PubAck> {
  try {
    return await js.publish(subject, data, opts);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JS_STREAM_STORE_FAILED) {
      throw new ActorError(
        ErrorCode.StreamFull,
        `the operations stream is full (${err.message}): operations are refused until the workers catch up; retry later`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** The partition count of `stream` (from its subject transform). */
export async function streamPartitions(jsm: JetStreamManager, stream: string): Promise<number> {
  const info = await jsm.streams.info(stream);
  const p = partitionsOfStream(info.config);
  if (!p) throw new ConfigError(`stream ${stream} has no partition transform`);
  return p;
}
