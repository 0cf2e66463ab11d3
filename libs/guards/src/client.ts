import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { retryDelay } from '@redrive/retry-policy';

// Reconnect backoff: 50 ms doubling to a 1 s cap, so the guards are back within about a second of
// Redis; jitter keeps replicas from reconnecting in lockstep.
const RECONNECT_BASE_MS = 50;
const RECONNECT_CAP_MS = 1_000;
const RECONNECT_JITTER_MS = 200;

/** Delay before reconnect attempt `times` (1-based); never gives up. */
export function reconnectDelayMs(times: number, random: () => number = Math.random): number {
  const exp = retryDelay({ baseMs: RECONNECT_BASE_MS, maxMs: RECONNECT_CAP_MS }, Math.min(times, 17));
  return exp + Math.floor(random() * RECONNECT_JITTER_MS);
}

/**
 * Creates an ioredis client that fails fast while Redis is down instead of queueing commands,
 * reconnects forever, and logs each change of connection state once.
 */
export function createRedisClient(url: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    // Guards fail open: a command that cannot be sent now must be rejected now, not parked in
    // a queue that would hold a job's dispatch for as long as Redis is away.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // Bounds a call to a Redis that accepts the connection but does not answer (paused, overloaded,
    // or a partition that has not closed the socket yet).
    commandTimeout: 250,
    connectTimeout: 1_000,
    retryStrategy: (times) => reconnectDelayMs(times),
    lazyConnect: false,
  });
  // The URL may carry a password: log where, never the URL itself.
  const where = { host: redis.options.host, port: redis.options.port, db: redis.options.db };
  let state: 'connecting' | 'up' | 'down' = 'connecting';
  let errorLogged = false;
  redis.on('ready', () => {
    if (state === 'down') logger.info(where, 'Redis reconnected');
    else if (state === 'connecting') logger.info(where, 'connected to Redis');
    state = 'up';
    errorLogged = false;
  });
  redis.on('close', () => {
    if (state !== 'up') return;
    state = 'down';
    logger.warn(where, 'Redis connection lost; Redis-backed guards fail open until it is back');
  });
  // ioredis emits an error for every failed reconnect attempt: one line per outage is enough.
  redis.on('error', (err: Error) => {
    if (errorLogged) return;
    errorLogged = true;
    logger.warn({ ...where, err }, 'Redis error');
  });
  redis.on('end', () => logger.debug(where, 'Redis connection ended'));
  return redis;
}

/**
 * Resolves once the client is ready, or after `timeoutMs` (Redis down: the guards start
 * degraded and the client keeps reconnecting). A worker waits for it before taking jobs, so its
 * first jobs are not run with guards that fail open only because the connection was young.
 */
export async function redisReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise<boolean>((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.once('ready', onReady);
  });
}
