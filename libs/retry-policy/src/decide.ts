import { backoffDelay } from './backoff.js';
import { classPolicy, type ErrorClass, type RetryPolicy } from './classes.js';
import type { Classification } from './classify.js';

/** What becomes of a failed delivery. */
export type Decision =
  | { kind: 'nak'; delayMs: number; errorClass: ErrorClass }
  | { kind: 'handoff'; delayMs: number; dueAt: Date; errorClass: ErrorClass }
  | { kind: 'deadLetter'; reason: 'non_retryable' | 'retries_exhausted'; errorClass: ErrorClass };

export interface FailureFacts {
  type: string;
  classification: Classification;
  /** The attempt that just failed, 1-based, counted across hand-offs. */
  attempt: number;
  /** Redrive-Max-Attempts of the job, overriding the class budget. */
  maxAttempts?: number | undefined;
  /** Delays above this leave the consumer for the retry-scheduler. */
  handoffThresholdMs: number;
  now: number;
  random?: () => number;
}

/** Decides a failed attempt's fate from the error's class, the attempts made and the policy; pure. */
export function decideFailure(policy: RetryPolicy, f: FailureFacts): Decision {
  const { errorClass } = f.classification;
  const cp = classPolicy(policy, f.type, errorClass);
  const retryable = f.classification.retryable ?? cp.retryable;
  if (!retryable) return { kind: 'deadLetter', reason: 'non_retryable', errorClass };

  const allowed = f.maxAttempts ?? 1 + cp.maxRetries;
  if (f.attempt >= allowed) return { kind: 'deadLetter', reason: 'retries_exhausted', errorClass };

  const backoff = backoffDelay(cp, f.attempt, f.random);
  // Retry-After wins for rate limits and an explicit RetryableError delay is used as given;
  // a 503's Retry-After only stops the backoff from coming back sooner.
  const delayMs = f.classification.delayMs ?? Math.max(backoff, f.classification.minDelayMs ?? 0);
  if (delayMs > f.handoffThresholdMs) {
    return { kind: 'handoff', delayMs, dueAt: new Date(f.now + delayMs), errorClass };
  }
  return { kind: 'nak', delayMs, errorClass };
}

/** What becomes of a job whose earlier runs died with their worker (they started and never ended). */
export type CrashDecision =
  { kind: 'run' } | { kind: 'isolate' } | { kind: 'deadLetter'; reason: 'retries_exhausted'; errorClass: 'crash' };

/**
 * Decides a redelivered job's fate from its runs that died with their worker; pure. A job whose
 * run died is a suspect, but so is every job that ran beside a poison job on that worker: a
 * suspect therefore runs apart from the worker's other suspects (`isolate`), and only deaths in
 * those runs convict it. It is dead-lettered once it has died `maxCrashes` times, all but the
 * first of them as an isolated suspect, instead of killing another worker (max_deliver stays
 * high for jobs that were merely unlucky). Deaths that happened beside a poison job, or while
 * Redis could not be asked, make a job a suspect and never dead-letter it.
 */
export function decideCrash(crashed: number, suspectDeaths: number, maxCrashes: number): CrashDecision {
  if (crashed < 1) return { kind: 'run' };
  if (suspectDeaths >= maxCrashes - 1) return { kind: 'deadLetter', reason: 'retries_exhausted', errorClass: 'crash' };
  return { kind: 'isolate' };
}
