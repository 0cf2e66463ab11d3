import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Feature } from '@redrive/guards';
import { PrivateRedis, ready, replica, sleep, timed, uniquePrefix, type Replica } from './support.js';

const warnLines = (r: Replica, feature: Feature) =>
  r.lines.filter((l) => l.level === 40 && l.feature === feature).length;

describe('guards while their Redis is down', () => {
  let server: PrivateRedis;
  let r: Replica;
  let clock = 0;

  beforeAll(async () => {
    server = await PrivateRedis.start();
    // The injected clock drives only the degradation log's rate limit.
    r = await replica(server.url, uniquePrefix(), () => clock);
    await ready(r.redis);
  });

  afterAll(async () => {
    r.redis.disconnect();
    await server.kill();
  });

  it('guards work while Redis is up', async () => {
    expect(await r.guards.rateLimit.take('b', 1, 1)).toEqual({ allowed: true });
    expect((await r.guards.rateLimit.take('b', 1, 1)).allowed).toBe(false);
    expect(await r.guards.concurrency.acquire('k', 1, 'h1', 60_000)).toEqual({ acquired: true });
    expect((await r.guards.concurrency.acquire('k', 1, 'h2', 60_000)).acquired).toBe(false);
    await r.guards.runs.end('done', 60_000);
    expect((await r.guards.runs.start('done', 60_000)).completed).toBe(true);
  });

  it('fails open at once after Redis is killed, counting each feature', async () => {
    await server.kill();
    // The client notices the closed socket on its own; wait for that rather than race it.
    await sleep(100);
    const before = { rate_limit: await r.degraded('rate_limit'), concurrency: await r.degraded('concurrency') };
    const runsBefore = await r.degraded('runs');

    const take = await timed(() => r.guards.rateLimit.take('b', 1, 1));
    const acquire = await timed(() => r.guards.concurrency.acquire('k', 1, 'h2', 60_000));
    const renew = await timed(() => r.guards.concurrency.renew('k', 'h1', 60_000));
    const release = await timed(() => r.guards.concurrency.release('k', 'h1'));
    const has = await timed(async () => (await r.guards.runs.start('done', 60_000)).completed);
    const mark = await timed(() => r.guards.runs.end('other', 60_000));

    expect(take.value).toEqual({ allowed: true });
    expect(acquire.value).toEqual({ acquired: true });
    expect(has.value).toBe(false);
    expect(mark.value).toBeUndefined();
    for (const call of [take, acquire, renew, release, has, mark]) expect(call.ms).toBeLessThan(1_000);
    console.log(
      'fail-open latency with Redis killed (ms):',
      Object.fromEntries(
        Object.entries({ take, acquire, renew, release, has, mark }).map(([k, v]) => [k, +v.ms.toFixed(2)]),
      ),
    );

    expect(await r.degraded('rate_limit')).toBe(before.rate_limit + 1);
    expect(await r.degraded('concurrency')).toBe(before.concurrency + 3);
    expect(await r.degraded('runs')).toBe(runsBefore + 2);
  });

  it('logs at most one warning per feature per 10 s, however many calls fail', async () => {
    const warnedBefore = warnLines(r, 'rate_limit');
    expect(warnedBefore).toBe(1);
    for (let i = 0; i < 50; i++) await r.guards.rateLimit.take('b', 1, 1);
    clock += 9_999;
    await r.guards.rateLimit.take('b', 1, 1);
    expect(warnLines(r, 'rate_limit')).toBe(1);
    clock += 1;
    await r.guards.rateLimit.take('b', 1, 1);
    expect(warnLines(r, 'rate_limit')).toBe(2);
    const last = r.lines.filter((l) => l.level === 40 && l.feature === 'rate_limit').at(-1)!;
    expect(last.suppressed).toBe(51);
    // Counted every time all the same.
    expect(await r.degraded('rate_limit')).toBeGreaterThanOrEqual(53);
  });

  it('logs the lost connection once, however many reconnects fail', async () => {
    let attempts = 0;
    const count = () => attempts++;
    r.redis.on('reconnecting', count);
    while (attempts < 4) await sleep(20);
    r.redis.off('reconnecting', count);
    const clientLines = r.lines.filter((l) => typeof l.msg === 'string' && /^Redis (connection|error)/.test(l.msg));
    expect(clientLines.map((l) => l.msg)).toEqual([
      'Redis connection lost; Redis-backed guards fail open until it is back',
      'Redis error',
    ]);
  });

  it('works again once Redis is back on the same port, without a new client', async () => {
    const restart = performance.now();
    await server.start();
    const listening = performance.now();
    await ready(r.redis);
    const reconnected = Date.now();
    console.log('reconnect after restart (ms):', {
      untilListening: Math.round(listening - restart),
      untilReady: Math.round(performance.now() - restart),
    });
    // The restarted Redis is empty and has no scripts cached: ioredis reloads them on NOSCRIPT.
    expect(await r.guards.rateLimit.take('b', 1, 1)).toEqual({ allowed: true });
    expect((await r.guards.rateLimit.take('b', 1, 1)).allowed).toBe(false);
    expect(await r.guards.concurrency.acquire('k', 1, 'h3', 60_000)).toEqual({ acquired: true });
    expect((await r.guards.concurrency.acquire('k', 1, 'h4', 60_000)).acquired).toBe(false);
    expect((await r.guards.runs.start('done', 60_000)).completed).toBe(false);
    await r.guards.runs.end('done', 60_000);
    expect((await r.guards.runs.start('done', 60_000)).completed).toBe(true);
    expect(Date.now() - reconnected).toBeLessThan(1_000);
    expect(r.lines.some((l) => l.msg === 'Redis reconnected')).toBe(true);
    expect(r.lines.some((l) => l.msg === 'Redis available again for rate_limit')).toBe(true);
  });

  it('fails open within the command timeout when Redis accepts connections but does not answer', async () => {
    server.pause();
    try {
      const before = await r.degraded('rate_limit');
      const take = await timed(() => r.guards.rateLimit.take('b', 1, 1));
      const has = await timed(async () => (await r.guards.runs.start('done', 60_000)).completed);
      expect(take.value).toEqual({ allowed: true });
      expect(has.value).toBe(false);
      // commandTimeout is 250 ms.
      expect(take.ms).toBeGreaterThan(200);
      expect(take.ms).toBeLessThan(600);
      expect(has.ms).toBeLessThan(600);
      expect(await r.degraded('rate_limit')).toBe(before + 1);
      console.log('fail-open latency with Redis paused (ms):', { take: +take.ms.toFixed(1), has: +has.ms.toFixed(1) });
    } finally {
      server.resume();
    }
  });
});

describe('guards whose Redis was never reachable', () => {
  it('fail open from the first call', async () => {
    const server = await PrivateRedis.start();
    await server.kill();
    const r = await replica(server.url, uniquePrefix());
    try {
      const take = await timed(() => r.guards.rateLimit.take('b', 1, 1));
      const acquire = await timed(() => r.guards.concurrency.acquire('k', 1, 'h', 1_000));
      const has = await timed(async () => (await r.guards.runs.start('x', 60_000)).completed);
      expect(take.value).toEqual({ allowed: true });
      expect(acquire.value).toEqual({ acquired: true });
      expect(has.value).toBe(false);
      for (const call of [take, acquire, has]) expect(call.ms).toBeLessThan(1_000);
      expect(await r.degraded('rate_limit')).toBe(1);
      expect(await r.degraded('concurrency')).toBe(1);
      expect(await r.degraded('runs')).toBe(1);
    } finally {
      r.redis.disconnect();
    }
  });
});
