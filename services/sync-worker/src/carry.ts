import type { Logger } from '@redrive/lifecycle';
import type { Context } from '@redrive/telemetry';
import { deadLetteredEventId, type EventInput, type JobHeaders, type Topology } from '@redrive/messaging';
import { HAND_BACK_DELAY_MS, type Delivery, type DeliveryTracker } from './deliveries.js';
import type { NotNow } from './fate.js';
import type { WorkerMetrics } from './metrics.js';
import { TooLargeToForwardError, type Outcomes } from './outcomes.js';
import { lifeField } from './terminal-events.js';

/** What carrying out a fate needs to know of the delivery's job. */
export interface Run {
  meta: JobHeaders;
  attempt: number;
  traceId: string;
  /** The context of the delivery's process span: what leaves the consumer is published under it. */
  ctx: Context;
  log: Logger;
  emit: (e: EventInput) => Promise<unknown>;
  /** The failed attempt's event fields and error, when the fate follows a failure (or a crash). */
  failure?: { event: Omit<EventInput, 'kind'>; err: unknown };
}

/** The failure a job is dead-lettered with after its runs died with their worker `crashed` times. */
export function crashFailure(run: Run, type: string, crashed: number): NonNullable<Run['failure']> {
  const error = `the job's worker died during ${crashed} of its runs; it is not run again`;
  const { meta, attempt, traceId } = run;
  return {
    event: { jobId: meta.jobId, type, attempt, traceId, errorClass: 'crash', error, ...lifeField(meta) },
    err: new Error(error),
  };
}

/** Acks a job that must not run (or count) again, and says why in the audit trail. */
export async function skip(
  deps: { tracker: DeliveryTracker; metrics: WorkerMetrics },
  d: Delivery,
  run: Run,
  reason: 'already_completed' | 'completed_by_another_run',
): Promise<void> {
  const { meta, attempt, traceId } = run;
  deps.tracker.settle(d, 'ack');
  deps.metrics.processed.inc({ type: d.type, outcome: 'skipped' });
  await run.emit({
    kind: 'job.skipped',
    jobId: meta.jobId,
    type: d.type,
    attempt,
    traceId,
    reason,
    ...lifeField(meta),
  });
}

/** A dead letter that could not be published is tried again after this. */
const DEAD_LETTER_RETRY_MS = 5_000;

/**
 * Carries out the fate of a delivery that does not run now (fate.ts): holds it on a timer, NAKs
 * it, hands it to the retry-scheduler, dead-letters it, or skips it. A message leaves the
 * consumer (ack, term) only once what replaces it is stored: the hand-off, the dead letter.
 */
export function createCarrier(deps: {
  tracker: DeliveryTracker;
  outcomes: Outcomes;
  metrics: WorkerMetrics;
  topology: Topology;
  handoffThresholdMs: number;
  /** Runs a held delivery again once its wait is over. */
  rerun: (d: Delivery) => Promise<void>;
  stopping: () => boolean;
}) {
  const { tracker } = deps;
  return async function carry(d: Delivery, fate: NotNow, run: Run): Promise<void> {
    const { meta, attempt, traceId, log, emit, failure } = run;
    switch (fate.kind) {
      case 'hold':
        tracker.hold(d, fate.ms, () => {
          // Due while the worker stops: hand it back now, or it would wait out its ack wait.
          if (deps.stopping()) return void tracker.settle(d, 'nak', HAND_BACK_DELAY_MS);
          if (fate.then === 'nak') tracker.settle(d, 'nak');
          else void deps.rerun(d);
        });
        deps.metrics.held.set(tracker.waiting);
        return;
      case 'nak':
        tracker.settle(d, 'nak', fate.delayMs);
        return;
      case 'skip':
        await skip(deps, d, run, fate.reason);
        log.info('job already completed, acked without running');
        return;
      case 'handoff':
        try {
          await deps.outcomes.handOff(d.msg, meta, fate.attemptsMade, fate.dueAt, run.ctx);
        } catch (err) {
          // A job too large to hand off waits its whole delay on the consumer instead; any other
          // failure (NATS busy, SCHEDULE full) is tried again after the hand-off threshold.
          const wait = err instanceof TooLargeToForwardError ? fate.delayMs : deps.handoffThresholdMs;
          tracker.settle(d, 'nak', wait);
          log.error({ err, retryInMs: wait }, 'hand-off to the scheduler failed; NAKed instead');
          return;
        }
        // Acked as soon as the hand-off is stored: a worker dying before the ack would run the job
        // now and have the scheduler run it again later.
        tracker.settle(d, 'ack');
        if (failure)
          await emit({
            kind: 'retry.scheduled',
            ...failure.event,
            delayMs: fate.delayMs,
            dueAt: fate.dueAt.toISOString(),
          });
        return;
      case 'deadLetter':
        try {
          await deps.outcomes.deadLetter(d.msg, meta, {
            reason: fate.reason,
            errorClass: fate.errorClass,
            error: String(failure?.event.error ?? ''),
            attempts: attempt,
            type: d.type,
            ctx: run.ctx,
          });
        } catch (err) {
          // Never terminate a job whose dead letter is not stored: try again later.
          tracker.settle(d, 'nak', DEAD_LETTER_RETRY_MS);
          log.error({ err }, 'dead-letter publish failed; NAKed to try again');
          return;
        }
        // Terminated as soon as the dead letter is stored, so no second run can succeed beside it.
        // dlq-manager writes this event too, with the same id, when it records the dead letter.
        tracker.settle(d, 'term');
        await emit({
          kind: 'job.dead_lettered',
          id: deadLetteredEventId(deps.topology.streams.jobs, d.msg.seq, meta.jobId),
          jobId: meta.jobId,
          type: d.type,
          attempt,
          traceId,
          ...failure?.event,
          reason: fate.reason,
        });
        log.error({ err: failure?.err, errorClass: fate.errorClass, reason: fate.reason }, 'job dead-lettered');
        return;
    }
  };
}
