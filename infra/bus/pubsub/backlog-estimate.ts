/**
 * The Pub/Sub bus's backlog figure: an in-process estimate (Pub/Sub has no API that counts a
 * subscription's unacked messages; Cloud Monitoring's `subscription/num_undelivered_messages` and
 * `subscription/oldest_unacked_message_age` metrics are the cloud's own figures, minutes late).
 *
 * What it counts, per subscription that this bus instance tracks (from the moment the instance
 * created it, subscribed to it or asked its backlog, until it deletes it):
 * - `messages`: messages that THIS bus instance published to the subscription's topic while it
 *   tracked the subscription, and that were not yet acked through a subscriber of THIS instance.
 *   Messages published by other processes, or before tracking began, are not counted; messages
 *   acked by other processes are still counted. At most `maxTrackedMessages` per subscription are
 *   held (the oldest ones); past that the figure is a lower bound.
 * - `oldestUnackedPublishTime`: the bus-clock time at which the oldest of those was sent (a little
 *   before Pub/Sub stored it).
 *
 * So it is exact only when one process both publishes to the topic and consumes the subscription
 * (tests, a single-process pipeline); for any other layout it is not the backlog.
 */
import type { Backlog } from '../../../core/ports/bus.js';

interface Tracked {
  readonly topic: string;
  /** Message id → bus-clock time it was sent, of messages not acked here yet. */
  readonly pending: Map<string, number>;
  overflowed: boolean;
}

/** Ids acked while a publish to their topic was still in flight (so before they were added). */
const EARLY_ACKS_KEPT = 10_000;

export class BacklogEstimate {
  private readonly subs = new Map<string, Tracked>();
  private readonly publishing = new Map<string, number>();
  private readonly earlyAcks = new Map<string, true>();

  constructor(
    private readonly maxTrackedMessages: number,
    private readonly onOverflow: (subscription: string) => void = () => undefined,
  ) {}

  isTracked(subscription: string): boolean {
    return this.subs.has(subscription);
  }

  /** Starts counting for the subscription (no-op when it is already counted for this topic). */
  track(subscription: string, topic: string): void {
    if (this.subs.get(subscription)?.topic === topic) return;
    this.subs.set(subscription, { topic, pending: new Map(), overflowed: false });
  }

  untrack(subscription: string): void {
    this.subs.delete(subscription);
  }

  untrackTopic(topic: string): void {
    for (const [name, t] of this.subs) if (t.topic === topic) this.subs.delete(name);
  }

  /** A publish to the topic starts; `published` or `publishFailed` must follow. */
  publishStarted(topic: string): void {
    this.publishing.set(topic, (this.publishing.get(topic) ?? 0) + 1);
  }

  published(topic: string, ids: readonly string[], sentAt: number): void {
    this.done(topic);
    for (const [name, t] of this.subs) {
      if (t.topic !== topic) continue;
      for (const id of ids) {
        if (this.earlyAcks.delete(earlyKey(name, id))) continue;
        if (t.pending.size >= this.maxTrackedMessages) {
          if (!t.overflowed) this.onOverflow(name);
          t.overflowed = true;
          break;
        }
        t.pending.set(id, sentAt);
      }
    }
  }

  publishFailed(topic: string): void {
    this.done(topic);
  }

  acked(subscription: string, id: string): void {
    const t = this.subs.get(subscription);
    if (t === undefined) return;
    if (t.pending.delete(id)) return;
    // acked before the publish that sent it returned: remember it for a while
    if ((this.publishing.get(t.topic) ?? 0) > 0) {
      this.earlyAcks.set(earlyKey(subscription, id), true);
      if (this.earlyAcks.size > EARLY_ACKS_KEPT) {
        const oldest = this.earlyAcks.keys().next().value;
        if (oldest !== undefined) this.earlyAcks.delete(oldest);
      }
    }
  }

  figures(subscription: string): Backlog {
    const t = this.subs.get(subscription);
    if (t === undefined || t.pending.size === 0) return { messages: 0, oldestUnackedPublishTime: null };
    let oldest = Number.POSITIVE_INFINITY;
    for (const at of t.pending.values()) if (at < oldest) oldest = at;
    return { messages: t.pending.size, oldestUnackedPublishTime: oldest };
  }

  private done(topic: string): void {
    const n = (this.publishing.get(topic) ?? 1) - 1;
    if (n <= 0) this.publishing.delete(topic);
    else this.publishing.set(topic, n);
  }
}

function earlyKey(subscription: string, id: string): string {
  return `${subscription}\u0000${id}`;
}
