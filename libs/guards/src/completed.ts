import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Degradation } from './degradation.js';

/** Idempotency markers of completed jobs. */
export interface Completed {
  /** true when the job (by key, e.g. the job id) already succeeded; false when not or when Redis is down. */
  has(key: string): Promise<boolean>;
  /** Records success for ttlMs; never throws. */
  mark(key: string, ttlMs: number): Promise<void>;
}

export function createCompleted(redis: Redis, keyPrefix: string, degradation: Degradation, logger: Logger): Completed {
  const keyOf = (key: string) => `${keyPrefix}:done:${key}`;
  return {
    // A marker is a hint that saves re-running a finished job; without one the job runs again,
    // which at-least-once delivery allows. So "down" answers false.
    has: (key) => degradation.run('completed', 'has', async () => (await redis.exists(keyOf(key))) === 1, false),
    async mark(key, ttlMs) {
      // mark() runs after a job succeeded: throwing here would turn a success into a retry.
      if (!(ttlMs >= 1) || !Number.isFinite(ttlMs)) {
        logger.error({ key, ttlMs }, 'completed.mark: ttlMs must be >= 1; marker not written');
        return;
      }
      await degradation.run(
        'completed',
        'mark',
        async () => {
          await redis.set(keyOf(key), '1', 'PX', Math.ceil(ttlMs));
        },
        undefined,
      );
    },
  };
}
