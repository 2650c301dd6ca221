/** A worker's lane (service) in the control bucket: registered at start, its `seenAt` refreshed while it runs. */
import type { KV } from '@nats-io/kv';
import type { LaneRecord } from '../ownership/placement.js';
import { decodeJson, encodeJson } from '../store/records.js';
import { controlKeys } from '../protocol/index.js';

/** How often a live worker refreshes its lane's `seenAt`, ms. */
const LANE_SEEN_MS = 60_000;

/** The registration of one worker's lane. */
export class LaneRegistration {
  private seenAt = 0;

  constructor(
    private readonly lane: string,
    /** The hosted types and their versions. */
    private readonly types: Record<string, number>,
  ) {}

  /**
   * Registers the lane (`lanes.<id>`: its types and versions). A lane whose workers host
   * other types is refused while one of them is live: one lane, one set of types.
   */
  async register(control: KV): Promise<void> {
    const key = controlKeys.lane(this.lane);
    const entry = await control.get(key);
    const stored = entry && entry.operation === 'PUT' ? decodeJson<LaneRecord>(entry.value) : null;
    const same = stored !== null && JSON.stringify(stored.types) === JSON.stringify(this.types);
    if (same) return;
    // The newest version registered for each type stays (an older worker started after a newer
    // one, a rollback: operations only the newer version knows must keep waiting for it).
    const types: Record<string, number> = { ...this.types };
    for (const [t, v] of Object.entries(stored?.types ?? {})) if (t in types && typeof v === 'number' && v > (types[t] ?? 0)) types[t] = v;
    if (stored !== null && JSON.stringify(stored.types) === JSON.stringify(types)) return;
    const now = new Date().toISOString();
    const rec: LaneRecord = { id: this.lane, types, registeredAt: now, seenAt: now };
    await control.put(key, encodeJson(rec));
  }

  /** About once a minute, a live worker says in its lane's registration that the lane runs (`seenAt`: how long a service has been inactive). */
  async touch(control: KV | undefined): Promise<void> {
    if (!control || performance.now() - this.seenAt < LANE_SEEN_MS) return;
    this.seenAt = performance.now();
    try {
      const entry = await control.get(controlKeys.lane(this.lane));
      const stored = entry && entry.operation === 'PUT' ? decodeJson<LaneRecord>(entry.value) : null;
      if (!stored || !entry) return;
      await control.update(controlKeys.lane(this.lane), encodeJson({ ...stored, seenAt: new Date().toISOString() } satisfies LaneRecord), entry.revision);
    } catch {
      // Another worker of the lane touched it at the same time, or the bucket is away: next minute.
    }
  }
}
