import type { ClassPolicy } from './classes.js';

/**
 * The delay before retry number `retry` (1 for the first retry): base × multiplier^(retry-1),
 * capped at max, with up to `jitter` of it taken off at random so that jobs which failed
 * together do not all come back together.
 */
export function backoffDelay(
  policy: Pick<ClassPolicy, 'baseMs' | 'multiplier' | 'maxMs' | 'jitter'>,
  retry: number,
  random: () => number = Math.random,
): number {
  const exponential = policy.baseMs * Math.pow(policy.multiplier, Math.max(0, retry - 1));
  const capped = Math.min(policy.maxMs, exponential);
  return Math.max(0, Math.round(capped * (1 - policy.jitter * random())));
}

/**
 * The delay before try number `retry` (1 for the first) of something that is not a job: a
 * reconnect, a store that failed, a round that failed. Doubling from `baseMs` up to `maxMs`,
 * with no jitter unless asked for. The one backoff of every loop in Redrive that tries again.
 */
export function retryDelay(
  b: { baseMs: number; maxMs: number; jitter?: number },
  retry: number,
  random: () => number = Math.random,
): number {
  return backoffDelay({ multiplier: 2, jitter: 0, ...b }, retry, random);
}
