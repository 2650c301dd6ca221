/**
 * Moves what the subject bindings' capture streams hold into the operations stream.
 *
 * Why the worker and not nats-server's stream sourcing (issue 18): the operations stream
 * de-duplicated what it sourced by the bound message's own `Nats-Msg-Id`, against every
 * publisher's ids (a collision stalled the whole binding on 2.10.27 until the id left the
 * duplicate window, and dropped the acknowledged message on 2.15.1), and on 2.10 a direct
 * publish carrying a forged `Nats-Stream-Source` set where sourcing resumed. Here each captured
 * message is published to the operations stream with a msg id of the runtime's own,
 * `$b.<HMAC of capture, its creation time and seq, keyed with the salt>.<capture>.<capture seq>`
 * (the user's id de-duplicates only in the
 * capture stream), and the operations stream sources nothing, so no header of a publisher's can
 * move or stop a binding.
 *
 * One mover per capture stream, run by the owner of partition `partitionOf('', capture)` under its
 * lease (every publish passes the lease check). Its position, the capture seq below which
 * everything is stored in the operations stream, is the control key `bindings.pos.<capture>`,
 * written with CAS: a mover that loses it (another owner moved on) stops. It reads the capture with
 * an ordered consumer from position + 1 and publishes in capture order on one connection, at most
 * {@link WINDOW} at once and never two of one key (a capture binds one type and one op, so one
 * subject is one key): a publish the stream refuses (full, no answer) is retried, same id, until it
 * is stored, and nothing after it of that key goes first. So per key the order is the capture's,
 * and a full operations stream makes the mover wait (the capture keeps the messages), never drop.
 * After a crash the next owner publishes again from the last written position: the operations
 * stream drops what it already holds by the msg id (duplicate window, 2 minutes; the position is
 * written at least every {@link POSITION_EVERY_MS} while moving).
 */
import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { bindingPositionKey, FencedError, partitionOf, BOUND_MSG_ID_PREFIX } from '../protocol/index.js';
import { isLostCas } from '../ownership/leases.js';
import type { BindingPosition } from '../store/binding-positions.js';
import type { Topology } from '../store/provision.js';
import { saltedMac } from '../store/salt.js';
import { decodeJson, encodeJson } from '../store/records.js';
import { ackedPublisherOf } from './acked-publisher.js';
import { keptHeaders, publishUntilStored, Stopped } from './binding-publish.js';

/** Publishes of one mover awaiting their ack at most. */
const WINDOW = 1024;
/** Messages asked of the capture stream per pull. */
const FETCH = 1024;
/** While messages move, the position is written at least this often (ms). */
const POSITION_EVERY_MS = 200;

/** The partition whose owner moves `capture`. */
export function moverPartition(capture: string, partitions: number): number {
  return partitionOf('', capture, partitions);
}

/** The `Nats-Msg-Id` a moved message carries in the operations stream. */
export function boundMsgId(salt: string, capture: string, created: number, seq: number): string {
  // An HMAC keyed with the salt, as sends' and firings' ids: a publisher that reads `actors.>`
  // learns nothing that lets it forge a later bound message's id (which would drop it as a duplicate).
  return `${BOUND_MSG_ID_PREFIX}${saltedMac(salt, ['$b', capture, String(created), String(seq)], 22)}.${capture}.${seq}`;
}

interface Pending {
  seq: number;
  done: Promise<void>;
  settled: boolean;
}

/** Moves one capture stream while its partition is owned; see the module comment. */
export class BindingMover {
  private stopped = false;
  private stopRequested = false;
  /** It ended by an error (not by {@link stop}). */
  failed = false;
  private readonly pending: Pending[] = [];
  private readonly lastOfKey = new Map<string, Pending>();
  private stopFetch: (() => void) | null = null;
  /** Every capture message up to this seq is stored in the operations stream. */
  private moved = 0;
  /** Resolves when the mover has stopped (never rejects). */
  readonly done: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly topology: Topology,
    readonly capture: string,
    /** True while this worker may write for the mover's partition (its lease check). */
    private readonly guard: () => boolean,
    private readonly log: Logger,
  ) {
    this.done = this.run()
      .catch((err: unknown) => {
        if (err instanceof Stopped || this.stopRequested) return;
        this.failed = true;
        this.log.warn({ capture, err: String(err) }, 'binding mover stopped; it starts again later');
      })
      .finally(() => {
        // However it ended (also before it read anything): not running, so the next check replaces it.
        this.stopped = true;
      });
  }

  get running(): boolean {
    return !this.stopped;
  }

  /** Stops moving (publishes in flight are left to the stream's de-duplication) and waits for it. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.stopped = true;
    this.stopFetch?.();
    await this.done;
  }

  private check(): void {
    if (this.stopped) throw new Stopped();
    if (!this.guard()) {
      this.stopped = true;
      throw new FencedError(`binding mover of ${this.capture}: lease not held`);
    }
  }

  private async run(): Promise<void> {
    const { control, jsm, js } = this.topology;
    const key = bindingPositionKey(this.capture);
    const entry = await control.get(key);
    if (!entry || entry.operation !== 'PUT') throw new Error(`no position for ${this.capture} in the control bucket (provisioning writes it)`);
    let rev = entry.revision;
    const pos = decodeJson<BindingPosition>(entry.value) as BindingPosition;
    if (pos.handover) throw new Error(`${this.capture} is being handed over from the operations stream's sourcing (provisioning)`);
    const created = Date.parse((await jsm.streams.info(this.capture)).created);
    let written = pos.seq;
    if (pos.created !== created) {
      // The capture stream was recreated: its sequence starts again.
      written = 0;
      rev = await control.update(key, encodeJson({ stream: this.capture, created, seq: 0, updatedAt: new Date().toISOString() }), rev);
    }
    this.moved = written;
    let lastWrite = performance.now();
    const writePosition = async (force: boolean) => {
      this.advance();
      const moved = this.moved;
      if (moved <= written || (!force && performance.now() - lastWrite < POSITION_EVERY_MS)) return;
      this.check();
      const value: BindingPosition = { stream: this.capture, created, seq: moved, updatedAt: new Date().toISOString() };
      try {
        rev = await control.update(key, encodeJson(value), rev);
      } catch (err) {
        if (isLostCas(err)) {
          this.stopped = true;
          throw new FencedError(`binding mover of ${this.capture}: its position was moved by another worker`);
        }
        throw err;
      }
      written = moved;
      lastWrite = performance.now();
    };
    const consumer = await js.consumers.get(this.capture, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: written + 1 });
    this.log.debug({ capture: this.capture, from: written + 1 }, 'binding mover started');
    const publisher = ackedPublisherOf(this.nc);
    try {
      while (!this.stopped) {
        const batch = await consumer.fetch({ max_messages: FETCH, expires: 1000 });
        this.stopFetch = () => void batch.stop();
        let got = 0;
        for await (const m of batch) {
          got++;
          this.check();
          await this.move(m, publisher, created);
          await writePosition(false);
        }
        this.stopFetch = null;
        if (this.stopped) break;
        // The next pull goes out at once, while this one's publishes are acknowledged; idle (a
        // pull that found nothing), what was stored is written now.
        if (got > 0) continue;
        await Promise.all(this.pending.map((p) => p.done));
        await writePosition(true);
      }
    } finally {
      this.stopped = true;
      await consumer.delete().catch(() => undefined);
    }
  }

  /** Takes settled publishes off the front: every capture message up to {@link moved} is stored. */
  private advance(): void {
    while (this.pending.length > 0 && (this.pending[0] as Pending).settled) this.moved = (this.pending.shift() as Pending).seq;
  }

  private async move(m: JsMsg, publisher: ReturnType<typeof ackedPublisherOf>, created: number): Promise<void> {
    const subject = m.subject;
    // Never two publishes of one key at once: a refused one is retried before the next goes.
    const before = this.lastOfKey.get(subject);
    if (before && !before.settled) await before.done;
    this.check();
    while (this.pending.length >= WINDOW) {
      await (this.pending[0] as Pending).done;
      this.check();
      this.advance();
    }
    const data = m.data.length === 0 ? new Uint8Array(0) : new Uint8Array(m.data);
    const headers = keptHeaders(m);
    const msgId = boundMsgId(this.topology.salt, this.capture, created, m.seq);
    const p: Pending = { seq: m.seq, done: Promise.resolve(), settled: false };
    p.done = publishUntilStored(publisher, subject, data, { msgId, headers, guard: this.guard }, { capture: this.capture, log: this.log, stopped: () => this.stopped }).then(
      () => {
        p.settled = true;
      },
      (err: unknown) => {
        // Stopped or fenced: the mover ends; the position stays below this message (never settled).
        this.stopped = true;
        this.stopFetch?.();
        if (!(err instanceof Stopped) && !(err instanceof FencedError)) this.log.warn({ capture: this.capture, err: String(err) }, 'binding mover: publish failed');
      },
    );
    this.pending.push(p);
    this.lastOfKey.set(subject, p);
    if (this.lastOfKey.size > WINDOW * 4) for (const [k, v] of this.lastOfKey) if (v.settled) this.lastOfKey.delete(k);
  }
}
