/** Which binding captures a worker moves (processing/binding-movers.ts): those of its owned partitions whose type its lane is home to. */
import type { ActorNames } from '../protocol/index.js';
import { mayWrite, type Owned } from '../ownership/leases.js';
import type { Placement } from '../ownership/placement.js';
import { captureType } from '../store/capture-names.js';

/**
 * The owner state of partition `p` while this worker may move `capture` for it (lease held,
 * its lane the home of the capture's type), else undefined.
 */
export function bindingOwner(w: { owned(): ReadonlyMap<number, Owned>; stopping(): boolean; placement(): Placement; names: ActorNames; lane: string }) {
  return (p: number, capture: string): { token: unknown; guard: () => boolean } | undefined => {
    const o = w.owned().get(p);
    // The lease is what counts, not the processor: a processor restarting after a failure
    // (a server restart) does not stop its partition's bindings.
    if (!o || o.releasing || w.stopping()) return undefined;
    // Every lane owns every partition: one lane moves a capture, the home of its type (or, while
    // no live lane hosts the type, the lane that dead-letters strays; the type then waits in the stream).
    const placement = w.placement();
    const type = captureType(w.names, capture);
    if ((type !== undefined ? (placement.homes.get(type) ?? placement.strayLane) : placement.strayLane) !== w.lane) return undefined;
    return { token: o, guard: () => !o.releasing && mayWrite(o, w.owned().get(p)) };
  };
}
