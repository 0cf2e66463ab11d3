import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createConcurrency, type Concurrency } from './concurrency.js';
import { createRuns, type Runs } from './runs.js';
import { Degradation } from './degradation.js';
import { createRateLimit, type RateLimit } from './rate-limit.js';

/** The Redis-backed features of the worker; each fails open when Redis is unreachable. */
export interface Guards {
  /** Token buckets shared by all replicas: `ratePerSec` tokens/s, up to `burst`. */
  rateLimit: RateLimit;
  /** At most `limit` holders of `key` at once (e.g. per customer). Leases expire after leaseMs so a crashed worker never blocks a key forever. */
  concurrency: Concurrency;
  /** The runs of each job: completion markers and runs cut short by a dying worker, in one call at each end. */
  runs: Runs;
}

export interface GuardsOptions {
  redis: Redis;
  /** Every key lives under `${keyPrefix}:`. */
  keyPrefix: string;
  logger: Logger;
  /** Where `redrive_redis_degraded_total{feature}` is registered. */
  registry: Registry;
  /** Clock for rate-limiting the degradation log (bucket and lease time is Redis's own). */
  now?: () => number;
  /** Longest a guard waits for Redis before failing open, whatever the client's own timeouts; default 1 s. */
  timeoutMs?: number;
}

/** Builds the guards on one Redis client; they answer in bounded time and never lose a job to a Redis outage. */
export function createGuards(opts: GuardsOptions): Guards {
  const degradation = new Degradation(opts.logger, opts.registry, opts.now ?? Date.now, opts.timeoutMs ?? 1_000);
  return {
    rateLimit: createRateLimit(opts.redis, opts.keyPrefix, degradation),
    concurrency: createConcurrency(opts.redis, opts.keyPrefix, degradation),
    runs: createRuns(opts.redis, opts.keyPrefix, degradation),
  };
}
