import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';

/** Whether the gate's type and lane are paused now, and a way to hear of every change. */
export interface PauseSignal {
  paused(): boolean;
  /** Calls `listener` after each change of the pauses; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

/** How often a held delivery whose wait ended in a paused lane looks again (dispatcher's rerun). */
export const PAUSE_RECHECK_MS = 500;

/** Never paused: a worker without a pause watch. */
export const NEVER_PAUSED: PauseSignal = { paused: () => false, onChange: () => () => undefined };

/**
 * The pull side of one worker consumer (one type in one lane), paused and resumed by operators
 * (the PAUSES bucket, watched by every replica). While the lane runs, `messages()` yields what
 * the consumer delivers. When it is paused the pull subscription is closed, so this replica asks
 * the server for nothing more; what was already delivered to it and not started (the client's
 * buffer, or a message that was waiting for a slot: `admit`) is parked: held with in-progress
 * acks, never NAKed, so it is neither redelivered nor charged an attempt, and it is yielded
 * again once the lane resumes (or, at shutdown, for the dispatcher to hand back). Jobs already
 * running are not touched. A replica that starts while its lane is paused opens nothing.
 */
export class LaneGate {
  private current: ConsumerMessages | undefined;
  private readonly parked: JsMsg[] = [];
  private closed = false;
  private started = false;
  private readonly wake = new Set<() => void>();
  private readonly keepalive: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly open: () => Promise<ConsumerMessages>,
    private readonly signal: PauseSignal,
    keepaliveMs: number,
  ) {
    this.keepalive = setInterval(() => {
      for (const m of this.parked) m.working();
    }, keepaliveMs);
    this.keepalive.unref();
    this.unsubscribe = signal.onChange(() => {
      if (signal.paused()) void this.current?.close().catch(() => undefined);
      for (const w of [...this.wake]) w();
    });
  }

  /** True while the lane is paused. */
  get paused(): boolean {
    return this.signal.paused();
  }

  /** True once the lane has opened its subscription, or found itself paused. */
  get serving(): boolean {
    return this.started;
  }

  /** Messages held for the lane's resume. */
  get held(): number {
    return this.parked.length;
  }

  /**
   * Whether a message the dispatcher took may start now. False when the lane was paused while it
   * waited for a slot: it is parked (the dispatcher stops tracking it) and comes back on resume.
   */
  admit(m: JsMsg): boolean {
    if (!this.signal.paused() || this.closed) return true;
    this.park(m);
    return false;
  }

  /** Every message the lane may start, until `close()`; then the parked ones, to hand back. */
  async *messages(): AsyncGenerator<JsMsg> {
    while (!this.closed) {
      if (this.signal.paused()) {
        this.started = true;
        await this.until(() => !this.signal.paused());
        continue;
      }
      // Parked messages first: they were delivered before the ones the consumer has now.
      while (this.parked.length > 0 && !this.closed && !this.signal.paused()) yield this.parked.shift()!;
      if (this.closed || this.signal.paused()) continue;
      const messages = (this.current = await this.open());
      this.started = true;
      // A pause that came while the subscription was being opened.
      if (this.signal.paused() || this.closed) void messages.close().catch(() => undefined);
      try {
        for await (const m of messages) {
          // Closing still yields what was buffered: held for the resume (or the hand-back).
          if (this.signal.paused() || this.closed) this.park(m);
          else yield m;
        }
      } finally {
        this.current = undefined;
      }
    }
    while (this.parked.length > 0) yield this.parked.shift()!;
  }

  /** Stops pulling; `messages()` ends after yielding the parked messages. */
  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    clearInterval(this.keepalive);
    for (const w of [...this.wake]) w();
    await this.current?.close().catch(() => undefined);
  }

  private park(m: JsMsg): void {
    m.working();
    this.parked.push(m);
  }

  /** Resolves once `ready()` holds or the gate is closed. */
  private until(ready: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed || ready()) {
          this.wake.delete(check);
          resolve();
        }
      };
      this.wake.add(check);
      check();
    });
  }
}
