/** The check, when a partition starts, that no operation after its checkpoint is gone from the stream. */
import type { Logger } from 'pino';
import { type ActorNames, controlKeys } from '../protocol/index.js';
import type { Topology } from '../store/provision.js';
import { decodeJson, type RetentionRecord } from '../store/records.js';

/**
 * Says loudly when operations between the checkpoint and the stream's first message are
 * gone without jetactor's retention loop having purged them (an operator's purge, limits
 * set by hand): they were never applied. Throws when the stream was recreated since the
 * topology was provisioned (the worker provisions again).
 */
export async function reportStreamGap(
  o: { topology: Topology; names: ActorNames; partition: number; log: Logger; onGap?: (info: { partition: number; checkpoint: number; firstSeq: number }) => void },
  checkpoint: number,
): Promise<void> {
  const { topology, names, partition, log } = o;
  const info = await topology.jsm.streams.info(names.stream);
  // A stream recreated since the topology was provisioned: fail, so the worker provisions again.
  if (Date.parse(info.created) !== topology.streamCreated) throw new Error(`stream ${names.stream} was recreated; provisioning again`);
  const firstSeq = info.state.first_seq;
  if (checkpoint + 1 >= firstSeq) return;
  const entry = await topology.control.get(controlKeys.retention);
  const purged = entry && entry.operation === 'PUT' ? decodeJson<RetentionRecord>(entry.value) : null;
  if (purged && purged.stream === topology.streamCreated && purged.purgedBelow >= firstSeq) return;
  log.error(
    { partition, checkpoint, firstSeq, lost: firstSeq - checkpoint - 1 },
    `OPERATIONS MAY BE LOST: partition ${partition} is checkpointed at ${checkpoint} but the stream starts at ${firstSeq}, and jetactor did not purge the operations in between`,
  );
  o.onGap?.({ partition, checkpoint, firstSeq });
}
