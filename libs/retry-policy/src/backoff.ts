import type { ClassPolicy } from './classes.js';

/**
 * The delay before retry number `retry` (1 for the first retry): base × multiplier^(retry-1),
 * capped at max, with up to `jitter` of it taken off at random so that jobs which failed
 * together do not all come back together.
 */
export function backoffDelay(policy: ClassPolicy, retry: number, random: () => number = Math.random): number {
  const exponential = policy.baseMs * Math.pow(policy.multiplier, Math.max(0, retry - 1));
  const capped = Math.min(policy.maxMs, exponential);
  return Math.max(0, Math.round(capped * (1 - policy.jitter * random())));
}
