import type { Logger } from '@redrive/lifecycle';
import { retryDelay } from '@redrive/retry-policy';
import type { Pool, PoolClient } from 'pg';
import { isConnectionFailure } from './errors.js';

/**
 * Runs `work` in a transaction on one pooled connection: COMMIT when it resolves, ROLLBACK
 * when it throws. A connection that failed mid-way is discarded rather than reused.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken ? true : undefined);
  }
}

// SQLSTATEs worth simply running again: serialization failure and deadlock.
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01']);

/** True when running the same statement again later can succeed: Postgres down, a lost connection, a deadlock. */
export function isTransient(err: unknown): boolean {
  if (isConnectionFailure(err)) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_SQLSTATES.has(code);
}

/** The wait before retry number `n` (1-based) of `untilStored`: 250 ms doubling to 5 s. */
export const STORE_RETRY = { baseMs: 250, maxMs: 5_000 } as const;

/** Thrown by `untilStored` when shutdown began before the write succeeded. */
export class AbandonedError extends Error {
  override readonly name = 'AbandonedError';
}

/**
 * Runs `write` until it succeeds, waiting with backoff (STORE_RETRY) while Postgres is
 * unreachable; a non-transient error is thrown at once. Gives up with AbandonedError once
 * `stopping()`.
 */
export async function untilStored<T>(
  write: () => Promise<T>,
  opts: { what: string; stopping: () => boolean; logger: Logger; onRetry?: (attempt: number) => void },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (opts.stopping()) throw new AbandonedError(`${opts.what}: shutting down while Postgres is unavailable`);
      const wait = retryDelay(STORE_RETRY, attempt);
      // The first failure and then every tenth, so a long outage does not flood the log.
      if (attempt === 1 || attempt % 10 === 0)
        opts.logger.warn({ err, attempt, retryInMs: wait }, `${opts.what}: Postgres unavailable, waiting`);
      opts.onRetry?.(attempt);
      const until = Date.now() + wait;
      while (Date.now() < until && !opts.stopping()) await new Promise((r) => setTimeout(r, Math.min(100, wait)));
    }
  }
}
