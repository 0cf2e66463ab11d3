import type { DeadLetterReason } from '@redrive/messaging';
import {
  decideCrash,
  decideFailure,
  type Classification,
  type ErrorClass,
  type RetryPolicy,
} from '@redrive/retry-policy';

// What happens to a delivery the worker holds, as pure functions of what is known at each step
// of its handling: before it runs (not due yet, already completed, a crash suspect), when a
// limit holds it back, and after it failed. The dispatcher does the I/O between the steps and
// carries out the fate each one returns.

/** What becomes of a delivery. */
export type Fate =
  /** Run the handler now. */
  | { kind: 'run' }
  /** Keep the message here for `ms` (in-progress acks), then NAK it for redelivery or run it again. */
  | { kind: 'hold'; ms: number; then: 'nak' | 'rerun' }
  /** Hand the message back; JetStream redelivers it after `delayMs`. */
  | { kind: 'nak'; delayMs: number }
  /** Publish it to the retry-scheduler, due at `dueAt`, with `attemptsMade` attempts made; then ack. */
  | { kind: 'handoff'; delayMs: number; dueAt: Date; attemptsMade: number }
  /** Publish it to the DLQ, then terminate it. */
  | { kind: 'deadLetter'; reason: DeadLetterReason; errorClass: ErrorClass | 'crash' }
  /** Ack it without running: an earlier run completed it. */
  | { kind: 'skip'; reason: 'already_completed' };

/** The fates of a delivery that waits before it is tried (again). */
export type WaitFate = Extract<Fate, { kind: 'hold' | 'nak' | 'handoff' }>;

/** Every fate but running now: what the dispatcher carries out instead of a run. */
export type NotNow = Exclude<Fate, { kind: 'run' }>;

export interface FateRules {
  /** Waits up to this are timed by the worker, holding the message. */
  localDelayMaxMs: number;
  /** Waits above this leave the consumer for the retry-scheduler. */
  handoffThresholdMs: number;
  /** A job whose runs died with their worker this many times (decideCrash) is dead-lettered. */
  maxCrashes: number;
}

/**
 * The one rule for a delivery that must wait `ms` before it is tried (again): a wait over the
 * hand-off threshold leaves the consumer for the retry-scheduler, since a NAKed or held message
 * keeps its ack-pending slot until it comes back and enough of them stall the lane; a short one
 * is timed here, holding the message (NAK-delay timing gets late under load); one between is a
 * NAK delay for a retry, and held here for a job that has not run (JetStream counts a NAK as a
 * delivery, which would use up an attempt). `then` says what a hold ends with: `nak` for a
 * retry (the redelivery counts the attempt), `rerun` for a job that has not run (a limit, a
 * Not-Before), which must not use an attempt.
 */
export function waitFate(
  ms: number,
  then: 'nak' | 'rerun',
  attemptsMade: number,
  now: number,
  rules: Pick<FateRules, 'localDelayMaxMs' | 'handoffThresholdMs'>,
): WaitFate {
  const wait = Math.max(0, ms);
  if (wait > rules.handoffThresholdMs)
    return { kind: 'handoff', delayMs: wait, dueAt: new Date(now + wait), attemptsMade };
  // A NAK is a delivery, and JetStream counts it: a wait that must not use an attempt is held.
  if (wait <= rules.localDelayMaxMs || then === 'rerun') return { kind: 'hold', ms: wait, then };
  return { kind: 'nak', delayMs: wait };
}

/** A job with `Redrive-Not-Before`: run now, or wait without using an attempt. */
export function fateOfNotBefore(
  notBefore: Date | undefined,
  attempt: number,
  now: number,
  rules: Pick<FateRules, 'localDelayMaxMs' | 'handoffThresholdMs'>,
): Fate {
  if (!notBefore || notBefore.getTime() <= now) return { kind: 'run' };
  return waitFate(notBefore.getTime() - now, 'rerun', attempt - 1, now, rules);
}

/** What becomes of a job about to run: `isolate` runs it apart from the worker's other suspects. */
export type BeforeRun = Extract<Fate, { kind: 'run' | 'skip' | 'deadLetter' }> | { kind: 'isolate' };

/**
 * A job about to run, from what the completion stores and the run counter said: skip it if an
 * earlier run completed it, dead-letter it after too many runs that died with their worker,
 * run a suspect apart from the worker's other suspects, or run it.
 */
export function fateBeforeRun(
  facts: { completed: boolean; crashed: number; suspectDeaths: number },
  rules: Pick<FateRules, 'maxCrashes'>,
): BeforeRun {
  if (facts.completed) return { kind: 'skip', reason: 'already_completed' };
  return decideCrash(facts.crashed, facts.suspectDeaths, rules.maxCrashes);
}

/** A job a limit (rate, concurrency) holds back for `ms`: it waits without using an attempt. */
export function fateOfLimit(
  ms: number,
  attempt: number,
  now: number,
  rules: Pick<FateRules, 'localDelayMaxMs' | 'handoffThresholdMs'>,
): WaitFate {
  return waitFate(ms, 'rerun', attempt - 1, now, rules);
}

/** A failed attempt: the retry policy's decision, carried out by the one wait rule. */
export function fateOfFailure(
  policy: RetryPolicy,
  facts: {
    type: string;
    classification: Classification;
    attempt: number;
    maxAttempts?: number | undefined;
    now: number;
    random?: () => number;
  },
  rules: Pick<FateRules, 'localDelayMaxMs' | 'handoffThresholdMs'>,
): (WaitFate | Extract<Fate, { kind: 'deadLetter' }>) & { errorClass: ErrorClass; delayMs?: number } {
  const decision = decideFailure(policy, { ...facts, handoffThresholdMs: rules.handoffThresholdMs });
  if (decision.kind === 'deadLetter') return decision;
  const fate = waitFate(decision.delayMs, 'nak', facts.attempt, facts.now, rules);
  return { ...fate, errorClass: decision.errorClass, delayMs: decision.delayMs };
}
