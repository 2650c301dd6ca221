/**
 * Subject bindings: actors fed by any NATS subject. An actor type that declares
 * `subscribe: [{ subject: 'devices.*.telemetry', key: 1, op: 'reading' }]` gets, per binding,
 * a capture stream `<stream>_BIND_<type>_<hash of the subject>` that listens on the subject and
 * stores each message as `<prefix>.<type>.<key token>.<op>` (a stream subject transform), and a
 * position in the control bucket (`bindings.pos.<capture>`). The worker that owns the capture's
 * partition moves its messages into the operations stream (processing/binding-mover.ts), whose
 * partition transform stores each as `<p>.<prefix>.<type>.<key>.<op>` with the partition of its
 * actor, so the worker reads it like any other operation.
 *
 * Until issue 18 the operations stream sourced the capture streams (nats-server's sourcing). That
 * de-duplicated bound messages by the publisher's `Nats-Msg-Id` against every other publisher's
 * (a collision stalled the binding on 2.10, dropped the message on 2.15) and, on 2.10, resumed a
 * source where a forged `Nats-Stream-Source` header on a direct publish said. Provisioning takes
 * such sources off the operations stream and starts their movers where the sourcing ended.
 *
 * Why one capture stream per binding with the transform on it: a changed key or op is an update
 * of the capture's transform, taking effect for the next captured message, and the position (a
 * capture sequence) is untouched.
 *
 * A removed binding's capture stream is parked (it stops listening: its only subject becomes its
 * own name), never deleted: what it still holds is moved, and its sequence numbers (which its
 * position refers to) survive for a later return of the binding.
 */
import type { Logger } from 'pino';
import type { AnyActorDefinition, SubjectBinding } from '../definition/define-actor.js';
import { handOverSources } from './binding-handover.js';
import { ensurePosition, handoversUnfinished, positionedCaptures } from './binding-positions.js';
import { withLock } from './bindings-lock.js';
import { checkBindings, isAnyCapture, isCaptureOf } from './capture-names.js';
import { captureConfig, ensureCapture, park } from './capture-streams.js';
import type { Topology } from './provision.js';
import type { TopologyOptions } from './topology-options.js';

/** One provisioned binding: messages on `subject` become operation `op` of actor `<type>.<token key>`. */
export interface ProvisionedBinding extends SubjectBinding {
  type: string;
  /** The capture stream that listens on `subject`. */
  stream: string;
}

/** What {@link provisionBindings} did. */
export interface BindingsResult {
  /** The bindings of the hosted types, each with its capture stream. */
  bindings: ProvisionedBinding[];
  /** Capture streams of hosted types whose binding is gone: they no longer listen. */
  parked: string[];
}

/** Options of {@link provisionBindings}. */
export interface ProvisionBindingsOptions {
  /** Who holds the provisioning lock (a worker id); shown to the others while they wait. */
  owner: string;
  /** Logger for what was created, updated and parked. */
  log?: Logger;
  /** How long to wait for another process's provisioning, ms. Default 30000. */
  lockTimeoutMs?: number;
}
/**
 * Provisions the subject bindings of the hosted actor types (idempotent; safe to run from
 * several workers at once): refuses bindings that overlap each other or the runtime's subjects,
 * creates or updates each binding's capture stream (one that overlaps another stream is refused
 * with a {@link ConfigError} naming that stream and its subject), gives each a position in the
 * control bucket (`bindings.pos.<capture>`, from the capture's first message), which the worker
 * owning the capture's partition moves on (processing/binding-mover.ts), and parks the capture
 * streams of the hosted types' removed bindings. Capture streams that the operations stream still
 * sources (a deployment made before the movers) are taken off its sources and get a position where
 * the sourcing ended. A worker whose types have no bindings, and never had, makes one stream info
 * request and one key listing; one whose capture streams are as they should be, also one info
 * request per capture stream and a lock round trip in the control bucket.
 */
export async function provisionBindings(
  topo: Pick<Topology, 'jsm' | 'control'> & Partial<Pick<Topology, 'nc'>>,
  opts: TopologyOptions,
  actors: readonly AnyActorDefinition[],
  po: ProvisionBindingsOptions,
): Promise<BindingsResult> {
  const { names } = opts;
  const { jsm, control } = topo;
  const wanted = checkBindings(names, actors).map(({ type, b }) => ({ type, b, config: captureConfig(opts, type, b) }));
  const sourced = async () => {
    const config = (await jsm.streams.info(names.stream)).config;
    return { config, captures: (config.sources ?? []).map((s) => s.name).filter((n) => isAnyCapture(names, n)) };
  };
  const stale = (captures: string[]) => captures.filter((n) => actors.some((d) => isCaptureOf(names, d.type, n)) && !wanted.some((w) => w.config.name === n));
  if (wanted.length === 0 && (await sourced()).captures.length === 0 && stale(await positionedCaptures(control)).length === 0 && (await handoversUnfinished(control)).length === 0) {
    return { bindings: [], parked: [] };
  }
  return withLock(control, po.owner, po.lockTimeoutMs ?? 30_000, async () => {
    const created = new Map<string, number>();
    for (const w of wanted) created.set(w.config.name, await ensureCapture(jsm, w, w.config, po.log));
    const { config, captures } = await sourced();
    const unfinished = await handoversUnfinished(control);
    const handOver = [...new Set([...captures, ...unfinished])];
    if (handOver.length > 0) await handOverSources(topo, opts, config, handOver, po.log);
    for (const w of wanted) await ensurePosition(control, w.config.name, created.get(w.config.name) as number);
    const parked: string[] = [];
    for (const n of stale(await positionedCaptures(control))) if (await park(jsm, n, po.log)) parked.push(n);
    return { bindings: wanted.map((w) => ({ type: w.type, ...w.b, stream: w.config.name })), parked };
  });
}
