/**
 * Call replies: one subscription on `<inboxPrefix>.<nuid>.*`, one inbox per call, and each
 * reply matched to its call by the inbox and by the operation's stream sequence.
 */
import { createInbox, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { parseOperationReply, type OperationReply } from '../protocol/index.js';

/**
 * Most replies with distinct sequences kept for one call before its publish is acknowledged.
 * Anyone who learns an inbox can publish to it; a flood can delay a call (it then times out)
 * but never grow memory without bound nor make it resolve with a forged result.
 */
export const MAX_EARLY_REPLIES = 64;

/** One call's wait for its reply. */
export interface PendingReply {
  /** The inbox to put in the operation's reply header. */
  readonly inbox: string;
  /**
   * Resolves with the reply whose `seq` is `seq` (the publish ack's): one that arrived before
   * the ack (buffered), or the first that arrives after it. Replies with any other `seq` are ignored.
   */
  reply(seq: number): Promise<OperationReply>;
  /** Stops waiting; the inbox is forgotten. */
  cancel(): void;
}

interface Waiter {
  seq: number | null;
  early: Map<number, OperationReply>;
  resolve: (reply: OperationReply) => void;
}

/** The reply subscription of one {@link ActorClient}. */
export class ReplyInbox {
  private sub: Subscription | null = null;
  private readonly prefix: string;
  private nextId = 0;
  private readonly waiters = new Map<string, Waiter>();

  /** `inboxPrefix` is the names' prefix (`_INBOX` by default): workers reply only under it. */
  constructor(
    private readonly nc: NatsConnection,
    inboxPrefix: string,
  ) {
    this.prefix = createInbox(inboxPrefix);
  }

  /** Registers a call; its inbox receives replies from now on. */
  open(): PendingReply {
    this.subscribe();
    const inbox = `${this.prefix}.${++this.nextId}`;
    let resolve: (reply: OperationReply) => void = () => undefined;
    const replied = new Promise<OperationReply>((r) => {
      resolve = r;
    });
    const waiter: Waiter = { seq: null, early: new Map(), resolve };
    this.waiters.set(inbox, waiter);
    return {
      inbox,
      reply: (seq) => {
        waiter.seq = seq;
        const early = waiter.early.get(seq);
        waiter.early.clear();
        if (early) resolve(early);
        return replied;
      },
      cancel: () => {
        this.waiters.delete(inbox);
      },
    };
  }

  /** Stops the subscription; waiting calls time out. */
  close(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }

  private subscribe(): void {
    if (this.sub) return;
    this.sub = this.nc.subscribe(`${this.prefix}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const waiter = this.waiters.get(msg.subject);
        if (!waiter) return;
        const reply = parseOperationReply(msg.data);
        if (!reply) return;
        if (waiter.seq === null) {
          // The worker may answer before the publish ack arrives: keep the first reply per
          // sequence until the ack says which one is this call's.
          if (!waiter.early.has(reply.seq) && waiter.early.size < MAX_EARLY_REPLIES) waiter.early.set(reply.seq, reply);
          return;
        }
        if (reply.seq !== waiter.seq) return;
        this.waiters.delete(msg.subject);
        waiter.resolve(reply);
      },
    });
  }
}
