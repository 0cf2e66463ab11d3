import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeys, replica, ready, SHARED_REDIS_URL, sleep, uniquePrefix, type Replica } from './support.js';

describe('concurrency (leases on the shared Redis)', () => {
  const prefix = uniquePrefix();
  let a: Replica;
  let b: Replica;

  beforeAll(async () => {
    a = await replica(SHARED_REDIS_URL, prefix);
    b = await replica(SHARED_REDIS_URL, prefix);
    await Promise.all([ready(a.redis), ready(b.redis)]);
  });

  afterAll(async () => {
    await deleteKeys(a.redis, prefix);
    await Promise.all([a.redis.quit(), b.redis.quit()]);
  });

  it('refuses a third holder at limit 2 and lets it in once one releases', async () => {
    const cc = a.guards.concurrency;
    expect(await cc.acquire('customer-1', 2, 'job-1', 30_000)).toEqual({ acquired: true });
    expect(await b.guards.concurrency.acquire('customer-1', 2, 'job-2', 30_000)).toEqual({ acquired: true });
    const refused = await cc.acquire('customer-1', 2, 'job-3', 30_000);
    expect(refused.acquired).toBe(false);
    // The earliest lease runs out in about 30 s.
    if (!refused.acquired) {
      expect(refused.retryInMs).toBeGreaterThan(29_000);
      expect(refused.retryInMs).toBeLessThanOrEqual(30_000);
    }
    await b.guards.concurrency.release('customer-1', 'job-2');
    expect(await cc.acquire('customer-1', 2, 'job-3', 30_000)).toEqual({ acquired: true });
    // Other keys are not affected.
    expect(await cc.acquire('customer-2', 2, 'job-3', 30_000)).toEqual({ acquired: true });
  });

  it('frees the slot of an expired lease, as after a crashed worker', async () => {
    const cc = a.guards.concurrency;
    expect(await cc.acquire('crash', 1, 'crashed', 300)).toEqual({ acquired: true });
    const refused = await cc.acquire('crash', 1, 'next', 300);
    expect(refused.acquired).toBe(false);
    if (refused.acquired) return;
    expect(refused.retryInMs).toBeGreaterThanOrEqual(50);
    expect(refused.retryInMs).toBeLessThanOrEqual(300);
    // Nobody releases: waiting out the retry hint is enough.
    await sleep(refused.retryInMs + 20);
    expect(await cc.acquire('crash', 1, 'next', 300)).toEqual({ acquired: true });
  });

  it('clamps the retry hint to at least 50 ms', async () => {
    const cc = a.guards.concurrency;
    // The lease ends in under 50 ms: the hint still leaves a pause, so a refused caller cannot spin.
    await cc.acquire('soon', 1, 'holder', 40);
    const refused = await cc.acquire('soon', 1, 'other', 40);
    expect(refused).toEqual({ acquired: false, retryInMs: 50 });
  });

  it('keeps a renewed lease past its first expiry', async () => {
    const cc = a.guards.concurrency;
    await cc.acquire('renewed', 1, 'long-job', 300);
    await sleep(200);
    await cc.renew('renewed', 'long-job', 5_000);
    await sleep(250);
    const refused = await cc.acquire('renewed', 1, 'other', 300);
    expect(refused.acquired).toBe(false);
  });

  it('counts a renewing holder whose lease was lost, so others wait for it', async () => {
    const cc = a.guards.concurrency;
    await cc.acquire('lost', 1, 'stalled', 100);
    await sleep(150);
    // The lease ran out while the job was still running; its next renew puts it back.
    await cc.renew('lost', 'stalled', 5_000);
    expect((await cc.acquire('lost', 1, 'other', 300)).acquired).toBe(false);
  });

  it('lets a holder that already has a slot acquire again without taking a second one', async () => {
    const cc = a.guards.concurrency;
    expect(await cc.acquire('again', 2, 'job-1', 5_000)).toEqual({ acquired: true });
    expect(await cc.acquire('again', 2, 'job-1', 5_000)).toEqual({ acquired: true });
    expect(await cc.acquire('again', 2, 'job-2', 5_000)).toEqual({ acquired: true });
    expect(await a.redis.zcard(`${prefix}:cc:again`)).toBe(2);
  });

  it('keeps the key only as long as its longest lease', async () => {
    const cc = a.guards.concurrency;
    await cc.acquire('ttl', 3, 'short', 1_000);
    await cc.acquire('ttl', 3, 'long', 4_000);
    const pttl = await a.redis.pttl(`${prefix}:cc:ttl`);
    expect(pttl).toBeGreaterThan(3_500);
    expect(pttl).toBeLessThanOrEqual(4_000);
  });

  it('treats releasing a slot never held as a no-op', async () => {
    await expect(a.guards.concurrency.release('nobody', 'ghost')).resolves.toBeUndefined();
    expect(await a.degraded('concurrency')).toBe(0);
  });
});
