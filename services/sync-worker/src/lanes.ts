import { PRIORITIES, type Priority } from '@redrive/messaging';

/**
 * A counting semaphore whose waiters queue by priority lane. A freed slot goes to the highest
 * lane with a waiter, except every `lowEvery`-th grant under contention, which goes to the
 * lowest waiting lane: high priority comes first, but low priority never starves.
 */
export class LaneSlots {
  private free: number;
  private readonly waiting = new Map<Priority, ((granted: boolean) => void)[]>(PRIORITIES.map((p) => [p, []]));
  private closed = false;
  private contendedGrants = 0;

  constructor(
    readonly size: number,
    private readonly lowEvery: number,
  ) {
    this.free = size;
  }

  get inUse(): number {
    return this.size - this.free;
  }

  /** Resolves true when a slot is held for `lane` (give it back with `release()`), false once closed. */
  acquire(lane: Priority): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.free > 0 && this.queued() === 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiting.get(lane)!.push(resolve));
  }

  release(): void {
    const next = this.pick();
    if (next) next(true);
    else this.free++;
  }

  /** Refuses every waiting and future acquire. */
  close(): void {
    this.closed = true;
    for (const q of this.waiting.values()) for (const resolve of q.splice(0)) resolve(false);
  }

  private queued(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  private pick(): ((granted: boolean) => void) | undefined {
    const lanes = PRIORITIES.filter((p) => this.waiting.get(p)!.length > 0);
    if (lanes.length === 0) return undefined;
    this.contendedGrants++;
    const lane = lanes.length > 1 && this.contendedGrants % this.lowEvery === 0 ? lanes[lanes.length - 1]! : lanes[0]!;
    return this.waiting.get(lane)!.shift();
  }
}

/**
 * One turn at a time, for the worker's crash suspects: a suspect runs only while no other
 * suspect runs here, so a poison job redelivered together with the jobs it killed dies alone.
 */
export class SuspectTurn {
  private readonly slots = new LaneSlots(1, Number.MAX_SAFE_INTEGER);

  /** Resolves true once it is this suspect's turn (end it with `end()`), false once closed. */
  take(lane: Priority): Promise<boolean> {
    return this.slots.acquire(lane);
  }

  end(): void {
    this.slots.release();
  }

  close(): void {
    this.slots.close();
  }
}
