import { describe, expect, it } from 'vitest';
import type { Priority } from '@redrive/messaging';
import { LaneSlots } from '../src/lanes.js';

// Grants resolve promises; a macrotask turn lets every resolved waiter run its callback.
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A small deterministic PRNG, so a failing sequence can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const LANES: readonly Priority[] = ['high', 'normal', 'low'];

describe('LaneSlots', () => {
  it.each([[1], [3], [8]])('never lets more than size=%d slots be held at once', async (size) => {
    const slots = new LaneSlots(size, 3);
    const next = random(size * 7_919);
    let held = 0;
    let maxHeld = 0;
    let granted = 0;
    for (let step = 0; step < 2_000; step++) {
      if (next() < 0.55) {
        void slots.acquire(LANES[Math.floor(next() * 3)]!).then((ok) => {
          if (!ok) return;
          held++;
          granted++;
          maxHeld = Math.max(maxHeld, held);
        });
      } else if (held > 0) {
        held--;
        slots.release();
      }
      await settle();
      expect(held).toBeLessThanOrEqual(size);
      expect(slots.inUse).toBe(held);
    }
    expect(maxHeld).toBe(size);
    expect(granted).toBeGreaterThan(500);
  });

  it('grants at once while slots are free, then makes callers wait', async () => {
    const slots = new LaneSlots(2, 10);
    await expect(slots.acquire('low')).resolves.toBe(true);
    await expect(slots.acquire('low')).resolves.toBe(true);
    expect(slots.inUse).toBe(2);
    let third: boolean | undefined;
    void slots.acquire('high').then((ok) => (third = ok));
    await settle();
    expect(third).toBeUndefined();
    slots.release();
    await settle();
    expect(third).toBe(true);
    expect(slots.inUse).toBe(2);
    slots.release();
    slots.release();
    expect(slots.inUse).toBe(0);
  });

  it.each([
    ['low, normal, high', ['low', 'normal', 'high'], ['high', 'normal', 'low']],
    ['high, low, normal', ['high', 'low', 'normal'], ['high', 'normal', 'low']],
    [
      'two of each, interleaved',
      ['low', 'high', 'normal', 'low', 'high', 'normal'],
      ['high#1', 'high#4', 'normal#2', 'normal#5', 'low#0', 'low#3'],
    ],
  ])('gives freed slots to high before normal before low (waiters queued %s)', async (_label, queued, expected) => {
    // lowEvery is far away, so this sequence sees strict priority.
    const slots = new LaneSlots(1, 1_000);
    await slots.acquire('normal');
    const order: string[] = [];
    const numbered = expected.some((e) => e.includes('#'));
    queued.forEach((lane, i) => {
      void slots.acquire(lane as Priority).then(() => order.push(numbered ? `${lane}#${i}` : lane));
    });
    for (let i = 0; i < queued.length; i++) {
      slots.release();
      await settle();
    }
    expect(order).toEqual(expected);
  });

  it.each([
    [2, ['high', 'low']],
    [5, ['high', 'low']],
    [10, ['high', 'low']],
    [10, ['high', 'normal', 'low']],
    [10, ['normal', 'low']],
    [50, ['high', 'normal', 'low']],
  ])('with lowEvery=%d, low still gets about 1/N of grants under sustained contention from %j', async (n, lanes) => {
    const slots = new LaneSlots(1, n);
    await slots.acquire('high');
    const grants: Record<string, number> = { high: 0, normal: 0, low: 0 };
    // Every lane always has a waiter: each granted waiter queues the next one of its lane.
    const enqueue = (lane: Priority): void =>
      void slots.acquire(lane).then((ok) => {
        if (!ok) return;
        grants[lane]!++;
        enqueue(lane);
      });
    for (const lane of lanes) enqueue(lane as Priority);
    const total = 1_000;
    for (let i = 0; i < total; i++) {
      slots.release();
      await settle();
    }
    slots.close();
    expect(grants.high! + grants.normal! + grants.low!).toBe(total);
    expect(Math.abs(grants.low! - total / n)).toBeLessThanOrEqual(1);
    // The rest goes to the highest lane that is waiting.
    const top = lanes[0]!;
    expect(grants[top]).toBe(total - grants.low!);
  });

  it('serves waiters of one lane first come, first served', async () => {
    const slots = new LaneSlots(1, 1_000);
    await slots.acquire('normal');
    const order: number[] = [];
    for (let i = 0; i < 5; i++) void slots.acquire('normal').then(() => order.push(i));
    for (let i = 0; i < 5; i++) {
      slots.release();
      await settle();
    }
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('close() resolves every waiter with false and refuses later acquires', async () => {
    const slots = new LaneSlots(1, 10);
    await slots.acquire('high');
    const waiting = LANES.flatMap((lane) => [slots.acquire(lane), slots.acquire(lane)]);
    slots.close();
    await expect(Promise.all(waiting)).resolves.toEqual([false, false, false, false, false, false]);
    await expect(slots.acquire('high')).resolves.toBe(false);
    // The slot held before close can still be given back.
    slots.release();
    expect(slots.inUse).toBe(0);
    await expect(slots.acquire('low')).resolves.toBe(false);
  });

  it('close() refuses acquires even while slots are free', async () => {
    const slots = new LaneSlots(4, 10);
    slots.close();
    await expect(slots.acquire('high')).resolves.toBe(false);
    expect(slots.inUse).toBe(0);
  });
});
