import { duration, MAX_TIMER_MS } from './fields.js';

/**
 * The hand-off threshold, in one place because intake and the worker must agree on it: a wait
 * longer than this (a delayed job at intake, a retry or a Not-Before at the worker) goes to the
 * retry-scheduler; a shorter one waits on JOBS.
 */
export const handoffEnv = {
  RETRY_HANDOFF_THRESHOLD: duration('30s', { min: 0, max: MAX_TIMER_MS }).describe(
    'waits longer than this (a delayed job at intake; a retry or a `Redrive-Not-Before` at the worker) go to the retry-scheduler, shorter ones wait on JOBS; intake and the worker must agree',
  ),
};
