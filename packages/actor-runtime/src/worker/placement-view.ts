/**
 * What a worker reads of the placement: the live members with their lanes and types, the
 * registered lanes, which lane applies which type, and the partitions the lane's assignment
 * gives this worker. Each is computed again only when its inputs change.
 */
import type { ControlView } from '../ownership/control-view.js';
import { Placement, type LiveMember } from '../ownership/placement.js';
import { desiredLanePartitions, liveMembers } from '../ownership/reconcile.js';
import type { MemberRecord } from '../store/records.js';

/** This worker as the placement sees it. */
export interface PlacementSelf {
  id: string;
  lane: string;
  types: Record<string, number>;
  partitions: number;
  leaseTtlMs: number;
  /** True while the worker leaves. */
  stopping(): boolean;
  /** Owned partitions whose processor waits for a newer version of a type. */
  waiting(): number[];
  /** Owned partitions. */
  owned(): number[];
}

/** The placement as one worker computes it from its control view. */
export class PlacementView {
  private placementCache: { at: number; placement: Placement } | null = null;
  private desiredCache: { key: string; want: Set<number> } | null = null;

  constructor(
    private readonly view: ControlView,
    private readonly self: PlacementSelf,
  ) {}

  /** Forgets the placement computed last (the control view changed). */
  invalidate(): void {
    this.placementCache = null;
  }

  /** The live members, each with its lane and hosted types (this worker as it is, unless leaving). */
  liveMembers(): LiveMember[] {
    const { id: selfId, leaseTtlMs } = this.self;
    const live = liveMembers(this.view.members, this.view.serverNow(), leaseTtlMs, selfId, this.self.stopping());
    return live.map((id) => {
      if (id === selfId) return { id, lane: this.self.lane, types: this.self.types, waiting: this.self.waiting(), owned: this.self.owned() };
      const rec = this.view.members.get(id)?.value as MemberRecord | null | undefined;
      // A member of a version before lanes applies every type on the default lane's keys.
      return { id, lane: rec?.lane ?? 'default', types: rec?.types ?? {}, waiting: Array.isArray(rec?.waiting) ? rec.waiting : [], owned: Array.isArray(rec?.partitions) ? rec.partitions : [] };
    });
  }

  /** The registered lanes' ids, this worker's own included. */
  laneIds(): string[] {
    return [...new Set([...this.view.lanes.keys(), this.self.lane])];
  }

  /**
   * Which lane applies which type, from the live members, the registered lanes and the type
   * registry; computed again after each change of the control view, and at least every 200 ms
   * (liveness is judged on the clock).
   */
  now(): Placement {
    const now = performance.now();
    if (this.placementCache && now - this.placementCache.at < 200) return this.placementCache.placement;
    const placement = new Placement(this.liveMembers(), this.view.lanes.values(), this.view.registry);
    this.placementCache = { at: now, placement };
    return placement;
  }

  /**
   * The partitions the lane's assignment gives this worker, computed again only when what it
   * depends on changed: reconcile runs at every change the control view sees (each lease
   * renewal of every service), and at 512 partitions the assignment was most of an idle
   * worker's CPU.
   */
  desired(): Set<number> {
    const stopping = this.self.stopping();
    const lane = this.liveMembers().filter((m) => m.lane === this.self.lane);
    const key = JSON.stringify([stopping, lane]);
    if (this.desiredCache?.key === key) return this.desiredCache.want;
    const want = desiredLanePartitions(this.self.partitions, lane, this.self.id, stopping);
    this.desiredCache = { key, want };
    return want;
  }
}
