import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeys, replica, ready, SHARED_REDIS_URL, sleep, uniquePrefix, type Replica } from './support.js';

describe('completed markers on the shared Redis', () => {
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

  it('reports a job as done once any replica marked it, and no other job', async () => {
    expect(await b.guards.completed.has('job-1')).toBe(false);
    await a.guards.completed.mark('job-1', 60_000);
    expect(await b.guards.completed.has('job-1')).toBe(true);
    expect(await b.guards.completed.has('job-2')).toBe(false);
    expect(await a.redis.get(`${prefix}:done:job-1`)).toBe('1');
  });

  it('forgets a marker after its ttl', async () => {
    const start = performance.now();
    await a.guards.completed.mark('short', 300);
    expect(await a.guards.completed.has('short')).toBe(true);
    while (await a.guards.completed.has('short')) await sleep(10);
    const gone = performance.now() - start;
    // Redis expires keys lazily on access, so EXISTS sees the marker gone right at its ttl.
    expect(gone).toBeGreaterThanOrEqual(290);
    expect(gone).toBeLessThan(600);
  });

  it('does not throw on a ttl it cannot use, and writes nothing', async () => {
    await expect(a.guards.completed.mark('no-ttl', 0)).resolves.toBeUndefined();
    expect(await a.guards.completed.has('no-ttl')).toBe(false);
    expect(a.lines.some((l) => l.level === 50 && String(l.msg).includes('ttlMs'))).toBe(true);
  });
});
