import { settleSpan, type Context } from '@redrive/telemetry';
import type { JsMsg } from '@nats-io/jetstream';
import type { Priority } from '@redrive/messaging';

/** One message this worker took from a consumer, from its delivery until it is answered. */
export interface Delivery {
  msg: JsMsg;
  lane: Priority;
  type: string;
  abort: AbortController;
  /** Set once the message has been acked, NAKed or terminated: it is never answered twice. */
  settled: boolean;
  /** The run in progress, if any. */
  done: Promise<void>;
  /** Who holds the job's concurrency lease: this process and this delivery. */
  holder: string;
  /** The durable consumer it came from (`worker-<lane>-<type>`). */
  consumer: string;
  /** The context of its latest process span: its settlement is recorded under it. */
  trace?: Context;
}

// At shutdown a message is handed back with a short NAK delay rather than none: an immediate
// redelivery can land on this worker's own pull requests before they are gone, and would then
// sit unacknowledged for a whole ack wait. After this delay the process has left.
export const HAND_BACK_DELAY_MS = 1_000;

interface Timer {
  delivery: Delivery;
  dueAt: number;
  timer: NodeJS.Timeout;
}

/**
 * Every message the worker holds — waiting for a slot, running, waiting on a timer, storing its
 * outcome — with one keep-alive timer for all of them, as BullMQ's lock manager extends every
 * job's lock from one timer: each tick sends an in-progress ack for each held message, so the
 * server does not redeliver it to another worker while this one still has it. A message is
 * held from `take` until it is answered (`settle`) or let go (`drop`).
 *
 * It also remembers the stream sequences it holds: nats-server 2.9 can deliver one message twice
 * at once (after a NAK of the last message delivered to a pull request that ended); the copy
 * that arrives while the first is held is refused by `take`, and the first one's answer settles
 * both.
 */
export class DeliveryTracker {
  private readonly held = new Map<number, JsMsg>();
  private readonly timers = new Set<Timer>();
  private readonly ticker: NodeJS.Timeout;

  constructor(
    /** How often each held message gets an in-progress ack. */
    readonly keepaliveMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.ticker = setInterval(() => {
      for (const msg of this.held.values()) msg.working();
    }, keepaliveMs);
    this.ticker.unref();
  }

  /** Starts holding `msg`; false (and nothing held) when this worker already holds its sequence. */
  take(msg: JsMsg): boolean {
    if (this.held.has(msg.seq)) return false;
    this.held.set(msg.seq, msg);
    return true;
  }

  /** Stops holding a message that was never made a delivery (handed back from the pull loop). */
  drop(msg: JsMsg): void {
    this.held.delete(msg.seq);
  }

  /** Messages held now. */
  get size(): number {
    return this.held.size;
  }

  /** Messages waiting on a timer now. */
  get waiting(): number {
    return this.timers.size;
  }

  /** Answers the delivery once; false when it was answered already. */
  settle(d: Delivery, how: 'ack' | 'nak' | 'term', delayMs?: number): boolean {
    if (d.settled) return false;
    d.settled = true;
    this.held.delete(d.msg.seq);
    if (d.trace) settleSpan(d.trace, how, d.msg.subject, d.consumer);
    if (how === 'ack') d.msg.ack();
    else if (how === 'nak') d.msg.nak(delayMs);
    // No reason: nats-server 2.9 silently ignores "+TERM <reason>" and leaves the message pending.
    else d.msg.term();
    return true;
  }

  /** Keeps the delivery for `ms`, then calls `onDue` (unless it was answered meanwhile). */
  hold(d: Delivery, ms: number, onDue: () => void): void {
    d.msg.working();
    const t: Timer = {
      delivery: d,
      dueAt: this.now() + ms,
      timer: setTimeout(() => {
        this.timers.delete(t);
        if (!d.settled) onDue();
      }, ms),
    };
    this.timers.add(t);
  }

  /** Ends every wait at once (shutdown): each waiting delivery with what was left of its wait. */
  cancelWaits(): { delivery: Delivery; remainingMs: number }[] {
    const out = [...this.timers].map((t) => {
      clearTimeout(t.timer);
      return { delivery: t.delivery, remainingMs: Math.max(0, t.dueAt - this.now()) };
    });
    this.timers.clear();
    return out;
  }

  /** Stops the keep-alive timer. */
  close(): void {
    clearInterval(this.ticker);
    for (const t of this.timers) clearTimeout(t.timer);
    this.timers.clear();
  }
}
