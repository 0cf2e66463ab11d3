import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeys, replica, ready, SHARED_REDIS_URL, sleep, uniquePrefix, type Replica } from './support.js';

describe('rateLimit.take (token bucket on the shared Redis)', () => {
  const prefix = uniquePrefix();
  let a: Replica;
  let b: Replica;

  beforeAll(async () => {
    // Two clients with their own guards, like two worker replicas.
    a = await replica(SHARED_REDIS_URL, prefix);
    b = await replica(SHARED_REDIS_URL, prefix);
    await Promise.all([ready(a.redis), ready(b.redis)]);
  });

  afterAll(async () => {
    await deleteKeys(a.redis, prefix);
    await Promise.all([a.redis.quit(), b.redis.quit()]);
  });

  it('allows exactly the burst at once, then refuses with the time until the next token', async () => {
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await a.guards.rateLimit.take('burst', 5, 5));
    expect(results.slice(0, 5)).toEqual(Array(5).fill({ allowed: true }));
    const refused = results[5]!;
    expect(refused.allowed).toBe(false);
    // One token per 200 ms; the few ms the first five calls took have already refilled a little.
    if (!refused.allowed) {
      expect(refused.retryInMs).toBeGreaterThan(150);
      expect(refused.retryInMs).toBeLessThanOrEqual(200);
    }
  });

  it('refills at the rate: about 5 more per second over 2 s', async () => {
    while ((await a.guards.rateLimit.take('steady', 5, 5)).allowed);
    const start = performance.now();
    let allowed = 0;
    for (;;) {
      const r = await a.guards.rateLimit.take('steady', 5, 5);
      if (performance.now() - start > 2_000) break;
      if (r.allowed) allowed++;
      else await sleep(Math.min(r.retryInMs, 2_000 - (performance.now() - start) + 1));
    }
    // 2 s × 5/s = 10; one either side for timer jitter at the window's edges.
    expect(allowed).toBeGreaterThanOrEqual(9);
    expect(allowed).toBeLessThanOrEqual(11);
  });

  it('shares one bucket between replicas on separate connections', async () => {
    const fromA = [];
    const fromB = [];
    for (let i = 0; i < 4; i++) {
      fromA.push((await a.guards.rateLimit.take('shared', 1, 6)).allowed);
      fromB.push((await b.guards.rateLimit.take('shared', 1, 6)).allowed);
    }
    // 6 tokens in all: both replicas drew from them, and both are refused once they are gone.
    expect([...fromA, ...fromB].filter(Boolean)).toHaveLength(6);
    expect(fromA.slice(0, 3)).toEqual([true, true, true]);
    expect(fromB.slice(0, 3)).toEqual([true, true, true]);
    expect(fromA[3]).toBe(false);
    expect(fromB[3]).toBe(false);
  });

  it('keeps separate buckets apart', async () => {
    expect(await a.guards.rateLimit.take('left', 1, 1)).toEqual({ allowed: true });
    expect((await a.guards.rateLimit.take('left', 1, 1)).allowed).toBe(false);
    expect(await a.guards.rateLimit.take('right', 1, 1)).toEqual({ allowed: true });
  });

  it('lets an idle bucket expire once it would be full again', async () => {
    await a.guards.rateLimit.take('idle', 10, 3);
    // One token short of a burst of 3 at 10/s: full again in 100 ms.
    const pttl = await a.redis.pttl(`${prefix}:rl:idle`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(100);
  });

  it('rejects a rate or burst that could never allow anything', async () => {
    await expect(a.guards.rateLimit.take('bad', 0, 5)).rejects.toThrow(RangeError);
    await expect(a.guards.rateLimit.take('bad', 5, 0)).rejects.toThrow(RangeError);
  });
});
