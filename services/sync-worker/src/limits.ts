import type { HandlerDefinition, Job } from '@redrive/sdk';
import type { GuardsPort, RateLimit } from './ports.js';

/** A limit holds the job back for `ms`; or it may run, holding a concurrency lease to `release`. */
export type LimitVerdict = { ms: number; release?: undefined } | { ms: 0; release: () => Promise<void> } | undefined;

/**
 * The limits that can hold a job back before it runs: its handler's per-key concurrency limit
 * (a lease in Redis) and the rate-limit buckets of its type and of the keys its handler names.
 * Undefined when it may run with nothing to release; without Redis every limit is open.
 */
export function createLimits(deps: {
  guards?: GuardsPort | undefined;
  rateLimits?: Readonly<Record<string, RateLimit>> | undefined;
  ackWaitMs: number;
  jobTimeoutMs: number;
}) {
  return async function heldBackFor(job: Job, handler: HandlerDefinition, holder: string): Promise<LimitVerdict> {
    const guards = deps.guards;
    if (!guards) return undefined;
    let release: (() => Promise<void>) | undefined;
    const cc = handler.concurrency;
    const key = cc?.key(job);
    if (cc && key) {
      const ckey = `${job.type}:${key}`;
      const lease = Math.max(deps.ackWaitMs, (handler.timeoutMs ?? deps.jobTimeoutMs) + 5_000);
      const got = await guards.concurrency.acquire(ckey, cc.limit, holder, lease);
      if (!got.acquired) return { ms: got.retryInMs };
      release = () => guards.concurrency.release(ckey, holder);
    }
    for (const bucket of [job.type, ...(handler.rateLimitKeys?.(job) ?? [])]) {
      const limit = deps.rateLimits?.[bucket];
      if (!limit) continue;
      const t = await guards.rateLimit.take(bucket, limit.perSecond, limit.burst);
      if (!t.allowed) {
        await release?.();
        return { ms: t.retryInMs };
      }
    }
    return release ? { ms: 0, release } : undefined;
  };
}
